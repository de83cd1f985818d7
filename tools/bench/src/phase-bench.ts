// Latent-SFT phase steps at the Llama-3.2-1B shape (issue 6): phase 1 step 1 (encoder LoRA incl.
// embed_tokens, LTIM + LTSuM masks, top-10 soft latents, decoder frozen) and phase 2 (new LoRA,
// CE + top-10 KL with teacher soft embeddings), bf16 compute with float32 masters, AdamW, on the CUDA
// EP through the Trainer (state device-resident). Synthetic token ids shaped like GSM8k-Aug examples at
// r = 4 (prompt 96, CoT 192 -> m = 48, answer 16). Prints "BENCH {...}" lines.
// Usage: node phase-bench.mjs [--which phase1,phase2] [--batch 8] [--steps 5] [--device cuda] [--layers N]
//        [--model llama-3.2-1b|r1-distill-qwen-7b]  (the paper's two shapes; random init either way)
//        [--frozen float32|bfloat16]  (storage of the frozen base weights: phases' frozenDtype)
//        [--recompute none|layers]  (Trainer.recompute: activation recomputation per decoder layer)
//        [--profile PREFIX]  (ORT's profiler: a BENCH line of kernel time by op type and by node)
//        [--nodes A,B]  (no run: what the profile's nodes A and B are in the step graph)
//        [--static-shapes]  (Trainer.batchShapes alone: the step graph built for the bench batch's dims, launched node by node)
//        [--attention]  (FusedParts.attention: the 16-bit attention as latent_sft.FlashAttention, on top of the default fused kernels)
//        [--rope]  (FusedParts.rope: the 16-bit q/k rotary embeddings as latent_sft.Rope, on top of the default fused kernels)
//        [--single-adamw]  (FusedParts.multiTensor off: one AdamW node per parameter, the ablation of the multi-tensor node)
//        [--unfused-dropout]  (FusedParts.dropout off: the LoRA dropout as standard ops, the ablation of SeededDropout and HashWords)
//        [--narrow]  (host-cost probe: the model's graph node for node, layers and heads kept, but head dim 8 and the
//                     MLP 2 × hidden, so the GPU's share is small and the step time is mostly the host's: launching the
//                     nodes and the Trainer's work between runs)  [--vocab N]  (a smaller vocabulary: token ids drawn
//                     below N; with --narrow on a CPU, where a 152k-row head would dominate)
import { parseArgs } from 'node:util';
import { typedFrom } from '@latent-sft/graph';
import { Rng } from '@latent-sft/core';
import { deepseekR1DistillQwen7b, llama32_1b, parameterShapes, loraParameterShapes, type ModelConfig } from '@latent-sft/models';
import {
  ENCODER_PREFIX,
  DECODER_PREFIX,
  collatePhase1,
  collatePhase2,
  encoderConfig,
  phase1LoraDefaults,
  phase1Objective,
  phase2Objective,
  defaultLora,
  type SequenceParts,
  type Phase2Example,
  type Objective,
} from '@latent-sft/phases';
import { type Device, type HostTensor, summarizeProfile } from '@latent-sft/runtime';
import { Trainer, type TrainerOptions } from '@latent-sft/train';
import { tableFill } from './bench-init.js';
import { printStepNodes } from './describe-nodes.js';

const { values } = parseArgs({
  options: {
    which: { type: 'string', default: 'phase1,phase2' },
    batch: { type: 'string', default: '8' },
    steps: { type: 'string', default: '5' },
    device: { type: 'string', default: 'cuda' },
    layers: { type: 'string' },
    compute: { type: 'string', default: 'bfloat16' },
    prompt: { type: 'string', default: '96' },
    cot: { type: 'string', default: '192' },
    r: { type: 'string', default: '4' },
    model: { type: 'string', default: 'llama-3.2-1b' },
    frozen: { type: 'string', default: 'float32' },
    recompute: { type: 'string', default: 'none' },
    profile: { type: 'string' },
    nodes: { type: 'string' },
    'static-shapes': { type: 'boolean', default: false },
    attention: { type: 'boolean', default: false },
    rope: { type: 'boolean', default: false },
    'single-adamw': { type: 'boolean', default: false },
    'unfused-dropout': { type: 'boolean', default: false },
    narrow: { type: 'boolean', default: false },
    vocab: { type: 'string' },
  },
});
const staticShapes = values['static-shapes'];
if (values.recompute !== 'none' && values.recompute !== 'layers') throw new Error(`--recompute must be none or layers, got '${values.recompute}'`);
const recompute = values.recompute;
const device: Device = values.device === 'cuda' ? { kind: 'cuda', deviceId: 0 } : { kind: 'cpu' };
const compute = values.compute as 'bfloat16' | 'float16' | 'float32';
const B = Number(values.batch),
  steps = Number(values.steps),
  r = Number(values.r);
if (values.model !== 'llama-3.2-1b' && values.model !== 'r1-distill-qwen-7b')
  throw new Error(`--model must be llama-3.2-1b or r1-distill-qwen-7b, got '${values.model}'`);
const base = values.model === 'r1-distill-qwen-7b' ? deepseekR1DistillQwen7b() : llama32_1b();
if (values.frozen !== 'float32' && values.frozen !== 'bfloat16') throw new Error(`--frozen must be float32 or bfloat16, got '${values.frozen}'`);
const frozenDtype = values.frozen as 'float32' | 'bfloat16';
const vocabOverride = values.vocab === undefined ? undefined : Number(values.vocab);
if (vocabOverride !== undefined && !(Number.isInteger(vocabOverride) && vocabOverride >= 1024))
  throw new Error(`--vocab must be an integer >= 1024, got '${values.vocab}'`);
const narrowed: ModelConfig = values.narrow
  ? { ...base, headDim: 8, hiddenSize: 8 * base.numAttentionHeads, intermediateSize: 16 * base.numAttentionHeads }
  : base;
const config: ModelConfig = {
  ...narrowed,
  ...(values.layers ? { numHiddenLayers: Number(values.layers) } : {}),
  ...(vocabOverride !== undefined ? { vocabSize: vocabOverride } : {}),
};
/** Token ids of the synthetic examples: below the (possibly overridden) vocabulary; the pad id its last row. */
const idSpan = Math.min(100000, config.vocabSize - 1000 - 2);
const tok = (id: number) => (vocabOverride === undefined ? id : id % (config.vocabSize - 2));
const padId = vocabOverride === undefined ? 128001 : config.vocabSize - 1;
const WARMUP = 3;
const emit = (o: Record<string, unknown>) => process.stdout.write(`BENCH ${JSON.stringify(o)}\n`);
const rng = Rng.fromSeed(3);
const fill = tableFill(rng);
/** A float32 host tensor as bfloat16 bits (the frozen weights with --frozen bfloat16). */
const toBf16 = (t: HostTensor): HostTensor => ({
  dtype: 'bfloat16',
  dims: t.dims,
  data: typedFrom('bfloat16', t.data),
});
const weightsOf = (c: ModelConfig, prefix: string, head: boolean) =>
  Object.fromEntries(
    parameterShapes(c)
      .filter((p) => head || p.name !== 'lm_head.weight')
      .map((p) => {
        const t = fill(p.shape, p.init === 'ones' ? 'ones' : 'normal');
        return [prefix + p.name, frozenDtype === 'bfloat16' ? toBf16(t) : t];
      }),
  );
const ids = (n: number) => Array.from({ length: n }, () => 1000 + rng.int(idSpan));
const examples: SequenceParts[] = Array.from({ length: B }, () => ({
  prefixIds: ids(Number(values.prompt)),
  thinkIds: [14023, 771, 29].map(tok),
  cotIds: ids(Number(values.cot)),
  endThinkIds: [524, 27963, 29].map(tok),
  answerIds: ids(16),
}));

/**
 * One phase step at the benchmark's settings (AdamW, constant LR, clip 1.0, state on `device`): creates
 * the Trainer (and the objective's graphs), emits the time that takes (with `created`), then WARMUP steps and `steps` timed ones
 * (each one's time in `step_ms`).
 */
async function benchPhase(
  name: string,
  objective: () => Objective,
  lr: number,
  makeTensors: () => { trainable: Record<string, HostTensor>; frozen: Record<string, HostTensor> },
  feeds: Record<string, HostTensor>,
  tokensPerStep: number,
  created: Record<string, unknown>,
) {
  const opts: TrainerOptions = {
    objective: objective(),
    optimizer: { kind: 'adamw', lr, weightDecay: 0.01 },
    schedule: { kind: 'constant' },
    totalSteps: steps + WARMUP,
    clipNorm: 1.0,
    precision: { compute },
    device,
    recompute,
    ...(values.attention || values.rope || values['single-adamw'] || values['unfused-dropout']
      ? {
          fusedKernels: {
            optimizer: true,
            softmax: true,
            rmsnorm: true,
            swiglu: true,
            dropout: !values['unfused-dropout'],
            crossEntropy: true,
            attention: values.attention,
            rope: values.rope,
            multiTensor: !values['single-adamw'],
          },
        }
      : {}),
    ...(staticShapes ? { batchShapes: Object.fromEntries(Object.entries(feeds).map(([n, t]) => [n, [...t.dims]])) } : {}),
    ...(values.profile ? { session: { profilePrefix: `${values.profile}-${name}` } } : {}),
  };
  if (values.nodes !== undefined) {
    // --nodes A,B: what the profile's nodes A and B are in this step graph (no weights, sessions or run).
    printStepNodes(Trainer.stepGraphs(opts, { kernelsLoad: true }).graphs, values.nodes.split(','));
    return;
  }
  const tensors = makeTensors();
  const c0 = performance.now();
  const trainer = await Trainer.create(opts, tensors);
  emit({ bench: name, phase: 'create', s: (performance.now() - c0) / 1000, parts: trainer.createSeconds, ...created });
  const trainable = Object.values(tensors.trainable).reduce((a, t) => a + t.data.length, 0);
  const losses: number[] = [];
  // 3 warm-up steps (as train-bench): session 14 saw the 7B phase-1 step's third run take about twice a later one's.
  for (let i = 0; i < WARMUP; i++) losses.push((await trainer.step([feeds])).loss);
  const stepMs: number[] = [];
  const hostMs: number[] = [];
  let last: Awaited<ReturnType<Trainer['step']>> | undefined;
  for (let i = 0; i < steps; i++) {
    const s0 = performance.now();
    last = await trainer.step([feeds]);
    stepMs.push(performance.now() - s0);
    hostMs.push(last.timing.stepMs - last.timing.runMs);
    losses.push(last.loss);
  }
  const dt = stepMs.reduce((a, b) => a + b, 0) / 1000 / steps;
  emit({
    bench: name,
    impl: 'latent-sft-ort',
    model: values.model,
    ...(values.narrow ? { narrow: true } : {}),
    ...(vocabOverride !== undefined ? { vocab: vocabOverride } : {}),
    frozen: frozenDtype,
    recompute,
    static_shapes: staticShapes,
    fused: trainer.fusedKernels,
    device: device.kind,
    compute,
    batch: B,
    step_s: dt,
    step_ms: stepMs.map((m) => Math.round(m * 10) / 10),
    // Trainer.step's time outside its session runs (uploads, bindings, scalar reads): the device idles through it.
    host_ms: hostMs.map((m) => Math.round(m * 100) / 100),
    tokens_per_step: tokensPerStep,
    tokens_per_s: tokensPerStep / dt,
    trainable,
    loss_first: losses[0],
    loss_last: losses.at(-1),
    losses,
    metrics: last?.metrics,
  });
  if (values.profile) for (const file of trainer.endProfiling()) emit({ bench: name, profile: summarizeProfile(file) });
  await trainer.release();
}

if (values.which.includes('phase1')) {
  const lora = phase1LoraDefaults();
  const vocab = config.vocabSize;
  const batch = collatePhase1(examples, { r, compressId: vocab, padId, ltim: true, ltsum: true, dropoutSeed: 1 });
  const tensors = () => ({
    trainable: Object.fromEntries(
      loraParameterShapes(encoderConfig(config), lora.encoder).map((p) => [ENCODER_PREFIX + p.name, fill(p.shape, p.kind === 'A' ? 'normal' : 'zeros')]),
    ),
    frozen: { ...weightsOf(encoderConfig(config), ENCODER_PREFIX, false), ...weightsOf(config, DECODER_PREFIX, true) },
  });
  const objective = () =>
    phase1Objective(config, { step: 'encoder', latent: { kind: 'soft-topk', k: 10 }, ltim: true, ltsum: true, lora, compute, frozenDtype });
  const tokensPerStep = batch.encoderLengths.reduce((a, b) => a + b, 0) + batch.lengths.reduce((a, b) => a + b, 0);
  await benchPhase('phase1-encoder', objective, 5e-5, tensors, batch.feeds, tokensPerStep, {
    m: batch.m[0],
    encoderLen: batch.encoderLengths[0],
  });
}

if (values.which.includes('phase2')) {
  const lora = defaultLora('CAUSAL_LM');
  const m = Math.ceil(Number(values.cot) / r),
    k = 10;
  const ex: Phase2Example[] = examples.map((e) => {
    const probs = new Float32Array(m * k),
      indices = new Int32Array(m * k);
    for (let i = 0; i < m; i++) {
      let s = 0;
      for (let j = 0; j < k; j++) {
        const p = rng.uniform() + 0.01;
        probs[i * k + j] = p;
        s += p;
        indices[i * k + j] = 1000 + rng.int(idSpan);
      }
      for (let j = 0; j < k; j++) probs[i * k + j]! /= s;
    }
    return { prefixIds: e.prefixIds, thinkIds: e.thinkIds, endThinkIds: e.endThinkIds, answerIds: e.answerIds, teacher: { m, k, probs, indices } };
  });
  const batch = collatePhase2(ex, { padId, latent: 'soft-topk', vocabSize: config.vocabSize, dropoutSeed: 1 });
  const tensors = () => ({
    trainable: Object.fromEntries(loraParameterShapes(config, lora).map((p) => [p.name, fill(p.shape, p.kind === 'A' ? 'normal' : 'zeros')])),
    frozen: weightsOf(config, '', true),
  });
  const objective = () => phase2Objective(config, { latent: 'soft-topk', lora, compute, frozenDtype });
  await benchPhase(
    'phase2',
    objective,
    3e-4,
    tensors,
    batch.feeds,
    batch.lengths.reduce((a, b) => a + b, 0),
    { m },
  );
}
