// Position ids for decoder sequences: HEAD's dual-track positions (spec §2.6) and plain contiguous
// positions (v1, the encoder, and Stage 2 where there are no spacers). Leaves out batching (see
// batchPositions in batch.ts) and RoPE itself.
//
// Shape legend: T = sequence length. Outputs are Int32Array [T].
//
// Reference: `compute_dual_track_position_ids` (src/stage1/data.py@HEAD).

import { checkIdOption, checkIds, checkLength } from './ids.js';

/** Options of dualTrackPositions. */
export interface DualTrackOptions {
  /** Id standing in for latent slots (default -100). */
  placeholder?: number;
}

/**
 * Dual-track positions: the prefix keeps 0..f-1 (f = first placeholder, base = f-1), the i-th latent
 * (1-based) gets base+i, and every other token after the first latent gets previous position + 1, so
 * spacers continue from their own latent and `</think>`/answer continue from the last latent. The
 * latents thereby form one contiguous run, as at inference. Example (docstring of the reference):
 * `[P0,P1,<t>,L1,t1,t2,L2,t3,t4,L3,</t>,A1,A2] -> [0,1,2,3,4,5,4,5,6,5,6,7,8]`.
 * A sequence without placeholders gets contiguous positions.
 */
export function dualTrackPositions(ids: ArrayLike<number>, opts: DualTrackOptions = {}): Int32Array {
  const fn = 'dualTrackPositions';
  const T = checkIds(fn, ids);
  const placeholder = opts.placeholder ?? -100;
  checkIdOption(fn, 'placeholder', placeholder, false);
  const out = new Int32Array(T);
  let first = -1;
  let latents = 0;
  for (let p = 0; p < T; p++) {
    if (first < 0 && ids[p] !== placeholder) {
      out[p] = p; // prefix
    } else if (ids[p] === placeholder) {
      if (first < 0) first = p;
      latents += 1;
      out[p] = first - 1 + latents; // base + i
    } else {
      out[p] = (out[p - 1] as number) + 1;
    }
  }
  return out;
}

/** Default positions 0..T-1. */
export function contiguousPositions(T: number): Int32Array {
  checkLength('contiguousPositions', 'T', T);
  const out = new Int32Array(T);
  for (let p = 0; p < T; p++) out[p] = p;
  return out;
}
