// Llama-3 / Qwen2 decoders as ONNX graphs, one builder driven by ModelConfig (HF eager semantics):
//   x = embed(ids) | inputs_embeds;  per layer: h += o_proj(attn(rope(q), rope(k), v));  h += down(silu(gate) · up)
//   (pre-RMSNorm on both blocks), final RMSNorm → last_hidden_state, lm_head (or tied embedding) → logits.
// GQA: query heads are grouped as [kvH, H/kvH] and the K/V of a group broadcast over it in the batched
// MatMul, the same arithmetic as HF's repeat_kv without materialising the copies.
// Attention: scores = q kᵀ / √hd (+ additive mask), softmax over keys in float32 (float64 in f64 graphs); a
// power-of-two 1/√hd scales q instead (exact, and hd/S of the traffic).
// Masks: 'padding' builds causal + padding from int64 attention_mask [B, P+T] in the graph (query t sits at
// key index P+t; blocked entries get float32 min, so fully padded rows stay finite); 'additive' takes a
// float [B, 1, T, P+T] mask (0 keep / very negative block) such as the Latent-SFT LTIM/LTSuM masks.
// KV cache: with `cache`, per-layer past_key_values.{i}.key/value [B, kvH, P, hd] (post-RoPE, as HF) are
// prepended and present.{i}.key/value [B, kvH, P+T, hd] returned; P = 0 is a prefill.
// Parameters keep their HF names (parameterShapes) as graph inputs (training) or initializers (inference);
// LoRA tensors keep PEFT names (loraParameterShapes) and are always graph inputs.
// Shapes: B batch, T new tokens, P past tokens, S = P+T keys, N = B·T rows, D hidden, H / kvH heads,
// hd head_dim, V vocab, F intermediate.
import { type DType, type Graph, type Tensor, crossEntropy } from '@latent-sft/graph';
import { inputError } from '@latent-sft/core';
import type { ModelConfig } from './config.js';
import type { NamedTensor } from './init.js';
import { type LoraConfig, type LoraParameterShape, loraParameterShapes, loraScaling } from './lora.js';
import { type LoraPair, dropoutSource, embedding, linear } from './lora-graph.js';
import { parameterShapes } from './params.js';
import { type RopeFactors, applyRope, ropeFactors } from './rope-graph.js';

/** Arithmetic dtype of the decoder body (norms and attention softmax run in float32 for the 16-bit ones). */
export type ComputeDtype = 'float32' | 'float64' | 'float16' | 'bfloat16';

/** Where the parameters come from. */
export type DecoderParams =
  | { kind: 'inputs'; dtype?: 'float32' | 'float64' }
  | { kind: 'initializers'; tensors: readonly NamedTensor[] };

/** Options of buildDecoder. */
export interface DecoderOptions {
  /** 'ids': int64 input_ids [B, T]; 'embeds': inputs_embeds [B, T, D] (the soft-embedding path). */
  input: 'ids' | 'embeds';
  /** 'padding': int64 attention_mask [B, P+T] → causal + padding in-graph; 'additive': float attention_mask [B, 1, T, P+T]. */
  mask: 'padding' | 'additive';
  params: DecoderParams;
  /** Which results to compute (default ['logits']). */
  outputs?: ReadonlyArray<'logits' | 'hidden'>;
  /** Default 'float32'. */
  dtype?: ComputeDtype;
  /** LoRA on the targeted modules; 'train' adds seeded dropout (int64 scalar input `dropout_seed`) when dropout > 0. */
  lora?: { config: LoraConfig; mode: 'train' | 'eval' };
  /** Adds past_key_values inputs and present outputs (generation). */
  cache?: boolean;
  /** Positions are limited to [0, maxPositions) (default config.maxPositionEmbeddings). */
  maxPositions?: number;
  /** Mark logits / hidden / presents as graph outputs `logits`, `last_hidden_state`, `present.{i}.key|value` (default true). */
  markOutputs?: boolean;
}

/** What buildDecoder added to the graph. */
export interface DecoderGraph {
  /** [B, T, V] in ioDtype, or null when not requested. */
  logits: Tensor | null;
  /** Final normed hidden states [B, T, D] in ioDtype, or null when not requested. */
  hidden: Tensor | null;
  /** Parameters by HF name (graph inputs or initializers, as declared; before any Cast). */
  params: Record<string, Tensor>;
  /** LoRA inputs by PEFT name. */
  lora: Record<string, Tensor>;
  /** Per-layer KV outputs (empty without `cache`). */
  presents: Array<{ key: Tensor; value: Tensor }>;
  /** Dtype of float graph inputs/outputs (embeds, additive mask, cache, logits): float64 for f64 graphs, else float32. */
  ioDtype: 'float32' | 'float64';
}

/** Float32's most negative finite value: HF's additive "blocked" entry (exp(min − max) = 0). */
export const MASK_MIN = -3.4028234663852886e38;

function rmsNorm(g: Graph, x: Tensor, w: Tensor, eps: number, dtype: DType): Tensor {
  const wide: DType = dtype === 'float64' ? 'float64' : 'float32';
  const xf = g.cast(x, wide);
  const variance = g.reduceMean(g.mul(xf, xf), [-1]);
  const normed = g.div(xf, g.sqrt(g.add(variance, g.scalar(eps, wide))));
  return g.mul(w, g.cast(normed, dtype));
}

/** The causal + padding additive mask [B, 1, T, S] (float32) from int64 attention_mask [B, S] and T. */
function paddingMask(g: Graph, mask: Tensor, positionIds: Tensor): Tensor {
  const one = g.scalar(1, 'int64');
  const s = g.gather(g.shapeOf(mask), g.scalar(1, 'int64'));
  const t = g.gather(g.shapeOf(positionIds), one);
  const q = g.op1('Range', [g.sub(s, t), s, one]); // key index of each query [T]
  const k = g.op1('Range', [g.scalar(0, 'int64'), s, one]); // [S]
  const future = g.op1('Less', [g.unsqueeze(q, [1]), g.unsqueeze(k, [0])]); // [T, S]
  const padded = g.unsqueeze(g.equal(mask, g.scalar(0, 'int64')), [1, 2]); // [B, 1, 1, S]
  const blocked = g.op1('Or', [g.unsqueeze(future, [0, 1]), padded]);
  return g.where(blocked, g.scalar(MASK_MIN, 'float32'), g.scalar(0, 'float32'));
}

/**
 * Appends a Llama-3 / Qwen2 decoder to `g` (see the file header). Graph inputs: `input_ids` or
 * `inputs_embeds`, `attention_mask`, `position_ids` [B, T] int64, the parameters (kind 'inputs'), LoRA
 * tensors, `dropout_seed`, `past_key_values.{i}.key|value`. Throws a one-line error for bad options.
 */
export function buildDecoder(g: Graph, config: ModelConfig, opts: DecoderOptions): DecoderGraph {
  const dtype = opts.dtype ?? 'float32';
  const io: 'float32' | 'float64' = dtype === 'float64' ? 'float64' : 'float32';
  const wide: DType = dtype === 'float64' ? 'float64' : 'float32';
  const want = new Set(opts.outputs ?? ['logits']);
  if (want.size === 0) throw inputError({ field: 'outputs' }, 'ask for logits and/or hidden');
  const c = config;
  const [H, kvH, hd, D] = [c.numAttentionHeads, c.numKeyValueHeads, c.headDim, c.hiddenSize];
  const rep = H / kvH;

  // Parameters (HF names), viewed in the compute dtype.
  const params: Record<string, Tensor> = {};
  const view: Record<string, Tensor> = {};
  const given = opts.params.kind === 'initializers' ? new Map(opts.params.tensors.map((t) => [t.name, t])) : null;
  for (const p of parameterShapes(c)) {
    if (p.name === 'lm_head.weight' && !want.has('logits')) continue;
    let t: Tensor;
    if (given === null) t = g.input(p.name, opts.params.kind === 'inputs' ? (opts.params.dtype ?? 'float32') : 'float32', p.shape);
    else {
      const src = given.get(p.name);
      if (src === undefined) throw inputError({ field: p.name }, 'parameter missing from the initializer tensors');
      if (src.shape.join(',') !== p.shape.join(',')) throw inputError({ field: p.name }, `shape [${src.shape}] but the config needs [${p.shape}]`);
      t = g.initializer(p.name, { dtype: 'float32', dims: p.shape, data: src.data });
    }
    params[p.name] = t;
    view[p.name] = g.cast(t, dtype);
  }
  const P = (name: string): Tensor => view[name] as Tensor;
  const opt = (name: string): Tensor | null => view[name] ?? null;

  // LoRA pairs by base weight name.
  const lora: Record<string, Tensor> = {};
  const pairs = new Map<string, LoraPair>();
  const dropStreams = new Map<string, number>(); // base weight name → dropout stream
  let dropout: { seed: Tensor; p: number; streams: number } | null = null;
  if (opts.lora !== undefined) {
    const l = opts.lora.config;
    const shapes = loraParameterShapes(c, l);
    const seed = opts.lora.mode === 'train' && l.dropout > 0 ? g.input('dropout_seed', 'int64', []) : null;
    if (seed !== null) dropout = { seed, p: l.dropout, streams: shapes.length / 2 };
    const pd = opts.params.kind === 'inputs' ? (opts.params.dtype ?? 'float32') : 'float32';
    for (let i = 0; i < shapes.length; i += 2) {
      const [sa, sb] = [shapes[i], shapes[i + 1]] as [LoraParameterShape, LoraParameterShape];
      const a = g.input(sa.name, pd, sa.shape);
      const b = g.input(sb.name, pd, sb.shape);
      lora[sa.name] = a;
      lora[sb.name] = b;
      const isEmbed = sa.baseName === 'model.embed_tokens.weight';
      pairs.set(sa.baseName, {
        a: g.cast(a, dtype), b: g.cast(b, dtype), scaling: loraScaling(l),
        dropout: null, // set below, once position_ids (the row count) is declared
      });
      if (seed !== null && !isEmbed) dropStreams.set(sa.baseName, i / 2);
    }
    if (opts.input === 'embeds' && pairs.has('model.embed_tokens.weight')) {
      throw inputError({ field: 'lora.targetModules' }, 'embed_tokens LoRA needs input "ids" (inputs_embeds skip the embedding lookup)');
    }
  }
  const lin = (x: Tensor, name: string): Tensor => linear(g, x, P(`${name}.weight`), opt(`${name}.bias`), pairs.get(`${name}.weight`) ?? null);

  // Inputs.
  const positionIds = g.input('position_ids', 'int64', ['batch', 'seq']);
  if (dropout !== null) {
    // One pair of dropout tables per forward, shared by every module (rows: N = B·T; stream = pair index).
    const source = dropoutSource(g, dropout.seed, g.op1('Size', [positionIds]), dropout.streams, Math.max(D, H * hd, c.intermediateSize));
    for (const [name, stream] of dropStreams) (pairs.get(name) as LoraPair).dropout = { p: dropout.p, source, stream };
  }
  let x: Tensor; // [B, T, D]
  if (opts.input === 'ids') {
    const ids = g.input('input_ids', 'int64', ['batch', 'seq']);
    x = embedding(g, P('model.embed_tokens.weight'), ids, pairs.get('model.embed_tokens.weight') ?? null);
  } else x = g.cast(g.input('inputs_embeds', io, ['batch', 'seq', D]), dtype);
  const keys = opts.cache === true ? 'total' : 'seq';
  const bias = opts.mask === 'padding'
    ? paddingMask(g, g.input('attention_mask', 'int64', ['batch', keys]), positionIds)
    : g.input('attention_mask', io, ['batch', 1, 'seq', keys]);
  const bias5 = g.unsqueeze(g.cast(bias, wide), [1]); // [B, 1, 1, T, S]
  const rope: RopeFactors = ropeFactors(g, c, positionIds, opts.maxPositions ?? c.maxPositionEmbeddings, dtype);
  const bt = g.slice(g.shapeOf(positionIds), [0], [2]); // [B, T]
  const shapeBT = (...rest: number[]): Tensor => g.concat([bt, g.ints(rest)], 0);
  // 1/√hd: when it is a power of two (hd = 4ᵏ: 64, 256) scaling q in the compute dtype is exact and gives
  // the same scores as scaling the float32 [B, kvH, rep, T, S] product, at hd/S of the traffic.
  const scaleValue = 1 / Math.sqrt(hd);
  const scaleQ = Number.isInteger(Math.log2(scaleValue));
  const scale = g.scalar(scaleValue, scaleQ ? dtype : wide);

  let h = g.reshape(x, [-1, D]); // [N, D]
  const presents: Array<{ key: Tensor; value: Tensor }> = [];
  for (let i = 0; i < c.numHiddenLayers; i++) {
    const pre = `model.layers.${i}`;
    const n1 = rmsNorm(g, h, P(`${pre}.input_layernorm.weight`), c.rmsNormEps, dtype);
    const qr = applyRope(g, g.reshape(lin(n1, `${pre}.self_attn.q_proj`), shapeBT(H, hd)), rope); // [B, T, H, hd]
    const q = scaleQ ? g.mul(qr, scale) : qr;
    const kNew = g.transpose(applyRope(g, g.reshape(lin(n1, `${pre}.self_attn.k_proj`), shapeBT(kvH, hd)), rope), [0, 2, 1, 3]);
    const vNew = g.transpose(g.reshape(lin(n1, `${pre}.self_attn.v_proj`), shapeBT(kvH, hd)), [0, 2, 1, 3]); // [B, kvH, T, hd]
    let [k, v] = [kNew, vNew];
    if (opts.cache === true) {
      const pk = g.input(`past_key_values.${i}.key`, io, ['batch', kvH, 'past', hd]);
      const pv = g.input(`past_key_values.${i}.value`, io, ['batch', kvH, 'past', hd]);
      k = g.concat([g.cast(pk, dtype), kNew], 2);
      v = g.concat([g.cast(pv, dtype), vNew], 2);
      presents.push({ key: g.cast(k, io), value: g.cast(v, io) });
    }
    // GQA as plain batched GEMMs over B·kvH: the rep query heads of a KV head are stacked along the rows
    // ([B, kvH, rep·T, hd] · [B, kvH, hd, S]) instead of broadcasting K/V over a rep axis, which ORT runs
    // far slower and whose backward sums the K/V gradients over rep. The softmax and its mask see the
    // scores as [B, kvH, rep, T, S] (a free Reshape).
    const q5 = g.transpose(g.reshape(q, shapeBT(kvH, rep, hd)), [0, 2, 3, 1, 4]); // [B, kvH, rep, T, hd]
    const bk = g.slice(g.shapeOf(k), [0], [2]); // [B, kvH]
    const sLen = g.slice(g.shapeOf(k), [2], [3]); // [S]
    const tLen = g.slice(bt, [1], [2]); // [T]
    const rows = g.matmul(g.reshape(q5, [0, 0, -1, hd]), g.transpose(k, [0, 1, 3, 2])); // [B, kvH, rep·T, S]
    const raw = g.cast(g.reshape(rows, g.concat([bk, g.ints([rep]), tLen, sLen], 0)), wide);
    const scores = g.add(scaleQ ? raw : g.mul(raw, scale), bias5); // [B, kvH, rep, T, S]
    const probs = g.cast(g.softmax(scores, -1), dtype);
    // (rep·T computed, not -1: ORT's shape inference reads unknown dims of a Concat-built shape as -1.)
    const repT = g.mul(tLen, g.ints([rep]));
    const ctx4 = g.matmul(g.reshape(probs, g.concat([bk, repT, sLen], 0)), v); // [B, kvH, rep·T, hd]
    const ctx = g.reshape(ctx4, g.concat([bk, g.ints([rep]), tLen, g.ints([hd])], 0)); // [B, kvH, rep, T, hd]
    const merged = g.reshape(g.transpose(ctx, [0, 3, 1, 2, 4]), [-1, H * hd]); // [N, H·hd]
    h = g.add(h, lin(merged, `${pre}.self_attn.o_proj`));
    const n2 = rmsNorm(g, h, P(`${pre}.post_attention_layernorm.weight`), c.rmsNormEps, dtype);
    const gate = lin(n2, `${pre}.mlp.gate_proj`);
    const act = g.mul(g.mul(gate, g.sigmoid(gate)), lin(n2, `${pre}.mlp.up_proj`));
    h = g.add(h, lin(act, `${pre}.mlp.down_proj`));
  }
  const final = rmsNorm(g, h, P('model.norm.weight'), c.rmsNormEps, dtype); // [N, D]
  const mark = opts.markOutputs ?? true;
  let hidden: Tensor | null = null;
  let logits: Tensor | null = null;
  if (want.has('hidden')) {
    hidden = g.cast(g.reshape(final, shapeBT(D)), io);
    if (mark) hidden = g.output(hidden, 'last_hidden_state');
  }
  if (want.has('logits')) {
    const head = P(c.tieWordEmbeddings ? 'model.embed_tokens.weight' : 'lm_head.weight');
    logits = g.cast(g.reshape(g.op1('Gemm', [final, head], { transB: 1 }), shapeBT(c.vocabSize)), io);
    if (mark) logits = g.output(logits, 'logits');
  }
  if (mark) {
    presents.forEach((p, i) => {
      p.key = g.output(p.key, `present.${i}.key`);
      p.value = g.output(p.value, `present.${i}.value`);
    });
  }
  return { logits, hidden, params, lora, presents, ioDtype: io };
}

/**
 * HF's causal-LM loss: mean cross-entropy of logits[:, :-1] against labels[:, 1:] (int64 [B, T]),
 * skipping `ignoreIndex`.
 */
export function causalLmLoss(g: Graph, logits: Tensor, labels: Tensor, ignoreIndex = -100): Tensor {
  const V = logits.shape[2];
  if (logits.rank !== 3 || typeof V !== 'number') throw new Error(`causalLmLoss: logits must be [B, T, V] with static V, got ${logits.shapeText}`);
  if (labels.rank !== 2 || labels.dtype !== 'int64') throw new Error(`causalLmLoss: labels must be int64 [B, T], got ${labels.dtype}${labels.shapeText}`);
  // Shift the labels, not the logits: position t is scored against labels[t + 1] and the last position
  // against ignoreIndex (skipped, as the dropped row was). Same value, but no Slice of the [B, T, V]
  // logits, whose gradient would scatter into a zero tensor of that size.
  const pad = g.expand(g.scalar(ignoreIndex, 'int64'), g.concat([g.slice(g.shapeOf(labels), [0], [1]), g.ints([1])], 0));
  const shifted = g.concat([g.slice(labels, [1], [2 ** 62], [1]), pad], 1);
  return crossEntropy(g, g.reshape(logits, [-1, V]), g.reshape(shifted, [-1]), ignoreIndex);
}
