// SumSquares: float64 block partials of Σ x² per input (sumsq_{f32,bf16,f16}), then one block adds
// them in a fixed order (sumsq_final): deterministic for a given device. Launched by ops/sum_squares.cc.
#include "common.cuh"

// Per block: the float64 sum of squares of its grid-stride elements, tree-reduced, to partial[blockIdx.x].
template <typename G>
__device__ __forceinline__ void sumsq(const G* __restrict__ x, long long n, int vec, double* __restrict__ partial) {
  __shared__ double s[256];
  long long tid = (long long)blockIdx.x * blockDim.x + threadIdx.x, stride = (long long)gridDim.x * blockDim.x;
  double acc = 0.0;
  long long done = 0;
  if (vec) {
    long long n4 = n >> 2;
    for (long long i = tid; i < n4; i += stride) {
      float e[4];
      Vec4<G>::get(x, i, e);
      double a = e[0], b = e[1], c = e[2], d = e[3];
      acc += (a * a + b * b) + (c * c + d * d);
    }
    done = n4 << 2;
  }
  for (long long i = done + tid; i < n; i += stride) { double a = tof(x[i]); acc += a * a; }
  s[threadIdx.x] = acc;
  __syncthreads();
  for (int k = 128; k > 0; k >>= 1) {
    if (threadIdx.x < k) s[threadIdx.x] += s[threadIdx.x + k];
    __syncthreads();
  }
  if (threadIdx.x == 0) partial[blockIdx.x] = s[0];
}
#define SUMSQ(NAME, G) \
extern "C" __global__ void __launch_bounds__(256) NAME(const G* x, long long n, int vec, double* partial) { sumsq<G>(x, n, vec, partial); }
SUMSQ(sumsq_f32, float)
SUMSQ(sumsq_bf16, bf16)
SUMSQ(sumsq_f16, f16)

// One block of 256: out[0] = (float) the sum of partial[0 .. count).
extern "C" __global__ void __launch_bounds__(256) sumsq_final(const double* __restrict__ partial, long long count, float* out) {
  __shared__ double s[256];
  double acc = 0.0;
  for (long long i = threadIdx.x; i < count; i += blockDim.x) acc += partial[i];
  s[threadIdx.x] = acc;
  __syncthreads();
  for (int k = 128; k > 0; k >>= 1) {
    if (threadIdx.x < k) s[threadIdx.x] += s[threadIdx.x + k];
    __syncthreads();
  }
  if (threadIdx.x == 0) out[0] = (float)s[0];
}
