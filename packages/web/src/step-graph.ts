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
// Weights are float32 or float16 initializers. Compute is float32 either way (onnxruntime-web's WASM
// backend has no float16 MatMul): each float16 weight is Cast where it is used; the embedding rows are
// gathered before their Cast, and the [V, D] output head is cast and multiplied in `headChunks` row
// blocks, so a float16 model never holds a float32 copy of the head at once.
// This is its own builder, not @latent-sft/generate's buildStepGraph: that graph serves the device
// engine (candidates, lse, compaction) and changes with it; this one is the exported file format.
import { inputError } from '@latent-sft/core';
import { Graph, type Tensor, f32ToF16Bits } from '@latent-sft/graph';
import { type ModelConfig, decoder, paddingBias, parameterShapes } from '@latent-sft/models';

/** Storage dtype of the exported weights. */
export type WebWeightDtype = 'float32' | 'float16';

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
  /** Row blocks of the output head's Cast + Gemm (float16 weights only; default 8). */
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

/** The web step graph described in the file header; weights are read one at a time through `read`. */
export function buildWebStepGraph(config: ModelConfig, read: WeightReader, opts: WebStepOptions): Graph {
  const c = config;
  const [V, D] = [c.vocabSize, c.hiddenSize];
  const k = opts.latentTopK;
  if (!Number.isInteger(k) || k < 1 || k > V) throw inputError({ field: 'latentTopK' }, `must be an integer in [1, ${V}] (the vocabulary size), got ${k}`);
  const chunks = opts.weightDtype === 'float16' ? (opts.headChunks ?? 8) : 1;
  if (!Number.isInteger(chunks) || chunks < 1 || chunks > V) throw inputError({ field: 'headChunks' }, `must be an integer in [1, ${V}], got ${chunks}`);

  const g = new Graph('latent_sft_web_step');
  const weights: Record<string, Tensor> = {};
  for (const p of parameterShapes(c)) {
    if (p.name === 'lm_head.weight' && c.tieWordEmbeddings) continue;
    const data = read(p.name, p.shape);
    const n = p.shape.reduce((a, b) => a * b, 1);
    if (data.length !== n) throw inputError({ field: p.name }, `${data.length} values, but the config's shape [${p.shape}] needs ${n}`);
    weights[p.name] =
      opts.weightDtype === 'float16'
        ? g.initializer(p.name, { dtype: 'float16', dims: p.shape, data: f16(data) })
        : g.initializer(p.name, { dtype: 'float32', dims: p.shape, data });
  }
  const W = weights['model.embed_tokens.weight'] as Tensor; // [V, D]
  const rowsOf = (ids: Tensor): Tensor => g.cast(g.gather(W, ids, 0), 'float32');

  const ids = g.input(WEB_STEP.ids, 'int64', ['batch', 'seq']);
  const useSoft = g.input(WEB_STEP.useSoft, 'bool', ['batch', 'seq']);
  const soft = g.input(WEB_STEP.soft, 'float32', ['batch', 1, D]);
  const mask = g.input(WEB_STEP.mask, 'int64', ['batch', 'total']);
  const positions = g.input(WEB_STEP.positions, 'int64', ['batch', 'seq']);
  const past = Array.from({ length: c.numHiddenLayers }, (_, i) => ({
    key: g.input(WEB_STEP.pastKey(i), 'float32', ['batch', c.numKeyValueHeads, 'past', c.headDim]),
    value: g.input(WEB_STEP.pastValue(i), 'float32', ['batch', c.numKeyValueHeads, 'past', c.headDim]),
  }));
  const x = g.where(g.unsqueeze(useSoft, [2]), soft, rowsOf(ids)); // [B, T, D]
  const dec = decoder(g, c, weights, x, { bias: paddingBias(g, mask, positions), positions, past, outputs: ['hidden'], maxPositions: opts.maxPositions });
  const lastHidden = g.slice(dec.hidden as Tensor, [-1], [2 ** 62], [1]); // [B, 1, D]
  const last = g.reshape(lastHidden, [-1, D]);

  const head = weights[c.tieWordEmbeddings ? 'model.embed_tokens.weight' : 'lm_head.weight'] as Tensor;
  const bounds = Array.from({ length: chunks + 1 }, (_, i) => Math.round((i * V) / chunks));
  const parts = bounds.slice(1).map((end, i) => {
    const block = chunks === 1 ? head : g.slice(head, [bounds[i] as number], [end], [0]);
    return g.op1('Gemm', [last, g.cast(block, 'float32')], { transB: 1 });
  });
  const logits = parts.length === 1 ? (parts[0] as Tensor) : g.concat(parts, 1); // [B, V]

  const [topLogits, topIds] = g.op('TopK', [logits, g.ints([k])], { axis: -1, largest: 1, sorted: 1 }) as [Tensor, Tensor];
  const probs = g.softmax(topLogits, -1); // [B, k]
  const z = g.matmul(g.unsqueeze(probs, [1]), rowsOf(topIds)); // [B, 1, k] · [B, k, D] → [B, 1, D]
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
