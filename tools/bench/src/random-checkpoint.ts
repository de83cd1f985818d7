// A random-init HF checkpoint of one of the paper's shapes, for the benchmarks that load a model folder
// (generate-bench's --model DIR): the benchmark init of bench-init.ts (HF's normal(0, 0.02) read at seeded
// offsets from a table — 100× faster than drawing 7.6e9 normals — ones for norms), stored in bf16 as the
// published checkpoints are. Prints "CKPT {...}" lines (seconds per stage).
// Usage: node random-checkpoint.mjs OUT_DIR [--model llama-3.2-1b|r1-distill-qwen-7b|tiny-llama] [--seed 0]
import { parseArgs } from 'node:util';
import { Rng } from '@latent-sft/core';
import { type ModelConfig, type NamedTensor, deepseekR1DistillQwen7b, llama32_1b, parameterShapes, saveCheckpoint, tinyLlama } from '@latent-sft/models';
import { tableFill } from './bench-init.js';

const { values, positionals } = parseArgs({
  allowPositionals: true,
  options: { model: { type: 'string', default: 'r1-distill-qwen-7b' }, seed: { type: 'string', default: '0' } },
});
const out = positionals[0];
if (out === undefined || positionals.length !== 1) throw new Error('usage: random-checkpoint OUT_DIR [--model NAME] [--seed N]');
const shapes: Record<string, () => ModelConfig> = {
  'llama-3.2-1b': llama32_1b,
  'r1-distill-qwen-7b': deepseekR1DistillQwen7b,
  'tiny-llama': () => tinyLlama({ torchDtype: 'bfloat16' }),
};
const make = shapes[values.model];
if (make === undefined) throw new Error(`--model must be one of ${Object.keys(shapes).join(', ')}, got '${values.model}'`);
const seed = Number(values.seed);
if (!Number.isInteger(seed) || seed < 0) throw new Error(`--seed must be an integer >= 0, got '${values.seed}'`);
const config = make();
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
emit({ stage: 'save', dir: out, dtype: 'bfloat16', s: (performance.now() - t) / 1e3 });
