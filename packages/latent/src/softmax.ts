// Numerically stable softmax and log-softmax over the rows of a matrix, in fp64 with max-subtraction.
// This is the exact reference the graph-side (fp32/bf16) versions are checked against. Leaves out
// temperatures (every Latent-SFT softmax uses T = 1; callers divide first where they need one).
//
// Shape legend: rows = m latents, cols = V (or k for top-k rows).

import { checkMatrix, shapeOf, type Matrix } from './matrix.js';

/** The max of row[off, off+n), throwing on NaN/+Infinity or a row with no finite entry. */
function rowMax(fn: string, x: ArrayLike<number>, off: number, n: number, row: number, shape: string): number {
  let max = -Infinity;
  for (let j = 0; j < n; j++) {
    const v = x[off + j] as number;
    if (Number.isNaN(v) || v === Infinity) throw new Error(`${fn}: logits[${row},${j}] = ${v} (shape ${shape})`);
    if (v > max) max = v;
  }
  if (max === -Infinity) throw new Error(`${fn}: row ${row} has no finite logit (shape ${shape})`);
  return max;
}

/** log Σ_j exp(x_j) over row[off, off+n), stable: max + log Σ exp(x_j - max). */
export function logSumExpRow(fn: string, x: ArrayLike<number>, off: number, n: number, row: number, shape: string): number {
  const max = rowMax(fn, x, off, n, row, shape);
  let sum = 0;
  for (let j = 0; j < n; j++) sum += Math.exp((x[off + j] as number) - max);
  return max + Math.log(sum);
}

/** softmax(x)_j = exp(x_j - max) / Σ exp(x - max), per row, in fp64. -Infinity entries get 0. */
export function softmaxRows(logits: Matrix): Matrix<Float64Array> {
  const fn = 'softmaxRows';
  checkMatrix(fn, 'logits', logits);
  const { rows, cols, data } = logits;
  const out = new Float64Array(rows * cols);
  for (let i = 0; i < rows; i++) {
    const off = i * cols;
    const max = rowMax(fn, data, off, cols, i, shapeOf(logits));
    let sum = 0;
    for (let j = 0; j < cols; j++) {
      const e = Math.exp((data[off + j] as number) - max);
      out[off + j] = e;
      sum += e;
    }
    for (let j = 0; j < cols; j++) out[off + j] = (out[off + j] as number) / sum;
  }
  return { data: out, rows, cols };
}

/** log_softmax(x)_j = x_j - logsumexp(x), per row, in fp64. */
export function logSoftmaxRows(logits: Matrix): Matrix<Float64Array> {
  const fn = 'logSoftmaxRows';
  checkMatrix(fn, 'logits', logits);
  const { rows, cols, data } = logits;
  const out = new Float64Array(rows * cols);
  for (let i = 0; i < rows; i++) {
    const off = i * cols;
    const lse = logSumExpRow(fn, data, off, cols, i, shapeOf(logits));
    for (let j = 0; j < cols; j++) out[off + j] = (data[off + j] as number) - lse;
  }
  return { data: out, rows, cols };
}
