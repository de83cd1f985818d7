import { describe, expect, it } from 'vitest';
import { matrix } from './matrix.js';
import { logSoftmaxRows, softmaxRows } from './softmax.js';

const f64 = (rows: number, cols: number, values: number[]) => matrix(Float64Array.from(values), rows, cols);

describe('matrix', () => {
  it('wraps data of the right length and names the shape otherwise', () => {
    const m = matrix(new Float32Array(6), 2, 3);
    expect([m.rows, m.cols, m.data.length]).toEqual([2, 3, 6]);
    expect(() => matrix(new Float32Array(5), 2, 3)).toThrow(/length 5 does not fit shape \[2,3\]/);
    expect(() => matrix(new Float32Array(0), -1, 0)).toThrow(/shape \[-1,0\]/);
  });
});

describe('softmaxRows / logSoftmaxRows', () => {
  it('computes log-softmax stably', () => {
    // (0, ln 2, ln 5) -> log((1, 2, 5)/8); adding 1e4 to every logit changes nothing.
    const expected = [Math.log(1 / 8), Math.log(2 / 8), Math.log(5 / 8)];
    expect(logSoftmaxRows(f64(1, 3, [0, Math.log(2), Math.log(5)])).data).toBeAllclose(expected, { atol: 1e-15 });
    expect(logSoftmaxRows(f64(1, 3, [1e4, 1e4 + Math.log(2), 1e4 + Math.log(5)])).data).toBeAllclose(expected, { atol: 1e-12 });
  });

  it('accepts float32 input and -Infinity entries, and rejects NaN, +Infinity and all -Infinity rows', () => {
    // float32 logits (0, 0, -inf) -> (0.5, 0.5, 0).
    expect(Array.from(softmaxRows(matrix(Float32Array.from([0, 0, -Infinity]), 1, 3)).data)).toEqual([0.5, 0.5, 0]);
    expect(() => softmaxRows(f64(2, 2, [0, 0, 1, NaN]))).toThrow(/logits\[1,1\] = NaN \(shape \[2,2\]\)/);
    expect(() => softmaxRows(f64(1, 2, [0, Infinity]))).toThrow(/logits\[0,1\] = Infinity/);
    expect(() => logSoftmaxRows(f64(1, 2, [-Infinity, -Infinity]))).toThrow(/row 0 has no finite logit/);
  });
});
