// SeededDropout: the inverted dropout of a LoRA input in one elementwise pass (graph.fuseSeededDropout
// rewrites models/src/lora-graph.ts's seededDropout into it).
//
//   SeededDropout(x [N, I], a [N, 1], b [1, I], c [N, 1], d [1, I]){threshold, scale} -> y [N, I]
//   y = round(x · (keep ? scale : 0)),  keep = ((a_n + b_i)·(c_n + d_i) mod 2³², as int32) < threshold
//
// x, y: one float dtype (f32, bf16, f16); a, b, c, d: int32 tables; scale: 1/(1 − p) as rounded to x's
// dtype by the standard ops; round() = to that dtype. The same values as the standard ops' int32 Add, Add,
// Mul, Less, Cast and the two Muls (x·0 keeps its sign and NaN, as the Mul by the cast mask does), and its
// own gradient: dx = SeededDropout(dy) with the same tables. The element test is dropoutKeep
// (fused_shared.h), run by this CPU kernel and by kernels/dropout.cu.
#include "../fused_common.h"

#include <vector>

namespace latent_sft {
namespace {

template <bool OnCuda>
struct SeededDropoutKernel {
  int threshold = 0;
  float scale = 1.0f;
  int deviceId = 0;

  explicit SeededDropoutKernel(const OrtKernelInfo* info) {
    Ort::ConstKernelInfo ki(info);
    threshold = static_cast<int>(ki.GetAttribute<int64_t>("threshold"));
    scale = ki.GetAttribute<float>("scale");
    if (OnCuda) (void)kernelsForCurrentContext(deviceId);
  }

  OrtStatusPtr ComputeV2(OrtKernelContext* context) {
    try {
      Ort::KernelContext ctx(context);
      auto xv = ctx.GetInput(0);
      auto info = xv.GetTensorTypeAndShapeInfo();
      auto shape = info.GetShape();
      auto t = info.GetElementType();
      if (floatTypeName(t) == nullptr) throw std::runtime_error("x must be float32, bfloat16 or float16");
      if (shape.size() != 2) throw std::runtime_error("x must be [N, I]");
      long long rows = shape[0], cols = shape[1];
      const int* tab[4];
      for (size_t k = 0; k < 4; k++) {
        auto v = ctx.GetInput(1 + k);
        auto ti = v.GetTensorTypeAndShapeInfo();
        auto s = ti.GetShape();
        bool perRow = k % 2 == 0;  // a, c per row; b, d per column
        if (ti.GetElementType() != ONNX_TENSOR_ELEMENT_DATA_TYPE_INT32 || s.size() != 2 || s[0] != (perRow ? rows : 1) || s[1] != (perRow ? 1 : cols))
          throw std::runtime_error(std::string("table ") + "abcd"[k] + (perRow ? " must be int32 [N, 1]" : " must be int32 [1, I]"));
        tab[k] = v.GetTensorData<int>();
      }
      const void* x = xv.GetTensorRawData();
      void* y = ctx.GetOutput(0, shape).GetTensorMutableRawData();
      long long n = rows * cols;
      if (n == 0) return nullptr;
      if constexpr (OnCuda) {
        const Kernels& k = kernelsForCurrentContext(deviceId);
        // Grid x covers a row's columns (256 per block, at most 64 blocks), grid y the rows, up to 16 blocks per SM in all.
        unsigned gx = static_cast<unsigned>(std::min<long long>((cols + 255) / 256, 64));
        unsigned gy = static_cast<unsigned>(std::max<long long>(1, std::min<long long>({rows, 65535LL, static_cast<long long>(k.smCount) * 16 / gx + 1})));
        int th = threshold;
        float sc = scale;
        const int *a = tab[0], *b = tab[1], *c = tab[2], *d = tab[3];
        void* args[] = {&rows, &cols, &th, &sc, &x, &a, &b, &c, &d, &y};
        check(cudaApi().launchKernel(k.seededDropout[gradIndex(t)], gx, gy, 1, 256, 1, 1, 0, ctx.GetGPUComputeStream(), args, nullptr),
              "cuLaunchKernel (SeededDropout)");
      } else {
        struct Job { const void* x; const int *a, *b, *c, *d; void* y; ONNXTensorElementDataType t; size_t n, cols; int threshold; float scale; } job{
            x, tab[0], tab[1], tab[2], tab[3], y, t, static_cast<size_t>(n), static_cast<size_t>(cols), threshold, scale};
        ctx.ParallelFor([](void* data, size_t chunk) {
          const Job& j = *static_cast<const Job*>(data);
          size_t e = (chunk + 1) * kCpuChunk < j.n ? (chunk + 1) * kCpuChunk : j.n;
          for (size_t i = chunk * kCpuChunk; i < e; i++) {
            size_t row = i / j.cols, col = i - row * j.cols;
            float m = dropoutKeep(j.a[row], j.b[col], j.c[row], j.d[col], j.threshold) ? j.scale : 0.0f;
            storeFromFloat(j.y, j.t, i, loadAsFloat(j.x, j.t, i) * m);
          }
        }, (static_cast<size_t>(n) + kCpuChunk - 1) / kCpuChunk, 0, &job);
      }
      return nullptr;
    } catch (const std::exception& e) {
      return fail("SeededDropout", e);
    }
  }
};

/** Output type/shape: as input 0 (x). */
OrtStatusPtr inferSeededDropout(const OrtCustomOp*, OrtShapeInferContext* ctx) {
  InferredShape x;
  if (OrtStatusPtr st = inferredInput(ctx, 0, x)) return st;
  return setInferredOutput(ctx, 0, x);
}

template <bool OnCuda>
struct SeededDropoutOp : FusedOp<SeededDropoutOp<OnCuda>, SeededDropoutKernel<OnCuda>, OnCuda> {
  SeededDropoutOp() { this->InferOutputShapeFn = &inferSeededDropout; }
  const char* GetName() const { return "SeededDropout"; }
  size_t GetInputTypeCount() const { return 5; }
  ONNXTensorElementDataType GetInputType(size_t i) const { return i == 0 ? ONNX_TENSOR_ELEMENT_DATA_TYPE_UNDEFINED : ONNX_TENSOR_ELEMENT_DATA_TYPE_INT32; }
  size_t GetOutputTypeCount() const { return 1; }
  ONNXTensorElementDataType GetOutputType(size_t) const { return ONNX_TENSOR_ELEMENT_DATA_TYPE_UNDEFINED; }
};

}  // namespace

void addSeededDropoutOps(Ort::CustomOpDomain& cpu, Ort::CustomOpDomain& cuda) {
  cpu.Add(new SeededDropoutOp<false>());
  cuda.Add(new SeededDropoutOp<true>());
}

}  // namespace latent_sft
