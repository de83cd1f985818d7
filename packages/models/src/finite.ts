// Loaded weights must be finite: a NaN or ±Inf in a checkpoint (a diverged run, a damaged file)
// would otherwise flow silently through merging, caching, generation and inspection.
import { inputError } from '@latent-sft/core';

/** Index of the first NaN/±Inf of `data`, or -1. One multiply-add per element (x·0 is NaN only for NaN/±Inf). */
export function firstNonFinite(data: Float32Array): number {
  let acc = 0;
  for (let i = 0; i < data.length; i++) acc += (data[i] as number) * 0;
  if (acc === 0) return -1;
  return data.findIndex((x) => !Number.isFinite(x));
}

/** Throws a one-line error naming `file` and the first tensor holding a NaN or ±Inf. */
export function checkFiniteTensors(tensors: ReadonlyArray<{ name: string; data: Float32Array }>, file: string): void {
  for (const t of tensors) {
    const i = firstNonFinite(t.data);
    if (i >= 0) {
      throw inputError({ file, field: t.name }, `tensor holds ${t.data[i]} at element ${i}: the weights are damaged or come from a diverged run`);
    }
  }
}

/**
 * Throws a one-line error naming `file` and `name` when the 16-bit float bits `data` (bfloat16 or float16) hold
 * a NaN or ±Inf (every exponent bit set) — also one that rounding a wider value to this dtype made.
 */
export function checkFinite16(data: Uint16Array, dtype: 'bfloat16' | 'float16', name: string, file: string): void {
  const exp = dtype === 'bfloat16' ? 0x7f80 : 0x7c00;
  for (let i = 0; i < data.length; i++) {
    if (((data[i] as number) & exp) === exp) {
      throw inputError(
        { file, field: name },
        `tensor holds a NaN or ±Inf as ${dtype} at element ${i}: the weights are damaged, come from a diverged run, or do not fit ${dtype}`,
      );
    }
  }
}
