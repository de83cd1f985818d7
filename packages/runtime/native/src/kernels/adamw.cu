// AdamW: one grid-stride pass over p, g, m, v (4 elements per thread step when every pointer is
// 16-byte aligned, vec = 1), each element by adamwElement (fused_shared.h), the same function the CPU
// kernel runs. Kernels adamw_{f32,bf16,f16} by the gradient's dtype; AdamWCopy's adamw_{f32,bf16,f16}_to_
// {bf16,f16} also write p' rounded to the copy's dtype (round to nearest even, as a Cast). Launched by
// ops/adamw.cc.
// In place: po/mo/vo may be p/m/v themselves (the Trainer's in-place state binds p.new to p's buffer,
// and so on), so those six pointers are not __restrict__. Each element is read (P, M, V loaded whole in
// the vector path, by value in adamwElement) before the same element is written, by the same thread; no
// thread touches another's elements, and a non-finite coef writes back what was read (adamwElement).
#include "common.cuh"
#include "../fused_shared.h"

// The compute-dtype copy of p': nothing for plain AdamW (NoCopy), else p' stored as C (put rounds).
struct NoCopy {};
__device__ __forceinline__ void copy4(NoCopy*, long long, const float*) {}
__device__ __forceinline__ void copy1(NoCopy*, long long, float) {}
template <typename C> __device__ __forceinline__ void copy4(C* co, long long i, const float* v) { Store4<C>::put(co, i, v); }
template <typename C> __device__ __forceinline__ void copy1(C* co, long long i, float v) { put(co, i, v); }

template <typename G, typename C>
__device__ __forceinline__ void adamw(long long n, int vec, float* po, float* mo, float* vo,
    const float* p, const G* __restrict__ g, const float* m, const float* v,
    const float* sp, const float* dp, const float* bp, const float* cp, float b2, float omb1, float omb2, float eps, C* __restrict__ co) {
  latent_sft::AdamWHyper h = {*sp, *dp, *bp, *cp, b2, omb1, omb2, eps};
  long long tid = (long long)blockIdx.x * blockDim.x + threadIdx.x, stride = (long long)gridDim.x * blockDim.x;
  long long done = 0;
  if (vec) {
    long long n4 = n >> 2;
    for (long long i = tid; i < n4; i += stride) {
      F4 P = reinterpret_cast<const F4*>(p)[i], M = reinterpret_cast<const F4*>(m)[i], V = reinterpret_cast<const F4*>(v)[i];
      float gg[4];
      Vec4<G>::get(g, i, gg);
      F4 PO, MO, VO;
      latent_sft::adamwElement(h, P.x, gg[0], M.x, V.x, PO.x, MO.x, VO.x);
      latent_sft::adamwElement(h, P.y, gg[1], M.y, V.y, PO.y, MO.y, VO.y);
      latent_sft::adamwElement(h, P.z, gg[2], M.z, V.z, PO.z, MO.z, VO.z);
      latent_sft::adamwElement(h, P.w, gg[3], M.w, V.w, PO.w, MO.w, VO.w);
      reinterpret_cast<F4*>(po)[i] = PO; reinterpret_cast<F4*>(mo)[i] = MO; reinterpret_cast<F4*>(vo)[i] = VO;
      float pc[4] = {PO.x, PO.y, PO.z, PO.w};
      copy4(co, i, pc);
    }
    done = n4 << 2;
  }
  for (long long i = done + tid; i < n; i += stride) {
    latent_sft::adamwElement(h, p[i], tof(g[i]), m[i], v[i], po[i], mo[i], vo[i]);
    copy1(co, i, po[i]);
  }
}

#define ADAMW(NAME, G) \
extern "C" __global__ void __launch_bounds__(256) NAME(long long n, int vec, float* po, float* mo, float* vo, const float* p, const G* g, \
    const float* m, const float* v, const float* sp, const float* dp, const float* bp, const float* cp, \
    float b2, float omb1, float omb2, float eps) { adamw<G, NoCopy>(n, vec, po, mo, vo, p, g, m, v, sp, dp, bp, cp, b2, omb1, omb2, eps, nullptr); }
ADAMW(adamw_f32, float)
ADAMW(adamw_bf16, bf16)
ADAMW(adamw_f16, f16)

// AdamWCopy's kernels <NAME>_to_bf16 and <NAME>_to_f16 for gradient dtype G.
#define ADAMW_COPY(NAME, G) \
extern "C" __global__ void __launch_bounds__(256) NAME##_to_bf16(long long n, int vec, float* po, float* mo, float* vo, const float* p, \
    const G* g, const float* m, const float* v, const float* sp, const float* dp, const float* bp, const float* cp, \
    float b2, float omb1, float omb2, float eps, bf16* co) { adamw<G, bf16>(n, vec, po, mo, vo, p, g, m, v, sp, dp, bp, cp, b2, omb1, omb2, eps, co); } \
extern "C" __global__ void __launch_bounds__(256) NAME##_to_f16(long long n, int vec, float* po, float* mo, float* vo, const float* p, \
    const G* g, const float* m, const float* v, const float* sp, const float* dp, const float* bp, const float* cp, \
    float b2, float omb1, float omb2, float eps, f16* co) { adamw<G, f16>(n, vec, po, mo, vo, p, g, m, v, sp, dp, bp, cp, b2, omb1, omb2, eps, co); }
ADAMW_COPY(adamw_f32, float)
ADAMW_COPY(adamw_bf16, bf16)
ADAMW_COPY(adamw_f16, f16)

// 16-bit parameters (AdamW with p bfloat16 and m, v bfloat16 — PyTorch's bf16 recipe — or p float16 and m, v
// float32): each element widened exactly, the same float32 adamwElement, each result rounded once to nearest
// even (put / Store4). In place as above: the vector path loads all four elements of p, m, v before it
// stores. Kernels adamw_{f32,bf16,f16}_p_{bf16,f16} by the gradient's dtype, then the parameters'.
template <typename G, typename P, typename M>
__device__ __forceinline__ void adamw16(long long n, int vec, P* po, M* mo, M* vo, const P* p, const G* __restrict__ g, const M* m, const M* v,
    const float* sp, const float* dp, const float* bp, const float* cp, float b2, float omb1, float omb2, float eps) {
  latent_sft::AdamWHyper h = {*sp, *dp, *bp, *cp, b2, omb1, omb2, eps};
  long long tid = (long long)blockIdx.x * blockDim.x + threadIdx.x, stride = (long long)gridDim.x * blockDim.x;
  long long done = 0;
  if (vec) {
    long long n4 = n >> 2;
    for (long long i = tid; i < n4; i += stride) {
      float P4[4], G4[4], M4[4], V4[4], PO[4], MO[4], VO[4];
      Vec4<P>::get(p, i, P4);
      Vec4<G>::get(g, i, G4);
      Vec4<M>::get(m, i, M4);
      Vec4<M>::get(v, i, V4);
      for (int k = 0; k < 4; k++) latent_sft::adamwElement(h, P4[k], G4[k], M4[k], V4[k], PO[k], MO[k], VO[k]);
      Store4<P>::put(po, i, PO);
      Store4<M>::put(mo, i, MO);
      Store4<M>::put(vo, i, VO);
    }
    done = n4 << 2;
  }
  for (long long i = done + tid; i < n; i += stride) {
    float a, b, c;
    latent_sft::adamwElement(h, tof(p[i]), tof(g[i]), tof(m[i]), tof(v[i]), a, b, c);
    put(po, i, a);
    put(mo, i, b);
    put(vo, i, c);
  }
}

#define ADAMW_P16(NAME, G) \
extern "C" __global__ void __launch_bounds__(256) NAME##_p_bf16(long long n, int vec, bf16* po, bf16* mo, bf16* vo, const bf16* p, const G* g, \
    const bf16* m, const bf16* v, const float* sp, const float* dp, const float* bp, const float* cp, \
    float b2, float omb1, float omb2, float eps) { adamw16<G, bf16, bf16>(n, vec, po, mo, vo, p, g, m, v, sp, dp, bp, cp, b2, omb1, omb2, eps); } \
extern "C" __global__ void __launch_bounds__(256) NAME##_p_f16(long long n, int vec, f16* po, float* mo, float* vo, const f16* p, const G* g, \
    const float* m, const float* v, const float* sp, const float* dp, const float* bp, const float* cp, \
    float b2, float omb1, float omb2, float eps) { adamw16<G, f16, float>(n, vec, po, mo, vo, p, g, m, v, sp, dp, bp, cp, b2, omb1, omb2, eps); }
ADAMW_P16(adamw_f32, float)
ADAMW_P16(adamw_bf16, bf16)
ADAMW_P16(adamw_f16, f16)

// CastMulti's kernels: y = x rounded to bfloat16 / float16 (nearest even, as ORT's Cast and the AdamWCopy
// kernels round), one launch per tensor from ops/adamw.cc; grid-stride.
template <typename T>
__device__ __forceinline__ void castF32(long long n, const float* __restrict__ x, T* __restrict__ y) {
  for (long long i = (long long)blockIdx.x * blockDim.x + threadIdx.x; i < n; i += (long long)gridDim.x * blockDim.x) put(y, i, x[i]);
}
extern "C" __global__ void __launch_bounds__(256) cast_f32_to_bf16(long long n, const float* x, bf16* y) { castF32<bf16>(n, x, y); }
extern "C" __global__ void __launch_bounds__(256) cast_f32_to_f16(long long n, const float* x, f16* y) { castF32<f16>(n, x, y); }
