// MaskedSoftmax(+Grad): one warp per row of S; z = scale·x + mask, y = exp(z − max) / Σ, stats =
// (max, Σ); the gradient recomputes y from x and the stats. Kernels msoftmax_{f32,bf16,f16}[_grad];
// launched by ops/masked_softmax.cc with a RowMap (fused_shared.h) by value.
#include "common.cuh"
#include "../fused_shared.h"

using latent_sft::RowMap;
using latent_sft::maskOffset;

// Rows of S ≤ 32·4·MS_G (kSoftmaxRegisterMaxS) elements with S % 4 == 0 and aligned rows: each lane
// keeps its groups of 4 in registers (one read of x, one write of y). Same float32 operations per
// element as the loop version.
#define MS_G latent_sft::kSoftmaxGroups
__device__ __forceinline__ void mask4(const float* mr, long long mlast, long long gi, float* mv) {
  if (mlast) { F4 q = reinterpret_cast<const F4*>(mr)[gi]; mv[0] = q.x; mv[1] = q.y; mv[2] = q.z; mv[3] = q.w; }
  else { mv[0] = mv[1] = mv[2] = mv[3] = mr[0]; }
}

template <typename T>
__device__ __forceinline__ void msoftmax(const T* __restrict__ x, const float* __restrict__ m, T* __restrict__ y, float* __restrict__ stats,
    long long rows, long long S, float scale, const RowMap& rm, int vec) {
  long long row = (long long)blockIdx.x * (blockDim.x >> 5) + (threadIdx.x >> 5);
  if (row >= rows) return;
  int lane = threadIdx.x & 31;
  const T* xr = x + row * S;
  const float* mr = m + maskOffset(rm, row);
  T* yr = y + row * S;
  float mx = __int_as_float(0xff800000), sum = 0.0f;
  if (vec) {
    long long groups = S >> 2;
    float z[MS_G][4];
#pragma unroll
    for (int k = 0; k < MS_G; k++) {
      long long gi = lane + 32 * k;
      if (gi < groups) {
        float xv[4], mv[4];
        Vec4<T>::get(xr, gi, xv);
        mask4(mr, rm.mlast, gi, mv);
#pragma unroll
        for (int e = 0; e < 4; e++) { z[k][e] = scale * xv[e] + mv[e]; mx = fmaxf(mx, z[k][e]); }
      }
    }
    mx = warpMax(mx);
#pragma unroll
    for (int k = 0; k < MS_G; k++)
      if (lane + 32 * k < groups) {
#pragma unroll
        for (int e = 0; e < 4; e++) { z[k][e] = expf(z[k][e] - mx); sum += z[k][e]; }
      }
    sum = warpSum(sum);
#pragma unroll
    for (int k = 0; k < MS_G; k++) {
      long long gi = lane + 32 * k;
      if (gi < groups) {
        float o[4];
#pragma unroll
        for (int e = 0; e < 4; e++) o[e] = z[k][e] / sum;
        Store4<T>::put(yr, gi, o);
      }
    }
  } else {
    for (long long j = lane; j < S; j += 32) mx = fmaxf(mx, scale * tof(xr[j]) + mr[j * rm.mlast]);
    mx = warpMax(mx);
    for (long long j = lane; j < S; j += 32) sum += expf((scale * tof(xr[j]) + mr[j * rm.mlast]) - mx);
    sum = warpSum(sum);
    for (long long j = lane; j < S; j += 32) put(yr, j, expf((scale * tof(xr[j]) + mr[j * rm.mlast]) - mx) / sum);
  }
  if (lane == 0) { stats[2 * row] = mx; stats[2 * row + 1] = sum; }
}

// dx = scale · y ⊙ (dy − Σ dy·y), y recomputed from x, mask and the forward's (max, Σ) exactly as forward.
template <typename T>
__device__ __forceinline__ void msoftmaxGrad(const T* __restrict__ dy, const T* __restrict__ x, const float* __restrict__ m,
    const float* __restrict__ stats, T* __restrict__ dx, long long rows, long long S, float scale, const RowMap& rm, int vec) {
  long long row = (long long)blockIdx.x * (blockDim.x >> 5) + (threadIdx.x >> 5);
  if (row >= rows) return;
  int lane = threadIdx.x & 31;
  const T* xr = x + row * S;
  const T* dyr = dy + row * S;
  const float* mr = m + maskOffset(rm, row);
  T* dxr = dx + row * S;
  float mx = stats[2 * row], sum = stats[2 * row + 1];
  float t = 0.0f;
  if (vec) {
    long long groups = S >> 2;
    float yv[MS_G][4], dv[MS_G][4];
#pragma unroll
    for (int k = 0; k < MS_G; k++) {
      long long gi = lane + 32 * k;
      if (gi < groups) {
        float xv[4], mv[4];
        Vec4<T>::get(xr, gi, xv);
        Vec4<T>::get(dyr, gi, dv[k]);
        mask4(mr, rm.mlast, gi, mv);
#pragma unroll
        for (int e = 0; e < 4; e++) { yv[k][e] = expf((scale * xv[e] + mv[e]) - mx) / sum; t += dv[k][e] * yv[k][e]; }
      }
    }
    t = warpSum(t);
#pragma unroll
    for (int k = 0; k < MS_G; k++) {
      long long gi = lane + 32 * k;
      if (gi < groups) {
        float o[4];
#pragma unroll
        for (int e = 0; e < 4; e++) o[e] = scale * (yv[k][e] * (dv[k][e] - t));
        Store4<T>::put(dxr, gi, o);
      }
    }
  } else {
    for (long long j = lane; j < S; j += 32) t += tof(dyr[j]) * (expf((scale * tof(xr[j]) + mr[j * rm.mlast]) - mx) / sum);
    t = warpSum(t);
    for (long long j = lane; j < S; j += 32) {
      float yj = expf((scale * tof(xr[j]) + mr[j * rm.mlast]) - mx) / sum;
      put(dxr, j, scale * (yj * (tof(dyr[j]) - t)));
    }
  }
}

#define MSOFTMAX(NAME, T) \
extern "C" __global__ void __launch_bounds__(256) NAME(const T* x, const float* m, T* y, float* stats, long long rows, long long S, float scale, \
    RowMap rm, int vec) { msoftmax<T>(x, m, y, stats, rows, S, scale, rm, vec); } \
extern "C" __global__ void __launch_bounds__(256) NAME##_grad(const T* dy, const T* x, const float* m, const float* stats, T* dx, long long rows, \
    long long S, float scale, RowMap rm, int vec) { msoftmaxGrad<T>(dy, x, m, stats, dx, rows, S, scale, rm, vec); }
MSOFTMAX(msoftmax_f32, float)
MSOFTMAX(msoftmax_bf16, bf16)
MSOFTMAX(msoftmax_f16, f16)

