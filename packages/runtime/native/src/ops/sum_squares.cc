// SumSquares(x_1 .. x_k, any float dtype) -> float32 scalar Σ_i Σ x_i², accumulated in float64 in a
// fixed order (deterministic for a given device): a global grad norm in one op instead of one cuDNN
// reduction per tensor with a fixed per-call cost. CUDA kernels in kernels/sum_squares.cu.
#include "../fused_common.h"

#include <vector>

namespace latent_sft {
namespace {

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
struct SumSquaresOp : FusedOp<SumSquaresOp<OnCuda>, SumSquaresKernel<OnCuda>, OnCuda> {
  const char* GetName() const { return "SumSquares"; }
  size_t GetInputTypeCount() const { return 1; }
  ONNXTensorElementDataType GetInputType(size_t) const { return ONNX_TENSOR_ELEMENT_DATA_TYPE_UNDEFINED; }
  OrtCustomOpInputOutputCharacteristic GetInputCharacteristic(size_t) const { return INPUT_OUTPUT_VARIADIC; }
  int GetVariadicInputMinArity() const { return 1; }
  bool GetVariadicInputHomogeneity() const { return false; }
  size_t GetOutputTypeCount() const { return 1; }
  ONNXTensorElementDataType GetOutputType(size_t) const { return ONNX_TENSOR_ELEMENT_DATA_TYPE_FLOAT; }
};

}  // namespace

void addSumSquaresOps(Ort::CustomOpDomain& cpu, Ort::CustomOpDomain& cuda) {
  cpu.Add(new SumSquaresOp<false>());
  cuda.Add(new SumSquaresOp<true>());
}

}  // namespace latent_sft
