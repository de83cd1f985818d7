// Rope: one grid-stride pass over the pairs (x[j], x[j + hd/2]) of every row (token, head) of x [rows, hd],
// cos / sinSigned read at the row's token (row / heads); each pair by ropePair (fused_shared.h), the function
// the CPU kernel runs, so the results are bit for bit the CPU's. 4 pairs per thread step when hd/2 % 4 == 0 and
// every pointer is aligned to 4 elements (vec = 1; then every row and half row is too). Kernels
// rope_{f32,bf16,f16}; launched by ops/rope.cc.
#include "common.cuh"
#include "../fused_shared.h"

template <typename T>
__device__ __forceinline__ void rope(long long rows, long long heads, long long half, int transpose, int vec, const T* __restrict__ x,
    const T* __restrict__ c, const T* __restrict__ s, T* __restrict__ y) {
  long long tid = (long long)blockIdx.x * blockDim.x + threadIdx.x, stride = (long long)gridDim.x * blockDim.x;
  long long hd = 2 * half;
  if (vec) {
    long long q4 = half >> 2, n = rows * q4;
    for (long long i = tid; i < n; i += stride) {
      long long r = i / q4, q = i - r * q4;
      long long xo = r * hd, co = (r / heads) * hd;
      float a[4], b[4], c1[4], c2[4], s1[4], s2[4], y1[4], y2[4];
      Vec4<T>::get(x + xo, q, a);
      Vec4<T>::get(x + xo + half, q, b);
      Vec4<T>::get(c + co, q, c1);
      Vec4<T>::get(c + co + half, q, c2);
      Vec4<T>::get(s + co, q, s1);
      Vec4<T>::get(s + co + half, q, s2);
      for (int k = 0; k < 4; k++) latent_sft::ropePair(a[k], b[k], c1[k], c2[k], s1[k], s2[k], transpose, y1[k], y2[k]);
      Store4<T>::put(y + xo, q, y1);
      Store4<T>::put(y + xo + half, q, y2);
    }
    return;
  }
  long long n = rows * half;
  for (long long i = tid; i < n; i += stride) {
    long long r = i / half, j = i - r * half;
    long long xo = r * hd + j, co = (r / heads) * hd + j;
    float y1, y2;
    latent_sft::ropePair(tof(x[xo]), tof(x[xo + half]), tof(c[co]), tof(c[co + half]), tof(s[co]), tof(s[co + half]), transpose, y1, y2);
    put(y, xo, y1);
    put(y, xo + half, y2);
  }
}

#define ROPE(NAME, T) \
extern "C" __global__ void __launch_bounds__(256) NAME(long long rows, long long heads, long long half, int transpose, int vec, const T* x, \
    const T* c, const T* s, T* y) { rope<T>(rows, heads, half, transpose, vec, x, c, s, y); }
ROPE(rope_f32, float)
ROPE(rope_bf16, bf16)
ROPE(rope_f16, f16)
