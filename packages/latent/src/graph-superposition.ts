// Graph-side vocabulary superposition (spec §3.2, §4.2, §7 "- Hidden State"): builders that append
// the latent-token math to an ONNX training graph of @latent-sft/graph, batched over [B, m, …], so
// that autodiff carries the gradient into the encoder through h (via the logits and via α).
// The CPU references are superposition.ts (latentLogits, softEmbeddingFull, topKDistribution,
// softEmbeddingTopK); graph-superposition.test.ts checks agreement and gradients on ORT CPU.
// Leaves out the scatter into the decoder inputs (graph-scatter.ts), the losses (graph-divergence.ts)
// and Gumbel noise (a data-side transform of the cached targets, gumbel.ts).
//
// Shape legend: B = batch, m = latent slots, d = hidden size, V = vocabulary, k = top-k width.
// Numerics: logits and the embedding mix run in the input dtype (bf16 in the reference); every
// softmax runs in float32 when the input is float16/bfloat16 (Cast up, softmax, Cast back), else in
// the input dtype (float32/float64).
//
// Detaching W. The graph package has no stop-gradient op, and `grad` differentiates every path from a
// `wrt` value. W is detached exactly when it is not reachable from any `wrt` of the later `grad` call:
// a graph input or initializer that is not a trained parameter (the Phase-1 decoder embedding and the
// Phase-2 base embedding under LoRA both are). If the same matrix is also trained elsewhere in the
// graph, feed it twice: once as the parameter and once as a separate, non-parameter input passed
// here. `checkDetached` asserts this at build time.
import type { Graph, Tensor } from '@latent-sft/graph';
import { reachable, requireDtype, requireFloatTensor, requireRank, requireSameDim, requireSameDtype, upcast } from './graph-checks.js';

/** How a latent token becomes a decoder input embedding (spec §3.2 v1 / v2, §7 ablation). */
export type LatentKind = { kind: 'soft-full' } | { kind: 'soft-topk'; k: number } | { kind: 'hidden' };

/** The latent embedding of each slot, with the distribution it came from. */
export type LatentEmbedding =
  | { kind: 'soft-full'; logits: Tensor; probs: Tensor; emb: Tensor }
  | { kind: 'soft-topk'; logits: Tensor; indices: Tensor; probs: Tensor; emb: Tensor }
  | { kind: 'hidden'; emb: Tensor };

/** Throws unless `value` is independent of every `wrt` value, i.e. no gradient can reach it. */
export function checkDetached(g: Graph, value: Tensor, wrt: readonly Tensor[]): void {
  const from = wrt.filter((w) => reachable(g, [w], value));
  if (from.length > 0) {
    throw new Error(
      `checkDetached: '${value.name}' ${value.shapeText} depends on ${from.map((w) => `'${w.name}'`).join(', ')}, ` +
        'so grad() would update it; pass a separate non-parameter input holding the same values',
    );
  }
}

function checkW(fn: string, W: Tensor): void {
  requireRank(fn, 'W', W, 2, '[V, d]');
  requireFloatTensor(fn, 'W', W);
}

/** Latent logits ℓ = h·Wᵀ: h [B,m,d] (encoder's final normed hidden states), W [V,d] detached → [B,m,V]. */
export function gLatentLogits(g: Graph, h: Tensor, W: Tensor): Tensor {
  const fn = 'gLatentLogits';
  requireRank(fn, 'h', h, 3, '[B, m, d]');
  requireFloatTensor(fn, 'h', h);
  checkW(fn, W);
  requireSameDtype(fn, ['h', h], ['W', W]);
  requireSameDim(fn, ['h', h, 2], ['W', W, 1], 'd');
  return g.matmul(h, g.transpose(W, [1, 0]));
}

/** Softmax over the last axis in the compute dtype, cast back to the input dtype. */
function softmaxLast(g: Graph, x: Tensor): Tensor {
  return g.cast(g.softmax(upcast(g, x), -1), x.dtype);
}

/** v1: α = softmax(logits) over the full vocabulary, z = α·W. logits [B,m,V], W [V,d] → probs [B,m,V], emb [B,m,d]. */
export function gSoftEmbeddingFull(g: Graph, logits: Tensor, W: Tensor): { probs: Tensor; emb: Tensor } {
  const fn = 'gSoftEmbeddingFull';
  requireRank(fn, 'logits', logits, 3, '[B, m, V]');
  checkW(fn, W);
  requireSameDtype(fn, ['logits', logits], ['W', W]);
  requireSameDim(fn, ['logits', logits, 2], ['W', W, 0], 'V');
  const probs = softmaxLast(g, logits);
  return { probs, emb: g.matmul(probs, W) };
}

/**
 * z_i = Σ_j probs[b,i,j] · W[indices[b,i,j]]: indices [B,m,k] int64 (ids in [0,V)), probs [B,m,k],
 * W [V,d] → [B,m,d]. Phase-2 teacher embeddings from the cached top-k, and inference. Gather of the
 * k rows, then [B,m,1,k]×[B,m,k,d] MatMul; gradients flow into probs (and into W if it is a wrt). A
 * float16 / bfloat16 W with float32 probs: the gathered rows are widened (exact) and z is float32.
 */
export function gWeightedEmbedding(g: Graph, indices: Tensor, probs: Tensor, W: Tensor): Tensor {
  const fn = 'gWeightedEmbedding';
  requireRank(fn, 'indices', indices, 3, 'int64 [B, m, k]');
  requireDtype(fn, 'indices', indices, 'int64');
  requireRank(fn, 'probs', probs, 3, '[B, m, k]');
  checkW(fn, W);
  const widen = (W.dtype === 'float16' || W.dtype === 'bfloat16') && probs.dtype === 'float32';
  if (!widen) requireSameDtype(fn, ['probs', probs], ['W', W]);
  for (const ax of [0, 1, 2]) requireSameDim(fn, ['indices', indices, ax], ['probs', probs, ax], ['B', 'm', 'k'][ax] as string);
  const rows = g.gather(W, indices, 0); // [B,m,k,d]; a 16-bit W's rows widened (exactly) to float32 probs
  return g.squeeze(g.matmul(g.unsqueeze(probs, [2]), widen ? g.cast(rows, 'float32') : rows), [2]);
}

/**
 * v2/HEAD: keep the top-k logits of each slot (descending; ties → lower id, as ONNX TopK and the CPU
 * topKIndices), α = softmax over those k, z = Σ_j α_j W[idx_j]. logits [B,m,V], W [V,d] →
 * indices [B,m,k] int64, probs [B,m,k], emb [B,m,d]. The gradient reaches the logits through the
 * TopK values. As topKDistribution, k ≥ V (V static) falls back to the full softmax with indices
 * 0..V−1 in vocabulary order; with a symbolic V, k must not exceed it at run time.
 */
export function gSoftEmbeddingTopK(g: Graph, logits: Tensor, W: Tensor, k: number): { indices: Tensor; probs: Tensor; emb: Tensor } {
  const fn = 'gSoftEmbeddingTopK';
  requireRank(fn, 'logits', logits, 3, '[B, m, V]');
  checkW(fn, W);
  requireSameDtype(fn, ['logits', logits], ['W', W]);
  requireSameDim(fn, ['logits', logits, 2], ['W', W, 0], 'V');
  if (!Number.isInteger(k) || k < 1) throw new Error(`${fn}: k = ${k} must be a positive integer (logits ${logits.shapeText})`);
  const V = logits.shape[2];
  if (typeof V === 'number' && k >= V) {
    const iota = g.constant(
      Array.from({ length: V }, (_, v) => v),
      'int64',
      [V],
    );
    const { probs, emb } = gSoftEmbeddingFull(g, logits, W);
    return { indices: g.expand(iota, g.shapeOf(logits)), probs, emb };
  }
  const [values, indices] = g.op('TopK', [logits, g.ints([k])], { axis: -1, largest: 1, sorted: 1 }) as [Tensor, Tensor];
  const probs = softmaxLast(g, values);
  return { indices, probs, emb: gWeightedEmbedding(g, indices, probs, W) };
}

/** §7 "- Hidden State" ablation: the latent is the encoder's last (normed) hidden state h [B,m,d] itself. */
export function gHiddenStateLatents(g: Graph, h: Tensor): Tensor {
  requireRank('gHiddenStateLatents', 'h', h, 3, '[B, m, d]');
  requireFloatTensor('gHiddenStateLatents', 'h', h);
  return h;
}

/**
 * The decoder input embedding of each latent slot from the encoder states h [B,m,d] and the detached
 * embedding matrix W [V,d] (unused by 'hidden'), chosen by `kind`.
 */
export function gLatentEmbedding(g: Graph, h: Tensor, W: Tensor, kind: LatentKind): LatentEmbedding {
  switch (kind.kind) {
    case 'soft-full': {
      const logits = gLatentLogits(g, h, W);
      return { kind: 'soft-full', logits, ...gSoftEmbeddingFull(g, logits, W) };
    }
    case 'soft-topk': {
      const logits = gLatentLogits(g, h, W);
      return { kind: 'soft-topk', logits, ...gSoftEmbeddingTopK(g, logits, W, kind.k) };
    }
    case 'hidden':
      return { kind: 'hidden', emb: gHiddenStateLatents(g, h) };
    default: {
      const never: never = kind;
      throw new Error(`gLatentEmbedding: unknown latent kind ${JSON.stringify(never)}`);
    }
  }
}
