// A random-init HF checkpoint of one of the paper's shapes, for the benchmarks that load a model folder
// (generate-bench's --model DIR): the benchmark init of bench-init.ts (HF's normal(0, 0.02) read at seeded
// offsets from a table — 100× faster than drawing 7.6e9 normals — ones for norms), stored in bf16 as the
// published checkpoints are. Prints "CKPT {...}" lines (seconds per stage).
// Usage: node random-checkpoint.mjs OUT_DIR [--model llama-3.2-1b|r1-distill-qwen-7b|tiny-llama|tiny-qwen2] [--seed 0]
//        [--tokenizer llama-3.2|qwen3]  (also write that tokenizer's files: a folder the phase apps accept)
//        [--encoder]  (vocabulary V + 1: the shape of a merged step-1 encoder, for cache-latents --encoder)
import { parseArgs } from 'node:util';
import { Rng } from '@latent-sft/core';
import { type ModelConfig, type NamedTensor, deepseekR1DistillQwen7b, llama32_1b, parameterShapes, saveCheckpoint, tinyLlama } from '@latent-sft/models';
import { materializeTokenizer } from '@latent-sft/tokenizer';
import { tableFill } from './bench-init.js';

const { values, positionals } = parseArgs({
  allowPositionals: true,
  options: {
    model: { type: 'string', default: 'r1-distill-qwen-7b' },
    seed: { type: 'string', default: '0' },
    tokenizer: { type: 'string' },
    encoder: { type: 'boolean', default: false },
  },
});
const out = positionals[0];
if (out === undefined || positionals.length !== 1) throw new Error('usage: random-checkpoint OUT_DIR [--model NAME] [--seed N]');
const shapes: Record<string, () => ModelConfig> = {
  'llama-3.2-1b': llama32_1b,
  'r1-distill-qwen-7b': deepseekR1DistillQwen7b,
  'tiny-llama': () => tinyLlama({ torchDtype: 'bfloat16' }),
  // The 7B shape's vocabulary, biases and rope with 2 small layers: a CPU rehearsal of the 7B commands.
  'tiny-qwen2': () => ({
    ...deepseekR1DistillQwen7b(),
    hiddenSize: 64,
    intermediateSize: 128,
    numHiddenLayers: 2,
    numAttentionHeads: 4,
    numKeyValueHeads: 2,
    headDim: 16,
  }),
};
const make = shapes[values.model];
if (make === undefined) throw new Error(`--model must be one of ${Object.keys(shapes).join(', ')}, got '${values.model}'`);
const seed = Number(values.seed);
if (!Number.isInteger(seed) || seed < 0) throw new Error(`--seed must be an integer >= 0, got '${values.seed}'`);
const tokenizer = values.tokenizer;
if (tokenizer !== undefined && tokenizer !== 'llama-3.2' && tokenizer !== 'qwen3')
  throw new Error(`--tokenizer must be llama-3.2 or qwen3, got '${tokenizer}'`);
const base = make();
const config = values.encoder ? { ...base, vocabSize: base.vocabSize + 1 } : base;
const emit = (o: Record<string, unknown>) => process.stdout.write(`CKPT ${JSON.stringify(o)}\n`);

let t = performance.now();
const fill = tableFill(Rng.fromSeed(seed));
const tensors: NamedTensor[] = parameterShapes(config).map((p) => ({
  name: p.name,
  shape: p.shape,
  data: fill(p.shape, p.init === 'ones' ? 'ones' : p.init === 'zeros' ? 'zeros' : 'normal').data as Float32Array,
}));
emit({ stage: 'init', model: values.model, params: tensors.reduce((a, x) => a + x.data.length, 0), s: (performance.now() - t) / 1e3 });
t = performance.now();
saveCheckpoint(out, config, tensors, { dtype: 'bfloat16' });
if (tokenizer !== undefined) materializeTokenizer(tokenizer, out);
emit({ stage: 'save', dir: out, dtype: 'bfloat16', vocab: config.vocabSize, tokenizer: tokenizer ?? null, s: (performance.now() - t) / 1e3 });
