// FlashAttention (ops/flash_attention.cc): attention of grouped queries on tensor cores, without the scores in
// global memory. bf16 / f16 operands, float32 accumulation, mma.sync.m16n8k16 with ldmatrix (sm_80+; built for
// older archs, the kernels trap there and the op refuses to launch them). Head dim D = 64 or 128 (template).
//
// Fragments of mma.m16n8k16 (PTX ISA), lane = 4·g + tq: A (16 × 16, row-major) a0 = rows g, cols 2tq..2tq+1,
// a1 = row g + 8, a2 = row g, cols + 8, a3 = row g + 8, cols + 8; B (16 × 8) b0 = rows 2tq..2tq+1 of col g,
// b1 = rows + 8; C (16 × 8, float) c0, c1 = row g, cols 2tq, 2tq + 1; c2, c3 = row g + 8. Two 16-bit values per
// register, the lower index in the low half. A C tile pair of 16 × 16 is therefore an A fragment as it stands
// (the probabilities feed the next product from registers). ldmatrix.x4 loads four 8 × 8 tiles of 16-bit values
// from shared memory, lane 8j + r giving the address of row r of tile j; lane 4r + w receives word w of row r of
// each tile (with .trans, of its column r): A fragments, and B fragments from either layout, from row-major tiles.
//
// *_fwd_d*: a block per (64 query rows, b·G + g), 4 warps of 16 rows. Q's fragments stay in registers; per
//   64-key step K and V go to shared memory; S = QKᵀ, online softmax (running max per row, the sum rescaled),
//   O += P·V with P rounded to 16 bits. O = acc / l.
// *_dot: Dsum = dO·O per row, a warp per row.
// *_dkdv_d*: a block per (64 keys, b·G + g), 4 warps of 16 keys; per step of QT query rows (flashQt): Sᵀ = K·Qᵀ,
//   dPᵀ = V·dOᵀ, Pᵀ = e^(scale·Sᵀ + M − m) / l, dSᵀ = Pᵀ·(dPᵀ − Dsum); dV += Pᵀ·dO, dK += dSᵀ·Q (16-bit Pᵀ and dSᵀ).
// *_dq_d*: a block per (64 query rows, b·G + g); per 64-key step S = Q·Kᵀ, dP = dO·Vᵀ, dS as above, dQ += dS·K.
// The backward is three kernels: Dsum, dK/dV, dQ.
// flash_tiles: the mask's tile map (fused_shared.h), launched before the forward and before dK/dV and dQ. The tiled
//   kernels run only the steps it leaves: a tile the mask blocks entirely is skipped without its copies or its mask
//   (when none of its rows is dead), and a tile of 0 inside the shapes runs without loading the mask (z = scale·S + 0,
//   the same bits). The models' causal masks thus load the mask only on the diagonal tiles, and skip the tiles above it.
// No atomics: dQ is a second pass over the keys (the scores are computed twice), so the gradients are
// deterministic. Steps the mask blocks entirely are skipped per warp (kFlashBlocked). Dynamic shared memory: flashSmemBytes (fused_shared.h), every tile row-major with rows padded
// by 8 elements (16 bytes: ldmatrix's rows stay aligned and fall in different banks).
// Also compiled by g++ for the CPU with LSFT_FLASH_EMULATE (native/emu/flash_emu.cc: every CUDA thread a fiber,
// mma.sync and ldmatrix emulated per lane from the layouts above), where emu's prelude stands in for common.cuh.
#ifndef LSFT_FLASH_EMULATE
#include "common.cuh"
#endif
#include "../fused_shared.h"

#define kFlashNegInf __int_as_float(0xff800000)
// A mask value at or below this blocks its key (models' MASK_MIN, −∞). A warp skips its part of a step when
// the mask blocks all of it and each of its rows already has a key above this (forward: its running max;
// backward: the row max in stats): then every probability of the part is e^(−3.4·10³⁸ − max) = 0 exactly, so
// the skip changes no bit of any result for finite K, V and dO (a skipped 0 · ∞ would have been NaN). Causal masks skip about half the steps; a row with every key
// blocked (its max is itself blocked) skips nothing, and comes out as the standard ops give it.
#define kFlashBlocked (-1e30f)
using latent_sft::FlashDims;
using latent_sft::flashQt;
using latent_sft::kFlashKeys;
using latent_sft::kFlashRows;
using latent_sft::kFlashMaskP;
using latent_sft::flashQtP;
using latent_sft::flashDqStages;
using latent_sft::kFlashTileLive;
using latent_sft::kFlashTileNonzero;

struct alignas(16) FlashU4 { u32 x, y, z, w; };

template <typename T> __device__ __forceinline__ u32 flashPack(float lo, float hi);
template <> __device__ __forceinline__ u32 flashPack<bf16>(float lo, float hi) { return (u32)f2bf(lo) | ((u32)f2bf(hi) << 16); }
template <> __device__ __forceinline__ u32 flashPack<f16>(float lo, float hi) { return (u32)f2h(lo) | ((u32)f2h(hi) << 16); }

/** c += a·b on tensor cores (one m16n8k16 tile, float32 accumulators). */
template <typename T> __device__ __forceinline__ void flashMma(float* c, const u32* a, u32 b0, u32 b1);
template <> __device__ __forceinline__ void flashMma<bf16>(float* c, const u32* a, u32 b0, u32 b1) {
#if defined(LSFT_FLASH_EMULATE)
  emuMma<bf16>(c, a, b0, b1);
#elif __CUDA_ARCH__ >= 800
  asm volatile("mma.sync.aligned.m16n8k16.row.col.f32.bf16.bf16.f32 {%0, %1, %2, %3}, {%4, %5, %6, %7}, {%8, %9}, {%0, %1, %2, %3};"
               : "+f"(c[0]), "+f"(c[1]), "+f"(c[2]), "+f"(c[3])
               : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "r"(b0), "r"(b1));
#else
  __trap();
#endif
}
template <> __device__ __forceinline__ void flashMma<f16>(float* c, const u32* a, u32 b0, u32 b1) {
#if defined(LSFT_FLASH_EMULATE)
  emuMma<f16>(c, a, b0, b1);
#elif __CUDA_ARCH__ >= 800
  asm volatile("mma.sync.aligned.m16n8k16.row.col.f32.f16.f16.f32 {%0, %1, %2, %3}, {%4, %5, %6, %7}, {%8, %9}, {%0, %1, %2, %3};"
               : "+f"(c[0]), "+f"(c[1]), "+f"(c[2]), "+f"(c[3])
               : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "r"(b0), "r"(b1));
#else
  __trap();
#endif
}

/** Four 8 × 8 tiles from shared memory (this lane's row address p), transposed with Trans (ldmatrix.x4). */
template <bool Trans>
__device__ __forceinline__ void flashLdm(u32* r, const u16* p) {
#if defined(LSFT_FLASH_EMULATE)
  emuLdmatrix(r, p, Trans);
#elif __CUDA_ARCH__ >= 800
  unsigned long long g;
  asm("cvta.to.shared.u64 %0, %1;" : "=l"(g) : "l"(p));
  const unsigned a = (unsigned)g;
  if (Trans)
    asm volatile("ldmatrix.sync.aligned.m8n8.x4.trans.shared.b16 {%0, %1, %2, %3}, [%4];" : "=r"(r[0]), "=r"(r[1]), "=r"(r[2]), "=r"(r[3]) : "r"(a));
  else
    asm volatile("ldmatrix.sync.aligned.m8n8.x4.shared.b16 {%0, %1, %2, %3}, [%4];" : "=r"(r[0]), "=r"(r[1]), "=r"(r[2]), "=r"(r[3]) : "r"(a));
#else
  __trap();
#endif
}

/**
 * The A fragment of rows r0..r0+15, cols c0..c0+15 of a row-major tile (row stride `stride`); with Trans, the B
 * fragments of k rows r0..r0+15 and n cols c0..c0+7 (r[0], r[1]) and c0+8..c0+15 (r[2], r[3]) of a row-major
 * [k][n] tile. Tiles j: rows + 8·(j & 1), cols + 8·(j >> 1).
 */
template <bool Trans>
__device__ __forceinline__ void flashLdmRows(u32* r, const u16* s, int stride, int r0, int c0, int lane) {
  const int j = lane >> 3, row = lane & 7;
  flashLdm<Trans>(r, s + (r0 + 8 * (j & 1) + row) * stride + c0 + 8 * (j >> 1));
}

/**
 * The B fragments of n rows n0..n0+7 (r[0], r[1]) and n0+8..n0+15 (r[2], r[3]), k cols c0..c0+15, of a row-major
 * [n][k] tile (K as the B of Q·Kᵀ). Tiles j: rows + 8·(j >> 1), cols + 8·(j & 1).
 */
__device__ __forceinline__ void flashLdmCols(u32* r, const u16* s, int stride, int n0, int c0, int lane) {
  const int j = lane >> 3, row = lane & 7;
  flashLdm<false>(r, s + (n0 + 8 * (j >> 1) + row) * stride + c0 + 8 * (j & 1));
}

/**
 * 16 bytes from global src to shared dst without waiting (cp.async.cg, sm_80+): they land by the issuing thread's
 * flashCpWait of their group; `valid` false writes zeros and reads nothing (src must still be a global address).
 */
__device__ __forceinline__ void flashCpAsync(u16* dst, const u16* src, bool valid) {
#if defined(LSFT_FLASH_EMULATE)
  emuCpAsync(dst, src, valid);
#elif __CUDA_ARCH__ >= 800
  unsigned long long g;
  asm("cvta.to.shared.u64 %0, %1;" : "=l"(g) : "l"(dst));
  asm volatile("cp.async.cg.shared.global [%0], [%1], 16, %2;" ::"r"((unsigned)g), "l"(src), "r"(valid ? 16 : 0) : "memory");
#else
  __trap();
#endif
}
/** Closes this thread's group of cp.async copies issued since the last commit (an empty group is allowed). */
__device__ __forceinline__ void flashCpCommit() {
#if defined(LSFT_FLASH_EMULATE)
  emuCpCommit();
#elif __CUDA_ARCH__ >= 800
  asm volatile("cp.async.commit_group;" ::: "memory");
#endif
}
/** Waits until at most N of this thread's committed groups are still in flight (the others have landed). */
template <int N>
__device__ __forceinline__ void flashCpWait() {
#if defined(LSFT_FLASH_EMULATE)
  emuCpWait(N);
#elif __CUDA_ARCH__ >= 800
  asm volatile("cp.async.wait_group %0;" ::"n"(N) : "memory");
#endif
}

/**
 * Copies `rows` rows of D 16-bit values (row r at src + r·D) into a shared-memory tile with row stride `stride`,
 * without waiting: 16-byte cp.async chunks, consecutive threads on consecutive chunks of a row, zeros for the rows at
 * or past `avail`; they land by flashCpWait of their group.
 */
template <int D>
__device__ __forceinline__ void flashCopyAsync(u16* dst, int stride, const u16* src, long long avail, int rows, int tid) {
  constexpr int C = D / 8;
  for (int c = tid; c < rows * C; c += 128) {
    const int r = c / C, cc = c - r * C;
    const bool ok = r < avail;
    flashCpAsync(dst + r * stride + cc * 8, ok ? src + (long long)r * D + cc * 8 : src, ok);
  }
}

/** The A fragment of a 16 × 16 tile held as two C tiles (c0: its columns 0..7, c1: 8..15), rounded to T. */
template <typename T>
__device__ __forceinline__ void flashPackA(u32* a, const float* c0, const float* c1) {
  a[0] = flashPack<T>(c0[0], c0[1]);
  a[1] = flashPack<T>(c0[2], c0[3]);
  a[2] = flashPack<T>(c1[0], c1[1]);
  a[3] = flashPack<T>(c1[2], c1[3]);
}

/** e^x (ex2.approx on the GPU: the kernels' results are within their dtype's rounding, not bit for bit, of the CPU's). */
__device__ __forceinline__ float flashExp(float x) {
#if defined(LSFT_FLASH_EMULATE)
  return expf(x);
#else
  return __expf(x);
#endif
}
/** a·b + c rounded once (the program is built with --fmad=false; this is the one place the kernels want it). */
__device__ __forceinline__ float flashFma(float a, float b, float c) {
#if defined(LSFT_FLASH_EMULATE)
  return fmaf(a, b, c);
#else
  return __fmaf_rn(a, b, c);
#endif
}
__device__ __forceinline__ void flashSyncWarp() {
#if defined(LSFT_FLASH_EMULATE)
  emuSyncWarp();
#else
  __syncwarp();
#endif
}
/** Whether p holds for any lane of the warp (every lane calls it). */
__device__ __forceinline__ bool flashAny(bool p) {
#if defined(LSFT_FLASH_EMULATE)
  return emuAny(p);
#else
  return __any_sync(0xffffffffu, p);
#endif
}
/** The emulator's --no-skip: the tile map is then ignored (every step runs, with its mask); false on the GPU. */
__device__ __forceinline__ bool flashNoSkip() {
#if defined(LSFT_FLASH_EMULATE)
  return emuNoSkip();
#else
  return false;
#endif
}
/** Counts a step the tile map skipped (what 0) or ran without loading the mask (1), in the emulator; nothing on the GPU. */
__device__ __forceinline__ void flashCountTile(int what) {
#if defined(LSFT_FLASH_EMULATE)
  emuCountTile(what);
#else
  (void)what;
#endif
}

/**
 * Loads a warp's mask tile for a step, coalesced: its 16 rows (mask row offsets rowMo, −1 where the row does not
 * exist) by the 64 keys from s0, into sm (row stride kFlashMaskP floats), −∞ where the row or key does not exist.
 * Returns whether the mask blocks (kFlashBlocked) every element this lane loaded that exists: the warp's vote over
 * it (with its rows' maxima) says whether the warp may skip the step.
 */
__device__ __forceinline__ bool flashWarpMask(float* sm, const float* __restrict__ M, const FlashDims& d, const long long* rowMo, long long s0, int lane) {
  bool blocked = true;
  const long long lim = d.S - s0;
  flashSyncWarp();  // the warp's reads of the previous step's tile are done
#pragma unroll 8
  for (int r = 0; r < 16; r++) {
    const long long mo = rowMo[r];
    const float* mr = M + mo + s0 * d.ms;
#pragma unroll
    for (int h = 0; h < 2; h++) {
      const int c = lane + 32 * h;
      float v = kFlashNegInf;
      if (mo >= 0 && c < lim) {
        v = d.ms == 1 ? mr[c] : mr[c * d.ms];
        blocked = blocked && v <= kFlashBlocked;
      }
      sm[r * kFlashMaskP + c] = v;
    }
  }
  flashSyncWarp();
  return blocked;
}

/** A mask value above this is a live key (tile map: a row with none is dead, and its tiles are never skipped). */
#define kFlashLive (-1e29f)

/** *p |= v, atomically (the tile map's words are ORed by many warps; the emulator runs one thread at a time). */
__device__ __forceinline__ void flashAtomicOr(unsigned* p, unsigned v) {
#if defined(LSFT_FLASH_EMULATE)
  *p |= v;
#else
  atomicOr(p, v);
#endif
}

/**
 * The tile map of M (fused_shared.h: kFlashTileLive, kFlashTileNonzero, the dead-row word), ORed into words the
 * launch zeroed: a block per (8 rows of T, mask slice (b', g', r')), a warp per row; per key tile the warp votes and
 * its lane 0 ORs the bits into the row's tile word. A row is live where a key's value is above kFlashLive: skipping
 * a tile that blocks every key (≤ −10³⁰) then changes no probability of a row that has one (e^(−10³⁰ − max) = 0,
 * whether the live key comes before or after it: the online softmax rescales what came before by
 * e^(old max − new max) = 0).
 */
__device__ __forceinline__ void flashTiles(const float* __restrict__ M, unsigned* __restrict__ tiles, const FlashDims& d) {
  const int w = threadIdx.x >> 5, lane = threadIdx.x & 31;
  const long long tT = (d.T + 63) / 64, kT = (d.S + 63) / 64;
  const long long G1 = d.mg != 0 ? d.G : 1, R1 = d.mr != 0 ? d.rep : 1;
  const long long sl = blockIdx.y, t = static_cast<long long>(blockIdx.x) * 8 + w;
  if (t >= d.T) return;  // warp-uniform: the warps below vote among themselves only
  const long long r = sl % R1, g = (sl / R1) % G1, b = sl / (R1 * G1);
  const float* row = M + b * d.mb + g * d.mg + r * d.mr + t * d.mt;
  unsigned* out = tiles + (sl * tT + t / 64) * (kT + 1);
  bool live = false;
  for (long long j = 0; j < kT; j++) {
    bool anyLive = false, anyNonzero = false;
#pragma unroll
    for (int h = 0; h < 2; h++) {
      const long long s = j * 64 + lane + 32 * h;
      if (s < d.S) {
        const float v = row[s * d.ms];
        anyLive = anyLive || !(v <= kFlashBlocked);
        anyNonzero = anyNonzero || v != 0.0f;
        live = live || v > kFlashLive;
      }
    }
    const unsigned bits = (flashAny(anyLive) ? kFlashTileLive : 0u) | (flashAny(anyNonzero) ? kFlashTileNonzero : 0u);
    if (lane == 0 && bits != 0) flashAtomicOr(out + j, bits);
  }
  if (!flashAny(live) && lane == 0) flashAtomicOr(out + kT, 1u);
}

/**
 * The tile map's bits for rows [i0, i1) of (b, hg)'s N rows (row i = r·T + t) and key tile j: the OR over the 64-row
 * tiles of T those rows fall in; `dead` where one of those tiles has a dead row. Without a map (tiles null, or the
 * emulator's --no-skip): every tile live and not all 0, and dead (the kernels then run every step with its mask).
 */
__device__ __forceinline__ unsigned flashTileBits(const unsigned* __restrict__ tiles, const FlashDims& d, long long b, long long hg, long long i0,
                                                  long long i1, long long j, bool& dead) {
  dead = true;
  if (tiles == nullptr || flashNoSkip()) return kFlashTileLive | kFlashTileNonzero;
  const long long tT = (d.T + 63) / 64, kT = (d.S + 63) / 64;
  const long long G1 = d.mg != 0 ? d.G : 1, R1 = d.mr != 0 ? d.rep : 1;
  unsigned bits = 0;
  dead = false;
  for (long long i = i0; i < i1;) {
    const long long r = i / d.T, t = i - r * d.T, tt = t / 64;
    const long long sl = ((d.mb != 0 ? b : 0) * G1 + (d.mg != 0 ? hg : 0)) * R1 + (d.mr != 0 ? r : 0);
    const unsigned* row = tiles + (sl * tT + tt) * (kT + 1);
    bits |= row[j];
    dead = dead || row[kT] != 0;
    const long long tn = (tt + 1) * 64 < d.T ? (tt + 1) * 64 : d.T;  // the next tile of T starts at row r·T + tn
    i = r * d.T + tn;
  }
  return bits;
}

/**
 * The first step at or after s (a multiple of `step`, below `end`) that the rows [i0, i1) must run against key tile
 * j = jOf(s): one whose tile is live, or any where a row is dead; `end` if none. Its bits go to `bits`.
 */
template <typename JOf, typename RowsOf>
__device__ __forceinline__ long long flashNextStep(const unsigned* __restrict__ tiles, const FlashDims& d, long long b, long long hg, long long s, long long end,
                                                   long long step, JOf jOf, RowsOf rowsOf, unsigned& bits) {
  for (; s < end; s += step) {
    long long i0, i1;
    rowsOf(s, i0, i1);
    bool dead;
    bits = flashTileBits(tiles, d, b, hg, i0, i1, jOf(s), dead);
    if ((bits & kFlashTileLive) != 0 || dead) return s;
    if (threadIdx.x == 0) flashCountTile(0);
  }
  bits = kFlashTileLive | kFlashTileNonzero;
  return end;
}

/** The element offset of row i's mask row (b, g, r = i / T, t = i % T) in M. */
__device__ __forceinline__ long long flashMaskRow(const FlashDims& d, long long b, long long hg, long long i) {
  const long long r = i / d.T, t = i - r * d.T;
  return b * d.mb + hg * d.mg + r * d.mr + t * d.mt;
}

/**
 * One step of the forward for a warp: S = Q·Kᵀ over the stage's 64 keys (sKV: keys, then values), z = scale·S + mask,
 * the running max and sum rescaled, acc += P·V with P rounded to 16 bits. masked false: the tile's mask is all 0
 * (sm is not read; z = scale·S + 0, the same bits).
 */
template <typename T, int D>
__device__ __forceinline__ void flashFwdStep(bool masked, const u16* sKV, const float* sm, const FlashDims& d, int g, int tq, int lane, const u32 (*qa)[4], float* mx,
                                             float* ls, float (*acc)[4]) {
  constexpr int P = D + 8, KD = D / 16, ND = D / 8, NT = kFlashKeys / 8;
  const u16* sK = sKV;
  const u16* sV = sKV + kFlashKeys * P;
  float sc[NT][4];
#pragma unroll
  for (int n = 0; n < NT; n++) sc[n][0] = sc[n][1] = sc[n][2] = sc[n][3] = 0.0f;
#pragma unroll
  for (int kk = 0; kk < KD; kk++)
#pragma unroll
    for (int n = 0; n < NT; n += 2) {
      u32 kb[4];
      flashLdmCols(kb, sK, P, 8 * n, 16 * kk, lane);
      flashMma<T>(sc[n], qa[kk], kb[0], kb[1]);
      flashMma<T>(sc[n + 1], qa[kk], kb[2], kb[3]);
    }
  // z = scale·s + mask (−∞ past the keys); the tile's element of row g + 8h, key 8n + 2tq + (e & 1).
  float tmax[2] = {kFlashNegInf, kFlashNegInf};
#pragma unroll
  for (int n = 0; n < NT; n++)
#pragma unroll
    for (int e = 0; e < 4; e++) {
      const int h = e >> 1;
      const float z = flashFma(d.scale, sc[n][e], masked ? sm[(g + 8 * h) * kFlashMaskP + n * 8 + 2 * tq + (e & 1)] : 0.0f);
      sc[n][e] = z;
      tmax[h] = fmaxf(tmax[h], z);
    }
  float mu[2];
#pragma unroll
  for (int h = 0; h < 2; h++) {
    tmax[h] = fmaxf(tmax[h], __shfl_xor_sync(0xffffffffu, tmax[h], 1));
    tmax[h] = fmaxf(tmax[h], __shfl_xor_sync(0xffffffffu, tmax[h], 2));
    const float mn = fmaxf(mx[h], tmax[h]);
    mu[h] = mn == kFlashNegInf ? 0.0f : mn;  // a row with no finite score yet: e^(−∞ − 0) = 0, no NaN
    const float alpha = flashExp(mx[h] - mu[h]);
    mx[h] = mn;
    ls[h] *= alpha;
#pragma unroll
    for (int n = 0; n < ND; n++) {
      acc[n][2 * h] *= alpha;
      acc[n][2 * h + 1] *= alpha;
    }
  }
#pragma unroll
  for (int n = 0; n < NT; n++)
#pragma unroll
    for (int e = 0; e < 4; e++) {
      const float p = flashExp(sc[n][e] - mu[e >> 1]);
      ls[e >> 1] += p;
      sc[n][e] = p;
    }
#pragma unroll
  for (int kq = 0; kq < NT / 2; kq++) {
    u32 pa[4];
    flashPackA<T>(pa, sc[2 * kq], sc[2 * kq + 1]);
#pragma unroll
    for (int n = 0; n < ND; n += 2) {
      u32 vb[4];
      flashLdmRows<true>(vb, sV, P, 16 * kq, 8 * n, lane);
      flashMma<T>(acc[n], pa, vb[0], vb[1]);
      flashMma<T>(acc[n + 1], pa, vb[2], vb[3]);
    }
  }
}

template <typename T, int D>
__device__ __forceinline__ void flashFwd(const T* __restrict__ Q, const T* __restrict__ K, const T* __restrict__ V, const float* __restrict__ M,
                                         const unsigned* __restrict__ tiles, T* __restrict__ O, float* __restrict__ stats, const FlashDims& d) {
  extern __shared__ FlashU4 flashShared[];
  constexpr int P = D + 8, KD = D / 16, ND = D / 8, KV = 2 * kFlashKeys * P;
  // Two stages of [64][P] keys then [64][P] values: the next step's land (cp.async) while this step's are used.
  u16* sKV = reinterpret_cast<u16*>(flashShared);
  const int tid = threadIdx.x, w = tid >> 5, lane = tid & 31, g = lane >> 2, tq = lane & 3, wr = 16 * w;
  float* sm = reinterpret_cast<float*>(sKV + 2 * KV) + w * 16 * kFlashMaskP;            // [16][kFlashMaskP] this warp's mask tile
  long long* smo = reinterpret_cast<long long*>(reinterpret_cast<float*>(sKV + 2 * KV) + 4 * 16 * kFlashMaskP) + w * 16;  // [16] its rows' mask offsets
  const long long bg = blockIdx.y, b = bg / d.G, hg = bg - b * d.G, row0 = (long long)blockIdx.x * kFlashRows;
  const u16* q = reinterpret_cast<const u16*>(Q) + (bg * d.N + row0) * D;
  const u16* k = reinterpret_cast<const u16*>(K) + bg * d.S * D;
  const u16* v = reinterpret_cast<const u16*>(V) + bg * d.S * D;
  if (lane < 16) smo[lane] = row0 + wr + lane < d.N ? flashMaskRow(d, b, hg, row0 + wr + lane) : -1;
  // The steps the tile map leaves (flashNextStep), in order; a tile of 0 with all 64 rows and keys runs unmasked.
  const long long rowEnd = row0 + kFlashRows < d.N ? row0 + kFlashRows : d.N;
  auto jOf = [](long long s) { return s / kFlashKeys; };
  auto rowsOf = [&](long long, long long& i0, long long& i1) { i0 = row0, i1 = rowEnd; };
  unsigned bits;
  long long s0 = flashNextStep(tiles, d, b, hg, 0, d.S, kFlashKeys, jOf, rowsOf, bits);
  // The Q tile through stage 1's keys; stage 0 starts loading the first step.
  flashCopyAsync<D>(sKV + KV, P, q, d.N - row0, kFlashRows, tid);
  flashCpCommit();
  if (s0 < d.S) {
    flashCopyAsync<D>(sKV, P, k + s0 * D, d.S - s0, kFlashKeys, tid);
    flashCopyAsync<D>(sKV + kFlashKeys * P, P, v + s0 * D, d.S - s0, kFlashKeys, tid);
  }
  flashCpCommit();
  flashCpWait<1>();
  __syncthreads();
  u32 qa[KD][4];
#pragma unroll
  for (int kk = 0; kk < KD; kk++) flashLdmRows<false>(qa[kk], sKV + KV, P, wr, 16 * kk, lane);
  __syncthreads();  // every warp has its Q fragments: stage 1 is free
  const long long i0 = row0 + wr + g, i1 = i0 + 8;
  const bool rowOk[2] = {i0 < d.N, i1 < d.N};
  float mx[2] = {kFlashNegInf, kFlashNegInf}, ls[2] = {0.0f, 0.0f}, acc[ND][4];
#pragma unroll
  for (int n = 0; n < ND; n++) acc[n][0] = acc[n][1] = acc[n][2] = acc[n][3] = 0.0f;
  int stage = 0;
  while (s0 < d.S) {
    const bool unmasked = (bits & kFlashTileNonzero) == 0 && s0 + kFlashKeys <= d.S && row0 + kFlashRows <= d.N;
    unsigned nextBits;
    const long long sn = flashNextStep(tiles, d, b, hg, s0 + kFlashKeys, d.S, kFlashKeys, jOf, rowsOf, nextBits);
    // The next step's keys and values into the other stage (read by the step before this one: the barrier at the
    // end of the loop), while this step's mask tile loads; then this step's copies are waited for.
    if (sn < d.S) {
      u16* nx = sKV + (stage ^ 1) * KV;
      flashCopyAsync<D>(nx, P, k + sn * D, d.S - sn, kFlashKeys, tid);
      flashCopyAsync<D>(nx + kFlashKeys * P, P, v + sn * D, d.S - sn, kFlashKeys, tid);
    }
    flashCpCommit();
    if (unmasked && tid == 0) flashCountTile(1);
    const bool blocked = !unmasked && flashWarpMask(sm, M, d, smo, s0, lane);
    flashCpWait<1>();
    __syncthreads();
    // Skip: the mask blocks the warp's whole part of the step and each of its rows already has a live key.
    if (unmasked || !__all_sync(0xffffffffu, blocked && (!rowOk[0] || mx[0] > kFlashBlocked) && (!rowOk[1] || mx[1] > kFlashBlocked)))
      flashFwdStep<T, D>(!unmasked, sKV + stage * KV, sm, d, g, tq, lane, qa, mx, ls, acc);
    __syncthreads();  // this stage's reads are done before the step after next loads into it
    s0 = sn;
    bits = nextBits;
    stage ^= 1;
  }
#pragma unroll
  for (int h = 0; h < 2; h++) {
    ls[h] += __shfl_xor_sync(0xffffffffu, ls[h], 1);
    ls[h] += __shfl_xor_sync(0xffffffffu, ls[h], 2);
  }
  u32* o = reinterpret_cast<u32*>(O);
  const long long rows[2] = {i0, i1};
#pragma unroll
  for (int h = 0; h < 2; h++) {
    if (!rowOk[h]) continue;
    const long long base = (bg * d.N + rows[h]) * D;
#pragma unroll
    for (int n = 0; n < ND; n++) o[(base + n * 8 + 2 * tq) / 2] = flashPack<T>(acc[n][2 * h] / ls[h], acc[n][2 * h + 1] / ls[h]);
    if (tq == 0) {
      stats[2 * (bg * d.N + rows[h])] = mx[h];
      stats[2 * (bg * d.N + rows[h]) + 1] = ls[h];
    }
  }
}

template <typename T>
__device__ __forceinline__ void flashDot(const T* __restrict__ dO, const T* __restrict__ O, float* __restrict__ dsum, const FlashDims& d) {
  const long long row = (long long)blockIdx.x * 8 + (threadIdx.x >> 5);
  const int lane = threadIdx.x & 31;
  if (row >= d.B * d.G * d.N) return;
  float s = 0.0f;
  for (long long c = lane; c < d.D; c += 32) s += tof(dO[row * d.D + c]) * tof(O[row * d.D + c]);
  s = warpSum(s);
  if (lane == 0) dsum[row] = s;
}

/**
 * One step of dK/dV for a warp (its 16 keys): Sᵀ = K·Qᵀ and dPᵀ = V·dOᵀ over the stage's QT queries (sQO: queries,
 * then output gradients), Pᵀ and dSᵀ = Pᵀ·(dPᵀ − Dsum); dV += Pᵀ·dO, dK += dSᵀ·Q (16-bit Pᵀ and dSᵀ). masked false: the
 * step's mask is all 0 (sMk is not read).
 */
template <typename T, int D>
__device__ __forceinline__ void flashDkDvStep(bool masked, const u16* sK, const u16* sV, const u16* sQO, const float* sMk, const float* sM, const float* sRl,
                                              const float* sDs, const FlashDims& d, int g, int tq, int lane, float (*dk)[4], float (*dv)[4]) {
  constexpr int P = D + 8, QT = flashQt(D), QP = flashQtP(D), KD = D / 16, ND = D / 8, NQ = QT / 8;
  const int wr = 16 * (threadIdx.x >> 5);
  const u16* sQ = sQO;
  const u16* sdO = sQO + QT * P;
  float st[NQ][4], dp[NQ][4];
#pragma unroll
  for (int n = 0; n < NQ; n++) st[n][0] = st[n][1] = st[n][2] = st[n][3] = dp[n][0] = dp[n][1] = dp[n][2] = dp[n][3] = 0.0f;
#pragma unroll
  for (int kk = 0; kk < KD; kk++) {
    u32 ka[4], va[4];
    flashLdmRows<false>(ka, sK, P, wr, 16 * kk, lane);
    flashLdmRows<false>(va, sV, P, wr, 16 * kk, lane);
#pragma unroll
    for (int n = 0; n < NQ; n += 2) {
      u32 qb[4], ob[4];
      flashLdmCols(qb, sQ, P, 8 * n, 16 * kk, lane);
      flashLdmCols(ob, sdO, P, 8 * n, 16 * kk, lane);
      flashMma<T>(st[n], ka, qb[0], qb[1]);
      flashMma<T>(st[n + 1], ka, qb[2], qb[3]);
      flashMma<T>(dp[n], va, ob[0], ob[1]);
      flashMma<T>(dp[n + 1], va, ob[2], ob[3]);
    }
  }
  // Row = key (wr + g for c0, c1; + 8 for c2, c3), column = query q0 + 8n + 2tq (+1). P = 0 where the mask tile is
  // −∞ (no such query or key, or a key masked by −∞).
#pragma unroll
  for (int n = 0; n < NQ; n++)
#pragma unroll
    for (int h = 0; h < 2; h++) {
      const int jl = g + 8 * h, c = n * 8 + 2 * tq;
      const float2 mv = masked ? *reinterpret_cast<const float2*>(sMk + (wr + jl) * QP + (c ^ (2 * ((jl >> 2) & 3)))) : float2{0.0f, 0.0f};
#pragma unroll
      for (int x = 0; x < 2; x++) {
        const int e = 2 * h + x;
        const float m = x == 0 ? mv.x : mv.y;
        const float p = m == kFlashNegInf ? 0.0f : flashExp(flashFma(d.scale, st[n][e], m) - sM[c + x]) * sRl[c + x];
        st[n][e] = p;
        dp[n][e] = p * (dp[n][e] - sDs[c + x]);
      }
    }
#pragma unroll
  for (int kq = 0; kq < NQ / 2; kq++) {
    u32 pa[4], sa[4];
    flashPackA<T>(pa, st[2 * kq], st[2 * kq + 1]);
    flashPackA<T>(sa, dp[2 * kq], dp[2 * kq + 1]);
#pragma unroll
    for (int n = 0; n < ND; n += 2) {
      u32 ob[4], qb[4];
      flashLdmRows<true>(ob, sdO, P, 16 * kq, 8 * n, lane);
      flashLdmRows<true>(qb, sQ, P, 16 * kq, 8 * n, lane);
      flashMma<T>(dv[n], pa, ob[0], ob[1]);
      flashMma<T>(dv[n + 1], pa, ob[2], ob[3]);
      flashMma<T>(dk[n], sa, qb[0], qb[1]);
      flashMma<T>(dk[n + 1], sa, qb[2], qb[3]);
    }
  }
}

template <typename T, int D>
__device__ __forceinline__ void flashDkDv(const T* __restrict__ dO, const T* __restrict__ Q, const T* __restrict__ K, const T* __restrict__ V,
                                          const float* __restrict__ M, const unsigned* __restrict__ tiles, const float* __restrict__ stats,
                                          const float* __restrict__ dsum, T* __restrict__ dK, T* __restrict__ dV, const FlashDims& d) {
  extern __shared__ FlashU4 flashShared[];
  constexpr int P = D + 8, QT = flashQt(D), QP = flashQtP(D), ND = D / 8, QO = 2 * QT * P;
  u16* sK = reinterpret_cast<u16*>(flashShared);  // [64][P] this block's keys
  u16* sV = sK + kFlashKeys * P;                   // [64][P] its values
  u16* sQO = sV + kFlashKeys * P;                  // 2 stages of [QT][P] the step's queries then [QT][P] their output gradients
  float* sM = reinterpret_cast<float*>(sQO + 2 * QO);  // [QT] row max, 1 / sum, Dsum
  float* sRl = sM + QT;
  float* sDs = sRl + QT;
  // [64 keys][QP] the step's mask, −∞ where no query or key; query column c of key row j at c ^ 2·((j mod 16) / 4 mod 4)
  // (a half-warp's stores then fall in distinct banks; the XOR keeps c's pair (c, c + 1) adjacent).
  float* sMk = sDs + QT;
  const int tid = threadIdx.x, w = tid >> 5, lane = tid & 31, g = lane >> 2, tq = lane & 3, wr = 16 * w;
  const long long bg = blockIdx.y, b = bg / d.G, hg = bg - b * d.G, key0 = (long long)blockIdx.x * kFlashKeys;
  const long long mbase = b * d.mb + hg * d.mg;
  const u16* q = reinterpret_cast<const u16*>(Q) + bg * d.N * D;
  const u16* go = reinterpret_cast<const u16*>(dO) + bg * d.N * D;
  // The query steps the tile map leaves (flashNextStep) against this block's key tile, in order; a tile of 0 with
  // all its queries and keys runs unmasked.
  auto jOf = [&](long long) { return key0 / kFlashKeys; };
  auto rowsOf = [&](long long qs, long long& i0, long long& i1) { i0 = qs, i1 = qs + QT < d.N ? qs + QT : d.N; };
  unsigned bits;
  long long q0 = flashNextStep(tiles, d, b, hg, 0, d.N, QT, jOf, rowsOf, bits);
  // The block's keys and values with the first step's queries and output gradients (stage 0), one group.
  flashCopyAsync<D>(sK, P, reinterpret_cast<const u16*>(K) + (bg * d.S + key0) * D, d.S - key0, kFlashKeys, tid);
  flashCopyAsync<D>(sV, P, reinterpret_cast<const u16*>(V) + (bg * d.S + key0) * D, d.S - key0, kFlashKeys, tid);
  if (q0 < d.N) {
    flashCopyAsync<D>(sQO, P, q + q0 * D, d.N - q0, QT, tid);
    flashCopyAsync<D>(sQO + QT * P, P, go + q0 * D, d.N - q0, QT, tid);
  }
  flashCpCommit();
  const long long j0 = key0 + wr + g, j1 = j0 + 8;
  float dk[ND][4], dv[ND][4];
#pragma unroll
  for (int n = 0; n < ND; n++) dk[n][0] = dk[n][1] = dk[n][2] = dk[n][3] = dv[n][0] = dv[n][1] = dv[n][2] = dv[n][3] = 0.0f;
  int stage = 0;
  while (q0 < d.N) {
    const long long r0 = q0 / d.T, t0 = q0 - r0 * d.T;  // query row q0 = r0·T + t0
    const bool unmasked = (bits & kFlashTileNonzero) == 0 && key0 + kFlashKeys <= d.S && q0 + QT <= d.N;
    unsigned nextBits;
    const long long qn = flashNextStep(tiles, d, b, hg, q0 + QT, d.N, QT, jOf, rowsOf, nextBits);
    // The next step's queries and output gradients into the other stage (read by the step before this one: the
    // barrier at the end of the loop), while this step's stats and mask load; then this step's copies are waited for.
    if (qn < d.N) {
      u16* nx = sQO + (stage ^ 1) * QO;
      flashCopyAsync<D>(nx, P, q + qn * D, d.N - qn, QT, tid);
      flashCopyAsync<D>(nx + QT * P, P, go + qn * D, d.N - qn, QT, tid);
    }
    flashCpCommit();
    for (int r = tid; r < QT; r += 128) {
      const long long i = q0 + r;
      const bool ok = i < d.N;
      sM[r] = ok ? stats[2 * (bg * d.N + i)] : 0.0f;
      sRl[r] = 1.0f / (ok ? stats[2 * (bg * d.N + i) + 1] : 1.0f);
      sDs[r] = ok ? dsum[bg * d.N + i] : 0.0f;
    }
    // The warp votes to skip the step when the mask blocks all of its part (its 16 keys × the step's queries) and
    // each query already has a live key (its row max in stats). Unmasked steps load no mask and run.
    bool skip = !unmasked;
    for (int c = lane; c < QT && skip; c += 32)
      if (q0 + c < d.N && !(stats[2 * (bg * d.N + q0 + c)] > kFlashBlocked)) skip = false;
    if (unmasked) {
      if (tid == 0) flashCountTile(1);
    } else {
      // Loads of 16 keys of 2 queries (lane: key jj = lane mod 16, query c = lane / 16 + 2k), the query's mask row
      // offset (b, g, r, t) stepped along with c.
      const int jj = lane & 15, c0 = lane >> 4, swz = 2 * ((jj >> 2) & 3);
      const long long key = key0 + wr + jj;
      long long t = t0 + c0, r = r0;
      while (t >= d.T) t -= d.T, r++;
      long long mo = mbase + r * d.mr + t * d.mt;
#pragma unroll 4
      for (int c = c0; c < QT; c += 2) {
        float val = kFlashNegInf;
        if (q0 + c < d.N && key < d.S) {
          val = M[mo + key * d.ms];
          skip = skip && val <= kFlashBlocked;
        }
        sMk[(wr + jj) * QP + (c ^ swz)] = val;
        t += 2;
        mo += 2 * d.mt;
        while (t >= d.T) t -= d.T, mo += d.mr - d.T * d.mt;
      }
    }
    skip = !unmasked && __all_sync(0xffffffffu, skip);
    flashCpWait<1>();
    __syncthreads();
    if (!skip) flashDkDvStep<T, D>(!unmasked, sK, sV, sQO + stage * QO, sMk, sM, sRl, sDs, d, g, tq, lane, dk, dv);
    __syncthreads();  // this step's reads of its stage, stats and mask are done before they load again
    q0 = qn;
    bits = nextBits;
    stage ^= 1;
  }
  u32* ok = reinterpret_cast<u32*>(dK);
  u32* ov = reinterpret_cast<u32*>(dV);
  const long long keys[2] = {j0, j1};
#pragma unroll
  for (int h = 0; h < 2; h++) {
    if (keys[h] >= d.S) continue;
    const long long base = (bg * d.S + keys[h]) * D;
#pragma unroll
    for (int n = 0; n < ND; n++) {
      ok[(base + n * 8 + 2 * tq) / 2] = flashPack<T>(d.scale * dk[n][2 * h], d.scale * dk[n][2 * h + 1]);
      ov[(base + n * 8 + 2 * tq) / 2] = flashPack<T>(dv[n][2 * h], dv[n][2 * h + 1]);
    }
  }
}

/**
 * One step of dQ for a warp: S = Q·Kᵀ and dP = dO·Vᵀ over the stage's 64 keys (sKV: keys, then values),
 * dS = P·(dP − Dsum), acc += dS·K (16-bit dS). masked false: the step's mask is all 0 (sm is not read).
 */
template <typename T, int D>
__device__ __forceinline__ void flashDqStep(bool masked, const u16* sQ, const u16* sdO, const u16* sKV, const float* sm, const FlashDims& d, int g, int tq, int lane,
                                            const float* rm, const float* rrl, const float* rd, float (*acc)[4]) {
  constexpr int P = D + 8, KD = D / 16, ND = D / 8, NT = kFlashKeys / 8;
  const int wr = 16 * (threadIdx.x >> 5);
  const u16* sK = sKV;
  const u16* sV = sKV + kFlashKeys * P;
  float sc[NT][4], dp[NT][4];
#pragma unroll
  for (int n = 0; n < NT; n++) sc[n][0] = sc[n][1] = sc[n][2] = sc[n][3] = dp[n][0] = dp[n][1] = dp[n][2] = dp[n][3] = 0.0f;
#pragma unroll
  for (int kk = 0; kk < KD; kk++) {
    u32 qa[4], oa[4];
    flashLdmRows<false>(qa, sQ, P, wr, 16 * kk, lane);
    flashLdmRows<false>(oa, sdO, P, wr, 16 * kk, lane);
#pragma unroll
    for (int n = 0; n < NT; n += 2) {
      u32 kb[4], vb[4];
      flashLdmCols(kb, sK, P, 8 * n, 16 * kk, lane);
      flashLdmCols(vb, sV, P, 8 * n, 16 * kk, lane);
      flashMma<T>(sc[n], qa, kb[0], kb[1]);
      flashMma<T>(sc[n + 1], qa, kb[2], kb[3]);
      flashMma<T>(dp[n], oa, vb[0], vb[1]);
      flashMma<T>(dp[n + 1], oa, vb[2], vb[3]);
    }
  }
  // P = 0 where the mask tile is −∞ (no such row or key, or a key masked by −∞).
#pragma unroll
  for (int n = 0; n < NT; n++)
#pragma unroll
    for (int h = 0; h < 2; h++) {
      const float2 mv = masked ? *reinterpret_cast<const float2*>(sm + (g + 8 * h) * kFlashMaskP + n * 8 + 2 * tq) : float2{0.0f, 0.0f};
#pragma unroll
      for (int x = 0; x < 2; x++) {
        const int e = 2 * h + x;
        const float m = x == 0 ? mv.x : mv.y;
        const float p = m == kFlashNegInf ? 0.0f : flashExp(flashFma(d.scale, sc[n][e], m) - rm[h]) * rrl[h];
        dp[n][e] = p * (dp[n][e] - rd[h]);
      }
    }
#pragma unroll
  for (int kq = 0; kq < NT / 2; kq++) {
    u32 sa[4];
    flashPackA<T>(sa, dp[2 * kq], dp[2 * kq + 1]);
#pragma unroll
    for (int n = 0; n < ND; n += 2) {
      u32 kb[4];
      flashLdmRows<true>(kb, sK, P, 16 * kq, 8 * n, lane);
      flashMma<T>(acc[n], sa, kb[0], kb[1]);
      flashMma<T>(acc[n + 1], sa, kb[2], kb[3]);
    }
  }
}

template <typename T, int D>
__device__ __forceinline__ void flashDq(const T* __restrict__ dO, const T* __restrict__ Q, const T* __restrict__ K, const T* __restrict__ V,
                                        const float* __restrict__ M, const unsigned* __restrict__ tiles, const float* __restrict__ stats,
                                        const float* __restrict__ dsum, T* __restrict__ dQ, const FlashDims& d) {
  extern __shared__ FlashU4 flashShared[];
  constexpr int P = D + 8, ND = D / 8, KV = 2 * kFlashKeys * P, ST = flashDqStages(D);
  u16* sQ = reinterpret_cast<u16*>(flashShared);  // [64][P] this block's queries
  u16* sdO = sQ + kFlashRows * P;                  // [64][P] their output gradients
  u16* sKV = sdO + kFlashRows * P;                 // ST stages of [64][P] keys then [64][P] values
  const int tid = threadIdx.x, w = tid >> 5, lane = tid & 31, g = lane >> 2, tq = lane & 3, wr = 16 * w;
  float* sm = reinterpret_cast<float*>(sKV + ST * KV) + w * 16 * kFlashMaskP;            // [16][kFlashMaskP] this warp's mask tile
  long long* smo = reinterpret_cast<long long*>(reinterpret_cast<float*>(sKV + ST * KV) + 4 * 16 * kFlashMaskP) + w * 16;  // [16] its rows' mask offsets
  const long long bg = blockIdx.y, b = bg / d.G, hg = bg - b * d.G, row0 = (long long)blockIdx.x * kFlashRows;
  const u16* k = reinterpret_cast<const u16*>(K) + bg * d.S * D;
  const u16* v = reinterpret_cast<const u16*>(V) + bg * d.S * D;
  if (lane < 16) smo[lane] = row0 + wr + lane < d.N ? flashMaskRow(d, b, hg, row0 + wr + lane) : -1;
  // The key steps the tile map leaves (flashNextStep), in order; a tile of 0 with all 64 rows and keys runs unmasked.
  const long long rowEnd = row0 + kFlashRows < d.N ? row0 + kFlashRows : d.N;
  auto jOf = [](long long s) { return s / kFlashKeys; };
  auto rowsOf = [&](long long, long long& i0, long long& i1) { i0 = row0, i1 = rowEnd; };
  unsigned bits;
  long long s0 = flashNextStep(tiles, d, b, hg, 0, d.S, kFlashKeys, jOf, rowsOf, bits);
  flashCopyAsync<D>(sQ, P, reinterpret_cast<const u16*>(Q) + (bg * d.N + row0) * D, d.N - row0, kFlashRows, tid);
  flashCopyAsync<D>(sdO, P, reinterpret_cast<const u16*>(dO) + (bg * d.N + row0) * D, d.N - row0, kFlashRows, tid);
  if (ST == 2 && s0 < d.S) {  // stage 0 starts loading the first step (with Q and dO, the first group)
    flashCopyAsync<D>(sKV, P, k + s0 * D, d.S - s0, kFlashKeys, tid);
    flashCopyAsync<D>(sKV + kFlashKeys * P, P, v + s0 * D, d.S - s0, kFlashKeys, tid);
  }
  flashCpCommit();
  const long long rows[2] = {row0 + wr + g, row0 + wr + g + 8};
  bool rowOk[2];
  float rm[2], rrl[2], rd[2];
#pragma unroll
  for (int h = 0; h < 2; h++) {
    rowOk[h] = rows[h] < d.N;
    rm[h] = rowOk[h] ? stats[2 * (bg * d.N + rows[h])] : 0.0f;
    rrl[h] = 1.0f / (rowOk[h] ? stats[2 * (bg * d.N + rows[h]) + 1] : 1.0f);
    rd[h] = rowOk[h] ? dsum[bg * d.N + rows[h]] : 0.0f;
  }
  float acc[ND][4];
#pragma unroll
  for (int n = 0; n < ND; n++) acc[n][0] = acc[n][1] = acc[n][2] = acc[n][3] = 0.0f;
  int stage = 0;
  while (s0 < d.S) {
    const bool unmasked = (bits & kFlashTileNonzero) == 0 && s0 + kFlashKeys <= d.S && row0 + kFlashRows <= d.N;
    unsigned nextBits;
    const long long sn = flashNextStep(tiles, d, b, hg, s0 + kFlashKeys, d.S, kFlashKeys, jOf, rowsOf, nextBits);
    // Two stages: the next step's keys and values load into the other one (read by the step before this one: the
    // barrier at the end of the loop) while this step's mask tile loads. One stage: this step's.
    const long long sc = ST == 2 ? sn : s0;
    if (sc < d.S) {
      u16* nx = sKV + (ST == 2 ? stage ^ 1 : 0) * KV;
      flashCopyAsync<D>(nx, P, k + sc * D, d.S - sc, kFlashKeys, tid);
      flashCopyAsync<D>(nx + kFlashKeys * P, P, v + sc * D, d.S - sc, kFlashKeys, tid);
    }
    flashCpCommit();
    if (unmasked && tid == 0) flashCountTile(1);
    const bool blocked = !unmasked && flashWarpMask(sm, M, d, smo, s0, lane);
    flashCpWait<ST - 1>();
    __syncthreads();
    if (unmasked || !__all_sync(0xffffffffu, blocked && (!rowOk[0] || rm[0] > kFlashBlocked) && (!rowOk[1] || rm[1] > kFlashBlocked)))
      flashDqStep<T, D>(!unmasked, sQ, sdO, sKV + stage * KV, sm, d, g, tq, lane, rm, rrl, rd, acc);
    __syncthreads();  // this stage's reads are done before it loads again
    s0 = sn;
    bits = nextBits;
    stage = ST == 2 ? stage ^ 1 : 0;
  }
  u32* oq = reinterpret_cast<u32*>(dQ);
#pragma unroll
  for (int h = 0; h < 2; h++) {
    if (!rowOk[h]) continue;
    const long long base = (bg * d.N + rows[h]) * D;
#pragma unroll
    for (int n = 0; n < ND; n++) oq[(base + n * 8 + 2 * tq) / 2] = flashPack<T>(d.scale * acc[n][2 * h], d.scale * acc[n][2 * h + 1]);
  }
}

// The kernels of one dtype: NAME_fwd_d64, NAME_dkdv_d64, NAME_dq_d64, the same at d128, and NAME_dot.
#define LSFT_FLASH_FWD(T) const T *Q, const T *K, const T *V, const float *M, const unsigned *tiles, T *O, float *stats, FlashDims d
#define LSFT_FLASH_DKDV(T) \
  const T *dO, const T *Q, const T *K, const T *V, const float *M, const unsigned *tiles, const float *stats, const float *dsum, T *dK, T *dV, FlashDims d
#define LSFT_FLASH_DQ(T) const T *dO, const T *Q, const T *K, const T *V, const float *M, const unsigned *tiles, const float *stats, const float *dsum, T *dQ, FlashDims d
#define LSFT_FLASH(NAME, T)                                                                                                                     \
  extern "C" __global__ void __launch_bounds__(128) NAME##_fwd_d64(LSFT_FLASH_FWD(T)) { flashFwd<T, 64>(Q, K, V, M, tiles, O, stats, d); }            \
  extern "C" __global__ void __launch_bounds__(128) NAME##_fwd_d128(LSFT_FLASH_FWD(T)) { flashFwd<T, 128>(Q, K, V, M, tiles, O, stats, d); }          \
  extern "C" __global__ void __launch_bounds__(128, 3) NAME##_dkdv_d64(LSFT_FLASH_DKDV(T)) { flashDkDv<T, 64>(dO, Q, K, V, M, tiles, stats, dsum, dK, dV, d); } \
  extern "C" __global__ void __launch_bounds__(128) NAME##_dkdv_d128(LSFT_FLASH_DKDV(T)) { flashDkDv<T, 128>(dO, Q, K, V, M, tiles, stats, dsum, dK, dV, d); } \
  extern "C" __global__ void __launch_bounds__(128) NAME##_dq_d64(LSFT_FLASH_DQ(T)) { flashDq<T, 64>(dO, Q, K, V, M, tiles, stats, dsum, dQ, d); }     \
  extern "C" __global__ void __launch_bounds__(128) NAME##_dq_d128(LSFT_FLASH_DQ(T)) { flashDq<T, 128>(dO, Q, K, V, M, tiles, stats, dsum, dQ, d); }   \
  extern "C" __global__ void __launch_bounds__(256) NAME##_dot(const T* dO, const T* O, float* dsum, FlashDims d) { flashDot<T>(dO, O, dsum, d); }
LSFT_FLASH(flash_bf16, bf16)
LSFT_FLASH(flash_f16, f16)
extern "C" __global__ void __launch_bounds__(256) flash_tiles(const float* M, unsigned* tiles, FlashDims d) { flashTiles(M, tiles, d); }
#undef LSFT_FLASH
#undef LSFT_FLASH_FWD
#undef LSFT_FLASH_DKDV
#undef LSFT_FLASH_DQ
