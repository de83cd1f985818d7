// Batching of per-sequence masks and positions with right padding (spec §2.4), and the plain
// causal+padding mask used by Stage 2 and the evaluators. Leaves out the additive form (additive.ts).
//
// Shape legend: B = batch size, T = padded length, L_b = length of sequence b (<= T). Batched masks
// are row-major Uint8Array [B,1,T,T] (the head axis has size 1, as the reference's 4-D sdpa masks),
// entry ((b*T + q)*T + k), 1 = attend. Rows and columns q, k >= L_b (the right padding) are blocked.

import { checkLength } from './ids.js';

function checkLengths(fn: string, lengths: ArrayLike<number>, T: number): void {
  checkLength(fn, 'T', T);
  for (let b = 0; b < lengths.length; b++) {
    const L = lengths[b] as number;
    if (!Number.isInteger(L) || L < 0 || L > T) {
      throw new Error(`${fn}: lengths[${b}] = ${L} must be an integer in [0, T=${T}]`);
    }
  }
}

/**
 * Stacks per-sequence [L_b,L_b] masks into one right-padded [B,1,T,T] mask; padding rows and
 * columns are blocked. `masks[b]` must have length lengths[b]^2.
 */
export function batchMasks(masks: readonly Uint8Array[], lengths: ArrayLike<number>, T: number): Uint8Array {
  const fn = 'batchMasks';
  if (masks.length !== lengths.length) {
    throw new Error(`${fn}: ${masks.length} masks but ${lengths.length} lengths`);
  }
  checkLengths(fn, lengths, T);
  const out = new Uint8Array(masks.length * T * T);
  masks.forEach((mask, b) => {
    const L = lengths[b] as number;
    if (mask.length !== L * L) {
      throw new Error(`${fn}: masks[${b}] has length ${mask.length}, expected lengths[${b}]^2 = ${L}*${L}`);
    }
    for (let q = 0; q < L; q++) out.set(mask.subarray(q * L, (q + 1) * L), (b * T + q) * T);
  });
  return out;
}

/** Plain causal attention with right padding: keep(b,q,k) = k <= q < lengths[b]. Shape [B,1,T,T]. */
export function causalPaddingMask(lengths: ArrayLike<number>, T: number): Uint8Array {
  checkLengths('causalPaddingMask', lengths, T);
  const out = new Uint8Array(lengths.length * T * T);
  for (let b = 0; b < lengths.length; b++) {
    const L = lengths[b] as number;
    for (let q = 0; q < L; q++) out.fill(1, (b * T + q) * T, (b * T + q) * T + q + 1);
  }
  return out;
}

/**
 * Stacks per-sequence position ids into a right-padded Int32Array [B,T]; padding positions get 0,
 * as the reference collator pads `position_ids` (spec §2.4).
 */
export function batchPositions(positions: readonly Int32Array[], T: number): Int32Array {
  const fn = 'batchPositions';
  checkLength(fn, 'T', T);
  const out = new Int32Array(positions.length * T);
  positions.forEach((p, b) => {
    if (p.length > T) throw new Error(`${fn}: positions[${b}] has shape [${p.length}], longer than T=${T}`);
    out.set(p, b * T);
  });
  return out;
}
