// SwiGLU(+Grad): one grid-stride elementwise pass over gate and up (4 elements per thread step when every
// pointer is aligned to 4 elements, vec = 1), each element by swigluSilu / swigluGateGrad
// (fused_shared.h), the functions the CPU kernel runs. Kernels swiglu_{f32,bf16,f16}[_grad|_packed]; launched
// by ops/swiglu.cc.
#include "common.cuh"
#include "../fused_shared.h"

// y = round(round(g·σ(g)) · u).
template <typename T>
__device__ __forceinline__ void swiglu(long long n, int vec, const T* __restrict__ g, const T* __restrict__ u, T* __restrict__ y) {
  long long tid = (long long)blockIdx.x * blockDim.x + threadIdx.x, stride = (long long)gridDim.x * blockDim.x;
  long long done = 0;
  if (vec) {
    long long n4 = n >> 2;
    for (long long i = tid; i < n4; i += stride) {
      float gg[4], uu[4], yy[4];
      Vec4<T>::get(g, i, gg);
      Vec4<T>::get(u, i, uu);
      for (int k = 0; k < 4; k++) yy[k] = rnd<T>(latent_sft::swigluSilu(gg[k])) * uu[k];
      Store4<T>::put(y, i, yy);
    }
    done = n4 << 2;
  }
  for (long long i = done + tid; i < n; i += stride) put(y, i, rnd<T>(latent_sft::swigluSilu(tof(g[i]))) * tof(u[i]));
}

// dGate = round((dy·u)·(s·(1 + g·(1 − s)))), dUp = round(dy · round(g·σ(g))).
template <typename T>
__device__ __forceinline__ void swigluGrad(long long n, int vec, const T* __restrict__ dy, const T* __restrict__ g, const T* __restrict__ u,
    T* __restrict__ dg, T* __restrict__ du) {
  long long tid = (long long)blockIdx.x * blockDim.x + threadIdx.x, stride = (long long)gridDim.x * blockDim.x;
  long long done = 0;
  if (vec) {
    long long n4 = n >> 2;
    for (long long i = tid; i < n4; i += stride) {
      float d[4], gg[4], uu[4], a[4], b[4];
      Vec4<T>::get(dy, i, d);
      Vec4<T>::get(g, i, gg);
      Vec4<T>::get(u, i, uu);
      for (int k = 0; k < 4; k++) {
        a[k] = latent_sft::swigluGateGrad(d[k], gg[k], uu[k]);
        b[k] = d[k] * rnd<T>(latent_sft::swigluSilu(gg[k]));
      }
      Store4<T>::put(dg, i, a);
      Store4<T>::put(du, i, b);
    }
    done = n4 << 2;
  }
  for (long long i = done + tid; i < n; i += stride) {
    float d = tof(dy[i]), gv = tof(g[i]), uv = tof(u[i]);
    put(dg, i, latent_sft::swigluGateGrad(d, gv, uv));
    put(du, i, d * rnd<T>(latent_sft::swigluSilu(gv)));
  }
}

// SwiGLUPacked: x [rows, 2F] holds gate (columns [0, F)) and up ([F, 2F)) of each row, y [rows, F] as swiglu's.
// vec = 1 when F % 4 == 0 and x, y are aligned to 4 elements (then a 4-group never straddles a row).
template <typename T>
__device__ __forceinline__ void swigluPacked(long long rows, long long F, int vec, const T* __restrict__ x, T* __restrict__ y) {
  long long tid = (long long)blockIdx.x * blockDim.x + threadIdx.x, stride = (long long)gridDim.x * blockDim.x;
  long long n = rows * F;
  if (vec) {
    long long f4 = F >> 2;
    for (long long i = tid; i < (n >> 2); i += stride) {
      long long r = i / f4, c = i - r * f4;
      float gg[4], uu[4], yy[4];
      Vec4<T>::get(x + r * 2 * F, c, gg);
      Vec4<T>::get(x + r * 2 * F + F, c, uu);
      for (int k = 0; k < 4; k++) yy[k] = rnd<T>(latent_sft::swigluSilu(gg[k])) * uu[k];
      Store4<T>::put(y, i, yy);
    }
    return;
  }
  for (long long i = tid; i < n; i += stride) {
    long long r = i / F, c = i - r * F;
    put(y, i, rnd<T>(latent_sft::swigluSilu(tof(x[r * 2 * F + c]))) * tof(x[r * 2 * F + F + c]));
  }
}

#define SWIGLU(NAME, T) \
extern "C" __global__ void __launch_bounds__(256) NAME(long long n, int vec, const T* g, const T* u, T* y) { swiglu<T>(n, vec, g, u, y); } \
extern "C" __global__ void __launch_bounds__(256) NAME##_grad(long long n, int vec, const T* dy, const T* g, const T* u, T* dg, T* du) { \
  swigluGrad<T>(n, vec, dy, g, u, dg, du); } \
extern "C" __global__ void __launch_bounds__(256) NAME##_packed(long long rows, long long F, int vec, const T* x, T* y) { \
  swigluPacked<T>(rows, F, vec, x, y); }
SWIGLU(swiglu_f32, float)
SWIGLU(swiglu_bf16, bf16)
SWIGLU(swiglu_f16, f16)
