// MaskedSoftmax / MaskedSoftmaxGrad: softmax(scale·X + mask) over the last axis in float32, rounded
// once to X's dtype, with the row stats (max, Σ) the gradient recomputes Y from. CUDA kernels in
// kernels/masked_softmax.cu, one warp per row; the row → mask map (RowMap) is shared with them.
#include "../fused_common.h"

#include <algorithm>
#include <cmath>
#include <vector>

namespace latent_sft {
namespace {

/** The RowMap (fused_shared.h) of X [..., S] and a mask M right-aligned broadcastable to it. */
RowMap rowMap(const std::vector<int64_t>& xs, const std::vector<int64_t>& ms) {
  if (xs.empty()) throw std::runtime_error("X must have rank >= 1");
  if (ms.size() > xs.size()) throw std::runtime_error("the mask has a higher rank than X");
  if (xs.size() - 1 > 8) throw std::runtime_error("X has more than 9 dims");
  size_t r = xs.size(), lead = r - ms.size();
  std::vector<int64_t> e(r, 1);
  for (size_t i = 0; i < ms.size(); i++) e[lead + i] = ms[i];
  RowMap rm{};
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
        // Register path: rows of S % 4 == 0, S ≤ kSoftmaxRegisterMaxS (32 lanes × 4 × kSoftmaxGroups), 4-element-aligned tensors.
        size_t va = 4 * dtypeSize(xt);
        int vec = S % 4 == 0 && S <= kSoftmaxRegisterMaxS && aligned(x, va) && aligned(out, va) && (rm.mlast == 0 || aligned(m, 16)) &&
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
struct MaskedSoftmaxOp : FusedOp<MaskedSoftmaxOp<OnCuda, Grad>, MaskedSoftmaxKernel<OnCuda, Grad>, OnCuda> {
  MaskedSoftmaxOp() { this->InferOutputShapeFn = &inferMaskedSoftmax<Grad>; }
  const char* GetName() const { return Grad ? "MaskedSoftmaxGrad" : "MaskedSoftmax"; }
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

}  // namespace

void addMaskedSoftmaxOps(Ort::CustomOpDomain& cpu, Ort::CustomOpDomain& cuda) {
  cpu.Add(new MaskedSoftmaxOp<false, false>());
  cpu.Add(new MaskedSoftmaxOp<false, true>());
  cuda.Add(new MaskedSoftmaxOp<true, false>());
  cuda.Add(new MaskedSoftmaxOp<true, true>());
}

}  // namespace latent_sft
