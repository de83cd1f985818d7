// SeededDropout: y = round(x · (keep ? scale : 0)) over x [N, I], keep = dropoutKeep(a[n·sa], b[i], c[n·sc], d[i])
// (fused_shared.h, the function the CPU kernel runs): a, c point at a column of the per-row tables (row
// stride sa, sc), b, d at a row of the per-column tables (ops/dropout.cc resolves the indices); one pass,
// rows over grid y and columns over grid x (grid-stride both). It is its own backward (dx = SeededDropout(dy)).
// Kernels seeded_dropout_{f32,bf16,f16}; launched by ops/dropout.cc.
#include "common.cuh"
#include "../fused_shared.h"

template <typename T>
__device__ __forceinline__ void seededDropout(long long rows, long long cols, int threshold, float scale, const T* __restrict__ x,
    const int* __restrict__ a, long long sa, const int* __restrict__ b, const int* __restrict__ c, long long sc, const int* __restrict__ d,
    T* __restrict__ y) {
  // Rows over grid y, columns over grid x and the threads: no 64-bit division per element.
  for (long long row = blockIdx.y; row < rows; row += gridDim.y) {
    const int ar = a[row * sa], cr = c[row * sc];
    const long long base = row * cols;
    for (long long col = (long long)blockIdx.x * blockDim.x + threadIdx.x; col < cols; col += (long long)gridDim.x * blockDim.x) {
      float m = latent_sft::dropoutKeep(ar, b[col], cr, d[col], threshold) ? scale : 0.0f;
      put(y, base + col, tof(x[base + col]) * m);
    }
  }
}

#define SEEDED_DROPOUT(NAME, T) \
extern "C" __global__ void __launch_bounds__(256) NAME(long long rows, long long cols, int threshold, float scale, const T* x, const int* a, \
    long long sa, const int* b, const int* c, long long sc, const int* d, T* y) { seededDropout<T>(rows, cols, threshold, scale, x, a, sa, b, c, sc, d, y); }
SEEDED_DROPOUT(seeded_dropout_f32, float)
SEEDED_DROPOUT(seeded_dropout_bf16, bf16)
SEEDED_DROPOUT(seeded_dropout_f16, f16)

// HashWords: out[i] = hashWord(i, seed, lo, hi) (fused_shared.h) for i < count, grid-stride; the seed is an
// int64 scalar in device memory. Launched by ops/dropout.cc.
extern "C" __global__ void __launch_bounds__(256) hash_words(long long count, long long lo, long long hi, const long long* seed, int* out) {
  const long long s = *seed;
  for (long long i = (long long)blockIdx.x * blockDim.x + threadIdx.x; i < count; i += (long long)gridDim.x * blockDim.x)
    out[i] = latent_sft::hashWord(i, s, lo, hi);
}
