// After(X, dep_1, ..., dep_k) -> Y: a copy of X (any dtype, any shape) that ONNX Runtime can only run
// once every dep exists (k >= 1, any dtypes). The recomputation pass of @latent-sft/graph (recompute.ts)
// reads one input of each recomputed forward segment through it, the deps being the cotangent of the
// segment's output and the previous segment's backward, so the recomputation cannot be scheduled before
// the backward reaches the segment (a standard Identity would be removed by ORT's optimizer, and has no
// second input). The deps are not read. CPU: memcpy; CUDA: cuMemcpyDtoDAsync on ORT's compute stream
// (no kernel of ours).
#include "../fused_common.h"

namespace latent_sft {
namespace {

/** Bytes per element of the tensor types a graph can hold here (strings are not supported). */
size_t elementBytes(ONNXTensorElementDataType t) {
  switch (t) {
    case ONNX_TENSOR_ELEMENT_DATA_TYPE_BOOL:
    case ONNX_TENSOR_ELEMENT_DATA_TYPE_INT8:
    case ONNX_TENSOR_ELEMENT_DATA_TYPE_UINT8: return 1;
    case ONNX_TENSOR_ELEMENT_DATA_TYPE_INT16:
    case ONNX_TENSOR_ELEMENT_DATA_TYPE_UINT16:
    case ONNX_TENSOR_ELEMENT_DATA_TYPE_FLOAT16:
    case ONNX_TENSOR_ELEMENT_DATA_TYPE_BFLOAT16: return 2;
    case ONNX_TENSOR_ELEMENT_DATA_TYPE_INT32:
    case ONNX_TENSOR_ELEMENT_DATA_TYPE_UINT32:
    case ONNX_TENSOR_ELEMENT_DATA_TYPE_FLOAT: return 4;
    case ONNX_TENSOR_ELEMENT_DATA_TYPE_INT64:
    case ONNX_TENSOR_ELEMENT_DATA_TYPE_UINT64:
    case ONNX_TENSOR_ELEMENT_DATA_TYPE_DOUBLE: return 8;
    default: throw std::runtime_error("X must be a numeric or bool tensor");
  }
}

template <bool OnCuda>
struct AfterKernel {
  explicit AfterKernel(const OrtKernelInfo*) {
    if (OnCuda && !cudaApi().error.empty()) throw std::runtime_error(cudaApi().error);
  }

  OrtStatusPtr ComputeV2(OrtKernelContext* context) {
    try {
      Ort::KernelContext ctx(context);
      Ort::ConstValue x = ctx.GetInput(0);
      auto info = x.GetTensorTypeAndShapeInfo();
      size_t bytes = info.GetElementCount() * elementBytes(info.GetElementType());
      const void* src = x.GetTensorRawData();
      void* dst = ctx.GetOutput(0, info.GetShape()).GetTensorMutableRawData();
      if (bytes == 0) return nullptr;
      if constexpr (OnCuda) {
        check(cudaApi().memcpyDtoDAsync(reinterpret_cast<CUdeviceptr>(dst), reinterpret_cast<CUdeviceptr>(src), bytes, ctx.GetGPUComputeStream()),
              "cuMemcpyDtoDAsync (After)");
      } else {
        std::memcpy(dst, src, bytes);
      }
      return nullptr;
    } catch (const std::exception& e) {
      return fail("After", e);
    }
  }
};

/** Output type/shape: X's. */
OrtStatusPtr inferAfter(const OrtCustomOp*, OrtShapeInferContext* ctx) {
  InferredShape x;
  if (OrtStatusPtr st = inferredInput(ctx, 0, x)) return st;
  return setInferredOutput(ctx, 0, x);
}

template <bool OnCuda>
struct AfterOp : FusedOp<AfterOp<OnCuda>, AfterKernel<OnCuda>, OnCuda> {
  AfterOp() { this->InferOutputShapeFn = &inferAfter; }
  const char* GetName() const { return "After"; }
  size_t GetInputTypeCount() const { return 2; }
  ONNXTensorElementDataType GetInputType(size_t) const { return ONNX_TENSOR_ELEMENT_DATA_TYPE_UNDEFINED; }
  // X, then the deps as one variadic input of mixed dtypes.
  OrtCustomOpInputOutputCharacteristic GetInputCharacteristic(size_t i) const { return i == 0 ? INPUT_OUTPUT_REQUIRED : INPUT_OUTPUT_VARIADIC; }
  int GetVariadicInputMinArity() const { return 1; }
  bool GetVariadicInputHomogeneity() const { return false; }
  size_t GetOutputTypeCount() const { return 1; }
  ONNXTensorElementDataType GetOutputType(size_t) const { return ONNX_TENSOR_ELEMENT_DATA_TYPE_UNDEFINED; }
};

}  // namespace

void addAfterOps(Ort::CustomOpDomain& cpu, Ort::CustomOpDomain& cuda) {
  cpu.Add(new AfterOp<false>());
  cuda.Add(new AfterOp<true>());
}

}  // namespace latent_sft
