// Training-step benchmark (issues 6 and 10): the Llama-3.2-1B shape (random init), bf16 compute with
// float32 master weights, AdamW + global-norm clipping inside one step graph, batch B x T, on the CUDA
// EP with all state device-resident. Modes: full fine-tuning ('train') and LoRA-only r=64 on every
// projection ('lora', the phase-1 step shape). Prints "BENCH {...}" lines like bench_torch.py.
// Usage: node train-bench.mjs [--which train,lora] [--batch 8] [--seq 512] [--steps 10] [--device cuda]
//        [--fused auto|true|false|optimizer,softmax,rmsnorm,swiglu,dropout,ce,copies,attention,rope] (Trainer.fusedKernels) [--cuda-opt k=v,...] [--mem-pattern true|false] (default: the Trainer's, off on CUDA)
//        [--in-place auto|true|false] (Trainer.inPlaceState: masters and AdamW moments updated in place, or double buffered; the
//        BENCH line's `state` says which the Trainer took)
//        [--params float32|bfloat16] (Trainer precision.params: float32 masters and moments, or PyTorch's bf16 recipe:
//        bf16 parameters and AdamW moments, float32 math in the fused AdamW; the BENCH line's `params`)
//        [--model llama-3.2-1b|r1-distill-qwen-7b] (the paper's two shapes; the 7B one reports as train7b / lora7b,
//        the names of bench_torch.py's 7B anchors)
//        [--recompute none|layers] (Trainer.recompute: activation recomputation per decoder layer)
//        [--frozen float32|bfloat16] (lora: the frozen base stored in float32 or, as the phase apps and PEFT keep it, in the compute dtype)
//        [--static-shapes] (Trainer.batchShapes alone: the step graph built for the bench batch's dims, launched node by node)
import { parseArgs } from 'node:util';
import { typedFrom } from '@latent-sft/graph';
import { Rng } from '@latent-sft/core';
import {
  deepseekR1DistillQwen7b,
  llama32_1b,
  loraParameterShapes,
  parameterCount,
  parameterShapes,
  type LoraConfig,
  type ModelConfig,
} from '@latent-sft/models';
import type { Device, HostTensor } from '@latent-sft/runtime';
import { summarizeProfile } from '@latent-sft/runtime';
import { Trainer, type TrainerOptions } from '@latent-sft/train';
import { tableFill } from './bench-init.js';
import { printStepNodes } from './describe-nodes.js';
import { BENCH_LORA, benchObjective } from './train-objective.js';

const { values } = parseArgs({
  options: {
    which: { type: 'string', default: 'train,lora' },
    batch: { type: 'string', default: '8' },
    seq: { type: 'string', default: '512' },
    steps: { type: 'string', default: '10' },
    device: { type: 'string', default: 'cuda' },
    layers: { type: 'string' },
    compute: { type: 'string', default: 'bfloat16' },
    profile: { type: 'string' },
    fused: { type: 'string', default: 'auto' },
    'cuda-opt': { type: 'string', default: '' },
    'mem-pattern': { type: 'string', default: '' },
    'in-place': { type: 'string', default: 'auto' },
    params: { type: 'string', default: 'float32' },
    frozen: { type: 'string', default: 'float32' },
    model: { type: 'string', default: 'llama-3.2-1b' },
    recompute: { type: 'string', default: 'none' },
    nodes: { type: 'string' },
    'static-shapes': { type: 'boolean', default: false },
  },
});
const staticShapes = values['static-shapes'];
if (values.recompute !== 'none' && values.recompute !== 'layers') throw new Error(`--recompute: expected none or layers, got ${values.recompute}`);
const recompute = values.recompute;
// --cuda-opt k=v,k=v: extra CUDA provider options (e.g. arena_extend_strategy=kSameAsRequested).
const cudaOptions = Object.fromEntries(
  values['cuda-opt']
    .split(',')
    .filter((kv) => kv !== '')
    .map((kv) => kv.split('=') as [string, string]),
);
// --fused auto|true|false or a comma list of the parts to use: optimizer,softmax,rmsnorm,swiglu,dropout,ce,copies,attention,rope
// (ce: the LM-head cross-entropy over vocabulary chunks, FusedParts.crossEntropy; dropout: the LoRA inputs' seeded dropout,
// FusedParts.dropout; copies: the fused AdamW writes the 16-bit weights, FusedParts.weightCopies; attention: the 16-bit
// attention as FlashAttention, FusedParts.attention, needs softmax; rope: the 16-bit q/k rotary embeddings as
// latent_sft.Rope, FusedParts.rope; single-adamw: one AdamW node per parameter instead of the multi-tensor node,
// FusedParts.multiTensor off)
const parts = values.fused.split(',');
const fusedKernels =
  values.fused === 'auto'
    ? 'auto'
    : values.fused === 'true' || values.fused === 'false'
      ? values.fused === 'true'
      : {
          optimizer: parts.includes('optimizer'),
          softmax: parts.includes('softmax'),
          rmsnorm: parts.includes('rmsnorm'),
          swiglu: parts.includes('swiglu'),
          dropout: parts.includes('dropout'),
          crossEntropy: parts.includes('ce'),
          weightCopies: parts.includes('copies'),
          attention: parts.includes('attention'),
          rope: parts.includes('rope'),
          multiTensor: parts.includes('optimizer') && !parts.includes('single-adamw'),
        };
if (!['auto', 'true', 'false'].includes(values['in-place'])) throw new Error(`--in-place: expected auto, true or false, got ${values['in-place']}`);
const inPlaceState = values['in-place'] === 'auto' ? 'auto' : values['in-place'] === 'true';
if (values.params !== 'float32' && values.params !== 'bfloat16' && values.params !== 'float16')
  throw new Error(`--params: expected float32, bfloat16 or float16, got ${values.params}`);
const params = values.params;
const compute = values.compute as 'bfloat16' | 'float16' | 'float32';
const device: Device = values.device === 'cuda' ? { kind: 'cuda', deviceId: 0 } : { kind: 'cpu' };
const B = Number(values.batch),
  T = Number(values.seq),
  steps = Number(values.steps);
if (values.model !== 'llama-3.2-1b' && values.model !== 'r1-distill-qwen-7b')
  throw new Error(`--model: expected llama-3.2-1b or r1-distill-qwen-7b, got ${values.model}`);
const is7b = values.model === 'r1-distill-qwen-7b';
const base = is7b ? deepseekR1DistillQwen7b() : llama32_1b();
const config: ModelConfig = values.layers ? { ...base, numHiddenLayers: Number(values.layers) } : base;
const emit = (o: Record<string, unknown>) => process.stdout.write(`BENCH ${JSON.stringify(o)}\n`);
if (values.frozen !== 'float32' && values.frozen !== compute)
  throw new Error(`--frozen: expected float32 or the compute dtype ${compute}, got ${values.frozen}`);
const frozen = values.frozen as 'float32' | 'bfloat16' | 'float16';
const objective = (lora: LoraConfig | null) => benchObjective(config, B, T, compute, lora, frozen);

// Benchmark init (as forward-1b.ts): normal(0, 0.02) values from a seeded table, ones for norms.
const fill = tableFill(Rng.fromSeed(0));

function batch(): Record<string, HostTensor> {
  const tok = BigInt64Array.from({ length: B * T }, (_, i) => BigInt((i * 7919 + 13) % 128000));
  const i64 = (data: BigInt64Array): HostTensor => ({ dtype: 'int64', dims: [B, T], data });
  return {
    input_ids: i64(tok),
    labels: i64(tok.slice()),
    attention_mask: i64(new BigInt64Array(B * T).fill(1n)),
    position_ids: i64(BigInt64Array.from({ length: B * T }, (_, i) => BigInt(i % T))),
  };
}

/** The bench name of a mode: the 7B shape's carries the suffix bench_torch.py's anchors use. */
const benchName = (which: 'train' | 'lora') => (is7b ? `${which}7b` : which);

async function run(which: 'train' | 'lora') {
  const lora: LoraConfig | null = which === 'lora' ? BENCH_LORA : null;
  const b = batch();
  const feeds = lora ? { ...b, dropout_seed: { dtype: 'int64' as const, dims: [], data: new BigInt64Array([1n]) } } : b;
  const opts: TrainerOptions = {
    objective: objective(lora),
    optimizer: { kind: 'adamw', lr: 1e-5, weightDecay: 0.01 },
    schedule: { kind: 'constant' },
    totalSteps: steps + 3,
    clipNorm: 1.0,
    precision: { compute, params },
    device,
    fusedKernels,
    inPlaceState,
    recompute,
    ...(staticShapes ? { batchShapes: Object.fromEntries(Object.entries(feeds).map(([n, t]) => [n, [...t.dims]])) } : {}),
    session: {
      ...(values.profile ? { profilePrefix: values.profile } : {}),
      cudaOptions,
      ...(values['mem-pattern'] !== '' ? { enableMemPattern: values['mem-pattern'] === 'true' } : {}),
    },
  };
  if (values.nodes !== undefined) {
    // --nodes A,B: what the profile's nodes A and B are in this step graph (no sessions, no run).
    printStepNodes(Trainer.stepGraphs(opts, { kernelsLoad: true }).graphs, values.nodes.split(','));
    return;
  }
  const base16 = lora !== null && frozen !== 'float32';
  const weights = Object.fromEntries(
    parameterShapes(config).map((p) => {
      const t = fill(p.shape, p.init === 'ones' ? 'ones' : 'normal');
      return [p.name, base16 ? ({ dtype: frozen, dims: t.dims, data: typedFrom(frozen, t.data as Float32Array) } as HostTensor) : t];
    }),
  );
  const adapters = lora ? Object.fromEntries(loraParameterShapes(config, lora).map((p) => [p.name, fill(p.shape, p.kind === 'A' ? 'normal' : 'zeros')])) : {};
  let t0 = performance.now();
  const trainer = await Trainer.create(opts, lora ? { trainable: adapters, frozen: weights } : { trainable: weights, frozen: {} });
  emit({ bench: benchName(which), phase: 'create', s: (performance.now() - t0) / 1000, parts: trainer.createSeconds });
  const losses: number[] = [];
  for (let i = 0; i < 3; i++) losses.push((await trainer.step([feeds])).loss); // warm-up
  const io0 = trainer.transferStats();
  t0 = performance.now();
  for (let i = 0; i < steps; i++) losses.push((await trainer.step([feeds])).loss);
  const dt = (performance.now() - t0) / 1000 / steps;
  const io1 = trainer.transferStats();
  const n = parameterCount(config);
  const trainableCount = lora ? loraParameterShapes(config, lora).reduce((a, p) => a + p.shape.reduce((x, y) => x * y, 1), 0) : n;
  const attn = 12 * config.numHiddenLayers * config.hiddenSize * T;
  const fpt = lora ? 4 * n + 6 * trainableCount + attn : 6 * n + attn; // LoRA: no weight gradients of the base
  const tok = (B * T) / dt;
  emit({
    bench: benchName(which),
    model: values.model,
    impl: 'latent-sft-ort',
    device: device.kind,
    compute,
    fused: trainer.fusedKernels,
    state: trainer.stateMode.inPlace ? 'in-place' : 'double-buffered',
    params,
    recompute,
    static_shapes: staticShapes,
    frozen: lora !== null ? frozen : null,
    batch: B,
    seq: T,
    step_s: dt,
    tokens_per_s: tok,
    tflops: (tok * fpt) / 1e12,
    trainable: trainableCount,
    loss_first: losses[0],
    loss_last: losses.at(-1),
    losses,
    h2d_bytes_per_step: (io1.hostToDevice - io0.hostToDevice) / steps,
    d2h_bytes_per_step: (io1.deviceToHost - io0.deviceToHost) / steps,
  });
  if (values.profile) {
    for (const file of trainer.endProfiling()) emit({ bench: benchName(which), profile: summarizeProfile(file) });
  }
  await trainer.release();
}

for (const w of values.which.split(',')) await run(w as 'train' | 'lora');
