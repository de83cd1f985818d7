// The vocabulary superposition of a latent token (spec §3.2, §4.2, §5.1): latent logits h·Wᵀ, the
// full-vocabulary distribution (v1) or the top-k renormalised distribution (v2/HEAD), and the soft
// embedding z = Σ_v α_v W[v]. CPU fp64 reference for analysis and for checking the graph-side op.
// Leaves out bf16 rounding (the reference computes logits in bf16 and softmax in fp32), gradients,
// and the scatter of z into decoder inputs.
//
// Shape legend: m = latents, d = hidden size, V = vocabulary, k = top-k width.
// References: `softmax_over_embedding`, `softmax_over_embedding_topk`, `weighted_embedding_from_topk`.

import { checkIndices, checkMatrix, checkSameShape, shapeOf, type Matrix } from './matrix.js';
import { softmaxRows } from './softmax.js';

/** Latent logits ℓ = h·Wᵀ: h [m,d] (final normed hidden states), W [V,d] (input embeddings) → [m,V]. */
export function latentLogits(h: Matrix, W: Matrix): Matrix<Float64Array> {
  const fn = 'latentLogits';
  checkMatrix(fn, 'h', h);
  checkMatrix(fn, 'W', W);
  if (h.cols !== W.cols) throw new Error(`${fn}: h has shape ${shapeOf(h)} but W has shape ${shapeOf(W)} (d must agree)`);
  const m = h.rows,
    V = W.rows,
    d = h.cols;
  const out = new Float64Array(m * V);
  for (let i = 0; i < m; i++) {
    for (let v = 0; v < V; v++) {
      let s = 0;
      for (let c = 0; c < d; c++) s += (h.data[i * d + c] as number) * (W.data[v * d + c] as number);
      out[i * V + v] = s;
    }
  }
  return { data: out, rows: m, cols: V };
}

/** Σ_j probs[i,j] · W[col(i,j)] for every row i, where col maps a probability slot to a vocab row. */
function mix(probs: Matrix<ArrayLike<number>>, W: Matrix, col: (i: number, j: number) => number): Matrix<Float64Array> {
  const m = probs.rows,
    k = probs.cols,
    d = W.cols;
  const out = new Float64Array(m * d);
  for (let i = 0; i < m; i++) {
    for (let j = 0; j < k; j++) {
      const p = probs.data[i * k + j] as number;
      if (p === 0) continue;
      const row = col(i, j) * d;
      for (let c = 0; c < d; c++) out[i * d + c] = (out[i * d + c] as number) + p * (W.data[row + c] as number);
    }
  }
  return { data: out, rows: m, cols: d };
}

/** v1 superposition: α = softmax(logits) over the full vocabulary, z = α·W. logits [m,V], W [V,d]. */
export function softEmbeddingFull(logits: Matrix, W: Matrix): { probs: Matrix<Float64Array>; emb: Matrix<Float64Array> } {
  const fn = 'softEmbeddingFull';
  checkMatrix(fn, 'logits', logits);
  checkMatrix(fn, 'W', W);
  if (logits.cols !== W.rows) {
    throw new Error(`${fn}: logits has shape ${shapeOf(logits)} but W has shape ${shapeOf(W)} (V must agree)`);
  }
  const probs = softmaxRows(logits);
  return { probs, emb: mix(probs, W, (_i, v) => v) };
}

/**
 * Indices of the k largest scores of each row, in descending order of score; equal scores are
 * ordered by LOWER index first (a fixed rule, where torch.topk leaves ties unspecified). NaN throws.
 * scores [m,V], 1 <= k <= V → Int32Array [m,k].
 */
export function topKIndices(scores: Matrix, k: number): Matrix<Int32Array> {
  const fn = 'topKIndices';
  checkMatrix(fn, 'scores', scores);
  const { rows: m, cols: V, data } = scores;
  if (!Number.isInteger(k) || k < 1 || k > V) throw new Error(`${fn}: k = ${k} must be an integer in [1, V=${V}] (scores ${shapeOf(scores)})`);
  const out = new Int32Array(m * k);
  const vals = new Float64Array(k);
  const idx = new Int32Array(k);
  for (let i = 0; i < m; i++) {
    let n = 0; // entries held in vals/idx, sorted descending
    for (let v = 0; v < V; v++) {
      const x = data[i * V + v] as number;
      if (Number.isNaN(x)) throw new Error(`${fn}: scores[${i},${v}] is NaN (shape ${shapeOf(scores)})`);
      if (n === k && !(x > (vals[k - 1] as number))) continue; // a later equal score loses the tie
      let j = n < k ? n++ : k - 1;
      while (j > 0 && (vals[j - 1] as number) < x) {
        // strict: equal earlier entries stay ahead
        vals[j] = vals[j - 1] as number;
        idx[j] = idx[j - 1] as number;
        j--;
      }
      vals[j] = x;
      idx[j] = v;
    }
    out.set(idx, i * k);
  }
  return { data: out, rows: m, cols: k };
}

/**
 * v2 superposition: keep the top-k logits of each row (topKIndices order) and softmax over those k
 * only; other tokens get mass 0. If k >= V this falls back to the full softmax, returned with
 * indices 0..V-1 in vocabulary order (k_eff = V). logits [m,V] → indices Int32Array [m,k_eff],
 * probs [m,k_eff].
 */
export function topKDistribution(logits: Matrix, k: number): { indices: Matrix<Int32Array>; probs: Matrix<Float64Array> } {
  const fn = 'topKDistribution';
  checkMatrix(fn, 'logits', logits);
  const { rows: m, cols: V } = logits;
  if (!Number.isInteger(k) || k < 1) throw new Error(`${fn}: k = ${k} must be a positive integer`);
  if (k >= V) {
    const indices = new Int32Array(m * V);
    for (let i = 0; i < m; i++) for (let v = 0; v < V; v++) indices[i * V + v] = v;
    return { indices: { data: indices, rows: m, cols: V }, probs: softmaxRows(logits) };
  }
  const indices = topKIndices(logits, k);
  const picked = new Float64Array(m * k);
  for (let i = 0; i < m; i++) {
    for (let j = 0; j < k; j++) picked[i * k + j] = logits.data[i * V + (indices.data[i * k + j] as number)] as number;
  }
  return { indices, probs: softmaxRows({ data: picked, rows: m, cols: k }) };
}

/** z_i = Σ_j probs[i,j] · W[indices[i,j]]: indices [m,k] (ids in [0,V)), probs [m,k], W [V,d] → [m,d]. */
export function softEmbeddingTopK(indices: Matrix<Int32Array>, probs: Matrix, W: Matrix): Matrix<Float64Array> {
  const fn = 'softEmbeddingTopK';
  checkSameShape(fn, ['indices', indices], ['probs', probs]);
  checkMatrix(fn, 'W', W);
  checkIndices(fn, 'indices', indices, W.rows);
  return mix(probs, W, (i, j) => indices.data[i * indices.cols + j] as number);
}
