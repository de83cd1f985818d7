// VocabTopK: the top k (≤ 64) of each row of float32 logits x [B, V] and the row's log-sum-exp of x·invT,
// in two kernels (launched by ops/vocab_topk.cc):
//   vocab_topk_partial  grid (chunks, B), 256 threads: chunk c of a row (kVtkChunk elements) → its top k as
//                       64-bit keys (vtkKey, fused_shared.h) into cand [B, chunks, k], and its (max, Σ e^(s − max))
//                       of s = x·invT into part [B, chunks, 2]
//   vocab_topk_final    grid (B), 32 threads: the top k of a row's chunks·k candidates → values (x itself), int64
//                       indices, and lse = M + log Σ_c S_c·e^(M_c − M)
// One 32-bit word of order key and one of ~index make every key distinct and ordered as ONNX TopK orders
// (larger value first, equal values → the lower index first), so the selection is exact.
//
// A warp keeps its best k keys as a list sorted descending across the lanes: one key per lane (k ≤ 32) or two
// (the top 32 in `a`, the next 32 in `b`). A batch of 32 new keys is only merged when one of them beats the
// list's k-th key (a ballot): after the first few batches almost none does, so most of a row is one load, one
// compare and one e^x per element. ORT's CUDA TopK gives a whole row to one block (radix select, ~0.8 ms for
// [64, 128256] on an H200); here a row spreads over V / latent_sft::kVtkChunk blocks.
#include "common.cuh"
#include "../fused_shared.h"

typedef unsigned long long u64;
#define VTK_FULL 0xffffffffu
#define VTK_NEG_INF __int_as_float(0xff800000)

__device__ __forceinline__ u64 vtkMax(u64 x, u64 y) { return x > y ? x : y; }
__device__ __forceinline__ u64 vtkMin(u64 x, u64 y) { return x < y ? x : y; }

// One key per lane → the warp's 32 keys sorted descending (bitonic network).
__device__ __forceinline__ u64 vtkSort32(u64 v) {
  int lane = threadIdx.x & 31;
  for (int k = 2; k <= 32; k <<= 1)
    for (int j = k >> 1; j > 0; j >>= 1) {
      u64 p = __shfl_xor_sync(VTK_FULL, v, j);
      bool desc = (lane & k) == 0;  // this run of k lanes ends descending (the last run: all of them)
      v = (((lane & j) == 0) == desc) ? vtkMax(v, p) : vtkMin(v, p);
    }
  return v;
}

// A bitonic sequence across the warp → sorted descending.
__device__ __forceinline__ u64 vtkBitonicDesc(u64 v) {
  int lane = threadIdx.x & 31;
  for (int j = 16; j > 0; j >>= 1) {
    u64 p = __shfl_xor_sync(VTK_FULL, v, j);
    v = (lane & j) == 0 ? vtkMax(v, p) : vtkMin(v, p);
  }
  return v;
}

// The warp's sorted list of its best keys: a (ranks 0–31), b (ranks 32–63, two-register lists only).
struct VtkList {
  u64 a, b;
};

// Adds 32 keys sorted descending (one per lane) to the list, keeping its best 32 or 64, sorted.
__device__ __forceinline__ void vtkInsert(VtkList& l, u64 n, bool two) {
  // The best 32 of (last register ∪ n): max against n reversed is bitonic and holds them.
  u64 nr = __shfl_xor_sync(VTK_FULL, n, 31);
  if (!two) {
    l.a = vtkBitonicDesc(vtkMax(l.a, nr));
    return;
  }
  u64 nb = vtkBitonicDesc(vtkMax(l.b, nr));
  // Every key of a beats every key of the old b, so the best 64 are a ∪ nb: split them into the top 32
  // and the next 32 (max / min against nb reversed), each then sorted.
  u64 br = __shfl_xor_sync(VTK_FULL, nb, 31);
  u64 hi = vtkMax(l.a, br), lo = vtkMin(l.a, br);
  l.a = vtkBitonicDesc(hi);
  l.b = vtkBitonicDesc(lo);
}

// The list's k-th best key (rank k − 1), on every lane.
__device__ __forceinline__ u64 vtkKth(const VtkList& l, int k) {
  return k > 32 ? __shfl_sync(VTK_FULL, l.b, k - 33) : __shfl_sync(VTK_FULL, l.a, k - 1);
}

// Online (max, Σ e^(s − max)) of one more s; −∞ adds nothing.
__device__ __forceinline__ void vtkStat(float& m, float& s, float v) {
  if (v == VTK_NEG_INF) return;
  if (v > m) {
    s = s * expf(m - v) + 1.0f;  // m = −∞ at first: s = 0·0 + 1
    m = v;
  } else {
    s += expf(v - m);
  }
}

// (m1, s1) ⊕ (m2, s2).
__device__ __forceinline__ void vtkCombine(float& m1, float& s1, float m2, float s2) {
  float m = m1 > m2 ? m1 : m2;
  if (m == VTK_NEG_INF) return;
  s1 = s1 * expf(m1 - m) + s2 * expf(m2 - m);
  m1 = m;
}

extern "C" __global__ void __launch_bounds__(256) vocab_topk_partial(const float* __restrict__ x, const float* __restrict__ invT,
    long long V, int k, int chunks, u64* __restrict__ cand, float* __restrict__ part) {
  __shared__ u64 lists[8][64];
  __shared__ float stats[8][2];
  int row = blockIdx.y, c = blockIdx.x, warp = threadIdx.x >> 5, lane = threadIdx.x & 31;
  bool two = k > 32;
  float t = invT[0];
  const float* xr = x + (long long)row * V;
  long long begin = (long long)c * latent_sft::kVtkChunk, end = begin + latent_sft::kVtkChunk < V ? begin + latent_sft::kVtkChunk : V;
  VtkList l = {0ull, 0ull};
  u64 kth = 0;
  float m = VTK_NEG_INF, s = 0.0f;
  for (long long base = begin + warp * 32; base < end; base += 256) {
    long long i = base + lane;
    u64 key = 0;
    if (i < end) {
      float v = xr[i];
      key = latent_sft::vtkKey(v, (unsigned)i);
      vtkStat(m, s, v * t);
    }
    if (__any_sync(VTK_FULL, key > kth)) {
      vtkInsert(l, vtkSort32(key), two);
      kth = vtkKth(l, k);
    }
  }
  // The warp's (m, s), then the block's.
  for (int o = 16; o > 0; o >>= 1) {
    float m2 = __shfl_xor_sync(VTK_FULL, m, o), s2 = __shfl_xor_sync(VTK_FULL, s, o);
    vtkCombine(m, s, m2, s2);
  }
  lists[warp][lane] = l.a;
  lists[warp][32 + lane] = l.b;
  if (lane == 0) {
    stats[warp][0] = m;
    stats[warp][1] = s;
  }
  __syncthreads();
  if (warp != 0) return;
  for (int w = 1; w < 8; w++) {
    vtkInsert(l, lists[w][lane], two);
    if (two) vtkInsert(l, lists[w][32 + lane], two);
  }
  long long at = ((long long)row * chunks + c) * k;
  if (lane < k) cand[at + lane] = l.a;
  if (two && 32 + lane < k) cand[at + 32 + lane] = l.b;
  if (lane == 0) {
    for (int w = 1; w < 8; w++) vtkCombine(m, s, stats[w][0], stats[w][1]);
    part[((long long)row * chunks + c) * 2] = m;
    part[((long long)row * chunks + c) * 2 + 1] = s;
  }
}

extern "C" __global__ void __launch_bounds__(32) vocab_topk_final(const float* __restrict__ x, long long V, int k, int chunks,
    const u64* __restrict__ cand, const float* __restrict__ part, float* __restrict__ values, long long* __restrict__ indices,
    float* __restrict__ lse) {
  int row = blockIdx.x, lane = threadIdx.x & 31;
  bool two = k > 32;
  long long n = (long long)chunks * k;
  const u64* cr = cand + (long long)row * n;
  VtkList l = {0ull, 0ull};
  for (long long base = 0; base < n; base += 32) {
    u64 key = base + lane < n ? cr[base + lane] : 0ull;
    vtkInsert(l, vtkSort32(key), two);
  }
  for (int r = 0; r < (two ? 2 : 1); r++) {
    int rank = r * 32 + lane;
    if (rank < k) {
      long long i = latent_sft::vtkIndex(r == 0 ? l.a : l.b);
      values[(long long)row * k + rank] = x[(long long)row * V + i];
      indices[(long long)row * k + rank] = i;
    }
  }
  if (lane == 0) {
    const float* pr = part + (long long)row * chunks * 2;
    float m = pr[0], s = pr[1];
    for (int c = 1; c < chunks; c++) vtkCombine(m, s, pr[2 * c], pr[2 * c + 1]);
    lse[row] = m + logf(s);
  }
}
