import { createHash } from 'node:crypto';
import { oneLineError } from '@latent-sft/testing';
import { describe, expect, it } from 'vitest';
import {
  MULTIPLICATION_TEST_SEED,
  generateMultiplication,
  isMultiplicationDataset,
  multiplicationCot,
  multiplicationDatasetName,
  multiplicationSplit,
  multiplicationTestSet,
  parseMultiplicationDataset,
} from './multiplication.js';

/** Re-evaluates every `<<lhs=rhs>>` step with BigInt; returns the value of the last step. */
function checkSteps(cot: string): bigint {
  const steps = cot.split(' ');
  let last = -1n;
  for (const step of steps) {
    const m = /^<<(\d+(?:[*+]\d+)+)=(\d+)>>$/.exec(step);
    if (!m) throw new Error(`malformed step ${step}`);
    const lhs = m[1] as string;
    const value = lhs.includes('+') ? lhs.split('+').reduce((s, x) => s + BigInt(x), 0n) : lhs.split('*').reduce((s, x) => s * BigInt(x), 1n);
    expect(value, step).toBe(BigInt(m[2] as string));
    last = value;
  }
  return last;
}

describe('multiplication generator', () => {
  it('writes one partial product per non-zero digit, then their sum', () => {
    expect(multiplicationCot(1234n, 5608n)).toBe('<<1234*8=9872>> <<1234*600=740400>> <<1234*5000=6170000>> <<9872+740400+6170000=6920272>>');
    expect(multiplicationCot(37n, 7n)).toBe('<<37*7=259>>');
    expect(multiplicationCot(12n, 100n)).toBe('<<12*100=1200>>');
    expect(() => multiplicationCot(0n, 3n)).toThrow(/must be positive/);
  });

  it('every step is arithmetically right and the last step equals a*b, for small and 40-digit factors', () => {
    for (const digits of [
      [3, 4],
      [1, 1],
      [40, 25],
    ] as const) {
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
    expect(() => generateMultiplication({ count: 82, digits: [1, 1], seed: 1 })).toThrow(
      "field 'count': 82 distinct problems requested but only 81 exist for digits [1, 1]",
    );
    expect(() => generateMultiplication({ count: 1, digits: [0, 2], seed: 1 })).toThrow(/field 'digits\[0\]'/);
  });
});

describe('multiplication train/test split', () => {
  const pairs = (ps: readonly { problem: string }[]): string[] =>
    ps.map((p) => {
      const m = /^What is (\d+) \* (\d+)\?$/.exec(p.problem);
      if (!m) throw new Error(`bad problem ${p.problem}`);
      return `${m[1]}*${m[2]}`;
    });

  it("leaves the default ('all') output exactly as before splits existed", () => {
    // Captured from the generator before the split option was added.
    const before: Array<[readonly [number, number], number, string[]]> = [
      [[2, 2], 7, ['47 * 38', '89 * 94', '30 * 84', '71 * 29', '14 * 69', '76 * 86', '45 * 52', '63 * 26']],
      [[3, 3], 20261126, ['911 * 553', '561 * 578', '145 * 849', '422 * 842', '205 * 293', '989 * 131', '998 * 828', '896 * 487']],
      [[1, 4], 5, ['4 * 4681', '3 * 1972', '1 * 3967', '2 * 2085', '8 * 4574', '9 * 2765', '3 * 3747', '7 * 4785']],
    ];
    for (const [digits, seed, problems] of before) {
      expect(generateMultiplication({ count: 8, digits, seed }).map((p) => p.problem)).toEqual(problems.map((q) => `What is ${q}?`));
      expect(generateMultiplication({ count: 8, digits, seed, split: 'all' }).map((p) => p.problem)).toEqual(problems.map((q) => `What is ${q}?`));
    }
    const sha = (x: unknown) => createHash('sha256').update(JSON.stringify(x)).digest('hex');
    expect(sha(generateMultiplication({ count: 1000, digits: [3, 3], seed: 11 }))).toBe('9f1e17ee9782a48ccaae67764f3718e9a79dba51089eed85fc33f842e447f308');
    expect(sha(generateMultiplication({ count: 8100, digits: [2, 2], seed: 1 }))).toBe('3065a0af17a89e90d0f2ff9503132363c9774e493217be950e4e32c319b2cf07');
  });

  it('membership is a deterministic function of (a, b) holding about 10 % of the pairs, unbiased in parity', () => {
    let test = 0;
    let oddTest = 0;
    let odd = 0;
    let n = 0;
    outer: for (let a = 100n; a < 1000n; a++) {
      for (let b = 100n; b < 1000n; b++) {
        if (n === 10_000) break outer;
        n++;
        const s = multiplicationSplit(a, b);
        expect(multiplicationSplit(a, b)).toBe(s);
        const isOdd = (a * b) % 2n === 1n;
        if (isOdd) odd++;
        if (s === 'test') {
          test++;
          if (isOdd) oddTest++;
        }
      }
    }
    expect(test / n).toBeGreaterThanOrEqual(0.08);
    expect(test / n).toBeLessThanOrEqual(0.12);
    // Plain FNV-1a mod 10 would only ever pick pairs with an odd number of odd digits; the finalizer mixes.
    expect(Math.abs(oddTest / test - odd / n)).toBeLessThan(0.05);
    // Pinned values (a change of the hash would silently move problems between the splits).
    expect(multiplicationSplit(145n, 849n)).toBe('test');
    expect(multiplicationSplit(911n, 553n)).toBe('train');
  });

  it('train and test are disjoint and cover every 2x2 problem (exhaustive: 8100 problems)', () => {
    const test = generateMultiplication({ count: 818, digits: [2, 2], seed: 5, split: 'test' });
    const train = generateMultiplication({ count: 8100 - 818, digits: [2, 2], seed: 6, split: 'train' });
    const testPairs = new Set(pairs(test));
    const trainPairs = new Set(pairs(train));
    expect([testPairs.size, trainPairs.size]).toEqual([818, 7282]);
    expect([...testPairs].filter((p) => trainPairs.has(p))).toEqual([]);
    expect(new Set([...testPairs, ...trainPairs]).size).toBe(8100);
    expect(test[3]).toMatchObject({ dataset: 'multiplication', id: '3', index: 3, solution: null });
    // The counts are exact for small spaces, so one more is refused instead of looping forever.
    expect(() => generateMultiplication({ count: 819, digits: [2, 2], seed: 5, split: 'test' })).toThrow(
      "field 'count': 819 distinct problems of the test split requested but only 818 exist for digits [2, 2]",
    );
    expect(() => generateMultiplication({ count: 7283, digits: [2, 2], seed: 5, split: 'train' })).toThrow(
      "field 'count': 7283 distinct problems of the train split requested but only 7282 exist for digits [2, 2]",
    );
  });

  it('5000 train and the 1000 test problems of 3x3 are disjoint; every problem is of its split', () => {
    const train = generateMultiplication({ count: 5000, digits: [3, 3], seed: 1, split: 'train' });
    const test = multiplicationTestSet(3, 3);
    expect([train.length, test.length]).toEqual([5000, 1000]);
    const trainPairs = new Set(pairs(train));
    expect(pairs(test).filter((p) => trainPairs.has(p))).toEqual([]);
    for (const p of pairs(train)) expect(multiplicationSplit(...(p.split('*').map(BigInt) as [bigint, bigint]))).toBe('train');
    for (const p of pairs(test)) expect(multiplicationSplit(...(p.split('*').map(BigInt) as [bigint, bigint]))).toBe('test');
    expect(new Set(pairs(test)).size).toBe(1000);
  });

  it('4x4 (the harder Table-1 task): the plan training stream with its held-out tail stays off the 1000 test problems; 4 partial products + a sum', () => {
    // table1/multiplication-4x4.json: data.count 50000 + select.examples 256 drawn as one stream (seed 7).
    const train = generateMultiplication({ count: 50_256, digits: [4, 4], seed: 7, split: 'train' });
    const test = multiplicationTestSet(4, 4);
    expect(test.length).toBe(1000);
    const testPairs = new Set(pairs(test));
    expect(pairs(train).filter((p) => testPairs.has(p))).toEqual([]);
    expect(new Set(pairs(train)).size).toBe(50_256);
    // The first 50000 are the training set of a 50000-count run (the held-out tail follows them).
    expect(pairs(generateMultiplication({ count: 50_000, digits: [4, 4], seed: 7, split: 'train' }))).toEqual(pairs(train).slice(0, 50_000));
    expect(multiplicationCot(4821n, 3967n)).toBe(
      '<<4821*7=33747>> <<4821*60=289260>> <<4821*900=4338900>> <<4821*3000=14463000>> <<33747+289260+4338900+14463000=19124907>>',
    );
    for (const p of test.slice(0, 50)) expect(checkSteps(p.cot as string)).toBe(BigInt(p.answer));
  });

  it('rejects bad splits and counts with one-line errors, and bounds big spaces conservatively', () => {
    const bad = oneLineError;
    expect(bad(() => generateMultiplication({ count: 1, digits: [2, 2], seed: 1, split: 'valid' as unknown as 'test' }))).toBe(
      "field 'split': expected one of train, test, all, got valid",
    );
    expect(bad(() => generateMultiplication({ count: -1, digits: [2, 2], seed: 1, split: 'test' }))).toMatch(/^field 'count': must be an integer >= 0/);
    expect(bad(() => generateMultiplication({ count: 1.5, digits: [2, 2], seed: 1, split: 'train' }))).toMatch(/^field 'count'/);
    // 4x4: 81e6 pairs, too many to count; at most 5 % (test) / 45 % (train) may be requested.
    expect(bad(() => generateMultiplication({ count: 4_050_001, digits: [4, 4], seed: 1, split: 'test' }))).toBe(
      "field 'count': 4050001 distinct problems of the test split requested but at most 4050000 (a conservative bound) may be drawn for digits [4, 4]",
    );
    expect(bad(() => generateMultiplication({ count: 36_450_001, digits: [4, 4], seed: 1, split: 'train' }))).toMatch(
      /at most 36450000 \(a conservative bound\)/,
    );
    expect(bad(() => multiplicationTestSet(1, 1, { count: 7 }))).toBe(
      "field 'count': 7 distinct problems of the test split requested but only 6 exist for digits [1, 1]",
    );
    expect(bad(() => multiplicationTestSet(0, 3))).toMatch(/^field 'digitsA': digit count must be an integer in \[1, 1000\]/);
  });
});

describe('multiplication test sets by name', () => {
  it('parses multiplication-<A>x<B> and nothing else', () => {
    expect(parseMultiplicationDataset('multiplication-3x3')).toEqual({ digitsA: 3, digitsB: 3 });
    expect(parseMultiplicationDataset('multiplication-12x1000')).toEqual({ digitsA: 12, digitsB: 1000 });
    for (const bad of [
      'multiplication',
      'multiplication-3',
      'multiplication-0x3',
      'multiplication-3x0',
      'multiplication-03x3',
      'multiplication-1001x1',
      'multiplication-3X3',
      ' multiplication-3x3',
      'multiplication-3x3 ',
      'multiplication-3x3x3',
      'multiplication-x3',
      'multiplication--3x3',
      'multiplication-1.5x2',
      'gsm8k-test',
    ]) {
      expect(parseMultiplicationDataset(bad), bad).toBeNull();
      expect(isMultiplicationDataset(bad), bad).toBe(false);
    }
    expect(isMultiplicationDataset('multiplication-2x5')).toBe(true);
    expect(multiplicationDatasetName(2, 5)).toBe('multiplication-2x5');
  });

  it('is the first N test-split problems under the fixed seed 20261126, all of them where fewer than 1000 exist', () => {
    expect(MULTIPLICATION_TEST_SEED).toBe(20261126);
    const t = multiplicationTestSet(3, 3);
    expect(t).toEqual(generateMultiplication({ count: 1000, digits: [3, 3], seed: 20261126, split: 'test' }));
    expect(multiplicationTestSet(3, 3, { count: 10 })).toEqual(t.slice(0, 10));
    expect(multiplicationTestSet(3, 3, { count: 5, seed: 9 })).not.toEqual(t.slice(0, 5));
    expect(t[0]).toMatchObject({ dataset: 'multiplication', id: '0', index: 0, problem: 'What is 145 * 849?', answer: '123105', solution: null });
    expect(t[0]?.cot).toBe(multiplicationCot(145n, 849n));
    expect(multiplicationTestSet(2, 2).length).toBe(818);
    expect(multiplicationTestSet(1, 1).length).toBe(6);
    expect(multiplicationTestSet(5, 5, { count: 3 }).length).toBe(3);
  });
});
