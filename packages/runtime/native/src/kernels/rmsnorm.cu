// RMSNorm(+Grad): blocks stride over rows; thread t owns columns t, t + blockDim.x, ... Kernels
// rmsnorm_{f32,bf16,f16}[_grad]; the gradient's dW partials live in D floats of dynamic shared memory
// (D ≤ kRmsMaxD, checked by ops/rmsnorm.cc, which launches them), one row per block, which rmsnorm_dw_sum then sums.
#include "common.cuh"

// The block's sum of v, the same float in every thread (each sums the warp totals in one order).
__device__ __forceinline__ float blockSum(float v, float* sh) {
  v = warpSum(v);
  __syncthreads();
  if ((threadIdx.x & 31) == 0) sh[threadIdx.x >> 5] = v;
  __syncthreads();
  float t = 0.0f;
  for (int i = 0; i < (int)(blockDim.x >> 5); i++) t += sh[i];
  return t;
}

// y = w ⊙ round(x·r), r = 1/√(Σx²/D + ε); R[row] = r.
template <typename T>
__device__ __forceinline__ void rmsnorm(const T* __restrict__ x, const T* __restrict__ w, T* __restrict__ y, float* __restrict__ r,
    long long rows, long long D, float eps) {
  __shared__ float sh[32];
  for (long long row = blockIdx.x; row < rows; row += gridDim.x) {
    const T* xr = x + row * D;
    T* yr = y + row * D;
    float s = 0.0f;
    for (long long j = threadIdx.x; j < D; j += blockDim.x) { float v = tof(xr[j]); s += v * v; }
    s = blockSum(s, sh);
    float rs = 1.0f / sqrtf(s / (float)D + eps);
    for (long long j = threadIdx.x; j < D; j += blockDim.x) put(yr, j, tof(w[j]) * rnd<T>(tof(xr[j]) * rs));
    if (threadIdx.x == 0) r[row] = rs;
  }
}

// g = dy ⊙ w, n = x·r: dx = r·(g − n·Σ(g·n)/D); dW partial of this block (float32, shared) += dy ⊙ round(n).
template <typename T>
__device__ __forceinline__ void rmsnormGrad(const T* __restrict__ dy, const T* __restrict__ x, const T* __restrict__ w,
    const float* __restrict__ r, T* __restrict__ dx, float* __restrict__ dwp, long long rows, long long D) {
  __shared__ float sh[32];
  extern __shared__ float acc[];
  for (long long j = threadIdx.x; j < D; j += blockDim.x) acc[j] = 0.0f;
  for (long long row = blockIdx.x; row < rows; row += gridDim.x) {
    const T* xr = x + row * D;
    const T* dyr = dy + row * D;
    T* dxr = dx + row * D;
    float rs = r[row], t = 0.0f;
    for (long long j = threadIdx.x; j < D; j += blockDim.x) t += (tof(dyr[j]) * tof(w[j])) * (tof(xr[j]) * rs);
    t = blockSum(t, sh) / (float)D;
    for (long long j = threadIdx.x; j < D; j += blockDim.x) {
      float n = tof(xr[j]) * rs, d = tof(dyr[j]);
      put(dxr, j, rs * (d * tof(w[j]) - n * t));
      acc[j] += d * rnd<T>(n);
    }
  }
  for (long long j = threadIdx.x; j < D; j += blockDim.x) dwp[(long long)blockIdx.x * D + j] = acc[j];
}

// dW = the sum of RMSNormGrad's P partial rows dwp [P, D] (its second pass on CUDA): a block per 32 columns, its 8
// warps summing rows w, w + 8, ... in order, then thread w = 0 their 8 sums in order (deterministic, no atomics).
extern "C" __global__ void __launch_bounds__(256) rmsnorm_dw_sum(const float* __restrict__ dwp, float* __restrict__ dw, long long P, long long D) {
  __shared__ float sh[8][33];
  const int tx = threadIdx.x & 31, ty = threadIdx.x >> 5;
  const long long c = (long long)blockIdx.x * 32 + tx;
  float s = 0.0f;
  if (c < D) {
#pragma unroll 8
    for (long long p = ty; p < P; p += 8) s += dwp[p * D + c];
  }
  sh[ty][tx] = s;
  __syncthreads();
  if (ty == 0 && c < D) {
    float t = 0.0f;
    for (int i = 0; i < 8; i++) t += sh[i][tx];
    dw[c] = t;
  }
}

#define RMSNORM(NAME, T) \
extern "C" __global__ void __launch_bounds__(256) NAME(const T* x, const T* w, T* y, float* r, long long rows, long long D, float eps) { \
  rmsnorm<T>(x, w, y, r, rows, D, eps); } \
extern "C" __global__ void __launch_bounds__(256) NAME##_grad(const T* dy, const T* x, const T* w, const float* r, T* dx, float* dwp, \
    long long rows, long long D) { rmsnormGrad<T>(dy, x, w, r, dx, dwp, rows, D); }
RMSNORM(rmsnorm_f32, float)
RMSNORM(rmsnorm_bf16, bf16)
RMSNORM(rmsnorm_f16, f16)
