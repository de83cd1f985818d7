// Host-side top-p against a direct transcription of HF's TopPLogitsWarper (ascending sort, cumsum,
// drop cumulative ≤ 1 − top_p, keep the top token) and inverse-CDF sampling.
import { Rng, UserError } from '@latent-sft/core';
import { describe, expect, it } from 'vitest';
import { checkSampling, nucleusSize, sampleNucleus, sortRow } from './sampling.js';

/** HF: the kept token ids of softmax(logits / T) after top-p, in descending-probability order. */
function hfTopP(logits: number[], T: number, topP: number): number[] {
  const z = logits.map((l) => l / T);
  const mx = Math.max(...z);
  const e = z.map((v) => Math.exp(v - mx));
  const sum = e.reduce((a, b) => a + b, 0);
  const p = e.map((v) => v / sum);
  const asc = p.map((_, i) => i).sort((a, b) => p[a]! - p[b]! || b - a);
  let cum = 0;
  const kept: number[] = [];
  asc.forEach((i, j) => {
    cum += p[i]!;
    if (!(cum <= 1 - topP) || j === asc.length - 1) kept.push(i);
  });
  return kept.reverse();
}

function lseOf(logits: ArrayLike<number>, invT: number): number {
  const xs = Array.from(logits, (l) => l * invT);
  const mx = Math.max(...xs);
  return mx + Math.log(xs.reduce((s, x) => s + Math.exp(x - mx), 0));
}

describe('top-p nucleus', () => {
  it('keeps the same tokens as HF TopPLogitsWarper', () => {
    const rng = Rng.fromSeed(5);
    let checked = 0;
    for (let trial = 0; trial < 200; trial++) {
      const V = 5 + rng.int(60);
      const logits = Array.from({ length: V }, () => rng.normal() * (0.5 + 3 * rng.uniform()));
      const T = [0.6, 1, 1.7][trial % 3]!;
      const topP = [0.5, 0.9, 0.95, 1][trial % 4]!;
      const want = hfTopP(logits, T, topP);
      const { ids, logits: sorted } = sortRow(logits);
      const n = nucleusSize(sorted, 0, V, lseOf(logits, 1 / T), 1 / T, topP, true);
      // Cumulative sums within 1e-9 of the boundary are float-order dependent: skip those draws.
      const p = want.map((i) => Math.exp(logits[i]! / T - lseOf(logits, 1 / T)));
      const before = p.slice(0, -1).reduce((a, b) => a + b, 0);
      if (Math.abs(before - topP) < 1e-9) continue;
      expect(Array.from(ids.subarray(0, n)), `trial ${trial}`).toEqual(want);
      checked++;
    }
    expect(checked).toBeGreaterThan(190);
  });

  it('asks for more candidates only when the given ones hold less than top_p', () => {
    const logits = [3, 2, 1, 0, -1, -2];
    const lse = lseOf(logits, 1);
    const p = logits.map((l) => Math.exp(l - lse)); // 0.636, 0.234, 0.086, …
    expect(nucleusSize(logits, 0, 2, lse, 1, 0.8, false)).toBe(2); // 0.636 < 0.8 ≤ 0.870
    expect(nucleusSize(logits, 0, 2, lse, 1, 0.9, false)).toBe(-1);
    expect(nucleusSize(logits, 0, 3, lse, 1, 0.9, false)).toBe(3);
    expect(nucleusSize(logits, 0, 6, lse, 1, 1, true)).toBe(6);
    expect(nucleusSize(logits, 0, 6, lse, 1, 1e-12, true)).toBe(1);
    expect(p[0]! + p[1]!).toBeGreaterThan(0.8);
  });

  it('samples by inverse CDF over the renormalised nucleus', () => {
    const logits = [2, 1, 0.5];
    const lse = lseOf([2, 1, 0.5, -3], 1);
    const e = logits.map((l) => Math.exp(l - lse));
    const total = e[0]! + e[1]! + e[2]!;
    const counts = [0, 0, 0];
    const N = 10000;
    for (let i = 0; i < N; i++) counts[sampleNucleus(logits, 0, 3, lse, 1, (i + 0.5) / N)]!++;
    expect(counts.map((c) => c / N)).toBeAllclose(
      e.map((v) => v / total),
      { atol: 1.5 / N, rtol: 0 },
    );
    expect(sampleNucleus([9, 5, 1, 7], 1, 1, lseOf([9, 5, 1, 7], 1), 1, 0.999)).toBe(0);
  });

  it('sorts a full row by descending logit with ties to the lower id', () => {
    const { ids, logits } = sortRow(new Float32Array([0.5, 2, 0.5, -1, 2]));
    expect(Array.from(ids)).toEqual([1, 4, 0, 2, 3]);
    expect(Array.from(logits)).toEqual([2, 2, 0.5, 0.5, -1]);
  });

  it('validates options in one line', () => {
    expect(() => checkSampling({ kind: 'top-p', temperature: Number.NaN, topP: 0.9, seed: 1 })).toThrow(UserError);
    expect(() => checkSampling({ kind: 'top-p', temperature: 1, topP: 1.5, seed: 1 })).toThrow(/topP/);
    expect(() => checkSampling({ kind: 'top-p', temperature: 1, topP: 1, seed: 0.5 })).toThrow(/seed/);
    expect(() => checkSampling({ kind: 'beam' } as never)).toThrow(/'greedy' or 'top-p'/);
    expect(() => checkSampling({ kind: 'greedy' })).not.toThrow();
  });
});
