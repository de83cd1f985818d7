// DecodeAttention: one decode step of grouped-query attention on a static KV cache (ops/decode_attention.cc).
// One block per (row b, KV head): it rotates the rep = H / kvH query heads of that KV head and the new key
// (RoPE rotate_half at position pos = seqlens_k[b], from the cos / sin tables), writes the new key and value
// into the cache at pos, then its warps split the keys 0..pos (warp w takes w, w + warps, ...) and keep an
// online softmax per query head (running max, sum, and the weighted value in float32, lane l holding the
// head dims l, l + 32, ...); the warps' partial results are combined in shared memory at the end. Every key
// and value row is read once per block, for all rep heads. Kernels decode_attention_{f32,bf16,f16}; dynamic
// shared memory: (rep·hd + warps·rep·(hd + 2)) floats. Limits (checked by the op): rep ≤ 8, hd ≤ 128, even.
#include "common.cuh"

constexpr int kDecodeMaxRep = 8;
constexpr int kDecodeMaxDimsPerLane = 4;  // hd ≤ 128
#define kDecodeNegInf __int_as_float(0xff800000)

template <typename T>
__device__ __forceinline__ void decodeAttention(const T* __restrict__ q, const T* __restrict__ k, const T* __restrict__ v,
    T* __restrict__ kc, T* __restrict__ vc, const int* __restrict__ seqlens, const T* __restrict__ cosT, const T* __restrict__ sinT,
    T* __restrict__ out, int H, int kvH, int C, int hd, int maxPos, float scale) {
  extern __shared__ float sh[];
  const int b = blockIdx.x / kvH, kh = blockIdx.x % kvH, rep = H / kvH, half = hd / 2;
  int pos = seqlens[b];
  pos = pos < 0 ? 0 : pos >= C ? C - 1 : pos;
  const int ropePos = pos < maxPos ? pos : maxPos - 1;
  float* qs = sh;  // [rep, hd]: the rotated queries, rounded to T as the op stores them
  // The rotated queries of this KV head's group.
  for (int i = threadIdx.x; i < rep * half; i += blockDim.x) {
    const int h = i / half, j = i - h * half;
    const T* qr = q + ((long long)b * H + kh * rep + h) * hd;
    const float c = tof(cosT[(long long)ropePos * half + j]), s = tof(sinT[(long long)ropePos * half + j]);
    const float x1 = tof(qr[j]), x2 = tof(qr[j + half]);
    qs[h * hd + j] = rnd<T>(x1 * c - x2 * s);
    qs[h * hd + j + half] = rnd<T>(x2 * c + x1 * s);
  }
  // The new key (rotated) and value at position pos of this row's cache.
  const long long head = ((long long)b * kvH + kh) * C * hd;
  const T* kr = k + ((long long)b * kvH + kh) * hd;
  const T* vr = v + ((long long)b * kvH + kh) * hd;
  for (int j = threadIdx.x; j < half; j += blockDim.x) {
    const float c = tof(cosT[(long long)ropePos * half + j]), s = tof(sinT[(long long)ropePos * half + j]);
    const float x1 = tof(kr[j]), x2 = tof(kr[j + half]);
    put(kc, head + (long long)pos * hd + j, x1 * c - x2 * s);
    put(kc, head + (long long)pos * hd + j + half, x2 * c + x1 * s);
  }
  for (int j = threadIdx.x; j < hd; j += blockDim.x) vc[head + (long long)pos * hd + j] = vr[j];
  __syncthreads();

  const int lane = threadIdx.x & 31, w = threadIdx.x >> 5, warps = blockDim.x >> 5;
  float m[kDecodeMaxRep], l[kDecodeMaxRep], acc[kDecodeMaxRep][kDecodeMaxDimsPerLane];
#pragma unroll
  for (int h = 0; h < kDecodeMaxRep; h++) {
    m[h] = kDecodeNegInf;
    l[h] = 0.0f;
#pragma unroll
    for (int e = 0; e < kDecodeMaxDimsPerLane; e++) acc[h][e] = 0.0f;
  }
  for (int t = w; t <= pos; t += warps) {
    float kv[kDecodeMaxDimsPerLane], vv[kDecodeMaxDimsPerLane];
#pragma unroll
    for (int e = 0; e < kDecodeMaxDimsPerLane; e++) {
      const int d = lane + 32 * e;
      kv[e] = d < hd ? tof(kc[head + (long long)t * hd + d]) : 0.0f;
      vv[e] = d < hd ? tof(vc[head + (long long)t * hd + d]) : 0.0f;
    }
#pragma unroll
    for (int h = 0; h < kDecodeMaxRep; h++) {
      if (h < rep) {
        float p = 0.0f;
#pragma unroll
        for (int e = 0; e < kDecodeMaxDimsPerLane; e++) {
          const int d = lane + 32 * e;
          if (d < hd) p += qs[h * hd + d] * kv[e];
        }
        p = warpSum(p) * scale;
        const float mn = fmaxf(m[h], p), corr = expf(m[h] - mn), ex = expf(p - mn);
        l[h] = l[h] * corr + ex;
#pragma unroll
        for (int e = 0; e < kDecodeMaxDimsPerLane; e++) acc[h][e] = acc[h][e] * corr + ex * vv[e];
        m[h] = mn;
      }
    }
  }
  // Combine the warps: ms, ls [warps, rep], accs [warps, rep, hd] after the queries.
  float* ms = sh + rep * hd;
  float* ls = ms + warps * rep;
  float* accs = ls + warps * rep;
#pragma unroll
  for (int h = 0; h < kDecodeMaxRep; h++) {
    if (h < rep) {
      if (lane == 0) {
        ms[w * rep + h] = m[h];
        ls[w * rep + h] = l[h];
      }
#pragma unroll
      for (int e = 0; e < kDecodeMaxDimsPerLane; e++) {
        const int d = lane + 32 * e;
        if (d < hd) accs[(w * rep + h) * hd + d] = acc[h][e];
      }
    }
  }
  __syncthreads();
  for (int i = threadIdx.x; i < rep * hd; i += blockDim.x) {
    const int h = i / hd, d = i - h * hd;
    float M = kDecodeNegInf;
    for (int x = 0; x < warps; x++) M = fmaxf(M, ms[x * rep + h]);
    float L = 0.0f, A = 0.0f;
    for (int x = 0; x < warps; x++) {
      const float f = ms[x * rep + h] == kDecodeNegInf ? 0.0f : expf(ms[x * rep + h] - M);
      L += ls[x * rep + h] * f;
      A += accs[(x * rep + h) * hd + d] * f;
    }
    put(out, ((long long)b * H + kh * rep + h) * hd + d, A / L);
  }
}

#define DECODE_ATTENTION(NAME, T) \
extern "C" __global__ void __launch_bounds__(256) NAME(const T* q, const T* k, const T* v, T* kc, T* vc, const int* seqlens, \
    const T* cosT, const T* sinT, T* out, int H, int kvH, int C, int hd, int maxPos, float scale) { \
  decodeAttention<T>(q, k, v, kc, vc, seqlens, cosT, sinT, out, H, kvH, C, hd, maxPos, scale); }
DECODE_ATTENTION(decode_attention_f32, float)
DECODE_ATTENTION(decode_attention_bf16, bf16)
DECODE_ATTENTION(decode_attention_f16, f16)
