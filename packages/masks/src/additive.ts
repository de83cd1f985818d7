// Boolean masks to additive attention biases (0 = keep, a large negative value = block), as the
// reference passes them to sdpa (spec §3.3). Leaves out the attention itself.
//
// Shape legend: T = sequence length; the input is any stack of T×T row-major matrices ([T,T] or
// [B,1,T,T]), and the output has the same shape as a Float32Array.
//
// Convention for fully blocked rows (pad rows of LTIM/LTSuM and right padding): such a row would be
// all-`min` (or all -Infinity), and scores + min can overflow to -Infinity in fp32, so softmax over the
// row would give 0/0 = NaN, which then poisons gradients even though the loss ignores the position. We
// keep the DIAGONAL of every row that keeps nothing: the padded query attends to itself only, softmax
// is one-hot and finite, and since pad positions carry label -100 they never reach the loss or any
// non-pad row (their columns stay blocked for every other query). HF's sdpa path does the same job by
// "unmasking" fully masked rows.

import { checkSquareStack } from './ids.js';

/** Most negative finite float32, -(2 - 2^-23)·2^127: `torch.finfo(torch.float32).min`. */
export const FP32_MIN = -3.4028234663852886e38;
/** Most negative finite bfloat16, -(2 - 2^-7)·2^127: `torch.finfo(torch.bfloat16).min` (exact in fp32). */
export const BF16_MIN = -3.3895313892515355e38;

/**
 * Additive form of a stack of boolean T×T masks: 0 where mask = 1, `dtypeMin` where mask = 0, except
 * that rows keeping nothing get 0 on their diagonal (see the file header). `dtypeMin` must be negative
 * (-Infinity allowed: every row still has a finite entry).
 */
export function toAdditive(mask: Uint8Array, T: number, dtypeMin: number = FP32_MIN): Float32Array {
  const fn = 'toAdditive';
  const n = checkSquareStack(fn, mask, T);
  if (!(dtypeMin < 0)) throw new Error(`${fn}: dtypeMin must be negative, got ${dtypeMin}`);
  const out = new Float32Array(mask.length).fill(dtypeMin);
  for (let r = 0; r < n * T; r++) {
    const row = r * T;
    let kept = 0;
    for (let k = 0; k < T; k++) {
      if (mask[row + k] !== 0) {
        out[row + k] = 0;
        kept += 1;
      }
    }
    if (kept === 0) out[row + (r % T)] = 0;
  }
  return out;
}
