// Argument checks shared by the mask builders: token-id sequences, square masks and lengths.
// Internal to @latent-sft/masks (not re-exported). Leaves out any tokenizer knowledge: ids are plain
// integers, and the special ids (compress, pad, placeholder, `</think>` pieces) are passed in.

/** Throws unless `ids` is a sequence of integers; returns its length T. */
export function checkIds(fn: string, ids: ArrayLike<number>): number {
  for (let i = 0; i < ids.length; i++) {
    const v = ids[i] as number;
    if (!Number.isInteger(v)) throw new Error(`${fn}: ids[${i}] = ${v} is not an integer (ids has shape [${ids.length}])`);
  }
  return ids.length;
}

/** Throws unless `value` is an integer (or undefined when `optional`). */
export function checkIdOption(fn: string, name: string, value: number | undefined, optional: boolean): void {
  if (value === undefined && optional) return;
  if (!Number.isInteger(value)) throw new Error(`${fn}: option ${name} must be an integer id, got ${value}`);
}

/** Throws unless `T` is a non-negative integer. */
export function checkLength(fn: string, name: string, T: number): void {
  if (!Number.isInteger(T) || T < 0) throw new Error(`${fn}: ${name} must be a non-negative integer, got ${T}`);
}

/** Throws unless `mask` holds a stack of T×T matrices; returns the stack size. */
export function checkSquareStack(fn: string, mask: ArrayLike<number>, T: number): number {
  checkLength(fn, 'T', T);
  const tt = T * T;
  if (tt === 0 ? mask.length !== 0 : mask.length % tt !== 0) {
    throw new Error(`${fn}: mask has length ${mask.length}, which is not a multiple of T*T = ${T}*${T}`);
  }
  return tt === 0 ? 0 : mask.length / tt;
}

/** The positions of `id` in `ids`, ascending. */
export function positionsOf(ids: ArrayLike<number>, id: number): number[] {
  const out: number[] = [];
  for (let i = 0; i < ids.length; i++) if (ids[i] === id) out.push(i);
  return out;
}

/** The first index i >= from at which `needle` occurs contiguously in `ids`, or -1. */
export function findSequence(ids: ArrayLike<number>, needle: readonly number[], from: number): number {
  if (needle.length === 0) return -1;
  outer: for (let i = Math.max(0, from); i + needle.length <= ids.length; i++) {
    for (let j = 0; j < needle.length; j++) if (ids[i + j] !== needle[j]) continue outer;
    return i;
  }
  return -1;
}
