// Host tensors for feeds: small typed constructors and a shape-checked view used by the collators.
// Internal to @latent-sft/phases.
import type { HostTensor } from '@latent-sft/runtime';

/** int64 tensor from numbers. */
export function i64(dims: number[], values: ArrayLike<number>): HostTensor {
  const data = new BigInt64Array(values.length);
  for (let i = 0; i < values.length; i++) data[i] = BigInt(values[i] as number);
  return { dtype: 'int64', dims, data };
}

/** bool tensor (0/1 bytes). */
export function bool(dims: number[], values: ArrayLike<number | boolean>): HostTensor {
  return { dtype: 'bool', dims, data: Uint8Array.from(Array.from(values, (v) => (v ? 1 : 0))) };
}

/** float32 or float64 tensor. */
export function float(dtype: 'float32' | 'float64', dims: number[], values: ArrayLike<number>): HostTensor {
  return { dtype, dims, data: dtype === 'float32' ? Float32Array.from(values) : Float64Array.from(values) };
}

/** A tensor's values as plain numbers (int64 converted). */
export function numbers(t: HostTensor): number[] {
  return Array.from(t.data as ArrayLike<number | bigint>, Number);
}
