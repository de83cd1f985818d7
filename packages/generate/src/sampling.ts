// Token choice on the host from the few numbers the step graph brings down per row: the top-K
// logits (descending; ties → lower id) and lse = logsumexp(logits / T) over the whole vocabulary.
//
// Top-p follows HF's TopPLogitsWarper after TemperatureLogitsWarper: with p_j = exp(l_j / T − lse)
// in descending order, token j is kept iff the mass strictly before it is < top_p (HF sorts
// ascending and drops tokens whose cumulative mass is ≤ 1 − top_p, always keeping the top one).
// The nucleus is exact: when the K candidates hold less than top_p of the mass (and K < V), the
// caller falls back to the full row (`sortRow`). One uniform draw per token from the row's own Rng.
import { inputError } from '@latent-sft/core';

/** How answer tokens are chosen. Latent steps never sample (spec §5.4: top-k softmax, T = 1). */
export type Sampling = { kind: 'greedy' } | { kind: 'top-p'; temperature: number; topP: number; seed: number };

/** Throws a one-line error for invalid sampling options. */
export function checkSampling(s: Sampling): void {
  if (s.kind === 'greedy') return;
  if (s.kind !== 'top-p') throw inputError({ field: 'sampling.kind' }, `must be 'greedy' or 'top-p', got '${String((s as { kind: unknown }).kind)}'`);
  if (!(s.temperature > 0 && s.temperature < Infinity))
    throw inputError({ field: 'sampling.temperature' }, `must be a finite number > 0 (use kind 'greedy' for argmax), got ${s.temperature}`);
  if (!(s.topP > 0 && s.topP <= 1)) throw inputError({ field: 'sampling.topP' }, `must be in (0, 1], got ${s.topP}`);
  if (!Number.isSafeInteger(s.seed)) throw inputError({ field: 'sampling.seed' }, `must be a safe integer, got ${s.seed}`);
}

/**
 * How many of the `n` candidates (logits[off..off+n), descending) form the top-p nucleus, given
 * lse = logsumexp(logits / T) and invT = 1 / T; -1 when they hold less than topP of the mass and
 * are not the whole vocabulary (`complete` false), i.e. more candidates are needed.
 */
export function nucleusSize(logits: ArrayLike<number>, off: number, n: number, lse: number, invT: number, topP: number, complete: boolean): number {
  let before = 0;
  for (let j = 0; j < n; j++) {
    if (before >= topP) return j;
    before += Math.exp((logits[off + j] as number) * invT - lse);
  }
  return complete || before >= topP ? n : -1;
}

/** Index in [0, n) drawn from the renormalised nucleus logits[off..off+n) with uniform u ∈ [0, 1). */
export function sampleNucleus(logits: ArrayLike<number>, off: number, n: number, lse: number, invT: number, u: number): number {
  let total = 0;
  for (let j = 0; j < n; j++) total += Math.exp((logits[off + j] as number) * invT - lse);
  const r = u * total;
  let cum = 0;
  for (let j = 0; j < n; j++) {
    cum += Math.exp((logits[off + j] as number) * invT - lse);
    if (r < cum) return j;
  }
  return n - 1;
}

/** A full logits row as candidates: ids by descending logit (ties → lower id), and their logits. */
export function sortRow(row: ArrayLike<number>): { ids: Int32Array; logits: Float64Array } {
  const ids = Int32Array.from({ length: row.length }, (_, i) => i);
  ids.sort((a, b) => (row[b] as number) - (row[a] as number) || a - b);
  return { ids, logits: Float64Array.from(ids, (i) => row[i] as number) };
}
