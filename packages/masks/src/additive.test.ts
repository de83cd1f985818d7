import { describe, expect, it } from 'vitest';
import { BF16_MIN, FP32_MIN, toAdditive } from './additive.js';

/** Softmax of scores + bias over one row, in float32 arithmetic as an attention kernel would do. */
function softmaxRowF32(scores: number[], bias: Float32Array): number[] {
  const z = scores.map((s, i) => Math.fround(s + (bias[i] as number)));
  const max = Math.max(...z);
  const e = z.map((v) => Math.fround(Math.exp(Math.fround(v - max))));
  const sum = e.reduce((p, q) => p + q, 0);
  return e.map((v) => v / sum);
}

describe('toAdditive', () => {
  it('maps keep to 0 and block to the dtype minimum', () => {
    // [[1,0],[1,1]] -> [[0,min],[0,0]]
    expect(Array.from(toAdditive(Uint8Array.from([1, 0, 1, 1]), 2))).toEqual([0, FP32_MIN, 0, 0]);
    expect(Array.from(toAdditive(Uint8Array.from([1, 0, 1, 1]), 2, BF16_MIN))).toEqual([0, BF16_MIN, 0, 0]);
  });

  it('keeps the diagonal of fully blocked rows in every matrix of a stack', () => {
    // Two 2x2 matrices: [[1,0],[0,0]] and [[0,0],[0,0]] -> the empty rows get their diagonal.
    const out = toAdditive(Uint8Array.from([1, 0, 0, 0, 0, 0, 0, 0]), 2, -Infinity);
    expect(Array.from(out)).toEqual([0, -Infinity, -Infinity, 0, 0, -Infinity, -Infinity, 0]);
  });

  it('gives a finite softmax on pad rows where the plain additive mask overflows to NaN', () => {
    // Row [0,0,0] (pad). Without the diagonal rule every entry is FP32_MIN, and a score of -1e33 pushes
    // FP32_MIN - 1e33 past the fp32 range to -Infinity; with all entries -Infinity softmax is NaN.
    const scores = [-1e33, -2e33, -3e33];
    const naive = softmaxRowF32(scores, new Float32Array(3).fill(FP32_MIN));
    expect(naive.every(Number.isNaN)).toBe(true);
    const bias = toAdditive(new Uint8Array(9), 3).subarray(3, 6); // row 1 -> diagonal at column 1
    expect(softmaxRowF32(scores, bias)).toEqual([0, 1, 0]);
  });

  it('uses the exact torch finfo minima', () => {
    expect(FP32_MIN).toBe(-(2 - 2 ** -23) * 2 ** 127);
    expect(BF16_MIN).toBe(-(2 - 2 ** -7) * 2 ** 127);
    expect(Math.fround(BF16_MIN)).toBe(BF16_MIN);
  });

  it('rejects a non-square stack and a non-negative minimum', () => {
    expect(() => toAdditive(new Uint8Array(5), 2)).toThrow(/length 5, which is not a multiple of T\*T = 2\*2/);
    expect(() => toAdditive(new Uint8Array(4), 2, 0)).toThrow(/dtypeMin must be negative/);
  });
});
