// The Latent Token Induction Mask (LTIM, encoder side; spec §3.3) as a boolean [T,T] matrix.
// Leaves out batching and the additive form (see batch.ts and additive.ts) and the chunking that
// inserts the compress tokens (spec §2.5, @latent-sft/data).
//
// Shape legend: T = sequence length. Masks are row-major Uint8Array [T*T], entry q*T + k, 1 = query
// position q may attend to key position k, 0 = blocked.
//
// Reference: `build_latent_token_induction_mask` (src/modeling/modeling_stage1.py@HEAD).

import { checkIdOption, checkIds } from './ids.js';

/** Special ids of the encoder sequence. */
export interface InductionMaskOptions {
  /** Id of `<|compress_token|>` (the L_i slots). */
  compressId: number;
  /** Pad id; every position holding it is blocked as query and as key (HEAD rule). Omit for no padding. */
  padId?: number;
}

/**
 * The LTIM of one encoder sequence: keep(q,k) = k <= q AND NOT (ids[k] == compress AND q > k) AND
 * neither ids[q] nor ids[k] is pad. No position sees an earlier compress token; each L_i sees itself.
 *
 * Pad rows are left fully blocked here, exactly as the reference's boolean mask; `toAdditive` keeps
 * the diagonal of such rows so that softmax stays defined (their outputs are never supervised).
 */
export function inductionMask(ids: ArrayLike<number>, opts: InductionMaskOptions): Uint8Array {
  const fn = 'inductionMask';
  const T = checkIds(fn, ids);
  checkIdOption(fn, 'compressId', opts.compressId, false);
  checkIdOption(fn, 'padId', opts.padId, true);
  if (opts.padId === opts.compressId) throw new Error(`${fn}: compressId and padId are both ${opts.padId}`);
  const mask = new Uint8Array(T * T);
  for (let q = 0; q < T; q++) {
    if (ids[q] === opts.padId) continue;
    for (let k = 0; k <= q; k++) {
      const id = ids[k];
      if (id === opts.padId) continue;
      if (id === opts.compressId && k < q) continue;
      mask[q * T + k] = 1;
    }
  }
  return mask;
}
