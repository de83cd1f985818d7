// Rope: rotary position embeddings (HF's rotate_half convention, models' applyRope) in one elementwise pass,
// float32 inside, each result rounded once to x's dtype.
//
//   Rope(x, cos, sinSigned) -> y                 y[j] = x[j]·cos[j] + x[swap(j)]·sinSigned[j]
//   Rope(x, cos, sinSigned){transpose 1} -> y    y[j] = x[j]·cos[j] + x[swap(j)]·sinSigned[swap(j)]
// x [B, T, n, hd] (f32, bf16, f16; hd even), cos and sinSigned [B, T, 1, hd] of x's dtype (one row per token,
// shared by its n heads; sinSigned = [−sin, sin] as ropeFactors makes it); swap(j) = j + hd/2 for j < hd/2, else
// j − hd/2. transpose 1 is the transposed map, i.e. the backward (dx from dy): the gradient rule
// (graph/src/autodiff.ts) flips the attribute, so one kernel serves both ways. The standard ops round x·cos,
// swap(x)·sinSigned and their sum to the dtype; this op rounds once. The pair function is ropePair
// (fused_shared.h), run by this CPU kernel and by kernels/rope.cu, bit for bit the same.
#include "../fused_common.h"

#include <string>
#include <vector>

namespace latent_sft {
namespace {

template <bool OnCuda>
struct RopeKernel {
  int transpose = 0;
  int deviceId = 0;

  explicit RopeKernel(const OrtKernelInfo* info) {
    Ort::ConstKernelInfo ki(info);
    int64_t t = 0;
    try {
      t = ki.GetAttribute<int64_t>("transpose");
    } catch (const Ort::Exception&) {
      t = 0;
    }
    if (t != 0 && t != 1) throw std::runtime_error("attribute transpose must be 0 or 1, got " + std::to_string(t));
    transpose = static_cast<int>(t);
    if (OnCuda) (void)kernelsForCurrentContext(deviceId);
  }

  OrtStatusPtr ComputeV2(OrtKernelContext* context) {
    try {
      Ort::KernelContext ctx(context);
      auto xv = ctx.GetInput(0), cv = ctx.GetInput(1), sv = ctx.GetInput(2);
      auto xi = xv.GetTensorTypeAndShapeInfo();
      auto xs = xi.GetShape();
      auto t = xi.GetElementType();
      if (floatTypeName(t) == nullptr) throw std::runtime_error("x must be float32, bfloat16 or float16");
      if (xs.size() != 4 || xs[3] % 2 != 0) throw std::runtime_error("x must be [B, T, n, hd] with an even hd");
      const std::vector<int64_t> want{xs[0], xs[1], 1, xs[3]};
      for (auto [v, what] : {std::pair{&cv, "cos"}, std::pair{&sv, "sinSigned"}}) {
        auto vi = v->GetTensorTypeAndShapeInfo();
        if (vi.GetElementType() != t || vi.GetShape() != want)
          throw std::runtime_error(std::string(what) + " must have x's dtype and shape [B, T, 1, hd] = [" + std::to_string(xs[0]) + ", " +
                                   std::to_string(xs[1]) + ", 1, " + std::to_string(xs[3]) + "]");
      }
      long long heads = xs[2], half = xs[3] / 2;
      long long rows = xs[0] * xs[1] * heads;  // (b, t, h) rows of hd elements
      const void* x = xv.GetTensorRawData();
      const void* c = cv.GetTensorRawData();
      const void* s = sv.GetTensorRawData();
      void* y = ctx.GetOutput(0, xs).GetTensorMutableRawData();
      if (rows * half == 0) return nullptr;
      int tr = transpose;
      if constexpr (OnCuda) {
        const Kernels& k = kernelsForCurrentContext(deviceId);
        // 4 pairs per thread step when the half row is a multiple of 4 and every pointer is aligned to 4
        // elements (then each row and half row starts aligned as well).
        int vec = half % 4 == 0 ? 1 : 0;
        for (const void* q : {x, c, s, static_cast<const void*>(y)})
          if (!aligned(q, 4 * dtypeSize(t))) vec = 0;
        unsigned grid = gridFor(vec != 0 ? rows * half / 4 : rows * half, k.smCount, 16);
        void* args[] = {&rows, &heads, &half, &tr, &vec, &x, &c, &s, &y};
        check(cudaApi().launchKernel(k.rope[gradIndex(t)], grid, 1, 1, 256, 1, 1, 0, ctx.GetGPUComputeStream(), args, nullptr), "cuLaunchKernel (Rope)");
      } else {
        struct Job {
          const void *x, *c, *s;
          void* y;
          ONNXTensorElementDataType t;
          size_t heads, half, pairs;
          int tr;
        } job{x, c, s, y, t, static_cast<size_t>(heads), static_cast<size_t>(half), static_cast<size_t>(rows * half), tr};
        ctx.ParallelFor([](void* data, size_t chunk) {
          const Job& j = *static_cast<const Job*>(data);
          size_t e = (chunk + 1) * kCpuChunk < j.pairs ? (chunk + 1) * kCpuChunk : j.pairs;
          for (size_t i = chunk * kCpuChunk; i < e; i++) {
            size_t r = i / j.half, col = i - r * j.half;
            size_t xo = r * 2 * j.half + col, co = (r / j.heads) * 2 * j.half + col;
            float y1, y2;
            ropePair(loadAsFloat(j.x, j.t, xo), loadAsFloat(j.x, j.t, xo + j.half), loadAsFloat(j.c, j.t, co), loadAsFloat(j.c, j.t, co + j.half),
                     loadAsFloat(j.s, j.t, co), loadAsFloat(j.s, j.t, co + j.half), j.tr, y1, y2);
            storeFromFloat(j.y, j.t, xo, y1);
            storeFromFloat(j.y, j.t, xo + j.half, y2);
          }
        }, (job.pairs + kCpuChunk - 1) / kCpuChunk, 0, &job);
      }
      return nullptr;
    } catch (const std::exception& e) {
      return fail("Rope", e);
    }
  }
};

/** Output: x's type and shape. */
OrtStatusPtr inferRope(const OrtCustomOp*, OrtShapeInferContext* ctx) {
  InferredShape x;
  if (OrtStatusPtr st = inferredInput(ctx, 0, x)) return st;
  return setInferredOutput(ctx, 0, x);
}

template <bool OnCuda>
struct RopeOp : FusedOp<RopeOp<OnCuda>, RopeKernel<OnCuda>, OnCuda> {
  RopeOp() { this->InferOutputShapeFn = &inferRope; }
  const char* GetName() const { return "Rope"; }
  size_t GetInputTypeCount() const { return 3; }
  ONNXTensorElementDataType GetInputType(size_t) const { return ONNX_TENSOR_ELEMENT_DATA_TYPE_UNDEFINED; }
  size_t GetOutputTypeCount() const { return 1; }
  ONNXTensorElementDataType GetOutputType(size_t) const { return ONNX_TENSOR_ELEMENT_DATA_TYPE_UNDEFINED; }
};

}  // namespace

void addRopeOps(Ort::CustomOpDomain& cpu, Ort::CustomOpDomain& cuda) {
  cpu.Add(new RopeOp<false>());
  cuda.Add(new RopeOp<true>());
}

}  // namespace latent_sft
