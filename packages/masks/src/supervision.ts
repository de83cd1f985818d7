// The Latent Token Supervision Mask (LTSuM, decoder side; spec §3.4) as a boolean [T,T] matrix.
// Leaves out batching and the additive form (batch.ts, additive.ts) and building the decoder
// sequence itself (spec §2.5, @latent-sft/data).
//
// Shape legend: T = sequence length, m = number of latent placeholders. Row-major Uint8Array [T*T],
// entry q*T + k, 1 = attend.
//
// Segments of a decoder sequence `P <think> Z1 c d Z2 e Z3 </think> ANS EOS` (Z = placeholder -100):
//   initial  = [0, first placeholder)                       prompt and `<think>`
//   latent i = the i-th placeholder Z_i
//   spacer i = the tokens strictly between Z_i and Z_{i+1} (or between Z_m and `</think>`)
//   final    = from the `</think>` id sequence to the end    `</think>`, answer, EOS
// Rules (all causal, k <= q):
//   1. initial rows see the initial segment;
//   2. spacer-i rows see Z_i and their own spacer only;
//   3. Z_i rows see the initial segment and Z_1..Z_i;
//   4. final rows see the initial segment, every Z and the final segment (never a spacer);
//   5. every pad-valued position is blocked as query and key (HEAD rule; v1 blocked from the first pad).
//
// Deliberate deviation (spec §11 item 11): the reference takes the FIRST match of the `</think>` ids in
// the whole sequence, which mis-detects the final segment when those pieces occur in the prompt. Here
// the search starts after the last placeholder. Both agree on every sequence where the reference's
// first match already lies after the last placeholder, which holds for all well-formed data.
//
// Reference: `build_latent_token_supervision_mask_vectorized` (src/modeling/modeling_stage1.py@HEAD).

import { checkIdOption, checkIds, findSequence, positionsOf } from './ids.js';

/** Special ids of the decoder sequence. */
export interface SupervisionMaskOptions {
  /** Id standing in for latent slots (default -100). */
  placeholder?: number;
  /** The token ids of `</think>` (several pieces for Llama-3). */
  endThinkIds: readonly number[];
  /** Pad id; every position holding it is blocked as query and as key. Omit for no padding. */
  padId?: number;
}

/** Which segment each position of a decoder sequence belongs to (spec §3.4). */
export interface SupervisionSegments {
  /** Positions of Z_1..Z_m, ascending. */
  placeholders: number[];
  /** Index of the first `</think>` piece after the last placeholder: the final segment is [finalStart, T). */
  finalStart: number;
}

const INITIAL = -1;
const FINAL = -2;

/** Locates the placeholders and the final segment; throws when either is missing. */
export function supervisionSegments(ids: ArrayLike<number>, opts: SupervisionMaskOptions): SupervisionSegments {
  const fn = 'supervisionMask';
  const T = checkIds(fn, ids);
  const placeholder = opts.placeholder ?? -100;
  checkIdOption(fn, 'placeholder', placeholder, false);
  checkIdOption(fn, 'padId', opts.padId, true);
  if (opts.endThinkIds.length === 0 || !opts.endThinkIds.every(Number.isInteger)) {
    throw new Error(`${fn}: endThinkIds must be a non-empty list of integer ids, got [${opts.endThinkIds}]`);
  }
  if (placeholder === opts.padId) throw new Error(`${fn}: placeholder and padId are both ${placeholder}`);
  const placeholders = positionsOf(ids, placeholder);
  const last = placeholders[placeholders.length - 1];
  if (last === undefined) {
    throw new Error(`${fn}: no placeholder ${placeholder} in a sequence of shape [${T}]; LTSuM needs at least one latent slot`);
  }
  const finalStart = findSequence(ids, opts.endThinkIds, last + 1);
  if (finalStart < 0) {
    throw new Error(
      `${fn}: the endThink ids [${opts.endThinkIds}] do not occur after the last placeholder ` + `(position ${last}) in a sequence of shape [${T}]`,
    );
  }
  return { placeholders, finalStart };
}

/**
 * The LTSuM of one decoder sequence (ids containing the placeholder at latent slots).
 * Pad rows are left fully blocked; `toAdditive` keeps their diagonal so softmax stays defined.
 * Throws if there is no placeholder or no `</think>` sequence after the last placeholder.
 */
export function supervisionMask(ids: ArrayLike<number>, opts: SupervisionMaskOptions): Uint8Array {
  const { placeholders, finalStart } = supervisionSegments(ids, opts);
  const T = ids.length;
  // seg[p]: INITIAL, FINAL, latent i as 2i (i = 0..m-1), spacer after latent i as 2i+1.
  const seg = new Int32Array(T);
  const first = placeholders[0] as number;
  let latent = -1;
  for (let p = 0; p < T; p++) {
    if (p < first) seg[p] = INITIAL;
    else if (p >= finalStart) seg[p] = FINAL;
    else if (latent + 1 < placeholders.length && placeholders[latent + 1] === p) seg[p] = 2 * ++latent;
    else seg[p] = 2 * latent + 1;
  }
  const isLatent = (s: number): boolean => s >= 0 && s % 2 === 0;
  const mask = new Uint8Array(T * T);
  for (let q = 0; q < T; q++) {
    if (ids[q] === opts.padId) continue;
    const sq = seg[q] as number;
    for (let k = 0; k <= q; k++) {
      if (ids[k] === opts.padId) continue;
      const sk = seg[k] as number;
      let keep: boolean;
      if (sq === INITIAL)
        keep = sk === INITIAL; // rule 1
      else if (sq === FINAL)
        keep = sk === INITIAL || sk === FINAL || isLatent(sk); // rule 4
      else if (isLatent(sq))
        keep = sk === INITIAL || (isLatent(sk) && sk <= sq); // rule 3
      else keep = sk === sq || sk === sq - 1; // rule 2: own spacer, or its latent Z_i
      if (keep) mask[q * T + k] = 1;
    }
  }
  return mask;
}
