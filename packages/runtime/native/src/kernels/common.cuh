// Element types and helpers every fused kernel uses: bfloat16/float16 as raw bits, float conversions
// (round to nearest even), vector loads and stores of 4 elements, warp reductions. CUDA C++ compiled
// by NVRTC at run time (see fused_cuda.cc); the kernels/*.cu files are joined into one program at
// build time (native/embed-kernels.mjs).
#pragma once

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

__device__ __forceinline__ void put(float* p, long long i, float v) { p[i] = v; }
__device__ __forceinline__ u16 f2bf(float v) {
  u32 u = __float_as_uint(v);
  if ((u & 0x7fffffffu) > 0x7f800000u) return (u16)((u >> 16) | 0x40u);
  return (u16)((u + 0x7fffu + ((u >> 16) & 1u)) >> 16);
}
__device__ __forceinline__ u16 f2h(float v) { unsigned short h; asm("cvt.rn.f16.f32 %0, %1;" : "=h"(h) : "f"(v)); return h; }
__device__ __forceinline__ void put(bf16* p, long long i, float v) { p[i].b = f2bf(v); }
__device__ __forceinline__ void put(f16* p, long long i, float v) { p[i].b = f2h(v); }
// v rounded to T's precision (as storing and loading it would), as float.
template <typename T> __device__ __forceinline__ float rnd(float v);
template <> __device__ __forceinline__ float rnd<float>(float v) { return v; }
template <> __device__ __forceinline__ float rnd<bf16>(float v) { bf16 b; b.b = f2bf(v); return tof(b); }
template <> __device__ __forceinline__ float rnd<f16>(float v) { return h2f(f2h(v)); }
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
