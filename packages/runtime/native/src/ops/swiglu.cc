// SwiGLU / SwiGLUGrad: the LLaMA MLP's gating in one elementwise pass each way, float32 inside.
//
//   SwiGLU(gate, up) -> Y                  Y = round(round(g·σ(g)) · u)
//   SwiGLUGrad(dY, gate, up) -> dGate, dUp dGate = round((dY·u)·(s·(1 + g·(1 − s)))), s = σ(g)
//                                          dUp = round(dY · round(g·σ(g)))
//   SwiGLUPacked(x) -> Y                   SwiGLU(x[..., :F], x[..., F:]) for x [..., 2F] (inference only)
// gate, up, dY: one float dtype (f32, bf16, f16), one shape (no broadcasting); round() = to that dtype
// (identity for f32). The SiLU is rounded once as torch's F.silu is, where the standard ops round σ(g)
// and g·σ(g) separately. The elements are swigluSilu / swigluGateGrad (fused_shared.h), run by this CPU
// kernel and by kernels/swiglu.cu.
#include "../fused_common.h"

#include <vector>

namespace latent_sft {
namespace {

template <bool OnCuda, bool Grad>
struct SwiGluKernel {
  int deviceId = 0;

  explicit SwiGluKernel(const OrtKernelInfo*) {
    if (OnCuda) (void)kernelsForCurrentContext(deviceId);
  }

  OrtStatusPtr ComputeV2(OrtKernelContext* context) {
    const char* name = Grad ? "SwiGLUGrad" : "SwiGLU";
    try {
      Ort::KernelContext ctx(context);
      // Forward: gate, up → Y. Grad: dY, gate, up → dGate, dUp.
      constexpr size_t kIn = Grad ? 3 : 2;
      std::vector<Ort::ConstValue> in;
      for (size_t i = 0; i < kIn; i++) in.push_back(ctx.GetInput(i));
      auto info = in[0].GetTensorTypeAndShapeInfo();
      auto shape = info.GetShape();
      auto t = info.GetElementType();
      if (floatTypeName(t) == nullptr) throw std::runtime_error("inputs must be float32, bfloat16 or float16");
      for (size_t i = 1; i < kIn; i++) {
        auto ii = in[i].GetTensorTypeAndShapeInfo();
        if (ii.GetElementType() != t || ii.GetShape() != shape) throw std::runtime_error("every input must have the dtype and shape of the first");
      }
      long long n = static_cast<long long>(info.GetElementCount());
      const void* a = in[0].GetTensorRawData();
      const void* b = in[1].GetTensorRawData();
      const void* c = Grad ? in[2].GetTensorRawData() : nullptr;
      void* o0 = ctx.GetOutput(0, shape).GetTensorMutableRawData();
      void* o1 = Grad ? ctx.GetOutput(1, shape).GetTensorMutableRawData() : nullptr;
      if (n == 0) return nullptr;
      if constexpr (OnCuda) {
        const Kernels& k = kernelsForCurrentContext(deviceId);
        int vec = 1;
        for (const void* q : {a, b, c, static_cast<const void*>(o0), static_cast<const void*>(o1)})
          if (q != nullptr && !aligned(q, 4 * dtypeSize(t))) vec = 0;
        unsigned grid = gridFor(vec != 0 ? (n + 3) / 4 : n, k.smCount, 16);
        if constexpr (Grad) {
          void* args[] = {&n, &vec, &a, &b, &c, &o0, &o1};
          check(cudaApi().launchKernel(k.swigluGrad[gradIndex(t)], grid, 1, 1, 256, 1, 1, 0, ctx.GetGPUComputeStream(), args, nullptr),
                "cuLaunchKernel (SwiGLUGrad)");
        } else {
          void* args[] = {&n, &vec, &a, &b, &o0};
          check(cudaApi().launchKernel(k.swiglu[gradIndex(t)], grid, 1, 1, 256, 1, 1, 0, ctx.GetGPUComputeStream(), args, nullptr),
                "cuLaunchKernel (SwiGLU)");
        }
      } else {
        struct Job { const void *a, *b, *c; void *o0, *o1; ONNXTensorElementDataType t; size_t n; } job{a, b, c, o0, o1, t, static_cast<size_t>(n)};
        ctx.ParallelFor([](void* data, size_t chunk) {
          const Job& j = *static_cast<const Job*>(data);
          size_t e = (chunk + 1) * kCpuChunk < j.n ? (chunk + 1) * kCpuChunk : j.n;
          for (size_t i = chunk * kCpuChunk; i < e; i++) {
            if constexpr (Grad) {
              float d = loadAsFloat(j.a, j.t, i), g = loadAsFloat(j.b, j.t, i), u = loadAsFloat(j.c, j.t, i);
              storeFromFloat(j.o0, j.t, i, swigluGateGrad(d, g, u));
              storeFromFloat(j.o1, j.t, i, d * roundTo(j.t, swigluSilu(g)));
            } else {
              storeFromFloat(j.o0, j.t, i, roundTo(j.t, swigluSilu(loadAsFloat(j.a, j.t, i))) * loadAsFloat(j.b, j.t, i));
            }
          }
        }, (static_cast<size_t>(n) + kCpuChunk - 1) / kCpuChunk, 0, &job);
      }
      return nullptr;
    } catch (const std::exception& e) {
      return fail(name, e);
    }
  }
};

/**
 * SwiGLUPacked(x) -> Y: x [..., 2F] holds gate (the first F of the last axis) and up (the last F), as one
 * Gemm over the concatenated gate/up projections gives them; Y [..., F] is SwiGLU(gate, up), bit for bit.
 * Inference only (no grad op): the generation engine's decode step, where a Split of x would copy it.
 */
template <bool OnCuda>
struct SwiGluPackedKernel {
  int deviceId = 0;

  explicit SwiGluPackedKernel(const OrtKernelInfo*) {
    if (OnCuda) (void)kernelsForCurrentContext(deviceId);
  }

  OrtStatusPtr ComputeV2(OrtKernelContext* context) {
    try {
      Ort::KernelContext ctx(context);
      auto in = ctx.GetInput(0);
      auto info = in.GetTensorTypeAndShapeInfo();
      auto shape = info.GetShape();
      auto t = info.GetElementType();
      if (floatTypeName(t) == nullptr) throw std::runtime_error("x must be float32, bfloat16 or float16");
      if (shape.empty() || shape.back() % 2 != 0) throw std::runtime_error("x's last dim must be even (gate, then up)");
      long long F = shape.back() / 2;
      long long rows = F == 0 ? 0 : static_cast<long long>(info.GetElementCount()) / (2 * F);
      shape.back() = F;
      const void* x = in.GetTensorRawData();
      void* y = ctx.GetOutput(0, shape).GetTensorMutableRawData();
      if (rows * F == 0) return nullptr;
      if constexpr (OnCuda) {
        const Kernels& k = kernelsForCurrentContext(deviceId);
        int vec = F % 4 == 0 && aligned(x, 4 * dtypeSize(t)) && aligned(y, 4 * dtypeSize(t)) ? 1 : 0;
        unsigned grid = gridFor(vec != 0 ? rows * F / 4 : rows * F, k.smCount, 16);
        void* args[] = {&rows, &F, &vec, &x, &y};
        check(cudaApi().launchKernel(k.swigluPacked[gradIndex(t)], grid, 1, 1, 256, 1, 1, 0, ctx.GetGPUComputeStream(), args, nullptr),
              "cuLaunchKernel (SwiGLUPacked)");
      } else {
        struct Job { const void* x; void* y; ONNXTensorElementDataType t; size_t rows, F; } job{x, y, t, static_cast<size_t>(rows), static_cast<size_t>(F)};
        size_t n = job.rows * job.F;
        ctx.ParallelFor([](void* data, size_t chunk) {
          const Job& j = *static_cast<const Job*>(data);
          size_t e = (chunk + 1) * kCpuChunk < j.rows * j.F ? (chunk + 1) * kCpuChunk : j.rows * j.F;
          for (size_t i = chunk * kCpuChunk; i < e; i++) {
            size_t r = i / j.F, c = i - r * j.F;
            float g = loadAsFloat(j.x, j.t, r * 2 * j.F + c), u = loadAsFloat(j.x, j.t, r * 2 * j.F + j.F + c);
            storeFromFloat(j.y, j.t, i, roundTo(j.t, swigluSilu(g)) * u);
          }
        }, (n + kCpuChunk - 1) / kCpuChunk, 0, &job);
      }
      return nullptr;
    } catch (const std::exception& e) {
      return fail("SwiGLUPacked", e);
    }
  }
};

/** SwiGLUPacked's output: x's dtype and shape with the last dim halved. */
OrtStatusPtr inferSwiGluPacked(const OrtCustomOp*, OrtShapeInferContext* ctx) {
  InferredShape x;
  if (OrtStatusPtr st = inferredInput(ctx, 0, x)) return st;
  if (!x.dims.empty()) {
    // A known 2F halves; an unknown one gets a fresh name (F is not the same unknown as 2F).
    if (x.dims.back() >= 0) x.dims.back() /= 2;
    x.names.back() = x.dims.back() >= 0 ? "" : freshDimName();
  }
  return setInferredOutput(ctx, 0, x);
}

template <bool OnCuda>
struct SwiGluPackedOp : FusedOp<SwiGluPackedOp<OnCuda>, SwiGluPackedKernel<OnCuda>, OnCuda> {
  SwiGluPackedOp() { this->InferOutputShapeFn = &inferSwiGluPacked; }
  const char* GetName() const { return "SwiGLUPacked"; }
  size_t GetInputTypeCount() const { return 1; }
  ONNXTensorElementDataType GetInputType(size_t) const { return ONNX_TENSOR_ELEMENT_DATA_TYPE_UNDEFINED; }
  size_t GetOutputTypeCount() const { return 1; }
  ONNXTensorElementDataType GetOutputType(size_t) const { return ONNX_TENSOR_ELEMENT_DATA_TYPE_UNDEFINED; }
};

/** Output types/shapes: every output as input 1 (gate). */
template <bool Grad>
OrtStatusPtr inferSwiGlu(const OrtCustomOp*, OrtShapeInferContext* ctx) {
  InferredShape g;
  if (OrtStatusPtr st = inferredInput(ctx, Grad ? 1 : 0, g)) return st;
  if (OrtStatusPtr st = setInferredOutput(ctx, 0, g)) return st;
  return Grad ? setInferredOutput(ctx, 1, g) : nullptr;
}

template <bool OnCuda, bool Grad>
struct SwiGluOp : FusedOp<SwiGluOp<OnCuda, Grad>, SwiGluKernel<OnCuda, Grad>, OnCuda> {
  SwiGluOp() { this->InferOutputShapeFn = &inferSwiGlu<Grad>; }
  const char* GetName() const { return Grad ? "SwiGLUGrad" : "SwiGLU"; }
  size_t GetInputTypeCount() const { return Grad ? 3 : 2; }
  ONNXTensorElementDataType GetInputType(size_t) const { return ONNX_TENSOR_ELEMENT_DATA_TYPE_UNDEFINED; }
  size_t GetOutputTypeCount() const { return Grad ? 2 : 1; }
  ONNXTensorElementDataType GetOutputType(size_t) const { return ONNX_TENSOR_ELEMENT_DATA_TYPE_UNDEFINED; }
};

}  // namespace

void addSwiGluOps(Ort::CustomOpDomain& cpu, Ort::CustomOpDomain& cuda) {
  cpu.Add(new SwiGluOp<false, false>());
  cpu.Add(new SwiGluOp<false, true>());
  cuda.Add(new SwiGluOp<true, false>());
  cuda.Add(new SwiGluOp<true, true>());
  cpu.Add(new SwiGluPackedOp<false>());
  cuda.Add(new SwiGluPackedOp<true>());
}

}  // namespace latent_sft
