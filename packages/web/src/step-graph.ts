// The web step graph: one Llama-3 / Qwen2 / Qwen3 decoder step with a KV cache as a plain ONNX model
// (default domain, opset 18, no custom ops) for onnxruntime-web. models' decoder() with `past`; the
// input embedding of each position is W[input_ids] or, where use_soft is set, the fed latent z:
//     x[b,t] = use_soft[b,t] ? soft_embeds[b,0] : W[input_ids[b,t]]
// Only the last position's logits are computed, and from them, in the graph:
//   argmax [B] int64                 the greedy answer token and the latent-end check
//   latent_ids [B, k] int64          TopK of the logits (descending; ties → lower id)
//   soft_probs [B, k] float32        softmax over those k logits (spec §5.4: T = 1)
//   next_embed [B, 1, D] float32     what a latent step feeds next: z = Σ_j p_j W[id_j] (feed 'soft')
//                                    or the last final normed hidden state (feed 'hidden')
//   present.{i}.key|value            the cache, fed back as past_key_values.{i}.* by the page
// Inputs: input_ids int64 [B, T], use_soft bool [B, T], soft_embeds float32 [B, 1, D], attention_mask
// int64 [B, P+T] (left padding), position_ids int64 [B, T], past_key_values.{i}.key|value float32
// [B, kvH, P, hd] (P = 0 for the prefill).
//
// Weights are float32, float16 or int8 initializers (int8: weight-only, symmetric per output row,
// w ≈ q · scale[row] with q = round(w / scale) ∈ [-127, 127], scale = max|w[row]| / 127; 1-D weights
// stay float32). Compute is float32 either way (onnxruntime-web's WASM backend has no float16 MatMul):
// a 16/8-bit weight is widened (Cast, × scale) where it is used, the embedding rows after their Gather,
// and the [V, D] output head in `headChunks` row blocks, so no float32 copy of the head exists at once.
// Load such a model without graph optimisations, else ORT folds the widening into float32 initializers.
// This is its own builder, not @latent-sft/generate's buildStepGraph: that graph serves the device
// engine (candidates, lse, compaction) and changes with it; this one is the exported file format.
import { inputError } from '@latent-sft/core';
import { Graph, type Tensor, f32ToF16Bits } from '@latent-sft/graph';
import { type ModelConfig, decoder, paddingBias, parameterShapes } from '@latent-sft/models';

/** Storage dtype of the exported weights. */
export type WebWeightDtype = 'float32' | 'float16' | 'int8';

/** What a latent step feeds next. */
export type WebFeed = 'soft' | 'hidden';

/** Options of buildWebStepGraph. */
export interface WebStepOptions {
  /** Width of the latent superposition (the latent spec's topK). */
  latentTopK: number;
  feed: WebFeed;
  weightDtype: WebWeightDtype;
  /** Positions are limited to [0, maxPositions) (the RoPE table's length). */
  maxPositions: number;
  /** Row blocks of the output head's widening + Gemm (float16 / int8 weights only; default 8). */
  headChunks?: number;
}

/** Input and output names of the web step graph. */
export const WEB_STEP = {
  ids: 'input_ids',
  useSoft: 'use_soft',
  soft: 'soft_embeds',
  mask: 'attention_mask',
  positions: 'position_ids',
  argmax: 'argmax',
  latentIds: 'latent_ids',
  softProbs: 'soft_probs',
  nextEmbed: 'next_embed',
  pastKey: (i: number): string => `past_key_values.${i}.key`,
  pastValue: (i: number): string => `past_key_values.${i}.value`,
  presentKey: (i: number): string => `present.${i}.key`,
  presentValue: (i: number): string => `present.${i}.value`,
} as const;

/** Reads one parameter by HF name as float32 (a checkpoint's readTensor, or a random initialiser). */
export type WeightReader = (name: string, shape: readonly number[]) => Float32Array;

function f16(data: Float32Array): Uint16Array {
  const out = new Uint16Array(data.length);
  for (let i = 0; i < data.length; i++) out[i] = f32ToF16Bits(data[i] as number);
  return out;
}

/** Symmetric per-row int8 of a [rows, cols] matrix: q and scale [rows] (an all-zero row gets scale 1). */
export function quantizeRows(data: Float32Array, rows: number): { q: Int8Array; scale: Float32Array } {
  const cols = data.length / rows;
  const q = new Int8Array(data.length);
  const scale = new Float32Array(rows);
  for (let r = 0; r < rows; r++) {
    let m = 0;
    for (let j = r * cols; j < (r + 1) * cols; j++) m = Math.max(m, Math.abs(data[j] as number));
    const s = m > 0 ? m / 127 : 1;
    scale[r] = s;
    for (let j = r * cols; j < (r + 1) * cols; j++) q[j] = Math.round((data[j] as number) / s);
  }
  return { q, scale };
}

/** A stored weight and how to widen rows of it to float32. */
interface Stored {
  /** The whole weight as float32 (a Cast, or Cast × scale, for narrow storage). */
  full: Tensor;
  /** Rows `ids` (int64 [..]) of a matrix as float32 [.., cols]. */
  rows: (ids: Tensor) => Tensor;
  /** Rows [from, to) as float32. */
  block: (from: number, to: number) => Tensor;
}

/** The web step graph described in the file header; weights are read one at a time through `read`. */
export function buildWebStepGraph(config: ModelConfig, read: WeightReader, opts: WebStepOptions): Graph {
  const c = config;
  const [V, D] = [c.vocabSize, c.hiddenSize];
  const k = opts.latentTopK;
  if (!Number.isInteger(k) || k < 1 || k > V) throw inputError({ field: 'latentTopK' }, `must be an integer in [1, ${V}] (the vocabulary size), got ${k}`);
  const chunks = opts.weightDtype === 'float32' ? 1 : (opts.headChunks ?? 8);
  if (!Number.isInteger(chunks) || chunks < 1 || chunks > V) throw inputError({ field: 'headChunks' }, `must be an integer in [1, ${V}], got ${chunks}`);

  const g = new Graph('latent_sft_web_step');
  const stored = new Map<string, Stored>();
  for (const p of parameterShapes(c)) {
    if (p.name === 'lm_head.weight' && c.tieWordEmbeddings) continue;
    const data = read(p.name, p.shape);
    const n = p.shape.reduce((a, b) => a * b, 1);
    if (data.length !== n) throw inputError({ field: p.name }, `${data.length} values, but the config's shape [${p.shape}] needs ${n}`);
    if (opts.weightDtype === 'int8' && p.shape.length === 2) {
      const rows = p.shape[0] as number;
      const { q, scale } = quantizeRows(data, rows);
      const qt = g.initializer(p.name, { dtype: 'int8', dims: p.shape, data: q });
      const st = g.initializer(`${p.name}.scale`, { dtype: 'float32', dims: [rows, 1], data: scale });
      const widen = (qs: Tensor, ss: Tensor): Tensor => g.mul(g.cast(qs, 'float32'), ss);
      stored.set(p.name, {
        full: widen(qt, st),
        rows: (ids) => widen(g.gather(qt, ids, 0), g.gather(st, ids, 0)),
        block: (from, to) => widen(g.slice(qt, [from], [to], [0]), g.slice(st, [from], [to], [0])),
      });
      continue;
    }
    const half = opts.weightDtype === 'float16';
    const t = half
      ? g.initializer(p.name, { dtype: 'float16', dims: p.shape, data: f16(data) })
      : g.initializer(p.name, { dtype: 'float32', dims: p.shape, data });
    stored.set(p.name, {
      full: g.cast(t, 'float32'),
      rows: (ids) => g.cast(g.gather(t, ids, 0), 'float32'),
      block: (from, to) => g.cast(g.slice(t, [from], [to], [0]), 'float32'),
    });
  }
  const weights = Object.fromEntries([...stored].map(([name, s]) => [name, s.full]));
  const W = stored.get('model.embed_tokens.weight') as Stored; // [V, D]

  const ids = g.input(WEB_STEP.ids, 'int64', ['batch', 'seq']);
  const useSoft = g.input(WEB_STEP.useSoft, 'bool', ['batch', 'seq']);
  const soft = g.input(WEB_STEP.soft, 'float32', ['batch', 1, D]);
  const mask = g.input(WEB_STEP.mask, 'int64', ['batch', 'total']);
  const positions = g.input(WEB_STEP.positions, 'int64', ['batch', 'seq']);
  const past = Array.from({ length: c.numHiddenLayers }, (_, i) => ({
    key: g.input(WEB_STEP.pastKey(i), 'float32', ['batch', c.numKeyValueHeads, 'past', c.headDim]),
    value: g.input(WEB_STEP.pastValue(i), 'float32', ['batch', c.numKeyValueHeads, 'past', c.headDim]),
  }));
  const x = g.where(g.unsqueeze(useSoft, [2]), soft, W.rows(ids)); // [B, T, D]
  const dec = decoder(g, c, weights, x, { bias: paddingBias(g, mask, positions), positions, past, outputs: ['hidden'], maxPositions: opts.maxPositions });
  const lastHidden = g.slice(dec.hidden as Tensor, [-1], [2 ** 62], [1]); // [B, 1, D]
  const last = g.reshape(lastHidden, [-1, D]);

  const head = stored.get(c.tieWordEmbeddings ? 'model.embed_tokens.weight' : 'lm_head.weight') as Stored;
  const bounds = Array.from({ length: chunks + 1 }, (_, i) => Math.round((i * V) / chunks));
  const parts = bounds.slice(1).map((end, i) => g.op1('Gemm', [last, chunks === 1 ? head.full : head.block(bounds[i] as number, end)], { transB: 1 }));
  const logits = parts.length === 1 ? (parts[0] as Tensor) : g.concat(parts, 1); // [B, V]

  const [topLogits, topIds] = g.op('TopK', [logits, g.ints([k])], { axis: -1, largest: 1, sorted: 1 }) as [Tensor, Tensor];
  const probs = g.softmax(topLogits, -1); // [B, k]
  const z = g.matmul(g.unsqueeze(probs, [1]), W.rows(topIds)); // [B, 1, k] · [B, k, D] → [B, 1, D]
  g.output(g.squeeze(g.slice(topIds, [0], [1], [1]), [1]), WEB_STEP.argmax);
  g.output(topIds, WEB_STEP.latentIds);
  g.output(probs, WEB_STEP.softProbs);
  g.output(opts.feed === 'hidden' ? lastHidden : z, WEB_STEP.nextEmbed);
  dec.presents.forEach((p, i) => {
    g.output(p.key, WEB_STEP.presentKey(i));
    g.output(p.value, WEB_STEP.presentValue(i));
  });
  g.prune();
  return g;
}
