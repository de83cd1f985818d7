// Fused optimizer ops, domain "latent_sft", with a CPU and a CUDA kernel each.
//
// ORT's inference build (what onnxruntime-node ships) has no fused optimizer kernels: AdamW written
// with standard ops is ~14 elementwise passes over every parameter, and a global grad norm is one
// cuDNN reduction per tensor with a fixed per-call cost. These two ops do the same arithmetic in one
// pass (docs/performance.md has the measurements):
//
//   AdamW(p f32, g f32|bf16|f16, m f32, v f32, step_size, decay, bc2_sqrt, coef: f32 scalars)
//       -> p', m', v' (f32), attributes beta2, one_minus_beta1, one_minus_beta2, eps (float), per element
//     gr = g·coef; pd = p·decay; m' = m + (1−β1)(gr − m); v' = v·β2 + ((1−β2)·gr)·gr;
//     p' = pd − step_size · (m' / (sqrt(v')/bc2_sqrt + eps))
//   each operation rounded to float32 in this order: bit for bit what the same formula written with
//   ONNX Mul/Add/Sub/Div/Sqrt computes (no FMA contraction: NVRTC -fmad=false, -ffp-contract=off).
//   SumSquares(x_1 .. x_k, any float dtype) -> float32 scalar Σ_i Σ x_i², accumulated in float64
//   in a fixed order (deterministic for a given device).
//
// CUDA kernels are compiled at run time with NVRTC (PTX for the device's compute capability, once per
// process) and launched with the driver API on ORT's compute stream; libcuda and libnvrtc are opened
// with dlopen, so the addon builds and loads on machines without CUDA.
#include "fused_ops.h"

#include <dlfcn.h>

#include <cmath>
#include <cstdint>
#include <algorithm>
#include <atomic>
#include <cstring>
#include <map>
#include <memory>
#include <mutex>
#include <stdexcept>
#include <string>
#include <vector>

namespace latent_sft {
namespace {

// ---------------------------------------------------------------------------------------------------
// Host-side element conversion

inline float bf16ToFloat(uint16_t b) {
  uint32_t u = static_cast<uint32_t>(b) << 16;
  float f;
  std::memcpy(&f, &u, 4);
  return f;
}

inline float f16ToFloat(uint16_t h) {
  uint32_t sign = static_cast<uint32_t>(h & 0x8000u) << 16;
  uint32_t exp = (h >> 10) & 0x1fu, man = h & 0x3ffu, u;
  if (exp == 0) {
    if (man == 0) {
      u = sign;
    } else {  // subnormal: normalize
      int e = -1;
      do {
        e++;
        man <<= 1;
      } while ((man & 0x400u) == 0);
      u = sign | (static_cast<uint32_t>(127 - 15 - e) << 23) | ((man & 0x3ffu) << 13);
    }
  } else if (exp == 0x1f) {
    u = sign | 0x7f800000u | (man << 13);
  } else {
    u = sign | ((exp + 127 - 15) << 23) | (man << 13);
  }
  float f;
  std::memcpy(&f, &u, 4);
  return f;
}

/** Element i of a float tensor of dtype t, as float. */
inline float loadAsFloat(const void* data, ONNXTensorElementDataType t, size_t i) {
  switch (t) {
    case ONNX_TENSOR_ELEMENT_DATA_TYPE_FLOAT: return static_cast<const float*>(data)[i];
    case ONNX_TENSOR_ELEMENT_DATA_TYPE_BFLOAT16: return bf16ToFloat(static_cast<const uint16_t*>(data)[i]);
    case ONNX_TENSOR_ELEMENT_DATA_TYPE_FLOAT16: return f16ToFloat(static_cast<const uint16_t*>(data)[i]);
    default: throw std::runtime_error("unsupported dtype");
  }
}

inline uint16_t floatToBf16(float v) {
  uint32_t u;
  std::memcpy(&u, &v, 4);
  if ((u & 0x7fffffffu) > 0x7f800000u) return static_cast<uint16_t>((u >> 16) | 0x40u);
  return static_cast<uint16_t>((u + 0x7fffu + ((u >> 16) & 1u)) >> 16);
}

/** float32 → float16 bits, round to nearest even (overflow → inf, NaN kept quiet). */
inline uint16_t floatToF16(float v) {
  uint32_t u;
  std::memcpy(&u, &v, 4);
  uint32_t sign = (u >> 16) & 0x8000u;
  uint32_t a = u & 0x7fffffffu;
  if (a > 0x7f800000u) return static_cast<uint16_t>(sign | 0x7e00u);
  if (a >= 0x477ff000u) return static_cast<uint16_t>(sign | 0x7c00u);  // ≥ 65520 rounds to inf
  if (a < 0x38800000u) {                                               // below 2^-14: subnormal or zero
    if (a < 0x33000000u) return static_cast<uint16_t>(sign);           // < 2^-25 rounds to 0
    uint32_t e = a >> 23, man = (a & 0x7fffffu) | 0x800000u;
    uint32_t shift = 126 - e;  // 14 + (113 − e) − 1
    uint32_t q = man >> shift, rem = man & ((1u << shift) - 1), half = 1u << (shift - 1);
    if (rem > half || (rem == half && (q & 1u))) q++;
    return static_cast<uint16_t>(sign | q);
  }
  uint32_t r = a - 0x38000000u;  // rebias exponent 127 → 15
  uint32_t q = r >> 13, rem = r & 0x1fffu;
  if (rem > 0x1000u || (rem == 0x1000u && (q & 1u))) q++;
  return static_cast<uint16_t>(sign | q);
}

/** Stores float v as element i of a tensor of dtype t. */
inline void storeFromFloat(void* data, ONNXTensorElementDataType t, size_t i, float v) {
  if (t == ONNX_TENSOR_ELEMENT_DATA_TYPE_FLOAT) static_cast<float*>(data)[i] = v;
  else if (t == ONNX_TENSOR_ELEMENT_DATA_TYPE_BFLOAT16) static_cast<uint16_t*>(data)[i] = floatToBf16(v);
  else static_cast<uint16_t*>(data)[i] = floatToF16(v);
}

/** v rounded to t's precision (as storing and loading it would), as float. */
inline float roundTo(ONNXTensorElementDataType t, float v) {
  if (t == ONNX_TENSOR_ELEMENT_DATA_TYPE_BFLOAT16) return bf16ToFloat(floatToBf16(v));
  if (t == ONNX_TENSOR_ELEMENT_DATA_TYPE_FLOAT16) return f16ToFloat(floatToF16(v));
  return v;
}

const char* floatTypeName(ONNXTensorElementDataType t) {
  switch (t) {
    case ONNX_TENSOR_ELEMENT_DATA_TYPE_FLOAT: return "f32";
    case ONNX_TENSOR_ELEMENT_DATA_TYPE_BFLOAT16: return "bf16";
    case ONNX_TENSOR_ELEMENT_DATA_TYPE_FLOAT16: return "f16";
    default: return nullptr;
  }
}

size_t dtypeSize(ONNXTensorElementDataType t) { return t == ONNX_TENSOR_ELEMENT_DATA_TYPE_FLOAT ? 4 : 2; }

// ---------------------------------------------------------------------------------------------------
// CUDA: driver API + NVRTC through dlopen

const char* kCudaSource = R"CUDA(
typedef unsigned short u16;
typedef unsigned int u32;
struct bf16 { u16 b; };
struct f16 { u16 b; };
struct alignas(16) F4 { float x, y, z, w; };
struct alignas(8) U2 { u32 x, y; };
struct alignas(16) D2 { double x, y; };

__device__ __forceinline__ float tof(float x) { return x; }
__device__ __forceinline__ float tof(bf16 x) { return __uint_as_float(((u32)x.b) << 16); }
__device__ __forceinline__ float h2f(u32 h) { float f; unsigned short s = (unsigned short)h; asm("cvt.f32.f16 %0, %1;" : "=f"(f) : "h"(s)); return f; }
__device__ __forceinline__ float tof(f16 x) { return h2f(x.b); }

template <typename G> struct Vec4;
template <> struct Vec4<float> {
  static __device__ __forceinline__ void get(const float* g, long long i, float* o) {
    F4 x = reinterpret_cast<const F4*>(g)[i]; o[0] = x.x; o[1] = x.y; o[2] = x.z; o[3] = x.w;
  }
};
template <> struct Vec4<bf16> {
  static __device__ __forceinline__ void get(const bf16* g, long long i, float* o) {
    U2 x = reinterpret_cast<const U2*>(g)[i];
    o[0] = __uint_as_float(x.x << 16); o[1] = __uint_as_float(x.x & 0xffff0000u);
    o[2] = __uint_as_float(x.y << 16); o[3] = __uint_as_float(x.y & 0xffff0000u);
  }
};
template <> struct Vec4<f16> {
  static __device__ __forceinline__ void get(const f16* g, long long i, float* o) {
    U2 x = reinterpret_cast<const U2*>(g)[i];
    o[0] = h2f(x.x & 0xffffu); o[1] = h2f(x.x >> 16); o[2] = h2f(x.y & 0xffffu); o[3] = h2f(x.y >> 16);
  }
};

struct Hyper { float step, decay, bc2, coef, b2, omb1, omb2, eps; };

__device__ __forceinline__ void upd(const Hyper& h, float p, float g, float m, float v, float& po, float& mo, float& vo) {
  float gr = g * h.coef;
  float pd = p * h.decay;
  float mn = m + h.omb1 * (gr - m);
  float vn = v * h.b2 + (h.omb2 * gr) * gr;
  float den = sqrtf(vn) / h.bc2 + h.eps;
  po = pd - h.step * (mn / den);
  mo = mn;
  vo = vn;
}

template <typename G>
__device__ __forceinline__ void adamw(long long n, int vec, float* __restrict__ po, float* __restrict__ mo, float* __restrict__ vo,
    const float* __restrict__ p, const G* __restrict__ g, const float* __restrict__ m, const float* __restrict__ v,
    const float* sp, const float* dp, const float* bp, const float* cp, float b2, float omb1, float omb2, float eps) {
  Hyper h = {*sp, *dp, *bp, *cp, b2, omb1, omb2, eps};
  long long tid = (long long)blockIdx.x * blockDim.x + threadIdx.x, stride = (long long)gridDim.x * blockDim.x;
  long long done = 0;
  if (vec) {
    long long n4 = n >> 2;
    for (long long i = tid; i < n4; i += stride) {
      F4 P = reinterpret_cast<const F4*>(p)[i], M = reinterpret_cast<const F4*>(m)[i], V = reinterpret_cast<const F4*>(v)[i];
      float gg[4];
      Vec4<G>::get(g, i, gg);
      F4 PO, MO, VO;
      upd(h, P.x, gg[0], M.x, V.x, PO.x, MO.x, VO.x);
      upd(h, P.y, gg[1], M.y, V.y, PO.y, MO.y, VO.y);
      upd(h, P.z, gg[2], M.z, V.z, PO.z, MO.z, VO.z);
      upd(h, P.w, gg[3], M.w, V.w, PO.w, MO.w, VO.w);
      reinterpret_cast<F4*>(po)[i] = PO; reinterpret_cast<F4*>(mo)[i] = MO; reinterpret_cast<F4*>(vo)[i] = VO;
    }
    done = n4 << 2;
  }
  for (long long i = done + tid; i < n; i += stride) upd(h, p[i], tof(g[i]), m[i], v[i], po[i], mo[i], vo[i]);
}

#define ADAMW(NAME, G) \
extern "C" __global__ void __launch_bounds__(256) NAME(long long n, int vec, float* po, float* mo, float* vo, const float* p, const G* g, \
    const float* m, const float* v, const float* sp, const float* dp, const float* bp, const float* cp, \
    float b2, float omb1, float omb2, float eps) { adamw<G>(n, vec, po, mo, vo, p, g, m, v, sp, dp, bp, cp, b2, omb1, omb2, eps); }
ADAMW(adamw_f32, float)
ADAMW(adamw_bf16, bf16)
ADAMW(adamw_f16, f16)

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
// ---- MaskedSoftmax: one warp per row of S; z = scale·x + mask, y = exp(z − max) / Σ, stats = (max, Σ).
struct RowMap { long long nd; long long dims[8]; long long mstr[8]; long long mlast; };

__device__ __forceinline__ long long maskOffset(const RowMap& rm, long long r) {
  long long off = 0;
  for (long long d = rm.nd - 1; d >= 0; d--) { long long q = r / rm.dims[d]; off += (r - q * rm.dims[d]) * rm.mstr[d]; r = q; }
  return off;
}
__device__ __forceinline__ void put(float* p, long long i, float v) { p[i] = v; }
__device__ __forceinline__ u16 f2bf(float v) {
  u32 u = __float_as_uint(v);
  if ((u & 0x7fffffffu) > 0x7f800000u) return (u16)((u >> 16) | 0x40u);
  return (u16)((u + 0x7fffu + ((u >> 16) & 1u)) >> 16);
}
__device__ __forceinline__ u16 f2h(float v) { unsigned short h; asm("cvt.rn.f16.f32 %0, %1;" : "=h"(h) : "f"(v)); return h; }
__device__ __forceinline__ void put(bf16* p, long long i, float v) { p[i].b = f2bf(v); }
__device__ __forceinline__ void put(f16* p, long long i, float v) { p[i].b = f2h(v); }
__device__ __forceinline__ float warpMax(float v) { for (int o = 16; o > 0; o >>= 1) v = fmaxf(v, __shfl_xor_sync(0xffffffffu, v, o)); return v; }
__device__ __forceinline__ float warpSum(float v) { for (int o = 16; o > 0; o >>= 1) v += __shfl_xor_sync(0xffffffffu, v, o); return v; }

template <typename T> struct Store4;
template <> struct Store4<float> {
  static __device__ __forceinline__ void put(float* p, long long i, const float* v) { F4 o = {v[0], v[1], v[2], v[3]}; reinterpret_cast<F4*>(p)[i] = o; }
};
template <> struct Store4<bf16> {
  static __device__ __forceinline__ void put(bf16* p, long long i, const float* v) {
    U2 o = {(u32)f2bf(v[0]) | ((u32)f2bf(v[1]) << 16), (u32)f2bf(v[2]) | ((u32)f2bf(v[3]) << 16)};
    reinterpret_cast<U2*>(p)[i] = o;
  }
};
template <> struct Store4<f16> {
  static __device__ __forceinline__ void put(f16* p, long long i, const float* v) {
    U2 o = {(u32)f2h(v[0]) | ((u32)f2h(v[1]) << 16), (u32)f2h(v[2]) | ((u32)f2h(v[3]) << 16)};
    reinterpret_cast<U2*>(p)[i] = o;
  }
};

// Rows of S ≤ 32·4·MS_G elements with S % 4 == 0 and aligned rows: each lane keeps its groups of 4 in
// registers (one read of x, one write of y). Same float32 operations per element as the loop version.
#define MS_G 8
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

// ---- RMSNorm: blocks stride over rows; thread t owns columns t, t + blockDim.x, ...
template <typename T> __device__ __forceinline__ float rnd(float v);
template <> __device__ __forceinline__ float rnd<float>(float v) { return v; }
template <> __device__ __forceinline__ float rnd<bf16>(float v) { bf16 b; b.b = f2bf(v); return tof(b); }
template <> __device__ __forceinline__ float rnd<f16>(float v) { return h2f(f2h(v)); }

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

#define RMSNORM(NAME, T) \
extern "C" __global__ void __launch_bounds__(256) NAME(const T* x, const T* w, T* y, float* r, long long rows, long long D, float eps) { \
  rmsnorm<T>(x, w, y, r, rows, D, eps); } \
extern "C" __global__ void __launch_bounds__(256) NAME##_grad(const T* dy, const T* x, const T* w, const float* r, T* dx, float* dwp, \
    long long rows, long long D) { rmsnormGrad<T>(dy, x, w, r, dx, dwp, rows, D); }
RMSNORM(rmsnorm_f32, float)
RMSNORM(rmsnorm_bf16, bf16)
RMSNORM(rmsnorm_f16, f16)
)CUDA";

using CUresult = int;
using CUdevice = int;
using CUcontext = void*;
using CUmodule = void*;
using CUfunction = void*;
using CUstream = void*;
using CUdeviceptr = unsigned long long;
using nvrtcProgram = void*;

struct Cuda {
  CUresult (*init)(unsigned) = nullptr;
  CUresult (*deviceGet)(CUdevice*, int) = nullptr;
  CUresult (*deviceGetAttribute)(int*, int, CUdevice) = nullptr;
  CUresult (*ctxGetCurrent)(CUcontext*) = nullptr;
  CUresult (*ctxSetCurrent)(CUcontext) = nullptr;
  CUresult (*ctxGetDevice)(CUdevice*) = nullptr;
  CUresult (*primaryCtxRetain)(CUcontext*, CUdevice) = nullptr;
  CUresult (*moduleLoadData)(CUmodule*, const void*) = nullptr;
  CUresult (*moduleGetFunction)(CUfunction*, CUmodule, const char*) = nullptr;
  CUresult (*launchKernel)(CUfunction, unsigned, unsigned, unsigned, unsigned, unsigned, unsigned, unsigned, CUstream, void**, void**) = nullptr;
  CUresult (*memAlloc)(CUdeviceptr*, size_t) = nullptr;
  CUresult (*memFree)(CUdeviceptr) = nullptr;
  CUresult (*getErrorString)(CUresult, const char**) = nullptr;
  int (*nvrtcCreateProgram)(nvrtcProgram*, const char*, const char*, int, const char* const*, const char* const*) = nullptr;
  int (*nvrtcCompileProgram)(nvrtcProgram, int, const char* const*) = nullptr;
  int (*nvrtcGetPTXSize)(nvrtcProgram, size_t*) = nullptr;
  int (*nvrtcGetPTX)(nvrtcProgram, char*) = nullptr;
  int (*nvrtcGetProgramLogSize)(nvrtcProgram, size_t*) = nullptr;
  int (*nvrtcGetProgramLog)(nvrtcProgram, char*) = nullptr;
  int (*nvrtcDestroyProgram)(nvrtcProgram*) = nullptr;
  const char* (*nvrtcGetErrorString)(int) = nullptr;
  std::string error;  // non-empty: unusable, and why
};

template <typename F>
void sym(void* lib, const char* name, F& out, std::string& missing) {
  out = reinterpret_cast<F>(dlsym(lib, name));
  if (out == nullptr) missing += std::string(missing.empty() ? "" : ", ") + name;
}

const Cuda& cudaApi() {
  static Cuda c;
  static std::once_flag once;
  std::call_once(once, [] {
    void* cu = dlopen("libcuda.so.1", RTLD_NOW | RTLD_GLOBAL);
    if (cu == nullptr) {
      c.error = "cannot load the CUDA driver (libcuda.so.1)";
      return;
    }
    void* rtc = nullptr;
    for (const char* name : {"libnvrtc.so.13", "libnvrtc.so.12", "libnvrtc.so"}) {
      rtc = dlopen(name, RTLD_NOW | RTLD_GLOBAL);
      if (rtc != nullptr) break;
    }
    if (rtc == nullptr) {
      c.error = "cannot load NVRTC (libnvrtc.so.13) to compile the fused kernels; put its folder on LD_LIBRARY_PATH";
      return;
    }
    std::string missing;
    sym(cu, "cuInit", c.init, missing);
    sym(cu, "cuDeviceGet", c.deviceGet, missing);
    sym(cu, "cuDeviceGetAttribute", c.deviceGetAttribute, missing);
    sym(cu, "cuCtxGetCurrent", c.ctxGetCurrent, missing);
    sym(cu, "cuCtxSetCurrent", c.ctxSetCurrent, missing);
    sym(cu, "cuCtxGetDevice", c.ctxGetDevice, missing);
    sym(cu, "cuDevicePrimaryCtxRetain", c.primaryCtxRetain, missing);
    sym(cu, "cuModuleLoadData", c.moduleLoadData, missing);
    sym(cu, "cuModuleGetFunction", c.moduleGetFunction, missing);
    sym(cu, "cuLaunchKernel", c.launchKernel, missing);
    sym(cu, "cuMemAlloc_v2", c.memAlloc, missing);
    sym(cu, "cuMemFree_v2", c.memFree, missing);
    sym(cu, "cuGetErrorString", c.getErrorString, missing);
    sym(rtc, "nvrtcCreateProgram", c.nvrtcCreateProgram, missing);
    sym(rtc, "nvrtcCompileProgram", c.nvrtcCompileProgram, missing);
    sym(rtc, "nvrtcGetPTXSize", c.nvrtcGetPTXSize, missing);
    sym(rtc, "nvrtcGetPTX", c.nvrtcGetPTX, missing);
    sym(rtc, "nvrtcGetProgramLogSize", c.nvrtcGetProgramLogSize, missing);
    sym(rtc, "nvrtcGetProgramLog", c.nvrtcGetProgramLog, missing);
    sym(rtc, "nvrtcDestroyProgram", c.nvrtcDestroyProgram, missing);
    sym(rtc, "nvrtcGetErrorString", c.nvrtcGetErrorString, missing);
    if (!missing.empty()) c.error = "libcuda/libnvrtc lack " + missing;
  });
  return c;
}

void check(CUresult rc, const char* what) {
  if (rc == 0) return;
  const char* s = nullptr;
  cudaApi().getErrorString(rc, &s);
  throw std::runtime_error(std::string(what) + " failed: " + (s != nullptr ? s : std::to_string(rc)));
}

/** The kernels of one CUDA context. */
struct Kernels {
  CUfunction adamw[3] = {nullptr, nullptr, nullptr};  // f32, bf16, f16
  CUfunction sumsq[3] = {nullptr, nullptr, nullptr};
  CUfunction sumsqFinal = nullptr;
  CUfunction msoftmax[3] = {nullptr, nullptr, nullptr};
  CUfunction msoftmaxGrad[3] = {nullptr, nullptr, nullptr};
  CUfunction rmsnorm[3] = {nullptr, nullptr, nullptr};
  CUfunction rmsnormGrad[3] = {nullptr, nullptr, nullptr};
  int smCount = 0;
};

int gradIndex(ONNXTensorElementDataType t) {
  return t == ONNX_TENSOR_ELEMENT_DATA_TYPE_FLOAT ? 0 : t == ONNX_TENSOR_ELEMENT_DATA_TYPE_BFLOAT16 ? 1 : 2;
}

std::string compilePtx(int major, int minor) {
  const Cuda& c = cudaApi();
  nvrtcProgram prog = nullptr;
  int rc = c.nvrtcCreateProgram(&prog, kCudaSource, "latent_sft_fused.cu", 0, nullptr, nullptr);
  if (rc != 0) throw std::runtime_error(std::string("nvrtcCreateProgram failed: ") + c.nvrtcGetErrorString(rc));
  std::string arch = "--gpu-architecture=compute_" + std::to_string(major) + std::to_string(minor);
  const char* opts[] = {arch.c_str(), "--std=c++17", "--fmad=false", "--prec-div=true", "--prec-sqrt=true", "--ftz=false"};
  rc = c.nvrtcCompileProgram(prog, 6, opts);
  if (rc != 0) {
    size_t n = 0;
    c.nvrtcGetProgramLogSize(prog, &n);
    std::string log(n, '\0');
    c.nvrtcGetProgramLog(prog, log.data());
    c.nvrtcDestroyProgram(&prog);
    for (char& ch : log)
      if (ch == '\n') ch = ' ';
    throw std::runtime_error("NVRTC could not compile the fused kernels: " + log);
  }
  size_t n = 0;
  c.nvrtcGetPTXSize(prog, &n);
  std::string ptx(n, '\0');
  c.nvrtcGetPTX(prog, ptx.data());
  c.nvrtcDestroyProgram(&prog);
  return ptx;
}

/**
 * The kernels of the calling thread's current CUDA context (the primary context of `deviceId` when
 * none is current), compiled and loaded once per context.
 */
const Kernels& kernelsForCurrentContext(int deviceId) {
  static std::mutex mu;
  static std::map<CUcontext, Kernels> loaded;
  static std::map<int, std::string> ptxByArch;
  const Cuda& c = cudaApi();
  if (!c.error.empty()) throw std::runtime_error(c.error);
  std::lock_guard<std::mutex> lock(mu);
  check(c.init(0), "cuInit");
  CUcontext ctx = nullptr;
  check(c.ctxGetCurrent(&ctx), "cuCtxGetCurrent");
  if (ctx == nullptr) {
    CUdevice dev = 0;
    check(c.deviceGet(&dev, deviceId), "cuDeviceGet");
    check(c.primaryCtxRetain(&ctx, dev), "cuDevicePrimaryCtxRetain");
    check(c.ctxSetCurrent(ctx), "cuCtxSetCurrent");
  }
  auto it = loaded.find(ctx);
  if (it != loaded.end()) return it->second;
  CUdevice dev = 0;
  check(c.ctxGetDevice(&dev), "cuCtxGetDevice");
  int major = 0, minor = 0, sms = 0;
  check(c.deviceGetAttribute(&major, 75, dev), "cuDeviceGetAttribute");  // COMPUTE_CAPABILITY_MAJOR
  check(c.deviceGetAttribute(&minor, 76, dev), "cuDeviceGetAttribute");  // COMPUTE_CAPABILITY_MINOR
  check(c.deviceGetAttribute(&sms, 16, dev), "cuDeviceGetAttribute");    // MULTIPROCESSOR_COUNT
  int arch = major * 10 + minor;
  auto p = ptxByArch.find(arch);
  if (p == ptxByArch.end()) p = ptxByArch.emplace(arch, compilePtx(major, minor)).first;
  CUmodule mod = nullptr;
  check(c.moduleLoadData(&mod, p->second.c_str()), "cuModuleLoadData (fused kernels)");
  Kernels k;
  const char* names[3] = {"f32", "bf16", "f16"};
  for (int i = 0; i < 3; i++) {
    check(c.moduleGetFunction(&k.adamw[i], mod, (std::string("adamw_") + names[i]).c_str()), "cuModuleGetFunction");
    check(c.moduleGetFunction(&k.sumsq[i], mod, (std::string("sumsq_") + names[i]).c_str()), "cuModuleGetFunction");
    check(c.moduleGetFunction(&k.msoftmax[i], mod, (std::string("msoftmax_") + names[i]).c_str()), "cuModuleGetFunction");
    check(c.moduleGetFunction(&k.msoftmaxGrad[i], mod, (std::string("msoftmax_") + names[i] + "_grad").c_str()), "cuModuleGetFunction");
    check(c.moduleGetFunction(&k.rmsnorm[i], mod, (std::string("rmsnorm_") + names[i]).c_str()), "cuModuleGetFunction");
    check(c.moduleGetFunction(&k.rmsnormGrad[i], mod, (std::string("rmsnorm_") + names[i] + "_grad").c_str()), "cuModuleGetFunction");
  }
  check(c.moduleGetFunction(&k.sumsqFinal, mod, "sumsq_final"), "cuModuleGetFunction");
  k.smCount = sms;
  return loaded.emplace(ctx, k).first->second;
}

unsigned gridFor(long long work, int smCount, int perSm) {
  long long blocks = (work + 255) / 256;
  long long cap = static_cast<long long>(smCount) * perSm;
  if (blocks > cap) blocks = cap;
  return static_cast<unsigned>(blocks < 1 ? 1 : blocks);
}

bool aligned(const void* p, size_t a) { return reinterpret_cast<uintptr_t>(p) % a == 0; }

OrtStatusPtr fail(const char* op, const std::exception& e) {
  return Ort::GetApi().CreateStatus(ORT_FAIL, (std::string("latent_sft.") + op + ": " + e.what()).c_str());
}

// ---------------------------------------------------------------------------------------------------
// AdamW

constexpr size_t kCpuChunk = 1 << 16;  // CPU work unit (elements), also the SumSquares summation chunk

struct AdamWHyper {
  float step, decay, bc2, coef, b2, omb1, omb2, eps;
};

/** One element, in the order of the header comment (each operation rounded to float32). */
inline void adamwElement(const AdamWHyper& h, float p, float g, float m, float v, float& po, float& mo, float& vo) {
  float gr = g * h.coef;
  float pd = p * h.decay;
  float mn = m + h.omb1 * (gr - m);
  float vn = v * h.b2 + (h.omb2 * gr) * gr;
  float den = std::sqrt(vn) / h.bc2 + h.eps;
  po = pd - h.step * (mn / den);
  mo = mn;
  vo = vn;
}

template <bool OnCuda>
struct AdamWKernel {
  float b2, omb1, omb2, eps;
  int deviceId = 0;

  explicit AdamWKernel(const OrtKernelInfo* info) {
    Ort::ConstKernelInfo ki(info);
    b2 = ki.GetAttribute<float>("beta2");
    omb1 = ki.GetAttribute<float>("one_minus_beta1");
    omb2 = ki.GetAttribute<float>("one_minus_beta2");
    eps = ki.GetAttribute<float>("eps");
    if (OnCuda) (void)kernelsForCurrentContext(deviceId);  // compile now: errors surface at session creation
  }

  OrtStatusPtr ComputeV2(OrtKernelContext* context) {
    try {
      Ort::KernelContext ctx(context);
      auto p = ctx.GetInput(0), g = ctx.GetInput(1), m = ctx.GetInput(2), v = ctx.GetInput(3);
      auto shape = p.GetTensorTypeAndShapeInfo().GetShape();
      size_t n = p.GetTensorTypeAndShapeInfo().GetElementCount();
      auto gt = g.GetTensorTypeAndShapeInfo().GetElementType();
      if (floatTypeName(gt) == nullptr) throw std::runtime_error("the gradient must be float32, bfloat16 or float16");
      for (auto* t : {&g, &m, &v})
        if (t->GetTensorTypeAndShapeInfo().GetElementCount() != n) throw std::runtime_error("p, g, m and v must have the same size");
      auto po = ctx.GetOutput(0, shape), mo = ctx.GetOutput(1, shape), vo = ctx.GetOutput(2, shape);
      const float* scal[4];
      for (int i = 0; i < 4; i++) {
        auto s = ctx.GetInput(4 + i);
        if (s.GetTensorTypeAndShapeInfo().GetElementCount() != 1) throw std::runtime_error("step_size, decay, bc2_sqrt and coef must be scalars");
        scal[i] = s.GetTensorData<float>();
      }
      if (n == 0) return nullptr;
      if constexpr (OnCuda) {
        const Kernels& k = kernelsForCurrentContext(deviceId);
        long long nn = static_cast<long long>(n);
        float *pop = po.GetTensorMutableData<float>(), *mop = mo.GetTensorMutableData<float>(), *vop = vo.GetTensorMutableData<float>();
        const float *pp = p.GetTensorData<float>(), *mp = m.GetTensorData<float>(), *vp = v.GetTensorData<float>();
        const void* gp = g.GetTensorRawData();
        int vec = 1;
        for (const void* q : {static_cast<const void*>(pop), static_cast<const void*>(mop), static_cast<const void*>(vop),
                              static_cast<const void*>(pp), static_cast<const void*>(mp), static_cast<const void*>(vp)})
          if (!aligned(q, 16)) vec = 0;
        if (!aligned(gp, 4 * dtypeSize(gt))) vec = 0;
        float hb2 = b2, homb1 = omb1, homb2 = omb2, heps = eps;
        void* args[] = {&nn, &vec, &pop, &mop, &vop, &pp, &gp, &mp, &vp, &scal[0], &scal[1], &scal[2], &scal[3], &hb2, &homb1, &homb2, &heps};
        unsigned grid = gridFor(vec != 0 ? (nn + 3) / 4 : nn, k.smCount, 16);
        check(cudaApi().launchKernel(k.adamw[gradIndex(gt)], grid, 1, 1, 256, 1, 1, 0, ctx.GetGPUComputeStream(), args, nullptr),
              "cuLaunchKernel (AdamW)");
      } else {
        AdamWHyper h{*scal[0], *scal[1], *scal[2], *scal[3], b2, omb1, omb2, eps};
        const float *pp = p.GetTensorData<float>(), *mp = m.GetTensorData<float>(), *vp = v.GetTensorData<float>();
        float *pop = po.GetTensorMutableData<float>(), *mop = mo.GetTensorMutableData<float>(), *vop = vo.GetTensorMutableData<float>();
        const void* gp = g.GetTensorRawData();
        struct Job {
          const AdamWHyper* h; const float *p, *m, *v; const void* g; ONNXTensorElementDataType gt; float *po, *mo, *vo; size_t n;
        } job{&h, pp, mp, vp, gp, gt, pop, mop, vop, n};
        size_t chunks = (n + kCpuChunk - 1) / kCpuChunk;
        ctx.ParallelFor([](void* data, size_t c) {
          const Job& j = *static_cast<const Job*>(data);
          size_t e = (c + 1) * kCpuChunk < j.n ? (c + 1) * kCpuChunk : j.n;
          for (size_t i = c * kCpuChunk; i < e; i++) adamwElement(*j.h, j.p[i], loadAsFloat(j.g, j.gt, i), j.m[i], j.v[i], j.po[i], j.mo[i], j.vo[i]);
        }, chunks, 0, &job);
      }
      return nullptr;
    } catch (const std::exception& e) {
      return fail("AdamW", e);
    }
  }
};

template <bool OnCuda>
struct AdamWOp : Ort::CustomOpBase<AdamWOp<OnCuda>, AdamWKernel<OnCuda>, true> {
  OrtStatusPtr CreateKernelV2(const OrtApi&, const OrtKernelInfo* info, void** kernel) const {
    try {
      *kernel = new AdamWKernel<OnCuda>(info);
      return nullptr;
    } catch (const std::exception& e) {
      return fail("AdamW", e);
    }
  }
  const char* GetName() const { return "AdamW"; }
  const char* GetExecutionProviderType() const { return OnCuda ? "CUDAExecutionProvider" : nullptr; }
  size_t GetInputTypeCount() const { return 8; }
  ONNXTensorElementDataType GetInputType(size_t i) const {
    return i == 1 ? ONNX_TENSOR_ELEMENT_DATA_TYPE_UNDEFINED : ONNX_TENSOR_ELEMENT_DATA_TYPE_FLOAT;
  }
  size_t GetOutputTypeCount() const { return 3; }
  ONNXTensorElementDataType GetOutputType(size_t) const { return ONNX_TENSOR_ELEMENT_DATA_TYPE_FLOAT; }
};

// ---------------------------------------------------------------------------------------------------
// SumSquares

template <bool OnCuda>
struct SumSquaresKernel {
  int deviceId = 0;
  CUdeviceptr scratch = 0;  // float64 block partials (CUDA)
  size_t scratchCount = 0;

  explicit SumSquaresKernel(const OrtKernelInfo*) {
    if (OnCuda) (void)kernelsForCurrentContext(deviceId);
  }
  ~SumSquaresKernel() {
    if (scratch != 0) cudaApi().memFree(scratch);
  }

  OrtStatusPtr ComputeV2(OrtKernelContext* context) {
    try {
      Ort::KernelContext ctx(context);
      size_t k = ctx.GetInputCount();
      std::vector<Ort::ConstValue> xs;
      for (size_t i = 0; i < k; i++) {
        xs.push_back(ctx.GetInput(i));
        if (floatTypeName(xs.back().GetTensorTypeAndShapeInfo().GetElementType()) == nullptr)
          throw std::runtime_error("input " + std::to_string(i) + " must be float32, bfloat16 or float16");
      }
      auto out = ctx.GetOutput(0, std::vector<int64_t>{});
      float* o = out.GetTensorMutableData<float>();
      if constexpr (OnCuda) {
        const Kernels& kern = kernelsForCurrentContext(deviceId);
        const Cuda& c = cudaApi();
        std::vector<unsigned> grids(k);
        size_t total = 0;
        for (size_t i = 0; i < k; i++) {
          long long n = static_cast<long long>(xs[i].GetTensorTypeAndShapeInfo().GetElementCount());
          grids[i] = n == 0 ? 0 : gridFor((n + 7) / 8, kern.smCount, 4);
          total += grids[i];
        }
        if (total > scratchCount) {
          if (scratch != 0) check(c.memFree(scratch), "cuMemFree");
          scratch = 0;
          check(c.memAlloc(&scratch, (total > 0 ? total : 1) * sizeof(double)), "cuMemAlloc");
          scratchCount = total;
        }
        void* stream = ctx.GetGPUComputeStream();
        size_t off = 0;
        for (size_t i = 0; i < k; i++) {
          if (grids[i] == 0) continue;
          auto info = xs[i].GetTensorTypeAndShapeInfo();
          long long n = static_cast<long long>(info.GetElementCount());
          auto t = info.GetElementType();
          const void* x = xs[i].GetTensorRawData();
          int vec = aligned(x, 4 * dtypeSize(t)) ? 1 : 0;
          CUdeviceptr part = scratch + off * sizeof(double);
          void* args[] = {&x, &n, &vec, &part};
          check(c.launchKernel(kern.sumsq[gradIndex(t)], grids[i], 1, 1, 256, 1, 1, 0, stream, args, nullptr), "cuLaunchKernel (SumSquares)");
          off += grids[i];
        }
        CUdeviceptr part = scratch;
        long long count = static_cast<long long>(off);
        void* fargs[] = {&part, &count, &o};
        check(c.launchKernel(kern.sumsqFinal, 1, 1, 1, 256, 1, 1, 0, stream, fargs, nullptr), "cuLaunchKernel (SumSquares final)");
      } else {
        // Fixed chunks of 65,536 elements, each summed in float64, chunk sums added in order.
        double sum = 0.0;
        for (size_t i = 0; i < k; i++) {
          auto info = xs[i].GetTensorTypeAndShapeInfo();
          size_t n = info.GetElementCount();
          auto t = info.GetElementType();
          const void* x = xs[i].GetTensorRawData();
          for (size_t s = 0; s < n; s += kCpuChunk) {
            double acc = 0.0;
            size_t e = s + kCpuChunk < n ? s + kCpuChunk : n;
            for (size_t j = s; j < e; j++) {
              double a = loadAsFloat(x, t, j);
              acc += a * a;
            }
            sum += acc;
          }
        }
        *o = static_cast<float>(sum);
      }
      return nullptr;
    } catch (const std::exception& e) {
      return fail("SumSquares", e);
    }
  }
};

template <bool OnCuda>
struct SumSquaresOp : Ort::CustomOpBase<SumSquaresOp<OnCuda>, SumSquaresKernel<OnCuda>, true> {
  OrtStatusPtr CreateKernelV2(const OrtApi&, const OrtKernelInfo* info, void** kernel) const {
    try {
      *kernel = new SumSquaresKernel<OnCuda>(info);
      return nullptr;
    } catch (const std::exception& e) {
      return fail("SumSquares", e);
    }
  }
  const char* GetName() const { return "SumSquares"; }
  const char* GetExecutionProviderType() const { return OnCuda ? "CUDAExecutionProvider" : nullptr; }
  size_t GetInputTypeCount() const { return 1; }
  ONNXTensorElementDataType GetInputType(size_t) const { return ONNX_TENSOR_ELEMENT_DATA_TYPE_UNDEFINED; }
  OrtCustomOpInputOutputCharacteristic GetInputCharacteristic(size_t) const { return INPUT_OUTPUT_VARIADIC; }
  int GetVariadicInputMinArity() const { return 1; }
  bool GetVariadicInputHomogeneity() const { return false; }
  size_t GetOutputTypeCount() const { return 1; }
  ONNXTensorElementDataType GetOutputType(size_t) const { return ONNX_TENSOR_ELEMENT_DATA_TYPE_FLOAT; }
};

// ---------------------------------------------------------------------------------------------------
// MaskedSoftmax / MaskedSoftmaxGrad

/** Row → mask offset map (same layout as the CUDA RowMap): X [..., S], M right-aligned broadcastable. */
struct RowMap {
  long long nd = 0;
  long long dims[8] = {};
  long long mstr[8] = {};
  long long mlast = 0;
};

RowMap rowMap(const std::vector<int64_t>& xs, const std::vector<int64_t>& ms) {
  if (xs.empty()) throw std::runtime_error("X must have rank >= 1");
  if (ms.size() > xs.size()) throw std::runtime_error("the mask has a higher rank than X");
  if (xs.size() - 1 > 8) throw std::runtime_error("X has more than 9 dims");
  size_t r = xs.size(), lead = r - ms.size();
  std::vector<int64_t> e(r, 1);
  for (size_t i = 0; i < ms.size(); i++) e[lead + i] = ms[i];
  RowMap rm;
  rm.nd = static_cast<long long>(r - 1);
  long long stride = 1;
  std::vector<long long> strides(r);
  for (size_t i = r; i-- > 0;) {
    if (e[i] != 1 && e[i] != xs[i]) throw std::runtime_error("mask dim " + std::to_string(e[i]) + " does not broadcast to X dim " + std::to_string(xs[i]));
    strides[i] = stride;
    stride *= e[i];
  }
  for (size_t i = 0; i + 1 < r; i++) {
    rm.dims[i] = xs[i];
    rm.mstr[i] = e[i] == 1 ? 0 : strides[i];
  }
  rm.mlast = e[r - 1] == 1 ? 0 : 1;
  return rm;
}

long long maskOffset(const RowMap& rm, long long r) {
  long long off = 0;
  for (long long d = rm.nd - 1; d >= 0; d--) {
    long long q = r / rm.dims[d];
    off += (r - q * rm.dims[d]) * rm.mstr[d];
    r = q;
  }
  return off;
}

template <bool OnCuda, bool Grad>
struct MaskedSoftmaxKernel {
  float scale = 1.0f;
  int deviceId = 0;

  explicit MaskedSoftmaxKernel(const OrtKernelInfo* info) {
    Ort::ConstKernelInfo ki(info);
    try {
      scale = ki.GetAttribute<float>("scale");
    } catch (const Ort::Exception&) {
      scale = 1.0f;
    }
    if (OnCuda) (void)kernelsForCurrentContext(deviceId);
  }

  OrtStatusPtr ComputeV2(OrtKernelContext* context) {
    const char* name = Grad ? "MaskedSoftmaxGrad" : "MaskedSoftmax";
    try {
      Ort::KernelContext ctx(context);
      // Forward: X, M → Y, stats. Grad: dY, X, M, stats → dX.
      auto xv = ctx.GetInput(Grad ? 1 : 0), mv = ctx.GetInput(Grad ? 2 : 1);
      auto xi = xv.GetTensorTypeAndShapeInfo();
      auto xs = xi.GetShape();
      auto xt = xi.GetElementType();
      if (floatTypeName(xt) == nullptr) throw std::runtime_error("X must be float32, bfloat16 or float16");
      auto mi = mv.GetTensorTypeAndShapeInfo();
      if (mi.GetElementType() != ONNX_TENSOR_ELEMENT_DATA_TYPE_FLOAT) throw std::runtime_error("the mask must be float32");
      RowMap rm = rowMap(xs, mi.GetShape());
      long long S = xs.back();
      long long rows = S == 0 ? 0 : static_cast<long long>(xi.GetElementCount()) / S;
      std::vector<int64_t> ss(xs.begin(), xs.end() - 1);
      ss.push_back(2);
      const void* x = xv.GetTensorRawData();
      const float* m = mv.GetTensorData<float>();
      const void* dy = nullptr;
      const float* statsIn = nullptr;
      void* out = nullptr;
      float* statsOut = nullptr;
      if constexpr (Grad) {
        auto dyv = ctx.GetInput(0), sv = ctx.GetInput(3);
        if (dyv.GetTensorTypeAndShapeInfo().GetElementType() != xt || dyv.GetTensorTypeAndShapeInfo().GetShape() != xs)
          throw std::runtime_error("dY must have the dtype and shape of X");
        if (sv.GetTensorTypeAndShapeInfo().GetShape() != ss) throw std::runtime_error("stats must be [..., 2] over the rows of X");
        dy = dyv.GetTensorRawData();
        statsIn = sv.GetTensorData<float>();
        out = ctx.GetOutput(0, xs).GetTensorMutableRawData();
      } else {
        out = ctx.GetOutput(0, xs).GetTensorMutableRawData();
        statsOut = ctx.GetOutput(1, ss).GetTensorMutableData<float>();
      }
      if (rows == 0) return nullptr;
      if constexpr (OnCuda) {
        const Kernels& k = kernelsForCurrentContext(deviceId);
        float sc = scale;
        unsigned grid = static_cast<unsigned>((rows + 7) / 8);  // 8 warps (rows) per block
        void* stream = ctx.GetGPUComputeStream();
        // Register path: rows of S % 4 == 0, S ≤ 1024 (32 lanes × 4 × MS_G), 4-element-aligned tensors.
        size_t va = 4 * dtypeSize(xt);
        int vec = S % 4 == 0 && S <= 1024 && aligned(x, va) && aligned(out, va) && (rm.mlast == 0 || aligned(m, 16)) &&
                  (dy == nullptr || aligned(dy, va)) ? 1 : 0;
        if constexpr (Grad) {
          void* args[] = {&dy, &x, &m, &statsIn, &out, &rows, &S, &sc, &rm, &vec};
          check(cudaApi().launchKernel(k.msoftmaxGrad[gradIndex(xt)], grid, 1, 1, 256, 1, 1, 0, stream, args, nullptr), "cuLaunchKernel (MaskedSoftmaxGrad)");
        } else {
          void* args[] = {&x, &m, &out, &statsOut, &rows, &S, &sc, &rm, &vec};
          check(cudaApi().launchKernel(k.msoftmax[gradIndex(xt)], grid, 1, 1, 256, 1, 1, 0, stream, args, nullptr), "cuLaunchKernel (MaskedSoftmax)");
        }
      } else {
        struct Job {
          const void* x; const float* m; const void* dy; const float* statsIn; void* out; float* statsOut;
          ONNXTensorElementDataType t; long long S; float scale; const RowMap* rm;
        } job{x, m, dy, statsIn, out, statsOut, xt, S, scale, &rm};
        ctx.ParallelFor([](void* data, size_t r) {
          const Job& j = *static_cast<const Job*>(data);
          size_t base = r * static_cast<size_t>(j.S);
          const float* mr = j.m + maskOffset(*j.rm, static_cast<long long>(r));
          long long ml = j.rm->mlast;
          auto z = [&](long long c) { return j.scale * loadAsFloat(j.x, j.t, base + c) + mr[c * ml]; };
          if constexpr (Grad) {
            float mx = j.statsIn[2 * r], sum = j.statsIn[2 * r + 1], t = 0.0f;
            for (long long c = 0; c < j.S; c++) t += loadAsFloat(j.dy, j.t, base + c) * (std::exp(z(c) - mx) / sum);
            for (long long c = 0; c < j.S; c++) {
              float yc = std::exp(z(c) - mx) / sum;
              storeFromFloat(j.out, j.t, base + c, j.scale * (yc * (loadAsFloat(j.dy, j.t, base + c) - t)));
            }
          } else {
            float mx = -INFINITY, sum = 0.0f;
            for (long long c = 0; c < j.S; c++) mx = std::max(mx, z(c));
            for (long long c = 0; c < j.S; c++) sum += std::exp(z(c) - mx);
            for (long long c = 0; c < j.S; c++) storeFromFloat(j.out, j.t, base + c, std::exp(z(c) - mx) / sum);
            j.statsOut[2 * r] = mx;
            j.statsOut[2 * r + 1] = sum;
          }
        }, static_cast<size_t>(rows), 0, &job);
      }
      return nullptr;
    } catch (const std::exception& e) {
      return fail(name, e);
    }
  }
};

/** A dim_param name no other dim has (ORT unifies equal names). */
std::string freshDimName() {
  static std::atomic<unsigned long long> fresh{0};
  return "latent_sft_dim_" + std::to_string(fresh++);
}

/** An element type, dims (-1 unknown) and dim_param names ("" none) of one value, for shape inference. */
struct InferredShape {
  ONNXTensorElementDataType type{};
  std::vector<int64_t> dims;
  std::vector<std::string> names;
};

/**
 * Input `index` of the node being inferred. An unknown dim gets a fresh name: given as -1 with no name,
 * ORT writes dim_value -1, and a Shape → Reshape downstream then fails ORT's shape inference
 * ("multiple -1 dimensions").
 */
OrtStatusPtr inferredInput(OrtShapeInferContext* ctx, size_t index, InferredShape& out) {
  const OrtApi& api = Ort::GetApi();
  OrtTensorTypeAndShapeInfo* info = nullptr;  // owned by ctx
  if (OrtStatusPtr st = api.ShapeInferContext_GetInputTypeShape(ctx, index, &info)) return st;
  size_t rank = 0;
  if (OrtStatusPtr st = api.GetTensorElementType(info, &out.type)) return st;
  if (OrtStatusPtr st = api.GetDimensionsCount(info, &rank)) return st;
  out.dims.assign(rank, 0);
  std::vector<const char*> syms(rank, nullptr);
  if (rank > 0) {
    if (OrtStatusPtr st = api.GetDimensions(info, out.dims.data(), rank)) return st;
    if (OrtStatusPtr st = api.GetSymbolicDimensions(info, syms.data(), rank)) return st;
  }
  out.names.assign(rank, "");
  for (size_t i = 0; i < rank; i++) {
    if (syms[i] != nullptr) out.names[i] = syms[i];
    if (out.dims[i] < 0 && out.names[i].empty()) out.names[i] = freshDimName();
  }
  return nullptr;
}

/** Sets output `index` of the node being inferred. */
OrtStatusPtr setInferredOutput(OrtShapeInferContext* ctx, size_t index, const InferredShape& s) {
  const OrtApi& api = Ort::GetApi();
  std::vector<const char*> syms;
  for (const std::string& n : s.names) syms.push_back(n.c_str());
  OrtTensorTypeAndShapeInfo* out = nullptr;
  if (OrtStatusPtr st = api.CreateTensorTypeAndShapeInfo(&out)) return st;
  OrtStatusPtr st = api.SetTensorElementType(out, s.type);
  if (st == nullptr) st = api.SetDimensions(out, s.dims.data(), s.dims.size());
  if (st == nullptr) st = api.SetSymbolicDimensions(out, syms.data(), syms.size());
  if (st == nullptr) st = api.ShapeInferContext_SetOutputTypeShape(ctx, index, out);
  api.ReleaseTensorTypeAndShapeInfo(out);
  return st;
}

/** X's shape without its last dim, as float32. */
InferredShape rowsOf(const InferredShape& x) {
  return {ONNX_TENSOR_ELEMENT_DATA_TYPE_FLOAT, std::vector<int64_t>(x.dims.begin(), x.dims.end() - 1),
          std::vector<std::string>(x.names.begin(), x.names.end() - 1)};
}

/**
 * Output types/shapes for ORT's schema (needed: the grad op has two dynamically typed inputs): output 0
 * as X (input 0 forward, 1 grad); forward output 1 float32 [..., 2].
 */
template <bool Grad>
OrtStatusPtr inferMaskedSoftmax(const OrtCustomOp*, OrtShapeInferContext* ctx) {
  InferredShape x;
  if (OrtStatusPtr st = inferredInput(ctx, Grad ? 1 : 0, x)) return st;
  if (OrtStatusPtr st = setInferredOutput(ctx, 0, x)) return st;
  if (Grad || x.dims.empty()) return nullptr;
  InferredShape stats = rowsOf(x);
  stats.dims.push_back(2);
  stats.names.emplace_back();
  return setInferredOutput(ctx, 1, stats);
}

template <bool OnCuda, bool Grad>
struct MaskedSoftmaxOp : Ort::CustomOpBase<MaskedSoftmaxOp<OnCuda, Grad>, MaskedSoftmaxKernel<OnCuda, Grad>, true> {
  MaskedSoftmaxOp() { this->InferOutputShapeFn = &inferMaskedSoftmax<Grad>; }
  OrtStatusPtr CreateKernelV2(const OrtApi&, const OrtKernelInfo* info, void** kernel) const {
    try {
      *kernel = new MaskedSoftmaxKernel<OnCuda, Grad>(info);
      return nullptr;
    } catch (const std::exception& e) {
      return fail(Grad ? "MaskedSoftmaxGrad" : "MaskedSoftmax", e);
    }
  }
  const char* GetName() const { return Grad ? "MaskedSoftmaxGrad" : "MaskedSoftmax"; }
  const char* GetExecutionProviderType() const { return OnCuda ? "CUDAExecutionProvider" : nullptr; }
  // Forward: X (any float), M (f32). Grad: dY, X (any float), M, stats (f32).
  size_t GetInputTypeCount() const { return Grad ? 4 : 2; }
  ONNXTensorElementDataType GetInputType(size_t i) const {
    bool isX = Grad ? i <= 1 : i == 0;
    return isX ? ONNX_TENSOR_ELEMENT_DATA_TYPE_UNDEFINED : ONNX_TENSOR_ELEMENT_DATA_TYPE_FLOAT;
  }
  size_t GetOutputTypeCount() const { return Grad ? 1 : 2; }
  ONNXTensorElementDataType GetOutputType(size_t i) const {
    return i == 0 ? ONNX_TENSOR_ELEMENT_DATA_TYPE_UNDEFINED : ONNX_TENSOR_ELEMENT_DATA_TYPE_FLOAT;
  }
};

// ---------------------------------------------------------------------------------------------------
// RMSNorm / RMSNormGrad

constexpr long long kRmsCpuRows = 32;  // rows per CPU work unit (one dW partial row each)
constexpr long long kRmsMaxD = 12288;  // CUDA: the dW accumulator of a block lives in 48 KiB of shared memory

template <bool OnCuda, bool Grad>
struct RMSNormKernel {
  float epsilon = 0.0f;
  int deviceId = 0;

  explicit RMSNormKernel(const OrtKernelInfo* info) {
    if (!Grad) {
      epsilon = Ort::ConstKernelInfo(info).GetAttribute<float>("epsilon");
      if (!(epsilon > 0.0f)) throw std::runtime_error("epsilon must be > 0");
    }
    if (OnCuda) (void)kernelsForCurrentContext(deviceId);
  }

  OrtStatusPtr ComputeV2(OrtKernelContext* context) {
    const char* name = Grad ? "RMSNormGrad" : "RMSNorm";
    try {
      Ort::KernelContext ctx(context);
      // Forward: X, W → Y, R. Grad: dY, X, W, R → dX, dW partials [P, D].
      auto xv = ctx.GetInput(Grad ? 1 : 0), wv = ctx.GetInput(Grad ? 2 : 1);
      auto xi = xv.GetTensorTypeAndShapeInfo();
      auto xs = xi.GetShape();
      auto xt = xi.GetElementType();
      if (floatTypeName(xt) == nullptr) throw std::runtime_error("X must be float32, bfloat16 or float16");
      if (xs.empty()) throw std::runtime_error("X must have rank >= 1");
      long long D = xs.back();
      auto wi = wv.GetTensorTypeAndShapeInfo();
      if (wi.GetElementType() != xt || wi.GetShape() != std::vector<int64_t>{D}) throw std::runtime_error("W must be [D] in X's dtype");
      long long rows = D == 0 ? 0 : static_cast<long long>(xi.GetElementCount()) / D;
      std::vector<int64_t> rs(xs.begin(), xs.end() - 1);
      const void* x = xv.GetTensorRawData();
      const void* w = wv.GetTensorRawData();
      if constexpr (Grad) {
        auto dyv = ctx.GetInput(0), rv = ctx.GetInput(3);
        if (dyv.GetTensorTypeAndShapeInfo().GetElementType() != xt || dyv.GetTensorTypeAndShapeInfo().GetShape() != xs)
          throw std::runtime_error("dY must have the dtype and shape of X");
        if (rv.GetTensorTypeAndShapeInfo().GetElementType() != ONNX_TENSOR_ELEMENT_DATA_TYPE_FLOAT || rv.GetTensorTypeAndShapeInfo().GetShape() != rs)
          throw std::runtime_error("R must be float32 [...] over the rows of X");
        const void* dy = dyv.GetTensorRawData();
        const float* r = rv.GetTensorData<float>();
        void* dx = ctx.GetOutput(0, xs).GetTensorMutableRawData();
        if constexpr (OnCuda) {
          if (D > kRmsMaxD) throw std::runtime_error("D = " + std::to_string(D) + " is above the CUDA kernel's " + std::to_string(kRmsMaxD));
          const Kernels& k = kernelsForCurrentContext(deviceId);
          long long parts = std::max<long long>(1, std::min<long long>(rows, static_cast<long long>(k.smCount) * 8));
          float* dwp = ctx.GetOutput(1, {parts, D}).GetTensorMutableData<float>();
          if (D == 0) return nullptr;
          void* args[] = {&dy, &x, &w, &r, &dx, &dwp, &rows, &D};
          check(cudaApi().launchKernel(k.rmsnormGrad[gradIndex(xt)], static_cast<unsigned>(parts), 1, 1, 256, 1, 1, static_cast<unsigned>(D * 4),
                                       ctx.GetGPUComputeStream(), args, nullptr), "cuLaunchKernel (RMSNormGrad)");
        } else {
          long long parts = (rows + kRmsCpuRows - 1) / kRmsCpuRows;
          float* dwp = ctx.GetOutput(1, {parts, D}).GetTensorMutableData<float>();
          struct Job { const void* dy; const void* x; const void* w; const float* r; void* dx; float* dwp; ONNXTensorElementDataType t; long long rows, D; } job{dy, x, w, r, dx, dwp, xt, rows, D};
          ctx.ParallelFor([](void* data, size_t part) {
            const Job& j = *static_cast<const Job*>(data);
            float* acc = j.dwp + part * static_cast<size_t>(j.D);
            std::fill(acc, acc + j.D, 0.0f);
            long long end = std::min<long long>(j.rows, static_cast<long long>(part + 1) * kRmsCpuRows);
            for (long long row = static_cast<long long>(part) * kRmsCpuRows; row < end; row++) {
              size_t base = static_cast<size_t>(row * j.D);
              float rs = j.r[row], t = 0.0f;
              for (long long c = 0; c < j.D; c++)
                t += (loadAsFloat(j.dy, j.t, base + c) * loadAsFloat(j.w, j.t, c)) * (loadAsFloat(j.x, j.t, base + c) * rs);
              t /= static_cast<float>(j.D);
              for (long long c = 0; c < j.D; c++) {
                float n = loadAsFloat(j.x, j.t, base + c) * rs, d = loadAsFloat(j.dy, j.t, base + c);
                storeFromFloat(j.dx, j.t, base + c, rs * (d * loadAsFloat(j.w, j.t, c) - n * t));
                acc[c] += d * roundTo(j.t, n);
              }
            }
          }, static_cast<size_t>(parts), 0, &job);
        }
      } else {
        void* y = ctx.GetOutput(0, xs).GetTensorMutableRawData();
        float* r = ctx.GetOutput(1, rs).GetTensorMutableData<float>();
        if (rows == 0) return nullptr;
        if constexpr (OnCuda) {
          const Kernels& k = kernelsForCurrentContext(deviceId);
          unsigned grid = static_cast<unsigned>(std::min<long long>(rows, static_cast<long long>(k.smCount) * 16));
          float eps = epsilon;
          void* args[] = {&x, &w, &y, &r, &rows, &D, &eps};
          check(cudaApi().launchKernel(k.rmsnorm[gradIndex(xt)], grid, 1, 1, 256, 1, 1, 0, ctx.GetGPUComputeStream(), args, nullptr), "cuLaunchKernel (RMSNorm)");
        } else {
          struct Job { const void* x; const void* w; void* y; float* r; ONNXTensorElementDataType t; long long D; float eps; } job{x, w, y, r, xt, D, epsilon};
          ctx.ParallelFor([](void* data, size_t row) {
            const Job& j = *static_cast<const Job*>(data);
            size_t base = row * static_cast<size_t>(j.D);
            float s = 0.0f;
            for (long long c = 0; c < j.D; c++) {
              float v = loadAsFloat(j.x, j.t, base + c);
              s += v * v;
            }
            float rs = 1.0f / std::sqrt(s / static_cast<float>(j.D) + j.eps);
            for (long long c = 0; c < j.D; c++)
              storeFromFloat(j.y, j.t, base + c, loadAsFloat(j.w, j.t, c) * roundTo(j.t, loadAsFloat(j.x, j.t, base + c) * rs));
            j.r[row] = rs;
          }, static_cast<size_t>(rows), 0, &job);
        }
      }
      return nullptr;
    } catch (const std::exception& e) {
      return fail(name, e);
    }
  }
};

/** Output types/shapes: output 0 as X; forward R float32 X[:-1]; grad dW partials float32 [P, D], P unnamed. */
template <bool Grad>
OrtStatusPtr inferRMSNorm(const OrtCustomOp*, OrtShapeInferContext* ctx) {
  InferredShape x;
  if (OrtStatusPtr st = inferredInput(ctx, Grad ? 1 : 0, x)) return st;
  if (x.dims.empty()) return Ort::GetApi().CreateStatus(ORT_INVALID_ARGUMENT, "RMSNorm: X must have rank >= 1");
  if (OrtStatusPtr st = setInferredOutput(ctx, 0, x)) return st;
  if constexpr (Grad) {
    return setInferredOutput(ctx, 1, {ONNX_TENSOR_ELEMENT_DATA_TYPE_FLOAT, {-1, x.dims.back()}, {freshDimName(), x.names.back()}});
  } else {
    return setInferredOutput(ctx, 1, rowsOf(x));
  }
}

template <bool OnCuda, bool Grad>
struct RMSNormOp : Ort::CustomOpBase<RMSNormOp<OnCuda, Grad>, RMSNormKernel<OnCuda, Grad>, true> {
  RMSNormOp() { this->InferOutputShapeFn = &inferRMSNorm<Grad>; }
  OrtStatusPtr CreateKernelV2(const OrtApi&, const OrtKernelInfo* info, void** kernel) const {
    try {
      *kernel = new RMSNormKernel<OnCuda, Grad>(info);
      return nullptr;
    } catch (const std::exception& e) {
      return fail(Grad ? "RMSNormGrad" : "RMSNorm", e);
    }
  }
  const char* GetName() const { return Grad ? "RMSNormGrad" : "RMSNorm"; }
  const char* GetExecutionProviderType() const { return OnCuda ? "CUDAExecutionProvider" : nullptr; }
  // Forward: X, W (one float dtype). Grad: dY, X, W (X's dtype), R (f32).
  size_t GetInputTypeCount() const { return Grad ? 4 : 2; }
  ONNXTensorElementDataType GetInputType(size_t i) const {
    return Grad && i == 3 ? ONNX_TENSOR_ELEMENT_DATA_TYPE_FLOAT : ONNX_TENSOR_ELEMENT_DATA_TYPE_UNDEFINED;
  }
  size_t GetOutputTypeCount() const { return 2; }
  ONNXTensorElementDataType GetOutputType(size_t i) const {
    return i == 0 ? ONNX_TENSOR_ELEMENT_DATA_TYPE_UNDEFINED : ONNX_TENSOR_ELEMENT_DATA_TYPE_FLOAT;
  }
};

}  // namespace

void addFusedOps(Ort::SessionOptions& so, bool cuda) {
  // Domains and ops are never destroyed: ORT sessions (and the process-wide Ort::Env) may be torn down
  // after this module's static destructors at exit, and they keep pointers to both. One domain per
  // execution provider: a session gets the kernels of its own provider only.
  static std::once_flag once;
  static Ort::CustomOpDomain* cpuDomain = nullptr;
  static Ort::CustomOpDomain* cudaDomain = nullptr;
  std::call_once(once, [] {
    cpuDomain = new Ort::CustomOpDomain(kDomain);
    cpuDomain->Add(new AdamWOp<false>());
    cpuDomain->Add(new SumSquaresOp<false>());
    cpuDomain->Add(new MaskedSoftmaxOp<false, false>());
    cpuDomain->Add(new MaskedSoftmaxOp<false, true>());
    cpuDomain->Add(new RMSNormOp<false, false>());
    cpuDomain->Add(new RMSNormOp<false, true>());
    cudaDomain = new Ort::CustomOpDomain(kDomain);
    cudaDomain->Add(new AdamWOp<true>());
    cudaDomain->Add(new SumSquaresOp<true>());
    cudaDomain->Add(new MaskedSoftmaxOp<true, false>());
    cudaDomain->Add(new MaskedSoftmaxOp<true, true>());
    cudaDomain->Add(new RMSNormOp<true, false>());
    cudaDomain->Add(new RMSNormOp<true, true>());
  });
  so.Add(cuda ? *cudaDomain : *cpuDomain);
}

std::string cudaKernelsStatus(int deviceId) {
  try {
    (void)kernelsForCurrentContext(deviceId);
    return "";
  } catch (const std::exception& e) {
    return e.what();
  }
}

}  // namespace latent_sft
