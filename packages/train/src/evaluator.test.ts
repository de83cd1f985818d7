// The forward-only Evaluator on ORT CPU: loss and metrics of a linear objective (trainable W, frozen b)
// against a float64 host computation, example-weighted over batches of different sizes, at two
// different trainable states of one evaluator (the trainables are re-uploaded on every call).
import type { Tensor } from '@latent-sft/graph';
import type { HostTensor } from '@latent-sft/runtime';
import { describe, expect, it } from 'vitest';
import { f32, normals } from '../test/objectives.js';
import { type EvalBatch, Evaluator, type Objective } from './index.js';

/** float32 forward vs float64: a 5-term dot product and a mean over <= 12 values. */
const FWD = { rtol: 1e-5, atol: 1e-6 };
const D = 5;
const O = 3;

const objective: Objective = {
  trainable: { W: { dtype: 'float32', shape: [D, O] } },
  frozen: { b: { dtype: 'float32', shape: [O] } },
  batch: { x: { dtype: 'float32', shape: ['batch', D] }, y: { dtype: 'float32', shape: ['batch', O] } },
  buildLoss(g, p, i) {
    const d = g.sub(g.add(g.matmul(i['x'] as Tensor, p['W'] as Tensor), i['b'] as Tensor), i['y'] as Tensor);
    return { loss: g.reduceMean(g.mul(d, d), undefined, false), metrics: { mae: g.reduceMean(g.sqrt(g.mul(d, d)), undefined, false) } };
  },
};

function batch(seed: number, B: number): EvalBatch {
  return { feeds: { x: f32([B, D], normals(seed, B * D)), y: f32([B, O], normals(seed + 1, B * O)) }, examples: B };
}

/** float64 per-batch mean squared and absolute error, then the example-weighted means. */
function reference(W: Float32Array, b: Float32Array, batches: readonly EvalBatch[]): { loss: number; mae: number } {
  let loss = 0;
  let mae = 0;
  let n = 0;
  for (const { feeds, examples: B } of batches) {
    const x = (feeds['x'] as HostTensor).data as Float32Array;
    const y = (feeds['y'] as HostTensor).data as Float32Array;
    let sq = 0;
    let ab = 0;
    for (let r = 0; r < B; r++)
      for (let o = 0; o < O; o++) {
        let s = b[o] as number;
        for (let k = 0; k < D; k++) s += (x[r * D + k] as number) * (W[k * O + o] as number);
        const d = s - (y[r * O + o] as number);
        sq += d * d;
        ab += Math.abs(d);
      }
    loss += (B * sq) / (B * O);
    mae += (B * ab) / (B * O);
    n += B;
  }
  return { loss: loss / n, mae: mae / n };
}

describe('Evaluator', () => {
  it('gives the example-weighted mean loss and metrics of the batches at the given trainables', async () => {
    const b = Float32Array.from(normals(7, O, 0.5));
    const ev = Evaluator.create({ objective, compute: 'float32', device: { kind: 'cpu' }, frozen: { b: f32([O], b) } });
    try {
      const batches = [batch(10, 4), batch(20, 1), batch(30, 3)];
      expect(ev.metricNames).toEqual(['mae']);
      for (const seed of [1, 2]) {
        const W = Float32Array.from(normals(seed, D * O, 0.4));
        const got = await ev.evaluate([{ name: 'W', shape: [D, O], data: W }], batches);
        const want = reference(W, b, batches);
        expect(got.examples).toBe(8);
        expect([got.loss, got.metrics['mae'] as number]).toBeAllclose([want.loss, want.mae], FWD);
      }
      // Weighting matters here: the plain mean of the three batch means differs.
      const W = Float32Array.from(normals(1, D * O, 0.4));
      const perBatch = batches.map((bt) => reference(W, b, [bt]).loss);
      expect(Math.abs(perBatch.reduce((s, v) => s + v, 0) / 3 - reference(W, b, batches).loss)).toBeGreaterThan(1e-3);
    } finally {
      ev.release();
    }
  });

  it('refuses a trainable of the wrong shape and a batch without an objective input, in one line', async () => {
    const ev = Evaluator.create({ objective, compute: 'float32', device: { kind: 'cpu' }, frozen: { b: f32([O], new Float32Array(O)) } });
    try {
      await expect(ev.evaluate([{ name: 'W', shape: [O, D], data: new Float32Array(D * O) }], [batch(1, 2)])).rejects.toThrow(/trainable\.W.*shape \[3, 5\]/);
      const noY = { feeds: { x: f32([2, D], normals(1, 2 * D)) }, examples: 2 };
      await expect(ev.evaluate([{ name: 'W', shape: [D, O], data: new Float32Array(D * O) }], [noY])).rejects.toThrow(/batches\[0\]\.y.*missing/);
    } finally {
      ev.release();
    }
  });
});
