// Procedural multi-digit multiplication problems with a checkable equation CoT in GSM8k-Aug style.
// For a * b, one partial product per non-zero digit d of b at place k (least significant first),
// written against the place value d*10^k, then one sum step:
//   1234 * 5608 -> "<<1234*8=9872>> <<1234*600=740400>> <<1234*5000=6170000>> <<9872+740400+6170000=6920272>>"
// Every step is `<<lhs=rhs>>` with lhs made of integers joined by one operator (* or +), so each can
// be re-evaluated exactly (BigInt). With a single partial product the sum step is left out.
// Numbers are BigInt throughout, so any digit count is exact.
//
// Train/test split: membership is a pure function of the pair (multiplicationSplit), so a held-out test
// problem is never drawn for training, whatever the seed, count or order of generation. Named eval
// datasets `multiplication-<A>x<B>` are the first N test-split problems under a fixed seed
// (multiplicationTestSet).
import { Rng, inputError } from '@latent-sft/core';
import type { Problem } from './datasets.js';

export interface MultiplicationOptions {
  /** Number of distinct problems. */
  count: number;
  /** Digits of the two factors [a, b]; each factor has a non-zero leading digit. */
  digits: readonly [number, number];
  seed: number;
  /**
   * Which problems may be drawn: 'train' or 'test' (see multiplicationSplit), or 'all' (default; the
   * sequence of problems is then exactly that of the generator before splits existed).
   */
  split?: MultiplicationSplitOption;
}

/** The two halves of the multiplication problem space. */
export type MultiplicationSplit = 'train' | 'test';
/** A split, or every problem. */
export type MultiplicationSplitOption = MultiplicationSplit | 'all';

const MAX_DIGITS = 1000;
const SPLITS: readonly MultiplicationSplitOption[] = ['train', 'test', 'all'];
/** One in TEST_MODULUS pairs (by hash) is a test problem. */
const TEST_MODULUS = 10;
/** Spaces up to this many pairs have their split sizes counted exactly (a pass over every pair). */
const EXACT_COUNT_LIMIT = 2_000_000n;

/** FNV-1a 32-bit over the bytes of an ASCII string (the decimal digits and '*' here, so UTF-8 = char codes). */
function fnv1a32(s: string, h = 0x811c9dc5): number {
  for (let i = 0; i < s.length; i++) h = Math.imul(h ^ s.charCodeAt(i), 0x01000193) >>> 0;
  return h;
}

/**
 * MurmurHash3's 32-bit finalizer. Plain FNV-1a's low bit is the parity of the number of odd bytes, so
 * `h % 10` alone would put only pairs with an odd count of odd digits into the test split (for 1-digit
 * factors: only even products); the finalizer mixes every bit of h into the low ones.
 */
function fmix32(h: number): number {
  h ^= h >>> 16;
  h = Math.imul(h, 0x85ebca6b) >>> 0;
  h ^= h >>> 13;
  h = Math.imul(h, 0xc2b2ae35) >>> 0;
  h ^= h >>> 16;
  return h >>> 0;
}

/**
 * The split of the problem a * b: 'test' iff fmix32(FNV-1a-32(UTF-8 of `${a}*${b}`)) % 10 === 0
 * (about 10 % of pairs), else 'train'. Depends on (a, b) only; a * b and b * a may differ.
 */
export function multiplicationSplit(a: bigint, b: bigint): MultiplicationSplit {
  return fmix32(fnv1a32(`${a}*${b}`)) % TEST_MODULUS === 0 ? 'test' : 'train';
}

const exactTestCounts = new Map<string, bigint>();

/** Number of test-split pairs with da- and db-digit factors, by a pass over every pair (small spaces only). */
function exactTestCount(da: number, db: number): bigint {
  const key = `${da}x${db}`;
  let n = exactTestCounts.get(key);
  if (n === undefined) {
    let c = 0;
    const [aLo, aHi, bLo, bHi] = [10 ** (da - 1), 10 ** da, 10 ** (db - 1), 10 ** db];
    for (let a = aLo; a < aHi; a++) {
      const prefix = fnv1a32(`${a}*`);
      for (let b = bLo; b < bHi; b++) if (fmix32(fnv1a32(String(b), prefix)) % TEST_MODULUS === 0) c++;
    }
    n = BigInt(c);
    exactTestCounts.set(key, n);
  }
  return n;
}

/**
 * How many distinct problems of `split` exist for the digit counts: exact for 'all' and for spaces of at
 * most 2e6 pairs; for larger spaces a conservative lower bound (half the expected share: 5 % for test,
 * 45 % for train; the hash spreads millions of pairs far more evenly than that).
 */
function splitCapacity(da: number, db: number, split: MultiplicationSplitOption): { count: bigint; exact: boolean } {
  const all = 81n * 10n ** BigInt(da - 1 + db - 1);
  if (split === 'all') return { count: all, exact: true };
  if (all <= EXACT_COUNT_LIMIT) {
    const test = exactTestCount(da, db);
    return { count: split === 'test' ? test : all - test, exact: true };
  }
  return { count: split === 'test' ? all / 20n : (all * 9n) / 20n, exact: false };
}

/** The partial-product CoT of a * b (a, b > 0). */
export function multiplicationCot(a: bigint, b: bigint): string {
  if (a <= 0n || b <= 0n) throw inputError({ field: 'factors' }, `factors must be positive, got ${a} and ${b}`);
  const steps: string[] = [];
  const partials: bigint[] = [];
  const bDigits = b.toString();
  for (let k = 0; k < bDigits.length; k++) {
    const d = BigInt(bDigits[bDigits.length - 1 - k] as string);
    if (d === 0n) continue;
    const place = d * 10n ** BigInt(k);
    const partial = a * place;
    partials.push(partial);
    steps.push(`<<${a}*${place}=${partial}>>`);
  }
  if (partials.length > 1) steps.push(`<<${partials.join('+')}=${partials.reduce((s, x) => s + x, 0n)}>>`);
  return steps.join(' ');
}

function randomFactor(rng: Rng, digits: number): bigint {
  let s = String(1 + rng.int(9));
  for (let i = 1; i < digits; i++) s += String(rng.int(10));
  return BigInt(s);
}

function checkDigits(d: unknown, name: string): number {
  if (!Number.isSafeInteger(d) || (d as number) < 1 || (d as number) > MAX_DIGITS) {
    throw inputError({ field: name }, `digit count must be an integer in [1, ${MAX_DIGITS}], got ${String(d)}`);
  }
  return d as number;
}

/**
 * `count` distinct problems "What is a * b?" with a of digits[0] and b of digits[1] digits, drawn
 * uniformly (rejecting repeats and, with a split, pairs of the other split) from Rng.fromSeed(seed), so
 * the list depends only on the options, and the first n problems are the same for every count >= n.
 * Problems have dataset 'multiplication', id = String(index), cot = multiplicationCot(a, b),
 * solution null, answer = the decimal product.
 */
export function generateMultiplication(opts: MultiplicationOptions): Problem[] {
  const { count, seed } = opts;
  if (!Array.isArray(opts.digits) || opts.digits.length !== 2) throw inputError({ field: 'digits' }, 'expected [a, b]');
  const da = checkDigits(opts.digits[0], 'digits[0]');
  const db = checkDigits(opts.digits[1], 'digits[1]');
  if (!Number.isSafeInteger(count) || count < 0) throw inputError({ field: 'count' }, `must be an integer >= 0, got ${count}`);
  const split = opts.split ?? 'all';
  if (!SPLITS.includes(split)) throw inputError({ field: 'split' }, `expected one of ${SPLITS.join(', ')}, got ${String(split)}`);
  const capacity = splitCapacity(da, db, split);
  if (BigInt(count) > capacity.count) {
    const what = split === 'all' ? '' : ` of the ${split} split`;
    throw inputError(
      { field: 'count' },
      capacity.exact
        ? `${count} distinct problems${what} requested but only ${capacity.count} exist for digits [${da}, ${db}]`
        : `${count} distinct problems${what} requested but at most ${capacity.count} (a conservative bound) may be drawn for digits [${da}, ${db}]`,
    );
  }
  const rng = Rng.fromSeed(seed);
  const seen = new Set<string>();
  const out: Problem[] = [];
  while (out.length < count) {
    const a = randomFactor(rng, da);
    const b = randomFactor(rng, db);
    const key = `${a}*${b}`;
    if (seen.has(key)) continue;
    seen.add(key);
    if (split !== 'all' && multiplicationSplit(a, b) !== split) continue;
    const index = out.length;
    out.push({
      dataset: 'multiplication',
      id: String(index),
      index,
      problem: `What is ${a} * ${b}?`,
      cot: multiplicationCot(a, b),
      solution: null,
      answer: String(a * b),
    });
  }
  return out;
}

/** Name of a generated multiplication eval dataset: `multiplication-<A>x<B>` (A-digit times B-digit factors). */
export type MultiplicationDatasetName = `multiplication-${number}x${number}`;

/** The fixed seed of the multiplication test sets (multiplicationTestSet). */
export const MULTIPLICATION_TEST_SEED = 20261126;
/** Default number of problems of a multiplication test set. */
export const MULTIPLICATION_TEST_COUNT = 1000;

const DATASET_NAME = /^multiplication-([1-9]\d{0,3})x([1-9]\d{0,3})$/;

/**
 * The digit counts of `multiplication-<A>x<B>` (A, B integers in [1, 1000], no leading zeros, no
 * spaces), or null for any other text (including `multiplication`, `multiplication-0x3`, `multiplication-3`).
 */
export function parseMultiplicationDataset(name: string): { digitsA: number; digitsB: number } | null {
  const m = DATASET_NAME.exec(name);
  if (!m) return null;
  const digitsA = Number(m[1]);
  const digitsB = Number(m[2]);
  return digitsA <= MAX_DIGITS && digitsB <= MAX_DIGITS ? { digitsA, digitsB } : null;
}

/** Type guard over parseMultiplicationDataset. */
export function isMultiplicationDataset(name: string): name is MultiplicationDatasetName {
  return parseMultiplicationDataset(name) !== null;
}

/** The dataset name `multiplication-<A>x<B>` of the digit counts. */
export function multiplicationDatasetName(digitsA: number, digitsB: number): MultiplicationDatasetName {
  checkDigits(digitsA, 'digitsA');
  checkDigits(digitsB, 'digitsB');
  return `multiplication-${digitsA}x${digitsB}`;
}

/** Options of multiplicationTestSet. */
export interface MultiplicationTestSetOptions {
  /**
   * Number of problems (default 1000, or every test-split problem where fewer exist, as for 1x1, 1x2,
   * 2x1 and 2x2 factors). An explicit count above what exists is an error.
   */
  count?: number;
  /** Default MULTIPLICATION_TEST_SEED (20261126). */
  seed?: number;
}

/**
 * The held-out test set of `multiplication-<A>x<B>`: the first `count` problems of the 'test' split
 * drawn by generateMultiplication with the fixed seed 20261126 (dataset 'multiplication', ids
 * String(index), the partial-product CoT as reference). A smaller count gives a prefix of a larger one.
 * No problem of it is ever produced by generateMultiplication with split 'train'.
 */
export function multiplicationTestSet(digitsA: number, digitsB: number, opts: MultiplicationTestSetOptions = {}): Problem[] {
  const da = checkDigits(digitsA, 'digitsA');
  const db = checkDigits(digitsB, 'digitsB');
  let count = opts.count;
  if (count === undefined) {
    const capacity = splitCapacity(da, db, 'test').count;
    count = capacity < BigInt(MULTIPLICATION_TEST_COUNT) ? Number(capacity) : MULTIPLICATION_TEST_COUNT;
  }
  return generateMultiplication({ count, digits: [da, db], seed: opts.seed ?? MULTIPLICATION_TEST_SEED, split: 'test' });
}
