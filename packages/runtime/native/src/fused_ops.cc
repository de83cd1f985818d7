// Custom ops of domain "latent_sft" (fused optimizer and training kernels), a CPU and a CUDA kernel
// each: one file per op family in ops/ (host side) and kernels/ (CUDA C++, compiled by NVRTC at run
// time, see fused_cuda.cc); the structs both sides use are in fused_shared.h. This file registers
// the families and holds the shape-inference helpers they share.
#include "fused_ops.h"

#include <atomic>
#include <mutex>

#include "fused_common.h"

namespace latent_sft {

OrtStatusPtr fail(const char* op, const std::exception& e) {
  return Ort::GetApi().CreateStatus(ORT_FAIL, (std::string("latent_sft.") + op + ": " + e.what()).c_str());
}

std::string freshDimName() {
  static std::atomic<unsigned long long> fresh{0};
  return "latent_sft_dim_" + std::to_string(fresh++);
}

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

InferredShape rowsOf(const InferredShape& x) {
  return {ONNX_TENSOR_ELEMENT_DATA_TYPE_FLOAT, std::vector<int64_t>(x.dims.begin(), x.dims.end() - 1),
          std::vector<std::string>(x.names.begin(), x.names.end() - 1)};
}

void addFusedOps(Ort::SessionOptions& so, bool cuda) {
  // Domains and ops are never destroyed: ORT sessions (and the process-wide Ort::Env) may be torn down
  // after this module's static destructors at exit, and they keep pointers to both. One domain per
  // execution provider: a session gets the kernels of its own provider only.
  static std::once_flag once;
  static Ort::CustomOpDomain* cpuDomain = nullptr;
  static Ort::CustomOpDomain* cudaDomain = nullptr;
  std::call_once(once, [] {
    cpuDomain = new Ort::CustomOpDomain(kDomain);
    cudaDomain = new Ort::CustomOpDomain(kDomain);
    addAdamWOps(*cpuDomain, *cudaDomain);
    addSumSquaresOps(*cpuDomain, *cudaDomain);
    addMaskedSoftmaxOps(*cpuDomain, *cudaDomain);
    addRMSNormOps(*cpuDomain, *cudaDomain);
    addSwiGluOps(*cpuDomain, *cudaDomain);
    addRopeOps(*cpuDomain, *cudaDomain);
    addCrossEntropyOps(*cpuDomain, *cudaDomain);
    addAfterOps(*cpuDomain, *cudaDomain);
    addSeededDropoutOps(*cpuDomain, *cudaDomain);
    addDecodeAttentionOps(*cpuDomain, *cudaDomain);
    addVocabTopKOps(*cpuDomain, *cudaDomain);
    addFlashAttentionOps(*cpuDomain, *cudaDomain);
  });
  so.Add(cuda ? *cudaDomain : *cpuDomain);
}

}  // namespace latent_sft
