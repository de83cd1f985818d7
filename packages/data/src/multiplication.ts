// Procedural multi-digit multiplication problems with a checkable equation CoT in GSM8k-Aug style.
// For a * b, one partial product per non-zero digit d of b at place k (least significant first),
// written against the place value d*10^k, then one sum step:
//   1234 * 5608 -> "<<1234*8=9872>> <<1234*600=740400>> <<1234*5000=6170000>> <<9872+740400+6170000=6920272>>"
// Every step is `<<lhs=rhs>>` with lhs made of integers joined by one operator (* or +), so each can
// be re-evaluated exactly (BigInt). With a single partial product the sum step is left out.
// Numbers are BigInt throughout, so any digit count is exact.
import { Rng, inputError } from '@latent-sft/core';
import type { Problem } from './datasets.js';

export interface MultiplicationOptions {
  /** Number of distinct problems. */
  count: number;
  /** Digits of the two factors [a, b]; each factor has a non-zero leading digit. */
  digits: readonly [number, number];
  seed: number;
}

const MAX_DIGITS = 1000;

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
 * uniformly (rejecting repeats) from Rng.fromSeed(seed), so the list depends only on the options.
 * Problems have dataset 'multiplication', id = String(index), cot = multiplicationCot(a, b),
 * solution null, answer = the decimal product.
 */
export function generateMultiplication(opts: MultiplicationOptions): Problem[] {
  const { count, seed } = opts;
  if (!Array.isArray(opts.digits) || opts.digits.length !== 2) throw inputError({ field: 'digits' }, 'expected [a, b]');
  const da = checkDigits(opts.digits[0], 'digits[0]');
  const db = checkDigits(opts.digits[1], 'digits[1]');
  if (!Number.isSafeInteger(count) || count < 0) throw inputError({ field: 'count' }, `must be an integer >= 0, got ${count}`);
  const capacity = 81n * 10n ** BigInt(da - 1 + db - 1);
  if (BigInt(count) > capacity) {
    throw inputError({ field: 'count' }, `${count} distinct problems requested but only ${capacity} exist for digits [${da}, ${db}]`);
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
    const index = out.length;
    out.push({
      dataset: 'multiplication', id: String(index), index, problem: `What is ${a} * ${b}?`,
      cot: multiplicationCot(a, b), solution: null, answer: String(a * b),
    });
  }
  return out;
}
