// Element types of graph tensors and their ONNX TensorProto.DataType codes, byte sizes and host
// typed arrays. Leaves out strings, complex and the 4/8-bit float formats.

/** Element types a graph value may have. */
export type DType = 'float32' | 'float64' | 'float16' | 'bfloat16' | 'int32' | 'int64' | 'bool' | 'uint8' | 'int8';

/** Host storage of tensor data (float16/bfloat16 as raw bits in Uint16Array, bool as 0/1 bytes). */
export type TensorData = Float32Array | Float64Array | Int32Array | BigInt64Array | Uint8Array | Int8Array | Uint16Array;

/** ONNX TensorProto.DataType code of each dtype. */
export const onnxTypeCode: { readonly [D in DType]: number } = {
  float32: 1,
  uint8: 2,
  int8: 3,
  int32: 6,
  int64: 7,
  bool: 9,
  float16: 10,
  float64: 11,
  bfloat16: 16,
};

/** Bytes per element. */
export const dtypeBytes: { readonly [D in DType]: number } = {
  float32: 4,
  float64: 8,
  float16: 2,
  bfloat16: 2,
  int32: 4,
  int64: 8,
  bool: 1,
  uint8: 1,
  int8: 1,
};

/** Typed-array constructor holding each dtype. */
export const dtypeArray: { readonly [D in DType]: new (n: number) => TensorData } = {
  float32: Float32Array,
  float64: Float64Array,
  float16: Uint16Array,
  bfloat16: Uint16Array,
  int32: Int32Array,
  int64: BigInt64Array,
  bool: Uint8Array,
  uint8: Uint8Array,
  int8: Int8Array,
};

/** The dtype of an ONNX type code; throws for codes this package does not handle. */
export function dtypeOfCode(code: number): DType {
  for (const [k, v] of Object.entries(onnxTypeCode)) if (v === code) return k as DType;
  throw new Error(`unsupported ONNX data type code ${code}`);
}

/** True for the floating-point dtypes (the ones gradients flow through). */
export function isFloat(d: DType): boolean {
  return d === 'float32' || d === 'float64' || d === 'float16' || d === 'bfloat16';
}

// One float32 ↔ uint32 view for the conversions below (not two typed arrays per value: 8M values took minutes).
const f32Scratch = new Float32Array(1);
const f32ScratchBits = new Uint32Array(f32Scratch.buffer);
/** The bits of v rounded to float32. */
function f32Bits(v: number): number {
  f32Scratch[0] = v;
  return f32ScratchBits[0] as number;
}

/** float32 → IEEE half bits (round to nearest even). */
export function f32ToF16Bits(v: number): number {
  return halfOfFloat32Bits(f32Bits(v));
}

/** IEEE half bits of the float32 with bits x (round to nearest even; NaN stays NaN, ±∞ and overflow → ±∞). */
function halfOfFloat32Bits(x: number): number {
  const sign = (x >>> 16) & 0x8000;
  const exp = (x >>> 23) & 0xff;
  let mant = x & 0x7fffff;
  if (exp === 0xff) return sign | 0x7c00 | (mant !== 0 ? 0x200 : 0);
  let e = exp - 127 + 15;
  if (e >= 0x1f) return sign | 0x7c00;
  if (e <= 0) {
    if (e < -10) return sign;
    mant |= 0x800000;
    const shift = 14 - e;
    const half = mant >>> shift;
    const rem = mant & ((1 << shift) - 1);
    const mid = 1 << (shift - 1);
    return sign | (half + (rem > mid || (rem === mid && (half & 1) === 1) ? 1 : 0));
  }
  const rem = mant & 0x1fff;
  mant >>>= 13;
  if (rem > 0x1000 || (rem === 0x1000 && (mant & 1) === 1)) {
    mant++;
    if (mant === 0x400) {
      mant = 0;
      e++;
      if (e >= 0x1f) return sign | 0x7c00;
    }
  }
  return sign | (e << 10) | mant;
}

/**
 * float32 values as bfloat16 bits, rounded to nearest even (overflow → ±∞; a NaN stays a quiet NaN of its
 * sign), in one monomorphic pass over the bits: what a 7.6 B-parameter model's weights go through at
 * Trainer creation, where typedFrom's generic per-value loop took ~10 ns a value.
 */
export function bf16BitsOf(src: Float32Array): Uint16Array {
  // Int32 bits keep every operation in V8's small-integer range (a Uint32Array's upper half would be doubles).
  const bits = new Int32Array(src.buffer, src.byteOffset, src.length);
  const out = new Uint16Array(src.length);
  for (let i = 0; i < bits.length; i++) {
    const u = bits[i] as number;
    out[i] = (u & 0x7fffffff) > 0x7f800000 ? (u >>> 16) | 0x40 : ((u + 0x7fff + ((u >>> 16) & 1)) | 0) >>> 16;
  }
  return out;
}

/** float32 values as IEEE half bits (f32ToF16Bits of each), in one pass over the bits. */
export function f16BitsOf(src: Float32Array): Uint16Array {
  const bits = new Uint32Array(src.buffer, src.byteOffset, src.length);
  const out = new Uint16Array(src.length);
  for (let i = 0; i < bits.length; i++) out[i] = halfOfFloat32Bits(bits[i] as number);
  return out;
}

/** IEEE half bits → number. */
export function f16BitsToNumber(h: number): number {
  const s = (h & 0x8000) !== 0 ? -1 : 1;
  const e = (h >>> 10) & 0x1f;
  const m = h & 0x3ff;
  if (e === 0) return s * m * 2 ** -24;
  if (e === 0x1f) return m === 0 ? s * Infinity : NaN;
  return s * (1 + m / 1024) * 2 ** (e - 15);
}

/** Fills a typed array of `dtype` from plain numbers (fp16 converted, bf16 truncated-with-rounding). */
export function typedFrom(dtype: DType, values: ArrayLike<number | bigint>): TensorData {
  if (values instanceof Float32Array && dtype === 'bfloat16') return bf16BitsOf(values);
  if (values instanceof Float32Array && dtype === 'float16') return f16BitsOf(values);
  const out = new dtypeArray[dtype](values.length);
  const plain = dtype === 'float32' || dtype === 'float64' || dtype === 'int32' || dtype === 'int8' || dtype === 'uint8';
  if (plain && ArrayBuffer.isView(values) && !(values instanceof BigInt64Array) && !(values instanceof BigUint64Array)) {
    (out as Float32Array).set(values as unknown as ArrayLike<number>); // the element conversion of the loop below, done natively
    return out;
  }
  for (let i = 0; i < values.length; i++) {
    const v = values[i] as number | bigint;
    if (dtype === 'int64') (out as BigInt64Array)[i] = BigInt(v);
    else if (dtype === 'float16') (out as Uint16Array)[i] = f32ToF16Bits(Number(v));
    else if (dtype === 'bfloat16') {
      const u = f32Bits(Number(v));
      (out as Uint16Array)[i] = (u + 0x7fff + ((u >>> 16) & 1)) >>> 16;
    } else if (dtype === 'bool') (out as Uint8Array)[i] = Number(v) !== 0 ? 1 : 0;
    else (out as Float64Array)[i] = Number(v);
  }
  return out;
}
