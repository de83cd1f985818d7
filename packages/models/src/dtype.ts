// Exact conversions between float32 and the 16-bit float formats stored in checkpoints. Widening
// (bf16/fp16 -> fp32) is exact; narrowing rounds to nearest, ties to even, like PyTorch's casts.

const f32 = new Float32Array(1);
const u32 = new Uint32Array(f32.buffer);

/** bfloat16 bits of `x` (round to nearest even; NaN -> 0x7FC0 as PyTorch). */
export function float32ToBf16Bits(x: number): number {
  f32[0] = x;
  const b = u32[0] as number;
  if ((b & 0x7fffffff) > 0x7f800000) return 0x7fc0;
  return ((b + 0x7fff + ((b >>> 16) & 1)) >>> 16) & 0xffff;
}

/** float32 value of bfloat16 bits (exact). */
export function bf16BitsToFloat32(bits: number): number {
  u32[0] = (bits & 0xffff) << 16;
  return f32[0] as number;
}

/** IEEE half conversions: the graph package's (round to nearest even, exact subnormals), one implementation. */
export { f32ToF16Bits as float32ToF16Bits, f16BitsToNumber as f16BitsToFloat32 } from '@latent-sft/graph';

/** `x` rounded to the nearest bfloat16 value, as float32. */
export function roundToBf16(x: number): number {
  return bf16BitsToFloat32(float32ToBf16Bits(x));
}
