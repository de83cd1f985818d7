// SeededDropout: y = round(x · (keep ? scale : 0)) over x [N, I], keep = dropoutKeep(a[n], b[i], c[n], d[i])
// (fused_shared.h, the function the CPU kernel runs) from the per-row tables a, c [N, 1] and the
// per-column tables b, d [1, I]; one pass, rows over grid y and columns over grid x (grid-stride both). It is its own backward (dx = SeededDropout(dy)).
// Kernels seeded_dropout_{f32,bf16,f16}; launched by ops/dropout.cc.
#include "common.cuh"
#include "../fused_shared.h"

template <typename T>
__device__ __forceinline__ void seededDropout(long long rows, long long cols, int threshold, float scale, const T* __restrict__ x,
    const int* __restrict__ a, const int* __restrict__ b, const int* __restrict__ c, const int* __restrict__ d, T* __restrict__ y) {
  // Rows over grid y, columns over grid x and the threads: no 64-bit division per element.
  for (long long row = blockIdx.y; row < rows; row += gridDim.y) {
    const int ar = a[row], cr = c[row];
    const long long base = row * cols;
    for (long long col = (long long)blockIdx.x * blockDim.x + threadIdx.x; col < cols; col += (long long)gridDim.x * blockDim.x) {
      float m = latent_sft::dropoutKeep(ar, b[col], cr, d[col], threshold) ? scale : 0.0f;
      put(y, base + col, tof(x[base + col]) * m);
    }
  }
}

#define SEEDED_DROPOUT(NAME, T) \
extern "C" __global__ void __launch_bounds__(256) NAME(long long rows, long long cols, int threshold, float scale, const T* x, const int* a, \
    const int* b, const int* c, const int* d, T* y) { seededDropout<T>(rows, cols, threshold, scale, x, a, b, c, d, y); }
SEEDED_DROPOUT(seeded_dropout_f32, float)
SEEDED_DROPOUT(seeded_dropout_bf16, bf16)
SEEDED_DROPOUT(seeded_dropout_f16, f16)
