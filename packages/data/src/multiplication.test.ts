import { describe, expect, it } from 'vitest';
import { generateMultiplication, multiplicationCot } from './multiplication.js';

/** Re-evaluates every `<<lhs=rhs>>` step with BigInt; returns the value of the last step. */
function checkSteps(cot: string): bigint {
  const steps = cot.split(' ');
  let last = -1n;
  for (const step of steps) {
    const m = /^<<(\d+(?:[*+]\d+)+)=(\d+)>>$/.exec(step);
    if (!m) throw new Error(`malformed step ${step}`);
    const lhs = m[1] as string;
    const value = lhs.includes('+')
      ? lhs.split('+').reduce((s, x) => s + BigInt(x), 0n)
      : lhs.split('*').reduce((s, x) => s * BigInt(x), 1n);
    expect(value, step).toBe(BigInt(m[2] as string));
    last = value;
  }
  return last;
}

describe('multiplication generator', () => {
  it('writes one partial product per non-zero digit, then their sum', () => {
    expect(multiplicationCot(1234n, 5608n)).toBe(
      '<<1234*8=9872>> <<1234*600=740400>> <<1234*5000=6170000>> <<9872+740400+6170000=6920272>>');
    expect(multiplicationCot(37n, 7n)).toBe('<<37*7=259>>');
    expect(multiplicationCot(12n, 100n)).toBe('<<12*100=1200>>');
    expect(() => multiplicationCot(0n, 3n)).toThrow(/must be positive/);
  });

  it('every step is arithmetically right and the last step equals a*b, for small and 40-digit factors', () => {
    for (const digits of [[3, 4], [1, 1], [40, 25]] as const) {
      const ps = generateMultiplication({ count: 50, digits, seed: 11 });
      expect(ps.length).toBe(50);
      for (const p of ps) {
        const m = /^What is (\d+) \* (\d+)\?$/.exec(p.problem);
        expect(m).not.toBeNull();
        const [a, b] = [m?.[1] as string, m?.[2] as string];
        expect([a.length, b.length]).toEqual(digits);
        expect(a[0]).not.toBe('0');
        const product = BigInt(a) * BigInt(b);
        expect(p.answer).toBe(product.toString());
        expect(checkSteps(p.cot as string)).toBe(product);
      }
      expect(new Set(ps.map((p) => p.problem)).size).toBe(50);
    }
  });

  it('is deterministic per seed, distinct, and labelled as its own dataset', () => {
    const a = generateMultiplication({ count: 20, digits: [4, 4], seed: 3 });
    expect(generateMultiplication({ count: 20, digits: [4, 4], seed: 3 })).toEqual(a);
    expect(generateMultiplication({ count: 20, digits: [4, 4], seed: 4 })).not.toEqual(a);
    expect(a[5]).toMatchObject({ dataset: 'multiplication', id: '5', index: 5, solution: null });
    // All 81 one-digit pairs exist, so 81 distinct problems can be drawn but not 82.
    expect(new Set(generateMultiplication({ count: 81, digits: [1, 1], seed: 1 }).map((p) => p.problem)).size).toBe(81);
    expect(() => generateMultiplication({ count: 82, digits: [1, 1], seed: 1 }))
      .toThrow("field 'count': 82 distinct problems requested but only 81 exist for digits [1, 1]");
    expect(() => generateMultiplication({ count: 1, digits: [0, 2], seed: 1 })).toThrow(/field 'digits\[0\]'/);
  });
});
