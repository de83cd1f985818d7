// CEChunkStats / CEChunkGrad (ops/cross_entropy.cc): the chunked LM-head cross-entropy's two passes.
// Stats: one 256-thread block per row (grid-stride over rows), the row max then Σ e^(z − max) in float32
// (4-element loads when the chunk width is a multiple of 4 and z is aligned), block-reduced through
// shared memory; thread 0 writes (max, Σ, z[target]). Grad: elementwise over zT [C, R], the element by
// ceGradElement (fused_shared.h), as the CPU kernel. Kernels ce_{f32,bf16,f16} (stats), ce_{f32,bf16,f16}_grad.
#include "common.cuh"
#include "../fused_shared.h"

// Reduces v over the block (256 threads = 8 warps) with op; every thread gets the result.
template <bool Max>
__device__ __forceinline__ float blockReduce(float v, float* sh) {
  int lane = threadIdx.x & 31, warp = threadIdx.x >> 5;
  v = Max ? warpMax(v) : warpSum(v);
  if (lane == 0) sh[warp] = v;
  __syncthreads();
  float r = sh[0];
  for (int w = 1; w < 8; w++) r = Max ? fmaxf(r, sh[w]) : r + sh[w];
  __syncthreads();
  return r;
}

template <typename T>
__device__ __forceinline__ void ceStats(const T* __restrict__ z, const long long* __restrict__ tgt, float* __restrict__ stats, long long R,
    long long C, long long off, long long vocab, int vec) {
  __shared__ float sh[8];
  for (long long r = blockIdx.x; r < R; r += gridDim.x) {
    const T* row = z + r * C;
    float mx = __int_as_float(0xff800000);
    if (vec) {
      for (long long i = threadIdx.x; i < (C >> 2); i += blockDim.x) {
        float v[4];
        Vec4<T>::get(row, i, v);
        mx = fmaxf(mx, fmaxf(fmaxf(v[0], v[1]), fmaxf(v[2], v[3])));
      }
    } else {
      for (long long c = threadIdx.x; c < C; c += blockDim.x) mx = fmaxf(mx, tof(row[c]));
    }
    mx = blockReduce<true>(mx, sh);
    float s = 0.0f;
    if (vec) {
      for (long long i = threadIdx.x; i < (C >> 2); i += blockDim.x) {
        float v[4];
        Vec4<T>::get(row, i, v);
        for (int k = 0; k < 4; k++) s += expf(v[k] - mx);
      }
    } else {
      for (long long c = threadIdx.x; c < C; c += blockDim.x) s += expf(tof(row[c]) - mx);
    }
    s = blockReduce<false>(s, sh);
    if (threadIdx.x == 0) {
      long long t = tgt[r];
      float picked = t < 0 || t >= vocab ? __int_as_float(0x7fc00000) : t >= off && t < off + C ? tof(row[t - off]) : 0.0f;
      stats[3 * r] = mx;
      stats[3 * r + 1] = s;
      stats[3 * r + 2] = picked;
    }
  }
}

template <typename T>
__device__ __forceinline__ void ceGrad(const T* __restrict__ z, const long long* __restrict__ tgt, const float* __restrict__ lse,
    const float* __restrict__ dlogp, T* __restrict__ out, long long C, long long R, long long off) {
  long long stride = (long long)gridDim.x * blockDim.x;
  for (long long v = blockIdx.y; v < C; v += gridDim.y) {
    for (long long r = (long long)blockIdx.x * blockDim.x + threadIdx.x; r < R; r += stride) {
      long long i = v * R + r;
      put(out, i, latent_sft::ceGradElement(tof(z[i]), lse[r], dlogp[r], tgt[r] == v + off));
    }
  }
}

#define CE(NAME, T) \
extern "C" __global__ void __launch_bounds__(256) NAME(const T* z, const long long* tgt, float* stats, long long R, long long C, long long off, \
    long long vocab, int vec) { ceStats<T>(z, tgt, stats, R, C, off, vocab, vec); } \
extern "C" __global__ void __launch_bounds__(256) NAME##_grad(const T* z, const long long* tgt, const float* lse, const float* dlogp, T* out, \
    long long C, long long R, long long off) { ceGrad<T>(z, tgt, lse, dlogp, out, C, R, off); }
CE(ce_f32, float)
CE(ce_bf16, bf16)
CE(ce_f16, f16)
