// The bulk 16-bit conversions (bf16BitsOf, f16BitsOf, and typedFrom's fast paths) against references
// that share no code with them: the nearest representable value found by search over all candidates,
// ties to the even bit pattern, over special values and random float32 bit patterns.
import { describe, expect, it } from 'vitest';
import { bf16BitsOf, f16BitsOf, f16BitsToNumber, typedFrom } from './dtype.js';

const asF32 = (bits: Uint32Array) => new Float32Array(bits.buffer);
/** float32 bit patterns: signed zeros, subnormals, the half and bf16 boundaries, ±∞, NaNs, then random ones. */
function patterns(random: number): Uint32Array {
  const special = [
    0x00000000, 0x80000000, 0x00000001, 0x807fffff, 0x00800000, 0x3f800000, 0xbf800000, 0x7f7fffff, 0xff7fffff, 0x7f800000, 0xff800000, 0x7fc00000, 0xffc00000,
    0x7f800001, 0xffffffff, 0x7fffffff, 0x3f808000, 0x3f818000, 0x3f80ffff, 0x477fe000, 0x477ff000, 0x47800000, 0x33800000, 0x33000000, 0x33000001, 0x387fc000,
    0x38800000, 0x3f801000, 0x3f803000, 0x3f802fff, 0x7f7f8000, 0x7f7f7fff,
  ];
  const out = new Uint32Array(special.length + random);
  out.set(special);
  let s = 0x9e3779b9;
  for (let i = special.length; i < out.length; i++) {
    s ^= s << 13;
    s ^= s >>> 17;
    s ^= s << 5;
    out[i] = s >>> 0;
  }
  return out;
}

/** Nearest-even rounding of x onto a sorted list of finite non-negative values (index = bit pattern). */
function nearestEven(x: number, values: Float64Array, infBits: number): number {
  if (x >= values[values.length - 1]! + (values[values.length - 1]! - values[values.length - 2]!) / 2) {
    // at or beyond the midpoint to the next (unrepresentable) step: overflow, except a tie rounding to an even max
    const max = values.length - 1;
    const mid = values[max]! + (values[max]! - values[max - 1]!) / 2;
    return x === mid && (max & 1) === 0 ? max : infBits;
  }
  let lo = 0;
  let hi = values.length - 1;
  while (hi - lo > 1) {
    const m = (lo + hi) >> 1;
    if (values[m]! <= x) lo = m;
    else hi = m;
  }
  const dLo = x - values[lo]!;
  const dHi = values[hi]! - x;
  if (dLo < dHi) return lo;
  if (dHi < dLo) return hi;
  return (lo & 1) === 0 ? lo : hi;
}

describe('16-bit bulk conversions', () => {
  const bits = patterns(200_000);
  const x = asF32(bits);

  it('bf16BitsOf: nearest even for finite values, ±∞ kept, NaN stays a NaN of its sign', () => {
    // every non-negative finite bf16 value, by bit pattern 0x0000 … 0x7f7f
    const bf = new Float64Array(0x7f80);
    const u = new Uint32Array(1);
    const f = new Float32Array(u.buffer);
    for (let b = 0; b < bf.length; b++) {
      u[0] = b << 16;
      bf[b] = f[0]!;
    }
    const got = bf16BitsOf(x);
    for (let i = 0; i < x.length; i++) {
      const v = x[i]!;
      const sign = (bits[i]! >>> 16) & 0x8000;
      if (Number.isNaN(v)) {
        expect((got[i]! & 0x7f80) === 0x7f80 && (got[i]! & 0x7f) !== 0, `NaN ${bits[i]!.toString(16)}`).toBe(true);
        expect(got[i]! & 0x8000).toBe(sign);
        continue;
      }
      const want = Math.abs(v) === Infinity ? 0x7f80 : nearestEven(Math.abs(v), bf, 0x7f80);
      if ((got[i]! & 0x7fff) !== want || (got[i]! & 0x8000) !== sign)
        throw new Error(`bf16 of ${v} (0x${bits[i]!.toString(16)}): got 0x${got[i]!.toString(16)}, want 0x${(sign | want).toString(16)}`);
    }
  });

  it('f16BitsOf: nearest even for finite values (subnormals exact), overflow to ±∞, NaN stays a NaN', () => {
    const half = new Float64Array(0x7c00);
    for (let b = 0; b < half.length; b++) half[b] = f16BitsToNumber(b);
    const got = f16BitsOf(x);
    for (let i = 0; i < x.length; i++) {
      const v = x[i]!;
      const sign = (bits[i]! >>> 16) & 0x8000;
      if (Number.isNaN(v)) {
        expect((got[i]! & 0x7c00) === 0x7c00 && (got[i]! & 0x3ff) !== 0).toBe(true);
        continue;
      }
      const want = Math.abs(v) === Infinity ? 0x7c00 : nearestEven(Math.abs(v), half, 0x7c00);
      if ((got[i]! & 0x7fff) !== want || (got[i]! & 0x8000) !== sign)
        throw new Error(`f16 of ${v} (0x${bits[i]!.toString(16)}): got 0x${got[i]!.toString(16)}, want 0x${(sign | want).toString(16)}`);
    }
  });

  it('typedFrom takes the fast paths for Float32Array sources and keeps the element conversion of the others', () => {
    expect(typedFrom('bfloat16', x)).toEqual(bf16BitsOf(x));
    expect(typedFrom('float16', x)).toEqual(f16BitsOf(x));
    const small = Float32Array.from([1.5, -2.75, 3e9, -0, 7]);
    expect(Array.from(typedFrom('int32', small) as Int32Array)).toEqual([1, -2, -1294967296, 0, 7]);
    expect(Array.from(typedFrom('float64', small) as Float64Array)).toEqual(Array.from(small));
    expect(Array.from(typedFrom('bool', [0, 2, -1]) as Uint8Array)).toEqual([0, 1, 1]);
    expect(Array.from(typedFrom('int64', [3, 4]) as BigInt64Array)).toEqual([3n, 4n]);
    expect(Array.from(typedFrom('bfloat16', [1, 1.00390625]) as Uint16Array)).toEqual([0x3f80, 0x3f80]); // plain numbers: the loop, a tie to even
    // a view into a larger buffer converts only its own values
    const big = Float32Array.from([9, 1, 2, 9]);
    expect(Array.from(bf16BitsOf(big.subarray(1, 3)))).toEqual([0x3f80, 0x4000]);
  });
});
