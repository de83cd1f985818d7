// CEChunkStats / CEChunkGrad: the two kernels of the chunked LM-head cross-entropy (graph package,
// linear-cross-entropy.ts), which lowers LinearLogProb into GEMMs over chunks of the vocabulary and these.
//
//   CEChunkStats(z [R, C], target [R, 1] int64){offset, vocab} -> stats [R, 3] f32
//       per row: m = max_c z, s = Σ_c e^(z − m) (each term float32, summed in float64 on the CPU), z[target − offset] when offset ≤ target <
//       offset + C, else 0, NaN when target ∉ [0, vocab) (so a bad label makes the loss non-finite on
//       CPU and CUDA alike, never a silently wrong value).
//   CEChunkGrad(zT [C, R], target [R, 1] int64, lse [R, 1] f32, dlogp [R, 1] f32){offset} -> dzT [C, R]
//       dzT[v, r] = round(ceGradElement(zT[v, r], lse[r], dlogp[r], v + offset = target[r])).
// z / zT: float32, bfloat16 or float16. The gradient's element is shared with kernels/cross_entropy.cu
// (fused_shared.h); the CUDA stats kernel sums in another order (one block per row).
#include "../fused_common.h"

#include <algorithm>
#include <cmath>
#include <vector>

namespace latent_sft {
namespace {

int64_t intAttr(const OrtKernelInfo* info, const char* name) {
  Ort::ConstKernelInfo ki(info);
  return ki.GetAttribute<int64_t>(name);
}

/** The [R, 1] int64 targets of `rows` rows, or an error naming the input. */
const int64_t* targetsOf(Ort::ConstValue v, long long rows) {
  auto info = v.GetTensorTypeAndShapeInfo();
  auto s = info.GetShape();
  if (info.GetElementType() != ONNX_TENSOR_ELEMENT_DATA_TYPE_INT64 || s.size() != 2 || s[1] != 1 || s[0] != rows)
    throw std::runtime_error("target must be int64 [" + std::to_string(rows) + ", 1]");
  return v.GetTensorData<int64_t>();
}

/** A chunk of logits: float32, bfloat16 or float16, rank 2 (`what` names its layout in errors). */
struct Chunk {
  const void* data;
  ONNXTensorElementDataType type;
  std::vector<int64_t> dims;
};
Chunk chunkOf(Ort::ConstValue v, const char* what) {
  auto info = v.GetTensorTypeAndShapeInfo();
  Chunk c{v.GetTensorRawData(), info.GetElementType(), info.GetShape()};
  if (floatTypeName(c.type) == nullptr || c.dims.size() != 2) throw std::runtime_error(std::string(what) + " must be a float32, bfloat16 or float16 matrix");
  return c;
}

const float* rowFloatsOf(Ort::ConstValue v, long long rows, const char* what) {
  auto info = v.GetTensorTypeAndShapeInfo();
  auto s = info.GetShape();
  if (info.GetElementType() != ONNX_TENSOR_ELEMENT_DATA_TYPE_FLOAT || s.size() != 2 || s[1] != 1 || s[0] != rows)
    throw std::runtime_error(std::string(what) + " must be float32 [" + std::to_string(rows) + ", 1]");
  return v.GetTensorData<float>();
}

template <bool OnCuda>
struct CEChunkStatsKernel {
  long long offset = 0, vocab = 0;
  int deviceId = 0;

  explicit CEChunkStatsKernel(const OrtKernelInfo* info) : offset(intAttr(info, "offset")), vocab(intAttr(info, "vocab")) {
    if (offset < 0 || vocab <= offset) throw std::runtime_error("needs 0 <= offset < vocab");
    if (OnCuda) (void)kernelsForCurrentContext(deviceId);
  }

  OrtStatusPtr ComputeV2(OrtKernelContext* context) {
    try {
      Ort::KernelContext ctx(context);
      Chunk zc = chunkOf(ctx.GetInput(0), "z [R, C]");
      long long R = zc.dims[0], C = zc.dims[1];
      auto zt = zc.type;
      const void* z = zc.data;
      const int64_t* tgt = targetsOf(ctx.GetInput(1), R);
      float* stats = ctx.GetOutput(0, {R, 3}).GetTensorMutableData<float>();
      if (R == 0) return nullptr;
      if (C == 0) throw std::runtime_error("z has no columns");
      if constexpr (OnCuda) {
        const Kernels& k = kernelsForCurrentContext(deviceId);
        long long off = offset, voc = vocab;
        int vec = C % 4 == 0 && aligned(z, 4 * dtypeSize(zt)) ? 1 : 0;
        void* args[] = {&z, &tgt, &stats, &R, &C, &off, &voc, &vec};
        check(cudaApi().launchKernel(k.ceStats[gradIndex(zt)], static_cast<unsigned>(std::min<long long>(R, 1 << 20)), 1, 1, 256, 1, 1, 0,
                                     ctx.GetGPUComputeStream(), args, nullptr),
              "cuLaunchKernel (CEChunkStats)");
      } else {
        struct Job { const void* z; const int64_t* t; float* stats; ONNXTensorElementDataType zt; long long C, offset, vocab; } job{z, tgt, stats, zt, C, offset, vocab};
        ctx.ParallelFor([](void* data, size_t r) {
          const Job& j = *static_cast<const Job*>(data);
          size_t base = r * static_cast<size_t>(j.C);
          // The sum in float64 (one rounding at the end): a float32 running sum of 8,192 terms drifts past 1e-5.
          float mx = -INFINITY;
          double sum = 0.0;
          for (long long c = 0; c < j.C; c++) mx = std::max(mx, loadAsFloat(j.z, j.zt, base + c));
          for (long long c = 0; c < j.C; c++) sum += std::exp(loadAsFloat(j.z, j.zt, base + c) - mx);
          long long t = j.t[r];
          float picked = t < 0 || t >= j.vocab ? NAN : t >= j.offset && t < j.offset + j.C ? loadAsFloat(j.z, j.zt, base + (t - j.offset)) : 0.0f;
          j.stats[3 * r] = mx;
          j.stats[3 * r + 1] = static_cast<float>(sum);
          j.stats[3 * r + 2] = picked;
        }, static_cast<size_t>(R), 0, &job);
      }
      return nullptr;
    } catch (const std::exception& e) {
      return fail("CEChunkStats", e);
    }
  }
};

template <bool OnCuda>
struct CEChunkGradKernel {
  long long offset = 0;
  int deviceId = 0;

  explicit CEChunkGradKernel(const OrtKernelInfo* info) : offset(intAttr(info, "offset")) {
    if (offset < 0) throw std::runtime_error("offset must be >= 0");
    if (OnCuda) (void)kernelsForCurrentContext(deviceId);
  }

  OrtStatusPtr ComputeV2(OrtKernelContext* context) {
    try {
      Ort::KernelContext ctx(context);
      Chunk zc = chunkOf(ctx.GetInput(0), "zT [C, R]");
      long long C = zc.dims[0], R = zc.dims[1];
      auto zt = zc.type;
      const auto& zs = zc.dims;
      const int64_t* tgt = targetsOf(ctx.GetInput(1), R);
      const float* lse = rowFloatsOf(ctx.GetInput(2), R, "lse");
      const float* dlogp = rowFloatsOf(ctx.GetInput(3), R, "dlogp");
      const void* z = zc.data;
      void* out = ctx.GetOutput(0, zs).GetTensorMutableRawData();
      if (C == 0 || R == 0) return nullptr;
      if constexpr (OnCuda) {
        const Kernels& k = kernelsForCurrentContext(deviceId);
        long long off = offset;
        unsigned gx = static_cast<unsigned>(std::min<long long>((R + 255) / 256, 65535));
        unsigned gy = static_cast<unsigned>(std::min<long long>(C, 2048));
        void* args[] = {&z, &tgt, &lse, &dlogp, &out, &C, &R, &off};
        check(cudaApi().launchKernel(k.ceGrad[gradIndex(zt)], gx, gy, 1, 256, 1, 1, 0, ctx.GetGPUComputeStream(), args, nullptr),
              "cuLaunchKernel (CEChunkGrad)");
      } else {
        struct Job { const void* z; const int64_t* t; const float *lse, *dlogp; void* out; ONNXTensorElementDataType zt; long long R, offset; } job{z, tgt, lse, dlogp, out, zt, R, offset};
        ctx.ParallelFor([](void* data, size_t v) {
          const Job& j = *static_cast<const Job*>(data);
          size_t base = v * static_cast<size_t>(j.R);
          long long col = static_cast<long long>(v) + j.offset;
          for (long long r = 0; r < j.R; r++)
            storeFromFloat(j.out, j.zt, base + r, ceGradElement(loadAsFloat(j.z, j.zt, base + r), j.lse[r], j.dlogp[r], j.t[r] == col));
        }, static_cast<size_t>(C), 0, &job);
      }
      return nullptr;
    } catch (const std::exception& e) {
      return fail("CEChunkGrad", e);
    }
  }
};

/** stats: float32 [R, 3] over z's rows. */
OrtStatusPtr inferCeStats(const OrtCustomOp*, OrtShapeInferContext* ctx) {
  InferredShape z;
  if (OrtStatusPtr st = inferredInput(ctx, 0, z)) return st;
  if (z.dims.size() != 2) return nullptr;
  InferredShape stats = rowsOf(z);
  stats.dims.push_back(3);
  stats.names.emplace_back();
  return setInferredOutput(ctx, 0, stats);
}

/** dzT: as zT. */
OrtStatusPtr inferCeGrad(const OrtCustomOp*, OrtShapeInferContext* ctx) {
  InferredShape z;
  if (OrtStatusPtr st = inferredInput(ctx, 0, z)) return st;
  return setInferredOutput(ctx, 0, z);
}

template <bool OnCuda>
struct CEChunkStatsOp : FusedOp<CEChunkStatsOp<OnCuda>, CEChunkStatsKernel<OnCuda>, OnCuda> {
  CEChunkStatsOp() { this->InferOutputShapeFn = &inferCeStats; }
  const char* GetName() const { return "CEChunkStats"; }
  size_t GetInputTypeCount() const { return 2; }
  ONNXTensorElementDataType GetInputType(size_t i) const { return i == 0 ? ONNX_TENSOR_ELEMENT_DATA_TYPE_UNDEFINED : ONNX_TENSOR_ELEMENT_DATA_TYPE_INT64; }
  size_t GetOutputTypeCount() const { return 1; }
  ONNXTensorElementDataType GetOutputType(size_t) const { return ONNX_TENSOR_ELEMENT_DATA_TYPE_FLOAT; }
};

template <bool OnCuda>
struct CEChunkGradOp : FusedOp<CEChunkGradOp<OnCuda>, CEChunkGradKernel<OnCuda>, OnCuda> {
  CEChunkGradOp() { this->InferOutputShapeFn = &inferCeGrad; }
  const char* GetName() const { return "CEChunkGrad"; }
  // zT (any float), target (int64), lse, dlogp (float32).
  size_t GetInputTypeCount() const { return 4; }
  ONNXTensorElementDataType GetInputType(size_t i) const {
    return i == 0 ? ONNX_TENSOR_ELEMENT_DATA_TYPE_UNDEFINED : i == 1 ? ONNX_TENSOR_ELEMENT_DATA_TYPE_INT64 : ONNX_TENSOR_ELEMENT_DATA_TYPE_FLOAT;
  }
  size_t GetOutputTypeCount() const { return 1; }
  ONNXTensorElementDataType GetOutputType(size_t) const { return ONNX_TENSOR_ELEMENT_DATA_TYPE_UNDEFINED; }
};

}  // namespace

void addCrossEntropyOps(Ort::CustomOpDomain& cpu, Ort::CustomOpDomain& cuda) {
  cpu.Add(new CEChunkStatsOp<false>());
  cpu.Add(new CEChunkGradOp<false>());
  cuda.Add(new CEChunkStatsOp<true>());
  cuda.Add(new CEChunkGradOp<true>());
}

}  // namespace latent_sft
