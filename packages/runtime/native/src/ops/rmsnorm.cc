// RMSNorm / RMSNormGrad: Y = W ⊙ round(X·r), r = 1/√(mean(X²) + ε) in float32 (HF's LlamaRMSNorm), and
// its gradient with dW as per-block partials [P, D] the caller sums (deterministic, no atomics; on CUDA the op
// sums its blocks' partials itself, P = 1). CUDA kernels in kernels/rmsnorm.cu.
#include "../fused_common.h"

#include <algorithm>
#include <cmath>
#include <memory>
#include <vector>

namespace latent_sft {
namespace {

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
          // The blocks' partial rows go to a scratch buffer and rmsnorm_dw_sum sums them into one row [1, D] (the
          // graph's ReduceSum over it is then a copy: ORT's over [P, D] took 84 µs at 1,056 × 2,048 on an H100).
          // Without a scratch buffer, the partials are the output, as before.
          std::unique_ptr<ScratchBuffer> scratch;
          if (D > 0 && parts > 1) {
            try {
              scratch = std::make_unique<ScratchBuffer>(context, dyv.GetTensorMemoryInfo(), static_cast<size_t>(parts * D) * sizeof(float));
            } catch (const std::exception&) {
              scratch.reset();
            }
          }
          float* out = ctx.GetOutput(1, {scratch ? 1 : parts, D}).GetTensorMutableData<float>();
          if (D == 0) return nullptr;
          float* dwp = scratch ? static_cast<float*>(scratch->get()) : out;
          void* stream = ctx.GetGPUComputeStream();
          void* args[] = {&dy, &x, &w, &r, &dx, &dwp, &rows, &D};
          check(cudaApi().launchKernel(k.rmsnormGrad[gradIndex(xt)], static_cast<unsigned>(parts), 1, 1, 256, 1, 1, static_cast<unsigned>(D * 4), stream,
                                       args, nullptr),
                "cuLaunchKernel (RMSNormGrad)");
          if (scratch) {
            void* sumArgs[] = {&dwp, &out, &parts, &D};
            check(cudaApi().launchKernel(k.rmsnormDwSum, static_cast<unsigned>((D + 31) / 32), 1, 1, 256, 1, 1, 0, stream, sumArgs, nullptr),
                  "cuLaunchKernel (RMSNormGrad dW sum)");
          }
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
struct RMSNormOp : FusedOp<RMSNormOp<OnCuda, Grad>, RMSNormKernel<OnCuda, Grad>, OnCuda> {
  RMSNormOp() { this->InferOutputShapeFn = &inferRMSNorm<Grad>; }
  const char* GetName() const { return Grad ? "RMSNormGrad" : "RMSNorm"; }
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

void addRMSNormOps(Ort::CustomOpDomain& cpu, Ort::CustomOpDomain& cuda) {
  cpu.Add(new RMSNormOp<false, false>());
  cpu.Add(new RMSNormOp<false, true>());
  cuda.Add(new RMSNormOp<true, false>());
  cuda.Add(new RMSNormOp<true, true>());
}

}  // namespace latent_sft
