import { describe, expect, it } from 'vitest';
import { allclose } from './allclose.js';

describe('allclose', () => {
  it('applies |a-e| <= atol + rtol*|e| element-wise', () => {
    expect(allclose([1, 2, 3], [1, 2, 3.00002], { atol: 0, rtol: 1e-5 }).pass).toBe(true);
    const r = allclose([1, 2, 3], [1, 2, 3.0001], { atol: 0, rtol: 1e-5 });
    expect(r.pass).toBe(false);
    expect(r.mismatches).toBe(1);
    expect(r.worst[0]?.index).toBe(2);
    expect(r.maxAbsError).toBeCloseTo(1e-4, 10);
  });

  it('compares nested arrays with typed arrays and checks shapes', () => {
    expect(
      allclose(new Float32Array([1, 2, 3, 4]), [
        [1, 2],
        [3, 4],
      ]).pass,
    ).toBe(true);
    expect(allclose([[1, 2, 3]], [[1], [2], [3]]).reason).toMatch(/shape/);
    expect(() => allclose([[1, 2], [3]], [1, 2, 3])).toThrow(/ragged/);
  });

  it('treats NaN as equal only to NaN and compares bigints', () => {
    expect(allclose([NaN, 1], [NaN, 1]).pass).toBe(true);
    expect(allclose([NaN], [0]).pass).toBe(false);
    expect(allclose(new BigInt64Array([3n, -4n]), [3, -4]).pass).toBe(true);
  });

  it('is wired into expect as toBeAllclose', () => {
    expect([0.1 + 0.2]).toBeAllclose([0.3], { atol: 1e-12 });
    expect(() => expect([1]).toBeAllclose([1.1], { atol: 1e-3, rtol: 0 })).toThrow(/1\/1 values differ/);
  });
});
