import { Rng } from '@latent-sft/core';
import { describe, expect, it } from 'vitest';
import { matrix } from './matrix.js';
import { softmaxRows } from './softmax.js';
import { latentLogits, softEmbeddingFull, softEmbeddingTopK, topKDistribution, topKIndices } from './superposition.js';

const f64 = (rows: number, cols: number, values: number[]) => matrix(Float64Array.from(values), rows, cols);
// W [V=3, d=2]: rows e0, e1 and (2,2).
const W = f64(3, 2, [1, 0, 0, 1, 2, 2]);

describe('latentLogits', () => {
  it('is h·Wᵀ', () => {
    // h = [[1,2],[0,-1]]: row 0 · (1,0),(0,1),(2,2) = 1, 2, 6; row 1 = 0, -1, -2.
    const out = latentLogits(f64(2, 2, [1, 2, 0, -1]), W);
    expect([out.rows, out.cols]).toEqual([2, 3]);
    expect(out.data).toBeAllclose([1, 2, 6, 0, -1, -2], { atol: 0 });
  });

  it('names both shapes when d disagrees', () => {
    expect(() => latentLogits(f64(1, 3, [1, 2, 3]), W)).toThrow(/h has shape \[1,3\] but W has shape \[3,2\]/);
  });
});

describe('softEmbeddingFull', () => {
  it('mixes the embedding rows with the softmax weights', () => {
    // logits (0, ln 2, ln 5) -> probs (1, 2, 5)/8; z = 1/8·(1,0) + 2/8·(0,1) + 5/8·(2,2) = (1.375, 1.5).
    const { probs, emb } = softEmbeddingFull(f64(1, 3, [0, Math.log(2), Math.log(5)]), W);
    expect(probs.data).toBeAllclose([0.125, 0.25, 0.625], { atol: 1e-15 });
    expect(emb.data).toBeAllclose([1.375, 1.5], { atol: 1e-15 });
  });

  it('gives exactly the token embedding for a one-hot distribution', () => {
    const { probs, emb } = softEmbeddingFull(f64(1, 3, [-Infinity, 0, -Infinity]), W);
    expect(Array.from(probs.data)).toEqual([0, 1, 0]);
    expect(Array.from(emb.data)).toEqual([0, 1]); // W[1]
  });

  it('is stable for large logits and every row sums to 1', () => {
    // (1000, 1001): softmax = (1, e)/(1 + e) = (0.2689414213699951, 0.7310585786300049).
    expect(softmaxRows(f64(1, 2, [1000, 1001])).data).toBeAllclose([0.2689414213699951, 0.7310585786300049], { atol: 1e-15 });
    const rng = Rng.fromSeed(3);
    const logits = f64(
      5,
      50,
      Array.from({ length: 250 }, () => 300 * rng.normal()),
    );
    const { probs } = softEmbeddingFull(
      logits,
      f64(
        50,
        1,
        Array.from({ length: 50 }, (_, v) => v),
      ),
    );
    for (let i = 0; i < 5; i++) expect(probs.data.subarray(i * 50, i * 50 + 50).reduce((a, b) => a + b, 0)).toBeAllclose(1, { atol: 1e-12 });
  });

  it('checks that V agrees', () => {
    expect(() => softEmbeddingFull(f64(1, 2, [0, 0]), W)).toThrow(/logits has shape \[1,2\] but W has shape \[3,2\] \(V must agree\)/);
  });
});

describe('topKIndices / topKDistribution', () => {
  it('orders by descending score and breaks ties by lower index', () => {
    expect(Array.from(topKIndices(f64(2, 4, [2, 2, 2, 1, 1, 2, 2, 2]), 2).data)).toEqual([0, 1, 1, 2]);
    expect(Array.from(topKIndices(f64(1, 5, [0, 5, -1, 7, 5]), 3).data)).toEqual([3, 1, 4]);
    expect(() => topKIndices(f64(1, 2, [0, NaN]), 1)).toThrow(/scores\[0,1\] is NaN/);
    expect(() => topKIndices(f64(1, 2, [0, 1]), 3)).toThrow(/k = 3 must be an integer in \[1, V=2\]/);
  });

  it('softmaxes over the kept logits only', () => {
    // logits (1, 3, 2, 3), k = 3 -> ids 1, 3, 2 with logits 3, 3, 2:
    // probs = (1, 1, e^-1)/(2 + e^-1) = (0.4223188, 0.4223188, 0.1553624).
    const { indices, probs } = topKDistribution(f64(1, 4, [1, 3, 2, 3]), 3);
    expect(Array.from(indices.data)).toEqual([1, 3, 2]);
    const z = 2 + Math.exp(-1);
    expect(probs.data).toBeAllclose([1 / z, 1 / z, Math.exp(-1) / z], { atol: 1e-15 });
  });

  it('equals the renormalised full softmax on the kept ids', () => {
    const rng = Rng.fromSeed(4);
    const logits = f64(
      3,
      20,
      Array.from({ length: 60 }, () => rng.normal()),
    );
    const full = softmaxRows(logits);
    const { indices, probs } = topKDistribution(logits, 5);
    for (let i = 0; i < 3; i++) {
      const kept = Array.from(indices.data.subarray(i * 5, i * 5 + 5), (v) => full.data[i * 20 + v] as number);
      const s = kept.reduce((a, b) => a + b, 0);
      expect(probs.data.subarray(i * 5, i * 5 + 5)).toBeAllclose(
        kept.map((p) => p / s),
        { atol: 1e-15 },
      );
    }
  });

  it('falls back to the full softmax in vocabulary order when k >= V', () => {
    const logits = f64(2, 3, [0.5, -1, 2, 3, 3, 0]);
    for (const k of [3, 10]) {
      const { indices, probs } = topKDistribution(logits, k);
      expect([indices.rows, indices.cols]).toEqual([2, 3]);
      expect(Array.from(indices.data)).toEqual([0, 1, 2, 0, 1, 2]);
      expect(probs.data).toBeAllclose(softmaxRows(logits).data, { atol: 0 });
    }
  });
});

describe('softEmbeddingTopK', () => {
  it('is Σ_j p_j W[idx_j], exactly a row of W for a one-hot distribution', () => {
    // ids (2, 0) with probs (0.25, 0.75): 0.25·(2,2) + 0.75·(1,0) = (1.25, 0.5); ids (1) alone -> W[1].
    const emb = softEmbeddingTopK(matrix(Int32Array.from([2, 0, 1, 0]), 2, 2), f64(2, 2, [0.25, 0.75, 1, 0]), W);
    expect(Array.from(emb.data)).toEqual([1.25, 0.5, 0, 1]);
  });

  it('matches softEmbeddingFull when k = V', () => {
    const logits = f64(2, 3, [0.1, 0.7, -0.4, 2, 0, 1]);
    const { indices, probs } = topKDistribution(logits, 3);
    expect(softEmbeddingTopK(indices, probs, W).data).toBeAllclose(softEmbeddingFull(logits, W).emb.data, { atol: 1e-15 });
  });

  it('rejects mismatched shapes and out-of-range ids', () => {
    expect(() => softEmbeddingTopK(matrix(Int32Array.from([0, 1]), 1, 2), f64(1, 1, [1]), W)).toThrow(/indices has shape \[1,2\] but probs has shape \[1,1\]/);
    expect(() => softEmbeddingTopK(matrix(Int32Array.from([3]), 1, 1), f64(1, 1, [1]), W)).toThrow(/indices\[0,0\] = 3 is not a token id in \[0, V=3\)/);
  });
});
