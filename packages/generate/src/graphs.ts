// The two ONNX graphs of the generation engine, built once per Generator.
//
// Step graph (`buildStepGraph`): one Llama-3 / Qwen2 / Qwen3 decoder step on a static KV cache (models'
// decoder() with `staticCache`: ONNX Runtime's GroupQueryAttention on per-layer buffers [B, kvH, C, hd]
// of fixed capacity C, written in place; rows right-padded, row b's keys at [0, len_b)). The same graph
// runs the prefill (T = the longest prompt, seqlens_k = len_b − 1) and every decode step (T = 1,
// seqlens_k = len_b). The input embedding of every position is chosen per position:
//     x[b,t] = use_soft[b,t] ? soft_embeds[b,0] : W[input_ids[b,t]]
// so a batch can mix latent rows (fed the z of their previous step, which never leaves the device)
// with rows fed ordinary tokens. Only each row's LAST real position (`last_rows`: flat index b·T + t)
// reaches the head ([B, V], one Gemm row per sequence), and from its logits, on the device:
//   top_ids / top_logits [B, K]  TopK of the logits (descending; ties → lower id), K = max(k, candidates)
//   lse [B]                      logsumexp(logits · inv_temperature): the top-p normaliser
//   argmax [B], latent_ids [B, k]  top_ids[:, 0] and top_ids[:, :k], so greedy/latent steps download only those
//   soft_probs [B, k]            softmax over the first k top logits (spec §5.4 HEAD: no temperature)
//   soft_next [B, 1, D]          z = Σ_j soft_probs[j] · W[top_ids[j]], the next latent input
//   hidden_next [B, 1, D]        the last position's final normed hidden state (float32): the next
//                                latent input of the hidden-state ablation (spec §7 "- Hidden State")
//   last_logits [B, V]           downloaded only when top-p needs more than K candidates
//   present.{i}.key|value        the cache buffers themselves (bound to the same memory as the pasts)
// Inputs: input_ids int64 [B, T], use_soft bool [B, T], soft_embeds float32 [B, 1, D] (z; the caller may
// bind the same buffer as soft_next or hidden_next: it is read first, written last), seqlens_k int32 [B],
// total_sequence_length int32 scalar (host memory), last_rows int64 [B], inv_temperature float32 [1],
// past_key_values.{i}.key|value [B, kvH, C, hd] in the compute dtype.
//
// Compaction graph (`buildCompactGraph`): Gather along the batch axis of every cache buffer and of z by
// `rows` int64 [B'], run when sequences finish so later steps only compute live rows.
import { Graph, type Tensor, fusePackedSwiGlu, fuseRmsNorm, fuseSwiGlu } from '@latent-sft/graph';
import { inputError } from '@latent-sft/core';
import { gWeightedEmbedding } from '@latent-sft/latent';
import { type ModelConfig, type WeightTensor, declareWeights, decoder, ropeTables, staticCacheHeadDim } from '@latent-sft/models';

/** Compute dtype of the decoder body and the KV cache; logits, z and the heads are float32 either way. */
export type GenerateDtype = 'float32' | 'float16' | 'bfloat16';

/** Options of buildStepGraph. */
export interface StepGraphOptions {
  dtype: GenerateDtype;
  /** Width of the latent superposition (spec: 10). */
  latentTopK: number;
  /** Candidates brought to the host per row for sampling (the top-p nucleus is exact regardless). */
  candidates: number;
  /** Positions are limited to [0, maxPositions) (default config.maxPositionEmbeddings): the RoPE tables' length. */
  maxPositions?: number;
  /** 16-bit dtypes: RMSNorm and SwiGLU as the fused latent_sft kernels (default true). */
  fused?: boolean;
  /** Fixed sizes instead of symbolic dims (no shape computation at run time: a CUDA-graph decode session). */
  shapes?: { batch: number; seq: number; capacity: number };
  /**
   * The top K and log-sum-exp of the logits: 'fused' latent_sft.VocabTopK (default; K ≤ VOCAB_TOPK_MAX), 'ops'
   * ONNX TopK plus the log-sum-exp as standard ops (also the fallback for a larger K).
   */
  vocabTopK?: VocabTopKImpl;
  /**
   * Attention of a decode step (fixed shapes with seq 1): 'gqa' ORT's GroupQueryAttention (default), 'fused'
   * latent_sft.DecodeAttention (models' StaticKvCache.decodeKernel). Graphs of more than one new token use GQA.
   */
  decodeAttention?: DecodeAttention;
}

/** How the step takes the top K of the logits: latent_sft.VocabTopK or ONNX TopK (see StepGraphOptions). */
export type VocabTopKImpl = 'fused' | 'ops';

/** The largest K latent_sft.VocabTopK selects (two keys per lane of a warp's list). */
export const VOCAB_TOPK_MAX = 64;

/** Which kernel attends in a decode step: ORT's GroupQueryAttention or latent_sft.DecodeAttention. */
export type DecodeAttention = 'gqa' | 'fused';

/** Input and output names of the step graph. */
export const STEP = {
  ids: 'input_ids',
  useSoft: 'use_soft',
  soft: 'soft_embeds',
  seqlensK: 'seqlens_k',
  totalLength: 'total_sequence_length',
  lastRows: 'last_rows',
  invTemp: 'inv_temperature',
  topIds: 'top_ids',
  argmax: 'argmax',
  latentIds: 'latent_ids',
  topLogits: 'top_logits',
  lse: 'lse',
  softProbs: 'soft_probs',
  softNext: 'soft_next',
  hiddenNext: 'hidden_next',
  lastLogits: 'last_logits',
  pastKey: (i: number): string => `past_key_values.${i}.key`,
  pastValue: (i: number): string => `past_key_values.${i}.value`,
  presentKey: (i: number): string => `present.${i}.key`,
  presentValue: (i: number): string => `present.${i}.value`,
} as const;

/** Input and output names of the compaction graph. */
export const COMPACT = {
  rows: 'rows',
  soft: 'soft',
  keptSoft: 'kept_soft',
  key: (i: number): string => `past.${i}.key`,
  value: (i: number): string => `past.${i}.value`,
  keptKey: (i: number): string => `kept.${i}.key`,
  keptValue: (i: number): string => `kept.${i}.value`,
} as const;

/** Total bytes of the weights as given, float32 or 16-bit (decides whether the model needs an external-data file). */
export function weightBytes(tensors: readonly WeightTensor[]): number {
  return tensors.reduce((s, t) => s + t.data.byteLength, 0);
}

/** The step graph described in the file header. Throws one-line errors for bad options or weights. */
export function buildStepGraph(config: ModelConfig, tensors: readonly WeightTensor[], opts: StepGraphOptions): Graph {
  const c = config;
  const V = c.vocabSize;
  const D = c.hiddenSize;
  const { latentTopK: k, candidates } = opts;
  if (!Number.isInteger(k) || k < 1 || k > V) throw inputError({ field: 'latentTopK' }, `must be an integer in [1, ${V}] (the vocabulary size), got ${k}`);
  if (!Number.isInteger(candidates) || candidates < 1) throw inputError({ field: 'candidates' }, `must be a positive integer, got ${candidates}`);
  const K = Math.min(V, Math.max(k, candidates));

  const g = new Graph('generate_step');
  const sh = opts.shapes;
  const [Bd, Td, Cd] = sh === undefined ? ['batch', 'seq', 'capacity'] : [sh.batch, sh.seq, sh.capacity];
  // Initializers by HF name in the compute dtype (16-bit weights stored once, no Cast at run time).
  const weights = declareWeights(g, c, { kind: 'initializers', tensors }, true, opts.dtype);
  const W = weights['model.embed_tokens.weight'] as Tensor; // [V, D]
  const hdC = staticCacheHeadDim(c);
  const layers = Array.from({ length: c.numHiddenLayers }, (_, i) => ({
    key: g.input(STEP.pastKey(i), opts.dtype, [Bd, c.numKeyValueHeads, Cd, hdC]),
    value: g.input(STEP.pastValue(i), opts.dtype, [Bd, c.numKeyValueHeads, Cd, hdC]),
  }));
  const seqlensK = g.input(STEP.seqlensK, 'int32', [Bd]);
  const totalLength = g.input(STEP.totalLength, 'int32', []);
  const lastRows = g.input(STEP.lastRows, 'int64', [Bd]);
  // Per-position input embedding (see the header).
  const ids = g.input(STEP.ids, 'int64', [Bd, Td]);
  const useSoft = g.input(STEP.useSoft, 'bool', [Bd, Td]);
  const soft = g.input(STEP.soft, 'float32', [Bd, 1, D]);
  const x = g.where(g.unsqueeze(useSoft, [2]), soft, g.cast(g.gather(W, ids, 0), 'float32')); // [B, T, D]
  const rope = ropeTables(g, c, opts.maxPositions ?? c.maxPositionEmbeddings, opts.dtype, hdC / 2);
  const attn = opts.decodeAttention ?? 'gqa';
  if (attn !== 'gqa' && attn !== 'fused') throw inputError({ field: 'decodeAttention' }, `must be 'gqa' or 'fused', got '${String(attn)}'`);
  const decodeKernel = attn === 'fused' && sh !== undefined && sh.seq === 1;
  const dec = decoder(g, c, weights, x, {
    staticCache: { layers, seqlensK, totalLength, cos: rope.cos, sin: rope.sin, decodeKernel },
    outputs: ['hidden'],
    dtype: opts.dtype,
  });
  const hidden = dec.hidden as Tensor; // [B, T, D] float32

  // Each row's last real position only: [B, D] → logits [B, V] in the compute dtype, returned as float32.
  const lastHidden = g.gather(g.reshape(hidden, [-1, D]), lastRows, 0); // [B, D] float32
  const last = g.cast(lastHidden, opts.dtype);
  const head = weights[c.tieWordEmbeddings ? 'model.embed_tokens.weight' : 'lm_head.weight'] as Tensor;
  const logits = g.cast(g.op1('Gemm', [last, g.cast(head, opts.dtype)], { transB: 1 }), 'float32'); // [B, V]

  const invTemp = g.input(STEP.invTemp, 'float32', [1]);
  let topLogits: Tensor;
  let topIds: Tensor;
  let lse: Tensor; // [B]
  if ((opts.vocabTopK ?? 'fused') === 'fused' && K <= VOCAB_TOPK_MAX) {
    // latent_sft.VocabTopK: the top K and the log-sum-exp in one pass over the logits, a row spread over
    // ⌈V / 8192⌉ blocks. ORT's CUDA TopK gives a row to one block: ~0.8 ms of a ~3.7 ms decode step at
    // batch 64 × 128,256 on an H200 (session 9's profile).
    [topLogits, topIds, lse] = g.op('VocabTopK', [logits, invTemp], { k: K }) as [Tensor, Tensor, Tensor];
  } else {
    [topLogits, topIds] = g.op('TopK', [logits, g.ints([K])], { axis: -1, largest: 1, sorted: 1 }) as [Tensor, Tensor];
    const scaled = g.mul(logits, invTemp);
    // The row max of `scaled` is TopK's first value times 1/T (rounding is monotonic, so with 1/T ≥ 0 this is
    // exactly ReduceMax(scaled)): ORT's CUDA ReduceMax goes through cuDNN's reduction, which took ~10 ms of the
    // ~14 ms decode step at batch 64 × 128,256 (session 8's H200 profile, CUDA_LAUNCH_BLOCKING=1).
    const mx = g.mul(g.slice(topLogits, [0], [1], [1]), invTemp); // [B, 1]
    lse = g.add(g.squeeze(mx, [1]), g.log(g.reduceSum(g.exp(g.sub(scaled, mx)), [1], false)));
  }

  const kLogits = K === k ? topLogits : g.slice(topLogits, [0], [k], [1]);
  const kIds = K === k ? topIds : g.slice(topIds, [0], [k], [1]);
  const softProbs = g.softmax(kLogits, -1); // [B, k]
  const z = gWeightedEmbedding(g, g.unsqueeze(kIds, [1]), g.unsqueeze(softProbs, [1]), W); // [B, 1, D]

  g.output(topIds, STEP.topIds);
  g.output(g.squeeze(g.slice(topIds, [0], [1], [1]), [1]), STEP.argmax);
  g.output(kIds, STEP.latentIds);
  g.output(topLogits, STEP.topLogits);
  g.output(lse, STEP.lse);
  g.output(softProbs, STEP.softProbs);
  g.output(z, STEP.softNext);
  g.output(g.unsqueeze(g.cast(lastHidden, 'float32'), [1]), STEP.hiddenNext);
  g.output(logits, STEP.lastLogits);
  dec.presents.forEach((p, i) => {
    g.output(p.key, STEP.presentKey(i));
    g.output(p.value, STEP.presentValue(i));
  });
  g.prune();
  // 16-bit bodies: the RMSNorms and the SwiGLU gating as the fused latent_sft kernels (one pass each
  // instead of the float32 chains; @latent-sft/runtime registers them in every session), the gating
  // reading gate and up straight from their one Gemm's output (SwiGLUPacked: no Split copying it).
  if (opts.dtype !== 'float32' && opts.fused !== false) {
    fuseRmsNorm(g);
    fuseSwiGlu(g);
    g.prune(); // (the replaced chains' dead Sigmoid / Mul would still count as uses of gate)
    fusePackedSwiGlu(g);
    g.prune();
  }
  return g;
}

/** The compaction graph described in the file header (no weights); cache buffers in `dtype`. */
export function buildCompactGraph(config: ModelConfig, dtype: GenerateDtype): Graph {
  const [kvH, hd, D] = [config.numKeyValueHeads, staticCacheHeadDim(config), config.hiddenSize];
  const g = new Graph('generate_compact');
  const rows = g.input(COMPACT.rows, 'int64', ['kept']);
  g.output(g.gather(g.input(COMPACT.soft, 'float32', ['batch', 1, D]), rows, 0), COMPACT.keptSoft);
  for (let i = 0; i < config.numHiddenLayers; i++) {
    g.output(g.gather(g.input(COMPACT.key(i), dtype, ['batch', kvH, 'capacity', hd]), rows, 0), COMPACT.keptKey(i));
    g.output(g.gather(g.input(COMPACT.value(i), dtype, ['batch', kvH, 'capacity', hd]), rows, 0), COMPACT.keptValue(i));
  }
  return g;
}
