// Small objectives for the Trainer tests: a linear regression (gradients known in closed form, so the
// trainer can be checked against the float64 reference optimizers) and a two-layer MLP.
import { Rng } from '@latent-sft/core';
import type { Tensor } from '@latent-sft/graph';
import type { HostTensor } from '@latent-sft/runtime';
import type { Objective } from '../src/index.js';

export const f32 = (dims: number[], data: ArrayLike<number>): HostTensor => ({ dtype: 'float32', dims, data: Float32Array.from(data) });

export function normals(seed: number, n: number, std = 1): number[] {
  const r = Rng.fromSeed(seed);
  return Array.from({ length: n }, () => std * r.normal());
}

/** pred = x·W + b, loss = mean((pred − y)²) over [B, O]; metric `mae` = mean |pred − y|. */
export function linearObjective(D: number, O: number, compute: 'float32' | 'float16' = 'float32'): Objective {
  return {
    trainable: { W: { dtype: 'float32', shape: [D, O] }, b: { dtype: 'float32', shape: [O] } },
    frozen: {},
    batch: { x: { dtype: 'float32', shape: ['batch', D] }, y: { dtype: 'float32', shape: ['batch', O] } },
    buildLoss(g, p, i) {
      const x = g.cast(i['x'] as Tensor, compute);
      const d = g.sub(g.add(g.matmul(x, p['W'] as Tensor), p['b'] as Tensor), g.cast(i['y'] as Tensor, compute));
      const loss = g.reduceMean(g.mul(d, d), undefined, false);
      const mae = g.reduceMean(g.sqrt(g.mul(d, d)), undefined, false);
      return { loss, metrics: { mae } };
    },
    countTokens: (b) => (b['x'] as HostTensor).dims[0] as number,
  };
}

/** The linear objective's loss and float64 gradients at (W, b) for one batch. */
export function linearGrads(
  D: number,
  O: number,
  W: Float64Array,
  b: Float64Array,
  x: Float32Array,
  y: Float32Array,
): { loss: number; W: Float64Array; b: Float64Array } {
  const B = x.length / D;
  const gW = new Float64Array(D * O);
  const gb = new Float64Array(O);
  let loss = 0;
  const k = 2 / (B * O);
  for (let r = 0; r < B; r++) {
    for (let o = 0; o < O; o++) {
      let pred = b[o] as number;
      for (let d = 0; d < D; d++) pred += (x[r * D + d] as number) * (W[d * O + o] as number);
      const e = pred - (y[r * O + o] as number);
      loss += e * e;
      gb[o] = (gb[o] as number) + k * e;
      for (let d = 0; d < D; d++) gW[d * O + o] = (gW[d * O + o] as number) + k * e * (x[r * D + d] as number);
    }
  }
  return { loss: loss / (B * O), W: gW, b: gb };
}

/** h = relu(x·A + c), pred = h·Bm, loss = mean((pred − y)²); x [batch, 4], y [batch, 1]; H hidden units. */
export function mlpObjective(H: number): Objective {
  return {
    trainable: { A: { dtype: 'float32', shape: [4, H] }, c: { dtype: 'float32', shape: [H] }, Bm: { dtype: 'float32', shape: [H, 1] } },
    frozen: {},
    batch: { x: { dtype: 'float32', shape: ['batch', 4] }, y: { dtype: 'float32', shape: ['batch', 1] } },
    buildLoss(g, p, i) {
      const h = g.relu(g.add(g.matmul(i['x'] as Tensor, p['A'] as Tensor), p['c'] as Tensor));
      const d = g.sub(g.matmul(h, p['Bm'] as Tensor), i['y'] as Tensor);
      return { loss: g.reduceMean(g.mul(d, d), undefined, false) };
    },
  };
}

export function mlpInit(H: number, seed = 3): Record<string, HostTensor> {
  return { A: f32([4, H], normals(seed, 4 * H, 0.5)), c: f32([H], new Float32Array(H)), Bm: f32([H, 1], normals(seed + 1, H, 0.5 / Math.sqrt(H))) };
}

/** A fixed regression data set for the MLP: y = sin(x0) + x1·x2 − 0.5·x3. */
export function mlpData(size: number, seed = 11): { x: Float32Array; y: Float32Array } {
  const x = Float32Array.from(normals(seed, size * 4));
  const y = Float32Array.from(
    { length: size },
    (_, i) => Math.sin(x[4 * i] as number) + (x[4 * i + 1] as number) * (x[4 * i + 2] as number) - 0.5 * (x[4 * i + 3] as number),
  );
  return { x, y };
}

export function mlpBatch(data: { x: Float32Array; y: Float32Array }, indices: readonly number[]): Record<string, HostTensor> {
  const x = new Float32Array(indices.length * 4);
  const y = new Float32Array(indices.length);
  indices.forEach((ix, r) => {
    x.set(data.x.subarray(4 * ix, 4 * ix + 4), 4 * r);
    y[r] = data.y[ix] as number;
  });
  return { x: f32([indices.length, 4], x), y: f32([indices.length, 1], y) };
}
