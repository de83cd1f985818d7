// VocabTopK: a generation step's sampling head over the vocabulary in one op.
//
//   VocabTopK(x [B, V] f32, inv_temperature [1] f32){k} -> values [B, k] f32, indices [B, k] int64, lse [B] f32,
//                                                          cand [B, chunks, k] int64, part [B, chunks, 2] f32
//   values / indices: the k largest x of each row, descending, equal values → the lower index first (ONNX
//   TopK's order; exact: the keys of fused_shared.h's vtkKey are distinct). lse = log Σ_v e^(x_v·invT), from
//   each chunk's (max, Σ e^(s − max)) of s = x·invT combined in chunk order.
//   cand / part: the per-chunk results (chunks = ⌈V / kVtkChunk⌉): each chunk's top k keys (vtkKey's bits) and
//   its (max, sum). The CUDA kernels' workspace, as outputs so that ORT allocates it (a CUDA graph replays the
//   same addresses); the CPU kernel fills them the same way, so they are checked too.
// 1 ≤ k ≤ 64 and k ≤ every chunk-stage's candidate count (k ≤ V). Inference only (no gradient). The CUDA
// kernels are kernels/vocab_topk.cu; the CPU kernel selects each chunk's keys with std::partial_sort and sums
// each chunk's float32 terms in float64 (the CUDA sums are float32 trees: lse agrees within ~1e-6).
#include "../fused_common.h"

#include <algorithm>
#include <cmath>
#include <vector>

namespace latent_sft {
namespace {

template <bool OnCuda>
struct VocabTopKKernel {
  int k = 0;
  int deviceId = 0;

  explicit VocabTopKKernel(const OrtKernelInfo* info) {
    Ort::ConstKernelInfo ki(info);
    int64_t kk = ki.GetAttribute<int64_t>("k");
    if (kk < 1 || kk > 64) throw std::runtime_error("k must be in [1, 64], got " + std::to_string(kk));
    k = static_cast<int>(kk);
    if (OnCuda) (void)kernelsForCurrentContext(deviceId);
  }

  OrtStatusPtr ComputeV2(OrtKernelContext* context) {
    try {
      Ort::KernelContext ctx(context);
      auto xv = ctx.GetInput(0);
      auto xi = xv.GetTensorTypeAndShapeInfo();
      auto dims = xi.GetShape();
      if (xi.GetElementType() != ONNX_TENSOR_ELEMENT_DATA_TYPE_FLOAT || dims.size() != 2) throw std::runtime_error("x must be float32 [B, V]");
      auto tv = ctx.GetInput(1);
      if (tv.GetTensorTypeAndShapeInfo().GetElementType() != ONNX_TENSOR_ELEMENT_DATA_TYPE_FLOAT || tv.GetTensorTypeAndShapeInfo().GetElementCount() != 1)
        throw std::runtime_error("inv_temperature must be float32 [1]");
      long long B = dims[0], V = dims[1];
      if (V < k || V >= 0xffffffffLL) throw std::runtime_error("needs k <= V < 2^32 - 1, got V = " + std::to_string(V));
      int chunks = static_cast<int>((V + kVtkChunk - 1) / kVtkChunk);
      const float* x = xv.GetTensorData<float>();
      const float* invT = tv.GetTensorData<float>();
      float* values = ctx.GetOutput(0, {B, k}).GetTensorMutableData<float>();
      int64_t* indices = ctx.GetOutput(1, {B, k}).GetTensorMutableData<int64_t>();
      float* lse = ctx.GetOutput(2, {B}).GetTensorMutableData<float>();
      int64_t* cand = ctx.GetOutput(3, {B, chunks, k}).GetTensorMutableData<int64_t>();
      float* part = ctx.GetOutput(4, {B, chunks, 2}).GetTensorMutableData<float>();
      if (B == 0) return nullptr;
      if constexpr (OnCuda) {
        if (B > 65535) throw std::runtime_error("CUDA: at most 65535 rows, got " + std::to_string(B));
        const Kernels& kn = kernelsForCurrentContext(deviceId);
        CUstream stream = static_cast<CUstream>(ctx.GetGPUComputeStream());
        int kk = k;
        void* a1[] = {&x, &invT, &V, &kk, &chunks, &cand, &part};
        check(cudaApi().launchKernel(kn.vocabTopkPartial, static_cast<unsigned>(chunks), static_cast<unsigned>(B), 1, 256, 1, 1, 0, stream, a1, nullptr),
              "cuLaunchKernel (VocabTopK partial)");
        void* a2[] = {&x, &V, &kk, &chunks, &cand, &part, &values, &indices, &lse};
        check(cudaApi().launchKernel(kn.vocabTopkFinal, static_cast<unsigned>(B), 1, 1, 32, 1, 1, 0, stream, a2, nullptr),
              "cuLaunchKernel (VocabTopK final)");
      } else {
        float t = invT[0];
        struct Job { const float* x; float t; long long V; int k, chunks; int64_t* cand; float* part; } job{x, t, V, k, chunks, cand, part};
        // One task per (row, chunk): its top k keys and its (max, Σ e^(s − max)) in index order.
        ctx.ParallelFor([](void* data, size_t task) {
          const Job& j = *static_cast<const Job*>(data);
          long long row = static_cast<long long>(task) / j.chunks, c = static_cast<long long>(task) % j.chunks;
          long long b = c * kVtkChunk, e = std::min(j.V, b + kVtkChunk);
          std::vector<unsigned long long> keys(static_cast<size_t>(std::max<long long>(e - b, j.k)), 0ull);
          // The chunk's max first, then Σ e^(s − max) of float32 terms summed in float64 (the CUDA kernel's
          // tree of short float32 sums is about as accurate; a float32 running sum over 8192 terms is not).
          float m = -INFINITY;
          for (long long i = b; i < e; i++) {
            float v = j.x[row * j.V + i];
            keys[static_cast<size_t>(i - b)] = vtkKey(v, static_cast<unsigned>(i));
            m = std::max(m, v * j.t);
          }
          double s = 0.0;
          if (m != -INFINITY)
            for (long long i = b; i < e; i++) s += static_cast<double>(std::exp(j.x[row * j.V + i] * j.t - m));
          std::partial_sort(keys.begin(), keys.begin() + j.k, keys.end(), std::greater<unsigned long long>());
          for (int r = 0; r < j.k; r++) j.cand[(row * j.chunks + c) * j.k + r] = static_cast<int64_t>(keys[static_cast<size_t>(r)]);
          j.part[(row * j.chunks + c) * 2] = m;
          j.part[(row * j.chunks + c) * 2 + 1] = static_cast<float>(s);
        }, static_cast<size_t>(B * chunks), 0, &job);
        for (long long row = 0; row < B; row++) {
          std::vector<unsigned long long> keys(static_cast<size_t>(chunks) * k);
          for (size_t i = 0; i < keys.size(); i++) keys[i] = static_cast<unsigned long long>(cand[row * chunks * k + static_cast<long long>(i)]);
          std::partial_sort(keys.begin(), keys.begin() + k, keys.end(), std::greater<unsigned long long>());
          for (int r = 0; r < k; r++) {
            long long i = vtkIndex(keys[static_cast<size_t>(r)]);
            values[row * k + r] = x[row * V + i];
            indices[row * k + r] = i;
          }
          float m = part[row * chunks * 2];
          double s = part[row * chunks * 2 + 1];
          for (int c = 1; c < chunks; c++) {
            float m2 = part[(row * chunks + c) * 2];
            double s2 = part[(row * chunks + c) * 2 + 1];
            float mm = std::max(m, m2);
            if (mm == -INFINITY) continue;
            s = s * std::exp(static_cast<double>(m) - mm) + s2 * std::exp(static_cast<double>(m2) - mm);
            m = mm;
          }
          lse[row] = static_cast<float>(m + std::log(s));
        }
      }
      return nullptr;
    } catch (const std::exception& e) {
      return fail("VocabTopK", e);
    }
  }
};

/** Outputs: [B, k] f32, [B, k] int64, [B] f32, [B, chunks, k] int64, [B, chunks, 2] f32 (k: the attribute). */
OrtStatusPtr inferVocabTopK(const OrtCustomOp*, OrtShapeInferContext* ctx) {
  const OrtApi& api = Ort::GetApi();
  InferredShape x;
  if (OrtStatusPtr st = inferredInput(ctx, 0, x)) return st;
  const OrtOpAttr* attr = nullptr;
  if (OrtStatusPtr st = api.ShapeInferContext_GetAttribute(ctx, "k", &attr)) return st;
  int64_t k = 0;
  size_t got = 0;
  if (OrtStatusPtr st = api.ReadOpAttr(attr, ORT_OP_ATTR_INT, &k, sizeof k, &got)) return st;
  if (x.dims.size() != 2) return api.CreateStatus(ORT_INVALID_ARGUMENT, "latent_sft.VocabTopK: x must be [B, V]");
  long long V = x.dims[1];
  InferredShape rows{ONNX_TENSOR_ELEMENT_DATA_TYPE_FLOAT, {x.dims[0]}, {x.names[0]}};
  auto with = [&](ONNXTensorElementDataType t, std::vector<int64_t> rest) {
    InferredShape s{t, {x.dims[0]}, {x.names[0]}};
    for (int64_t d : rest) {
      s.dims.push_back(d);
      s.names.push_back(d >= 0 ? "" : freshDimName());
    }
    return s;
  };
  int64_t chunks = V >= 0 ? (V + kVtkChunk - 1) / kVtkChunk : -1;
  if (OrtStatusPtr st = setInferredOutput(ctx, 0, with(ONNX_TENSOR_ELEMENT_DATA_TYPE_FLOAT, {k}))) return st;
  if (OrtStatusPtr st = setInferredOutput(ctx, 1, with(ONNX_TENSOR_ELEMENT_DATA_TYPE_INT64, {k}))) return st;
  if (OrtStatusPtr st = setInferredOutput(ctx, 2, rows)) return st;
  if (OrtStatusPtr st = setInferredOutput(ctx, 3, with(ONNX_TENSOR_ELEMENT_DATA_TYPE_INT64, {chunks, k}))) return st;
  return setInferredOutput(ctx, 4, with(ONNX_TENSOR_ELEMENT_DATA_TYPE_FLOAT, {chunks, 2}));
}

template <bool OnCuda>
struct VocabTopKOp : FusedOp<VocabTopKOp<OnCuda>, VocabTopKKernel<OnCuda>, OnCuda> {
  VocabTopKOp() { this->InferOutputShapeFn = &inferVocabTopK; }
  const char* GetName() const { return "VocabTopK"; }
  size_t GetInputTypeCount() const { return 2; }
  ONNXTensorElementDataType GetInputType(size_t) const { return ONNX_TENSOR_ELEMENT_DATA_TYPE_FLOAT; }
  size_t GetOutputTypeCount() const { return 5; }
  ONNXTensorElementDataType GetOutputType(size_t i) const {
    return i == 1 || i == 3 ? ONNX_TENSOR_ELEMENT_DATA_TYPE_INT64 : ONNX_TENSOR_ELEMENT_DATA_TYPE_FLOAT;
  }
};

}  // namespace

void addVocabTopKOps(Ort::CustomOpDomain& cpu, Ort::CustomOpDomain& cuda) {
  cpu.Add(new VocabTopKOp<false>());
  cuda.Add(new VocabTopKOp<true>());
}

}  // namespace latent_sft
