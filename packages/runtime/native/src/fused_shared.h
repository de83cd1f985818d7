// What the host code (ops/*.cc) and the CUDA kernels (kernels/*.cu) share: one definition, included by
// both. Plain C++17 without standard headers under NVRTC (it has none), so g++, nvcc and NVRTC compile
// it alike; a struct passed to a kernel by value (RowMap) has one layout on both sides.
#pragma once

#if defined(__CUDACC__)
#define LSFT_HD __host__ __device__ __forceinline__
#else
#define LSFT_HD inline
#endif
#if !defined(__CUDACC_RTC__)
#include <math.h>  // sqrtf, expf (NVRTC has them built in)
#include <string.h>  // memcpy (host side of vtkKey)
#endif

namespace latent_sft {

/** AdamW's scalars for one step: the four scalar inputs then the four attributes. */
struct AdamWHyper {
  float step, decay, bc2, coef, b2, omb1, omb2, eps;
};

/** Whether x is finite (x − x is 0 for finite x, NaN for ±inf and NaN; no <cmath> under NVRTC). */
LSFT_HD bool isFiniteF(float x) { return x - x == 0.0f; }

/**
 * One AdamW element, each operation rounded to float32 in this order (ops/adamw.cc's header). A
 * non-finite coef skips the update: p', m', v' are p, m, v (the step graph makes coef NaN when the grad
 * norm or the loss is not finite, so a skipped step leaves state updated in place untouched). p, g, m, v
 * are taken by value, so po/mo/vo may be the very elements p/m/v were read from (in-place state).
 */
LSFT_HD void adamwElement(const AdamWHyper& h, float p, float g, float m, float v, float& po, float& mo, float& vo) {
  if (!isFiniteF(h.coef)) {
    po = p;
    mo = m;
    vo = v;
    return;
  }
  float gr = g * h.coef;
  float pd = p * h.decay;
  float mn = m + h.omb1 * (gr - m);
  float vn = v * h.b2 + (h.omb2 * gr) * gr;
  float den = sqrtf(vn) / h.bc2 + h.eps;
  po = pd - h.step * (mn / den);
  mo = mn;
  vo = vn;
}

/**
 * FlashAttention's dims (ops/flash_attention.cc): Q [B, G, N, D] with N = rep·T, K / V [B, G, S, D], and the
 * element strides of the rank-5 mask over (b, g, r, t, s) (0 where it broadcasts).
 */
struct FlashDims {
  long long B, G, N, T, S, D, rep;
  long long mb, mg, mr, mt, ms;
  float scale;
};

/** FlashAttention's CUDA tiles: query rows per block (16 per warp, 4 warps) and keys per step. */
constexpr int kFlashRows = 64;
constexpr int kFlashKeys = 64;

/** Query rows per step of FlashAttentionGrad's dK/dV kernel (fewer at head dim 128, for registers). */
LSFT_HD constexpr int flashQt(int D) { return D <= 64 ? 64 : 32; }

/**
 * Row strides (floats) of the mask tiles in shared memory: the forward's and dQ's per warp [16 rows][kFlashMaskP]
 * (64 keys), dK/dV's [64 keys][flashQtP(D)] (its step's queries); padded by 8 so that a half-warp's 8-byte reads
 * of its fragments' elements fall in distinct banks.
 */
constexpr int kFlashMaskP = kFlashKeys + 8;
LSFT_HD constexpr int flashQtP(int D) { return flashQt(D) + 8; }

/** Shared bytes of the forward's and dQ's mask tiles: 4 warps × 16 rows of kFlashMaskP floats, and their rows' mask offsets. */
constexpr long long kFlashRowMaskBytes = 4LL * 16 * kFlashMaskP * 4 + 4LL * 16 * 8;

/**
 * Stages of FlashAttentionGrad's dQ kernel: its keys and values are double-buffered at head dim 64; at 128 a second
 * stage (35 KB) would leave one block per SM, so the step's copies are waited for at once.
 */
LSFT_HD constexpr int flashDqStages(int D) { return D <= 64 ? 2 : 1; }

/**
 * Dynamic shared memory (bytes) of FlashAttention's CUDA kernels at head dim D: kernel 0 forward, 1 dK/dV,
 * 2 dQ (the layouts are in kernels/flash_attention.cu: 16-bit tiles with rows padded by 8 elements, the tiles a
 * step loads in two stages (one for dQ at 128, flashDqStages), then the mask tiles of the step).
 */
LSFT_HD constexpr long long flashSmemBytes(int kernel, int D) {
  return kernel == 0   ? 2LL * 2 * 2 * kFlashKeys * (D + 8) + kFlashRowMaskBytes
         : kernel == 1 ? 2LL * (2 * kFlashKeys + 2 * 2 * flashQt(D)) * (D + 8) + 12LL * flashQt(D) + 4LL * kFlashKeys * flashQtP(D)
                       : 2LL * (2 * kFlashRows + flashDqStages(D) * 2 * kFlashKeys) * (D + 8) + kFlashRowMaskBytes;
}

/**
 * FlashAttention's tile map (kernel flash_tiles, run before the tiled kernels; FlexAttention's block mask, made from
 * the float mask): per mask slice (b', g', r') — the mask's own dims of B, G and rep, 1 where it broadcasts — per
 * 64 rows of T and per 64 keys of S, the OR of kFlashTileLive (an element above the blocked threshold, or NaN) and
 * kFlashTileNonzero (an element not 0) over the tile's elements; after the kT words of a row tile, one word that is 1
 * where a row of it has no key above the live threshold. The tiled kernels skip a step whose tile is not live (no
 * copies, no mask) when no row of it is dead, and run one whose tile is all 0 without loading the mask. flash_tiles
 * ORs into a map the launch zeroed: a block per 8 rows of T and slice (grid ⌈T/8⌉ × slices), 256 threads.
 */
constexpr unsigned kFlashTileLive = 1u;
constexpr unsigned kFlashTileNonzero = 2u;
/** The tile map's dims: slices (B'·G'·R'), row tiles of T, key tiles of S; its words: slices · row tiles · (key tiles + 1). */
LSFT_HD long long flashTileSlices(const FlashDims& d) { return (d.mb != 0 ? d.B : 1) * (d.mg != 0 ? d.G : 1) * (d.mr != 0 ? d.rep : 1); }
LSFT_HD long long flashTileWords(const FlashDims& d) { return flashTileSlices(d) * ((d.T + 63) / 64) * ((d.S + 63) / 64 + 1); }

/** VocabTopK's chunk: the elements of a row one block (CUDA) or one task (CPU) selects from. */
constexpr int kVtkChunk = 8192;

/**
 * VocabTopK's key of element `idx` (< 2³²) of value v: an order word (the float's bits, −0 as +0, every NaN
 * as the one NaN above +∞, mapped so
 * that unsigned order is float order: negatives inverted, positives with the sign bit set) above ~idx, so that
 * keys are distinct and the larger key is the larger value, or for equal values the lower index (ONNX
 * TopK's order). Every key of a real element is > 0, the pad key.
 */
LSFT_HD unsigned long long vtkKey(float v, unsigned idx) {
  unsigned u;
#if defined(__CUDACC__)
  u = __float_as_uint(v);
#else
  memcpy(&u, &v, sizeof u);
#endif
  if (v == 0.0f) u = 0;  // −0 is +0: equal values, ordered by index
  if (v != v) u = 0x7fc00000u;  // every NaN is one NaN, above +∞ (GPUs and x86 write different NaN bits)
  unsigned o = (u & 0x80000000u) != 0 ? ~u : (u | 0x80000000u);
  return (static_cast<unsigned long long>(o) << 32) | static_cast<unsigned long long>(~idx);
}

/** The element index of a vtkKey. */
LSFT_HD long long vtkIndex(unsigned long long key) { return static_cast<long long>(~static_cast<unsigned>(key & 0xffffffffull)); }

/** SwiGLU's SiLU of one gate element in float32: g·σ(g), σ(g) = 1/(1 + e^−g) (torch's F.silu). */
LSFT_HD float swigluSilu(float g) { return g * (1.0f / (1.0f + expf(-g))); }

/**
 * SwiGLUGrad's dGate of one element in float32, before its rounding to the dtype:
 * d(g·σ(g)·u)/dg · dy = (dy·u)·(s·(1 + g·(1 − s))), s = σ(g).
 */
LSFT_HD float swigluGateGrad(float dy, float g, float u) {
  float s = 1.0f / (1.0f + expf(-g));
  return (dy * u) * (s * (1.0f + g * (1.0f - s)));
}

/**
 * Rope's pair (a, b) = (x[j], x[j + hd/2]) in float32, before the rounding of each result to the dtype:
 * y[j] = a·c1 + b·s1, y[j + hd/2] = b·c2 + a·s2 with c1, c2 = cos[j], cos[j + hd/2] and s1, s2 = sinSigned[j],
 * sinSigned[j + hd/2]; `transpose` 1 (the backward: dx from dy) takes sinSigned at swap(j) instead (s1 and s2
 * exchanged). Each product and the sum rounded to float32 (no FMA contraction on either side: -ffp-contract=off,
 * NVRTC --fmad=false), so the CPU and CUDA kernels agree bit for bit.
 */
LSFT_HD void ropePair(float a, float b, float c1, float c2, float s1, float s2, int transpose, float& y1, float& y2) {
  float u = transpose != 0 ? s2 : s1, v = transpose != 0 ? s1 : s2;
  y1 = a * c1 + b * u;
  y2 = b * c2 + a * v;
}

/**
 * CEChunkGrad's element in float32, before its rounding to the dtype: d log p(target) / dz · dlogp =
 * dlogp·([column is the target] − e^(z − lse)).
 */
LSFT_HD float ceGradElement(float z, float lse, float dlogp, bool isTarget) { return dlogp * ((isTarget ? 1.0f : 0.0f) - expf(z - lse)); }

/**
 * MaskedSoftmax's row → mask offset map: X [..., S] with nd = rank − 1 leading dims, the mask
 * right-aligned and broadcastable (mstr 0 on a broadcast dim; mlast 0 when the mask's last dim is 1).
 * Passed to the CUDA kernels by value.
 */
struct RowMap {
  long long nd;
  long long dims[8];
  long long mstr[8];
  long long mlast;
};

/** The mask offset of row r. */
LSFT_HD long long maskOffset(const RowMap& rm, long long r) {
  long long off = 0;
  for (long long d = rm.nd - 1; d >= 0; d--) { long long q = r / rm.dims[d]; off += (r - q * rm.dims[d]) * rm.mstr[d]; r = q; }
  return off;
}

/** MaskedSoftmax's register path: each lane keeps this many groups of 4 elements of its row. */
constexpr int kSoftmaxGroups = 8;
/** The longest row (S) the register path takes: 32 lanes × 4 × kSoftmaxGroups. */
constexpr long long kSoftmaxRegisterMaxS = 32 * 4 * kSoftmaxGroups;

/**
 * SeededDropout's keep test of element (n, i): h = (a_n + b_i)·(c_n + d_i) in wrapping 32-bit arithmetic,
 * kept when h, read as a signed int32, is below `threshold` (models/src/lora-graph.ts, dropoutKeep: the
 * standard ops' int32 Add, Add, Mul, Less, which wrap the same way on both execution providers).
 */
LSFT_HD bool dropoutKeep(int a, int b, int c, int d, int threshold) {
  unsigned h = ((unsigned)a + (unsigned)b) * ((unsigned)c + (unsigned)d);
  return (int)h < threshold;
}

/** graph's hash.ts: P = 2³¹ − 1 and the rounds [a_k, c_k, c'_k] of hashFlat (each below P). */
constexpr long long kHashP = 2147483647LL;

/**
 * hashFlat's value of flat index i (graph's hash.ts, which writes it with int64 Mul/Add/Sub/Div): x₀ = (i +
 * offset) mod P, s = seed mod P, 4 rounds of x ← (x·a + (s + c)) mod P, x ← (x·x + c') mod P. mod is the
 * graph's x − (x / m)·m with truncating Div, which is C's %; every product is below 2⁶², so this integer
 * arithmetic is the graph's exactly.
 */
LSFT_HD long long hashFlatValue(long long i, long long seed, long long offset) {
  const long long r[4][3] = {{1103515245LL % kHashP, 12345LL, 374761393LL},
                             {48271LL, 1013904223LL, 668265263LL},
                             {69621LL, 2654435761LL % kHashP, 2246822519LL % kHashP},
                             {1664525LL, 3266489917LL % kHashP, 1181783497LL}};
  const long long s = seed % kHashP;
  long long x = (i + offset) % kHashP;
  for (int k = 0; k < 4; k++) {
    x = (x * r[k][0] + (s + r[k][1])) % kHashP;
    x = (x * x + r[k][2]) % kHashP;
  }
  return x;
}

/** HashWords' word i: the int32 of x − 2³¹·(x' mod 2), x from the stream at offset lo, x' from hi (hash.ts hashWords). */
LSFT_HD int hashWord(long long i, long long seed, long long lo, long long hi) {
  const long long x = hashFlatValue(i, seed, lo);
  const long long bit = hashFlatValue(i, seed, hi) % 2;
  return (int)(x - bit * 2147483648LL);
}

}  // namespace latent_sft
