// Llama-3 / Qwen2 / Qwen3 decoders as ONNX graphs, a plain function of tensors driven by ModelConfig (HF
// eager semantics), read top to bottom as nanochat's gpt.py:
//   decoder(g, config, weights, x, {bias, positions, past, lora})   x [B, T, D]: embed(ids) or any embedding
//     per layer: h += attention(rmsNorm(h));  h += mlp(rmsNorm(h))   (one Graph.recomputable segment each)
//     final rmsNorm → hidden (last_hidden_state), lm_head (or the tied embedding) → logits
//   attention: q, k, v projections (+ Qwen3's per-head q/k RMSNorm), RoPE on q and k, past K/V prepended,
//              softmax(q kᵀ / √hd + bias) v, o_proj;   mlp: down(silu(gate) · up).
// Every input is a tensor the caller already has in its graph (graph inputs, initializers, the Trainer's
// views of its masters), so two decoders (Phase 1's encoder and decoder) share one graph naturally.
// `buildDecoder` is the thin wrapper that declares them under today's names (input_ids / inputs_embeds,
// attention_mask, position_ids, HF parameter names, PEFT LoRA names, dropout_seed, past_key_values.*)
// for inference graphs, exports and tests. A new family touches the config and one function (Qwen3's q/k
// norm: attention(); a sliding window would be the bias).
// GQA: query heads are grouped as [kvH, H/kvH] and the K/V of a group broadcast over it in the batched
// MatMul, the same arithmetic as HF's repeat_kv without materialising the copies.
// Attention: scores = q kᵀ / √hd (+ additive bias), softmax over keys in float32 (float64 in f64 graphs);
// a power-of-two 1/√hd scales q instead (exact, and hd/S of the traffic).
// Bias: an additive float [B, 1, T, P+T] tensor (0 keep / very negative block): paddingBias builds causal +
// padding from an int64 attention_mask [B, P+T] (query t sits at key index P+t; blocked entries get
// float32 min, so fully padded rows stay finite); the Latent-SFT LTIM/LTSuM masks come in as they are.
// KV cache: with `past`, per-layer K/V [B, kvH, P, hd] (post-RoPE, as HF) are prepended and the presents
// [B, kvH, P+T, hd] returned; P = 0 is a prefill. With a `staticCache` (generation) attention is ONNX
// Runtime's GroupQueryAttention instead: per-layer buffers [B, kvH, C, hd] of fixed capacity C written in
// place (row b's new keys land at its own length, right-padded layout), RoPE inside the op from cos/sin
// tables, causal + per-row length masking inside the op (no bias, no positions).
// Weights keep their HF names (parameterShapes), LoRA tensors their PEFT names (loraParameterShapes).
// Shapes: B batch, T new tokens, P past tokens, S = P+T keys, N = B·T rows, D hidden, H / kvH heads,
// hd head_dim, V vocab, F intermediate.
import { type DType, type Graph, type Tensor, crossEntropy, typedFrom } from '@latent-sft/graph';
import { inputError } from '@latent-sft/core';
import type { ModelConfig } from './config.js';
import type { WeightTensor } from './init.js';
import { type LoraConfig, type LoraParameterShape, loraParameterShapes, loraScaling } from './lora.js';
import { type LoraPair, dropoutSource, embedding, linear } from './lora-graph.js';
import { parameterShapes } from './params.js';
import { type RopeFactors, applyRope, ropeFactors } from './rope-graph.js';

/** Arithmetic dtype of the decoder body (norms and attention softmax run in float32 for the 16-bit ones). */
export type ComputeDtype = 'float32' | 'float64' | 'float16' | 'bfloat16';

/** Weights by HF name (any float dtype; viewed in the compute dtype). */
export type DecoderWeights = Readonly<Record<string, Tensor>>;

/** LoRA on the targeted modules: the PEFT-named A/B tensors; seeded dropout when `dropoutSeed` is given and dropout > 0. */
export interface DecoderLora {
  config: LoraConfig;
  tensors: Readonly<Record<string, Tensor>>;
  /** int64 scalar ≥ 0 (training); omitted: no dropout (eval). */
  dropoutSeed?: Tensor;
}

/**
 * A fixed-capacity KV cache for ORT's GroupQueryAttention (com.microsoft): rows right-padded, row b's
 * keys at [0, seqlensK[b] + 1) after the step. Inference only (no gradient).
 */
export interface StaticKvCache {
  /** Per-layer K/V buffers [B, kvH, C, staticCacheHeadDim] in the compute dtype (bound to the same memory as the presents). */
  layers: ReadonlyArray<{ key: Tensor; value: Tensor }>;
  /** int32 [B]: each row's length after this step, minus one. */
  seqlensK: Tensor;
  /** int32 scalar: the longest row's length after this step. */
  totalLength: Tensor;
  /** RoPE tables [maxPositions, staticCacheHeadDim / 2] in the compute dtype (`ropeTables`). */
  cos: Tensor;
  sin: Tensor;
  /**
   * One new token per row (T = 1, a decode step): attention by latent_sft.DecodeAttention (this repo's
   * kernel: the same rotation, cache write and attention as GroupQueryAttention's decode path) instead
   * of GroupQueryAttention. Default false.
   */
  decodeKernel?: boolean;
}

/** Head size of the static cache buffers: head_dim rounded up to a multiple of 16 (GroupQueryAttention with RoPE needs it). */
export function staticCacheHeadDim(config: Pick<ModelConfig, 'headDim'>): number {
  return Math.ceil(config.headDim / 16) * 16;
}

/** The tensors and settings of one decoder call besides the weights and x. */
export interface DecoderInputs {
  /** Additive attention bias [B, 1, T, S] (float; 0 keep / very negative block), e.g. paddingBias; unused with staticCache. */
  bias?: Tensor;
  /** int64 position_ids [B, T]; unused with staticCache (positions follow the row lengths). */
  positions?: Tensor;
  /** Attention by GroupQueryAttention on a static cache (see the file header); excludes past, bias, positions, LoRA. */
  staticCache?: StaticKvCache;
  /** Per-layer past K/V [B, kvH, P, hd] (post-RoPE): the presents are returned (generation). */
  past?: ReadonlyArray<{ key: Tensor; value: Tensor }>;
  /** LoRA on the linear modules (an embed_tokens pair is applied by `embed`, not here). */
  lora?: DecoderLora;
  /** Default 'float32'. */
  dtype?: ComputeDtype;
  /** Which results to compute (default ['logits']). */
  outputs?: ReadonlyArray<'logits' | 'hidden'>;
  /** Positions are limited to [0, maxPositions) (default config.maxPositionEmbeddings). */
  maxPositions?: number;
}

/** What decoder() computes. */
export interface DecoderOutputs {
  /** [B, T, V] in the io dtype (float64 for f64 graphs, else float32), or null when not requested. */
  logits: Tensor | null;
  /** Final normed hidden states [B, T, D] in the io dtype, or null when not requested. */
  hidden: Tensor | null;
  /** Per-layer K/V [B, kvH, P+T, hd] in the io dtype (empty without `past`); with staticCache the cache's presents [B, kvH, C, hd] in the compute dtype. */
  presents: Array<{ key: Tensor; value: Tensor }>;
}

/** Float32's most negative finite value: HF's additive "blocked" entry (exp(min − max) = 0). */
export const MASK_MIN = -3.4028234663852886e38;

/** Dtype of float inputs/outputs at the graph boundary: float64 for f64 graphs, else float32. */
function ioDtype(dtype: ComputeDtype): 'float32' | 'float64' {
  return dtype === 'float64' ? 'float64' : 'float32';
}

/** Weighted RMSNorm over the last axis, computed in float32 (float64 in f64 graphs): w · (x / √(mean(x²) + eps)). */
export function rmsNorm(g: Graph, x: Tensor, w: Tensor, eps: number, dtype: DType): Tensor {
  const wide: DType = dtype === 'float64' ? 'float64' : 'float32';
  const xf = g.cast(x, wide);
  const variance = g.reduceMean(g.mul(xf, xf), [-1]);
  const normed = g.div(xf, g.sqrt(g.add(variance, g.scalar(eps, wide))));
  return g.mul(w, g.cast(normed, dtype));
}

/** The causal + padding additive bias [B, 1, T, S] (float32) from int64 attention_mask [B, S] and position_ids [B, T]. */
export function paddingBias(g: Graph, mask: Tensor, positions: Tensor): Tensor {
  const one = g.scalar(1, 'int64');
  const s = g.gather(g.shapeOf(mask), g.scalar(1, 'int64'));
  const t = g.gather(g.shapeOf(positions), one);
  const q = g.op1('Range', [g.sub(s, t), s, one]); // key index of each query [T]
  const k = g.op1('Range', [g.scalar(0, 'int64'), s, one]); // [S]
  const future = g.op1('Less', [g.unsqueeze(q, [1]), g.unsqueeze(k, [0])]); // [T, S]
  const padded = g.unsqueeze(g.equal(mask, g.scalar(0, 'int64')), [1, 2]); // [B, 1, 1, S]
  const blocked = g.op1('Or', [g.unsqueeze(future, [0, 1]), padded]);
  return g.where(blocked, g.scalar(MASK_MIN, 'float32'), g.scalar(0, 'float32'));
}

/** `weights` viewed (Cast) in the compute dtype, so embed() and decoder() share one Cast per weight. */
export function viewWeights(g: Graph, weights: DecoderWeights, dtype: ComputeDtype): Record<string, Tensor> {
  return Object.fromEntries(Object.entries(weights).map(([n, t]) => [n, g.cast(t, dtype)]));
}

function lookup(rec: Readonly<Record<string, Tensor>>, name: string, what: string): Tensor {
  const t = rec[name];
  if (t === undefined) throw inputError({ field: name }, `${what} missing`);
  return t;
}

/** The LoRA pair of shapes[i], shapes[i + 1] (A, B) viewed in `dtype`, without dropout. */
function loraPair(g: Graph, lora: DecoderLora, a: LoraParameterShape, b: LoraParameterShape, dtype: ComputeDtype): LoraPair {
  const [ta, tb] = [lookup(lora.tensors, a.name, 'LoRA tensor'), lookup(lora.tensors, b.name, 'LoRA tensor')];
  for (const [t, s] of [
    [ta, a],
    [tb, b],
  ] as const)
    checkShape(t, s.name, s.shape);
  return { a: g.cast(ta, dtype), b: g.cast(tb, dtype), scaling: loraScaling(lora.config), dropout: null };
}

function checkShape(t: Tensor, name: string, shape: readonly number[]): void {
  if (t.rank !== shape.length || t.shape.some((d, i) => typeof d === 'number' && d !== shape[i])) {
    throw inputError({ field: name }, `shape ${t.shapeText} but the config needs [${shape}]`);
  }
}

/**
 * The input embedding W[ids] (+ the embed_tokens LoRA of `lora`, if it targets it) [..., D] in the
 * compute dtype: ids int64 [...], W = weights['model.embed_tokens.weight'].
 */
export function embed(g: Graph, config: ModelConfig, weights: DecoderWeights, ids: Tensor, opts: { lora?: DecoderLora; dtype?: ComputeDtype } = {}): Tensor {
  if (ids.dtype !== 'int64') throw new Error(`embed: ids must be int64, got ${ids.dtype}${ids.shapeText}`);
  const dtype = opts.dtype ?? 'float32';
  const name = 'model.embed_tokens.weight';
  const w = lookup(weights, name, 'weight');
  checkShape(w, name, [config.vocabSize, config.hiddenSize]);
  let pair: LoraPair | null = null;
  if (opts.lora !== undefined) {
    const shapes = loraParameterShapes(config, opts.lora.config);
    const i = shapes.findIndex((s) => s.baseName === name);
    if (i >= 0) pair = loraPair(g, opts.lora, shapes[i] as LoraParameterShape, shapes[i + 1] as LoraParameterShape, dtype);
  }
  return embedding(g, g.cast(w, dtype), ids, pair);
}

/** What attention() and mlp() read besides their layer's input: the weights and the per-forward tensors. */
interface Forward {
  g: Graph;
  c: ModelConfig;
  dtype: ComputeDtype;
  /** float32 (float64 in f64 graphs): softmax and norms. */
  wide: 'float32' | 'float64';
  /** Weight `name` viewed in the compute dtype; opt: null when the config has no such weight (e.g. no bias). */
  w(name: string): Tensor;
  opt(name: string): Tensor | null;
  /** x [N, I] → x Wᵀ (+ b) (+ LoRA) of module `name` (HF prefix without .weight). */
  lin(x: Tensor, name: string): Tensor;
  /**
   * lin of several modules on the same x. With a static cache (generation: no LoRA) one Gemm over the
   * weights concatenated along the outputs (and the biases, when every module has one), then a Split:
   * fewer, wider GEMMs for the few rows of a decode step (ORT folds the Concat of initializers once at
   * load). Otherwise one lin per module.
   */
  lins(x: Tensor, names: readonly string[]): Tensor[];
  /** That one Gemm's output [N, Σ outputs] (the modules' outputs side by side), or null where lins runs one lin per module. */
  linCat(x: Tensor, names: readonly string[]): Tensor | null;
  /** null with a static cache (RoPE inside GroupQueryAttention). */
  rope: RopeFactors | null;
  staticCache: StaticKvCache | null;
  /** [B, T] and [B, T, ...rest] as int64 shape tensors. */
  bt: Tensor;
  shapeBT(...rest: number[]): Tensor;
  /** The attention bias as [B, 1, 1, T, S] in `wide` (null with a static cache). */
  bias5: Tensor | null;
  /** 1/√hd, and whether it scales q (a power of two) rather than the scores. */
  scale: Tensor;
  scaleQ: boolean;
}

/**
 * One attention block on n [N, D] (the normed residual) of layer `i`: returns o_proj(ctx) [N, D] and,
 * with `past`, the layer's present K/V (compute dtype).
 */
function attention(
  f: Forward,
  n: Tensor,
  i: number,
  past: { key: Tensor; value: Tensor } | null,
): { out: Tensor; present: { key: Tensor; value: Tensor } | null } {
  const { g, c, dtype, wide } = f;
  const [H, kvH, hd] = [c.numAttentionHeads, c.numKeyValueHeads, c.headDim];
  const rep = H / kvH;
  const pre = `model.layers.${i}.self_attn`;
  // Qwen3: RMSNorm over head_dim of every q and k head, before RoPE.
  const heads = (name: string, count: number, norm: string, projected?: Tensor): Tensor => {
    const x = g.reshape(projected ?? f.lin(n, `${pre}.${name}`), f.shapeBT(count, hd)); // [B, T, count, hd]
    return c.qkNorm === true ? rmsNorm(g, x, f.w(`${pre}.${norm}.weight`), c.rmsNormEps, dtype) : x;
  };
  if (f.staticCache !== null) {
    // GroupQueryAttention: q [B, T, H·hd], k / v [B, T, kvH·hd] before RoPE; the op rotates them
    // (rotate_half, positions = the row lengths), writes k / v into the cache at each row's length and
    // attends causally over the row's keys. Scale 1/√hd (the op's default).
    const sc = f.staticCache;
    const layer = sc.layers[i] as { key: Tensor; value: Tensor };
    // The op needs head_dim % 16 == 0: other sizes (tiny test models) are zero-padded per head to hdP,
    // q and k per rotate_half half ([x₁, 0, x₂, 0], so RoPE's pairs (j, j + hdP/2) stay (j, j + hd/2);
    // the tables rotate the zero columns by angle 0), v at the end. The zeros add nothing to q·k, the
    // padded output columns are dropped, and the scale stays 1/√hd.
    const hdP = staticCacheHeadDim(c);
    const zeros = (count: number, width: number): Tensor => g.expand(g.scalar(0, dtype), f.shapeBT(count, width));
    const flat = (t: Tensor, count: number, rotated: boolean): Tensor => {
      let p = t;
      if (hdP !== hd && rotated) {
        const [x1, x2] = g.op('Split', [t, g.ints([hd / 2, hd / 2])], { axis: 3 }) as [Tensor, Tensor];
        const z = zeros(count, (hdP - hd) / 2);
        p = g.concat([x1, z, x2, z], 3);
      } else if (hdP !== hd) p = g.concat([t, zeros(count, hdP - hd)], 3);
      return g.reshape(p, f.shapeBT(count * hdP));
    };
    const qkvNames = [`${pre}.q_proj`, `${pre}.k_proj`, `${pre}.v_proj`];
    // Packed: q, k and v as GroupQueryAttention's one query input [B, T, (H + 2·kvH)·hd] straight from their
    // one Gemm (no Split copying it), where no per-head norm or padding comes between.
    const packed = sc.decodeKernel !== true && hdP === hd && c.qkNorm !== true ? f.linCat(n, qkvNames) : null;
    let qkv: [Tensor, Tensor | null, Tensor | null];
    if (packed !== null) qkv = [g.reshape(packed, f.shapeBT((H + 2 * kvH) * hd)), null, null];
    else {
      const [qp, kp, vp] = f.lins(n, qkvNames) as [Tensor, Tensor, Tensor];
      qkv = [
        flat(heads('q_proj', H, 'q_norm', qp), H, true),
        flat(heads('k_proj', kvH, 'k_norm', kp), kvH, true),
        flat(g.reshape(vp, f.shapeBT(kvH, hd)), kvH, false),
      ];
    }
    const [ctx, key, value] = (
      sc.decodeKernel === true
        ? g.op('DecodeAttention', [...qkv, layer.key, layer.value, sc.seqlensK, sc.cos, sc.sin], { num_heads: H, kv_num_heads: kvH, scale: 1 / Math.sqrt(hd) })
        : g.op('GroupQueryAttention', [...qkv, layer.key, layer.value, sc.seqlensK, sc.totalLength, sc.cos, sc.sin], {
            num_heads: H,
            kv_num_heads: kvH,
            do_rotary: 1,
            scale: 1 / Math.sqrt(hd),
          })
    ) as [Tensor, Tensor, Tensor];
    const heads4 = hdP === hd ? ctx : g.slice(g.reshape(ctx, f.shapeBT(H, hdP)), [0], [hd], [3]);
    return { out: f.lin(g.reshape(heads4, [-1, H * hd]), `${pre}.o_proj`), present: { key, value } };
  }
  const { scaleQ, scale } = f;
  const rope = f.rope as RopeFactors;
  const bias5 = f.bias5 as Tensor;
  const qr = applyRope(g, heads('q_proj', H, 'q_norm'), rope); // [B, T, H, hd]
  const q = scaleQ ? g.mul(qr, scale) : qr;
  const kNew = g.transpose(applyRope(g, heads('k_proj', kvH, 'k_norm'), rope), [0, 2, 1, 3]);
  const vNew = g.transpose(g.reshape(f.lin(n, `${pre}.v_proj`), f.shapeBT(kvH, hd)), [0, 2, 1, 3]); // [B, kvH, T, hd]
  let [k, v] = [kNew, vNew];
  if (past !== null) {
    k = g.concat([g.cast(past.key, dtype), kNew], 2);
    v = g.concat([g.cast(past.value, dtype), vNew], 2);
  }
  // GQA as plain batched GEMMs over B·kvH: the rep query heads of a KV head are stacked along the rows
  // ([B, kvH, rep·T, hd] · [B, kvH, hd, S]) instead of broadcasting K/V over a rep axis, which ORT runs
  // far slower and whose backward sums the K/V gradients over rep. The softmax and its bias see the
  // scores as [B, kvH, rep, T, S] (a free Reshape).
  const q5 = g.transpose(g.reshape(q, f.shapeBT(kvH, rep, hd)), [0, 2, 3, 1, 4]); // [B, kvH, rep, T, hd]
  const bk = g.slice(g.shapeOf(k), [0], [2]); // [B, kvH]
  const sLen = g.slice(g.shapeOf(k), [2], [3]); // [S]
  const tLen = g.slice(f.bt, [1], [2]); // [T]
  const rows = g.matmul(g.reshape(q5, [0, 0, -1, hd]), g.transpose(k, [0, 1, 3, 2])); // [B, kvH, rep·T, S]
  const raw = g.cast(g.reshape(rows, g.concat([bk, g.ints([rep]), tLen, sLen], 0)), wide);
  const scores = g.add(scaleQ ? raw : g.mul(raw, scale), bias5); // [B, kvH, rep, T, S]
  const probs = g.cast(g.softmax(scores, -1), dtype);
  // (rep·T computed, not -1: ORT's shape inference reads unknown dims of a Concat-built shape as -1.)
  const repT = g.mul(tLen, g.ints([rep]));
  const ctx4 = g.matmul(g.reshape(probs, g.concat([bk, repT, sLen], 0)), v); // [B, kvH, rep·T, hd]
  const ctx = g.reshape(ctx4, g.concat([bk, g.ints([rep]), tLen, g.ints([hd])], 0)); // [B, kvH, rep, T, hd]
  const merged = g.reshape(g.transpose(ctx, [0, 3, 1, 2, 4]), [-1, H * hd]); // [N, H·hd]
  return { out: f.lin(merged, `${pre}.o_proj`), present: past === null ? null : { key: k, value: v } };
}

/** The SwiGLU MLP of layer `i` on n [N, D]: down(silu(gate(n)) · up(n)). */
function mlp(f: Forward, n: Tensor, i: number): Tensor {
  const { g } = f;
  const pre = `model.layers.${i}.mlp`;
  const [gate, up] = f.lins(n, [`${pre}.gate_proj`, `${pre}.up_proj`]) as [Tensor, Tensor];
  const act = g.mul(g.mul(gate, g.sigmoid(gate)), up);
  return f.lin(act, `${pre}.down_proj`);
}

/**
 * The decoder on input embeddings x [B, T, D] (see the file header): `weights` by HF name (lm_head only
 * when logits are asked of an untied model), bias / positions / past K/V / LoRA as tensors of `g`.
 * Throws a one-line error naming a missing or mis-shaped tensor.
 */
export function decoder(g: Graph, config: ModelConfig, weights: DecoderWeights, x: Tensor, opts: DecoderInputs): DecoderOutputs {
  const dtype = opts.dtype ?? 'float32';
  const io = ioDtype(dtype);
  const want = new Set(opts.outputs ?? ['logits']);
  if (want.size === 0) throw inputError({ field: 'outputs' }, 'ask for logits and/or hidden');
  const c = config;
  const [H, hd, D] = [c.numAttentionHeads, c.headDim, c.hiddenSize];
  if (x.rank !== 3 || x.shape[2] !== D) throw new Error(`decoder: x must be [B, T, ${D}], got ${x.dtype}${x.shapeText}`);
  const sc = opts.staticCache ?? null;
  if (sc !== null) {
    if (opts.past !== undefined || opts.bias !== undefined || opts.positions !== undefined || opts.lora !== undefined)
      throw new Error('decoder: staticCache excludes past, bias, positions and lora');
    if (dtype === 'float64') throw new Error('decoder: staticCache needs a float32 or 16-bit compute dtype');
    if (sc.layers.length !== c.numHiddenLayers) throw new Error(`decoder: staticCache needs ${c.numHiddenLayers} layers, got ${sc.layers.length}`);
  } else {
    if (opts.positions === undefined || opts.positions.rank !== 2 || opts.positions.dtype !== 'int64')
      throw new Error(
        `decoder: positions must be int64 [B, T], got ${opts.positions === undefined ? 'none' : `${opts.positions.dtype}${opts.positions.shapeText}`}`,
      );
    if (opts.bias === undefined || opts.bias.rank !== 4)
      throw new Error(`decoder: bias must be [B, 1, T, S], got ${opts.bias === undefined ? 'none' : `${opts.bias.dtype}${opts.bias.shapeText}`}`);
  }
  if (opts.past !== undefined && opts.past.length !== c.numHiddenLayers)
    throw new Error(`decoder: past needs ${c.numHiddenLayers} layers, got ${opts.past.length}`);
  const needed = new Set<string>();
  for (const p of parameterShapes(c)) {
    if (p.name === 'lm_head.weight' && !want.has('logits')) continue;
    checkShape(lookup(weights, p.name, 'weight'), p.name, p.shape);
    needed.add(p.name);
  }
  const views = new Map<string, Tensor>();
  const w = (name: string): Tensor => {
    let t = views.get(name);
    if (t === undefined) {
      t = g.cast(lookup(weights, name, 'weight'), dtype);
      views.set(name, t);
    }
    return t;
  };
  const opt = (name: string): Tensor | null => (needed.has(name) ? w(name) : null);

  // LoRA pairs by base weight name (embed_tokens: applied by embed()); one pair of dropout tables per
  // forward, shared by every module (rows: N = B·T; stream = pair index).
  const pairs = new Map<string, LoraPair>();
  const l = opts.lora;
  if (l !== undefined) {
    const shapes = loraParameterShapes(c, l.config);
    const seed = l.dropoutSeed !== undefined && l.config.dropout > 0 ? l.dropoutSeed : null;
    const source =
      seed === null ? null : dropoutSource(g, seed, g.op1('Size', [opts.positions as Tensor]), shapes.length / 2, Math.max(D, H * hd, c.intermediateSize));
    for (let i = 0; i < shapes.length; i += 2) {
      const [sa, sb] = [shapes[i], shapes[i + 1]] as [LoraParameterShape, LoraParameterShape];
      if (sa.baseName === 'model.embed_tokens.weight') continue;
      const pair = loraPair(g, l, sa, sb, dtype);
      if (source !== null) pair.dropout = { p: l.config.dropout, source, stream: i / 2 };
      pairs.set(sa.baseName, pair);
    }
  }
  const bt = g.slice(g.shapeOf(sc === null ? (opts.positions as Tensor) : x), [0], [2]); // [B, T]
  // 1/√hd: when it is a power of two (hd = 4ᵏ: 64, 256) scaling q in the compute dtype is exact and gives
  // the same scores as scaling the float32 [B, kvH, rep, T, S] product, at hd/S of the traffic.
  const scaleValue = 1 / Math.sqrt(hd);
  const scaleQ = Number.isInteger(Math.log2(scaleValue));
  const lin = (t: Tensor, name: string): Tensor => linear(g, t, w(`${name}.weight`), opt(`${name}.bias`), pairs.get(`${name}.weight`) ?? null);
  const f: Forward = {
    g,
    c,
    dtype,
    wide: io,
    w,
    opt,
    lin,
    linCat: (t, names) => {
      const biases = names.map((n) => opt(`${n}.bias`));
      const mixed = biases.some((b) => b === null) && biases.some((b) => b !== null);
      if (sc === null || mixed || names.some((n) => pairs.has(`${n}.weight`))) return null;
      const bias = biases[0] === null ? null : g.concat(biases as Tensor[], 0);
      return linear(
        g,
        t,
        g.concat(
          names.map((n) => w(`${n}.weight`)),
          0,
        ),
        bias,
        null,
      );
    },
    lins: (t, names) => {
      const y = f.linCat(t, names);
      if (y === null) return names.map((n) => lin(t, n));
      return g.op('Split', [y, g.ints(names.map((n) => w(`${n}.weight`).shape[0] as number))], { axis: 1 }) as Tensor[];
    },
    rope: sc === null ? ropeFactors(g, c, opts.positions as Tensor, opts.maxPositions ?? c.maxPositionEmbeddings, dtype) : null,
    staticCache: sc,
    bt,
    shapeBT: (...rest) => g.concat([bt, g.ints(rest)], 0),
    bias5: sc === null ? g.unsqueeze(g.cast(opts.bias as Tensor, io), [1]) : null,
    scale: g.scalar(scaleValue, scaleQ ? dtype : io),
    scaleQ,
  };

  let h = g.reshape(g.cast(x, dtype), [-1, D]); // [N, D]
  const presents: Array<{ key: Tensor; value: Tensor }> = [];
  for (let i = 0; i < c.numHiddenLayers; i++) {
    const pre = `model.layers.${i}`;
    // Each layer is a recomputable segment of the graph (a tag only: the trainer's recompute 'layers'
    // rebuilds the layer's values in the backward from its input h instead of keeping them).
    h = g.recomputable(h, (hIn) => {
      const a = attention(f, rmsNorm(g, hIn, w(`${pre}.input_layernorm.weight`), c.rmsNormEps, dtype), i, opts.past?.[i] ?? null);
      if (a.present !== null) presents.push(sc !== null ? a.present : { key: g.cast(a.present.key, io), value: g.cast(a.present.value, io) });
      const mid = g.add(hIn, a.out);
      return g.add(mid, mlp(f, rmsNorm(g, mid, w(`${pre}.post_attention_layernorm.weight`), c.rmsNormEps, dtype), i));
    });
  }
  const final = rmsNorm(g, h, w('model.norm.weight'), c.rmsNormEps, dtype); // [N, D]
  const hidden = want.has('hidden') ? g.cast(g.reshape(final, f.shapeBT(D)), io) : null;
  let logits: Tensor | null = null;
  if (want.has('logits')) {
    const head = w(c.tieWordEmbeddings ? 'model.embed_tokens.weight' : 'lm_head.weight');
    logits = g.cast(g.reshape(g.op1('Gemm', [final, head], { transB: 1 }), f.shapeBT(c.vocabSize)), io);
  }
  return { logits, hidden, presents };
}

/**
 * The LM head on rows of decoder()'s final normed hidden states: hidden [..., D] (its `hidden` output or
 * rows gathered from it) → logits [..., V] in the io dtype, by the same compute-dtype Gemm and Cast as
 * decoder()'s logits (a float32 `hidden` of a 16-bit decoder narrows back to its exact compute values). For
 * objectives that need logits at a few positions only (phase 2's student slots): the [B, T, V] logits then
 * feed the cross-entropy alone, which graph.fuseLinearCrossEntropy can chunk over the vocabulary.
 */
export function lmHead(g: Graph, config: ModelConfig, weights: DecoderWeights, hidden: Tensor, dtype: ComputeDtype = 'float32'): Tensor {
  const [D, V] = [config.hiddenSize, config.vocabSize];
  if (hidden.rank < 1 || hidden.shape[hidden.rank - 1] !== D) throw new Error(`lmHead: hidden must be [..., ${D}], got ${hidden.dtype}${hidden.shapeText}`);
  const name = config.tieWordEmbeddings ? 'model.embed_tokens.weight' : 'lm_head.weight';
  const head = lookup(weights, name, 'weight');
  checkShape(head, name, [V, D]);
  const rows = g.reshape(g.cast(hidden, dtype), [-1, D]);
  const lead = g.slice(g.shapeOf(hidden), [0], [hidden.rank - 1]);
  return g.cast(g.reshape(g.op1('Gemm', [rows, g.cast(head, dtype)], { transB: 1 }), g.concat([lead, g.ints([V])], 0)), ioDtype(dtype));
}

// ---- buildDecoder: the decoder with today's graph input names -------------------------------------------

/** Where buildDecoder's parameters come from. */
export type DecoderParams = { kind: 'inputs'; dtype?: 'float32' | 'float64' } | { kind: 'initializers'; tensors: readonly WeightTensor[] };

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
export interface DecoderGraph extends DecoderOutputs {
  /** Parameters by HF name (graph inputs or initializers, as declared; before any Cast). */
  params: Record<string, Tensor>;
  /** LoRA inputs by PEFT name. */
  lora: Record<string, Tensor>;
  /** Dtype of float graph inputs/outputs (embeds, additive mask, cache, logits): float64 for f64 graphs, else float32. */
  ioDtype: 'float32' | 'float64';
}

/**
 * Declares the parameters of `config` in `g` by HF name: graph inputs (kind 'inputs') or initializers
 * from `params.tensors` (shape-checked; float32, or rounded to nearest even into `initDtype` float16 /
 * bfloat16: half the bytes, no Cast at run time); lm_head only with `withHead`.
 */
export function declareWeights(
  g: Graph,
  config: ModelConfig,
  params: DecoderParams,
  withHead: boolean,
  initDtype: 'float32' | 'float16' | 'bfloat16' = 'float32',
): Record<string, Tensor> {
  const out: Record<string, Tensor> = {};
  const given = params.kind === 'initializers' ? new Map(params.tensors.map((t) => [t.name, t])) : null;
  for (const p of parameterShapes(config)) {
    if (p.name === 'lm_head.weight' && !withHead) continue;
    if (given === null) {
      out[p.name] = g.input(p.name, params.kind === 'inputs' ? (params.dtype ?? 'float32') : 'float32', p.shape); // (kind is 'inputs' here)
      continue;
    }
    const src = given.get(p.name);
    if (src === undefined) throw inputError({ field: p.name }, 'parameter missing from the initializer tensors');
    if (src.shape.join(',') !== p.shape.join(',')) throw inputError({ field: p.name }, `shape [${src.shape}] but the config needs [${p.shape}]`);
    if ('dtype' in src) {
      // 16-bit bits as read (no float32 copy): only as initializers of that very dtype.
      if (src.dtype !== initDtype) throw inputError({ field: p.name }, `is ${src.dtype} but the graph stores its weights in ${initDtype}`);
      out[p.name] = g.initializer(p.name, { dtype: initDtype, dims: p.shape, data: src.data });
      continue;
    }
    out[p.name] = g.initializer(p.name, { dtype: initDtype, dims: p.shape, data: initDtype === 'float32' ? src.data : typedFrom(initDtype, src.data) });
  }
  return out;
}

/**
 * decoder() with its tensors declared as graph inputs under today's names: `input_ids` or
 * `inputs_embeds`, `attention_mask`, `position_ids` [B, T] int64, the parameters (kind 'inputs', else
 * initializers), LoRA tensors, `dropout_seed`, `past_key_values.{i}.key|value`; for inference graphs,
 * exports and tests. Throws a one-line error for bad options.
 */
export function buildDecoder(g: Graph, config: ModelConfig, opts: DecoderOptions): DecoderGraph {
  const dtype = opts.dtype ?? 'float32';
  const io = ioDtype(dtype);
  const outputs = opts.outputs ?? ['logits'];
  if (outputs.length === 0) throw inputError({ field: 'outputs' }, 'ask for logits and/or hidden');
  const c = config;
  const [kvH, hd, D] = [c.numKeyValueHeads, c.headDim, c.hiddenSize];
  const params = declareWeights(g, c, opts.params, outputs.includes('logits'));
  const view = viewWeights(g, params, dtype);

  const lora: Record<string, Tensor> = {};
  let l: DecoderLora | undefined;
  if (opts.lora !== undefined) {
    const lc = opts.lora.config;
    const shapes = loraParameterShapes(c, lc);
    const seed = opts.lora.mode === 'train' && lc.dropout > 0 ? g.input('dropout_seed', 'int64', []) : null;
    const pd = opts.params.kind === 'inputs' ? (opts.params.dtype ?? 'float32') : 'float32';
    for (const s of shapes) lora[s.name] = g.input(s.name, pd, s.shape);
    if (opts.input === 'embeds' && shapes.some((s) => s.baseName === 'model.embed_tokens.weight')) {
      throw inputError({ field: 'lora.targetModules' }, 'embed_tokens LoRA needs input "ids" (inputs_embeds skip the embedding lookup)');
    }
    l = { config: lc, tensors: lora, ...(seed !== null ? { dropoutSeed: seed } : {}) };
  }
  const positions = g.input('position_ids', 'int64', ['batch', 'seq']);
  const x =
    opts.input === 'ids'
      ? embed(g, c, view, g.input('input_ids', 'int64', ['batch', 'seq']), { dtype, ...(l !== undefined ? { lora: l } : {}) })
      : g.input('inputs_embeds', io, ['batch', 'seq', D]);
  const keys = opts.cache === true ? 'total' : 'seq';
  const bias =
    opts.mask === 'padding'
      ? paddingBias(g, g.input('attention_mask', 'int64', ['batch', keys]), positions)
      : g.input('attention_mask', io, ['batch', 1, 'seq', keys]);
  const past =
    opts.cache === true
      ? Array.from({ length: c.numHiddenLayers }, (_, i) => ({
          key: g.input(`past_key_values.${i}.key`, io, ['batch', kvH, 'past', hd]),
          value: g.input(`past_key_values.${i}.value`, io, ['batch', kvH, 'past', hd]),
        }))
      : undefined;
  const out = decoder(g, c, view, x, {
    bias,
    positions,
    dtype,
    outputs,
    ...(past !== undefined ? { past } : {}),
    ...(l !== undefined ? { lora: l } : {}),
    ...(opts.maxPositions !== undefined ? { maxPositions: opts.maxPositions } : {}),
  });
  if (opts.markOutputs ?? true) {
    if (out.hidden !== null) out.hidden = g.output(out.hidden, 'last_hidden_state');
    if (out.logits !== null) out.logits = g.output(out.logits, 'logits');
    out.presents.forEach((p, i) => {
      p.key = g.output(p.key, `present.${i}.key`);
      p.value = g.output(p.value, `present.${i}.value`);
    });
  }
  return { ...out, params, lora, ioDtype: io };
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
