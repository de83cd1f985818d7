// What the fused ops' host code shares (internal to the addon): element conversions for the CPU
// kernels, the CUDA driver/NVRTC entry points and the per-context kernel table (fused_cuda.cc), shape
// inference helpers and each op family's registration (ops/*.cc, fused_ops.cc).
#pragma once

#include <cstdint>
#include <cstring>
#include <stdexcept>
#include <string>
#include <vector>

#include "fused_shared.h"
#include "onnxruntime_cxx_api.h"

namespace latent_sft {

// ---------------------------------------------------------------------------------------------------
// Host-side element conversion

inline float bf16ToFloat(uint16_t b) {
  uint32_t u = static_cast<uint32_t>(b) << 16;
  float f;
  std::memcpy(&f, &u, 4);
  return f;
}

inline float f16ToFloat(uint16_t h) {
  uint32_t sign = static_cast<uint32_t>(h & 0x8000u) << 16;
  uint32_t exp = (h >> 10) & 0x1fu, man = h & 0x3ffu, u;
  if (exp == 0) {
    if (man == 0) {
      u = sign;
    } else {  // subnormal: normalize
      int e = -1;
      do {
        e++;
        man <<= 1;
      } while ((man & 0x400u) == 0);
      u = sign | (static_cast<uint32_t>(127 - 15 - e) << 23) | ((man & 0x3ffu) << 13);
    }
  } else if (exp == 0x1f) {
    u = sign | 0x7f800000u | (man << 13);
  } else {
    u = sign | ((exp + 127 - 15) << 23) | (man << 13);
  }
  float f;
  std::memcpy(&f, &u, 4);
  return f;
}

/** Element i of a float tensor of dtype t, as float. */
inline float loadAsFloat(const void* data, ONNXTensorElementDataType t, size_t i) {
  switch (t) {
    case ONNX_TENSOR_ELEMENT_DATA_TYPE_FLOAT: return static_cast<const float*>(data)[i];
    case ONNX_TENSOR_ELEMENT_DATA_TYPE_BFLOAT16: return bf16ToFloat(static_cast<const uint16_t*>(data)[i]);
    case ONNX_TENSOR_ELEMENT_DATA_TYPE_FLOAT16: return f16ToFloat(static_cast<const uint16_t*>(data)[i]);
    default: throw std::runtime_error("unsupported dtype");
  }
}

inline uint16_t floatToBf16(float v) {
  uint32_t u;
  std::memcpy(&u, &v, 4);
  if ((u & 0x7fffffffu) > 0x7f800000u) return static_cast<uint16_t>((u >> 16) | 0x40u);
  return static_cast<uint16_t>((u + 0x7fffu + ((u >> 16) & 1u)) >> 16);
}

/** float32 → float16 bits, round to nearest even (overflow → inf, NaN kept quiet). */
inline uint16_t floatToF16(float v) {
  uint32_t u;
  std::memcpy(&u, &v, 4);
  uint32_t sign = (u >> 16) & 0x8000u;
  uint32_t a = u & 0x7fffffffu;
  if (a > 0x7f800000u) return static_cast<uint16_t>(sign | 0x7e00u);
  if (a >= 0x477ff000u) return static_cast<uint16_t>(sign | 0x7c00u);  // ≥ 65520 rounds to inf
  if (a < 0x38800000u) {                                               // below 2^-14: subnormal or zero
    if (a < 0x33000000u) return static_cast<uint16_t>(sign);           // < 2^-25 rounds to 0
    uint32_t e = a >> 23, man = (a & 0x7fffffu) | 0x800000u;
    uint32_t shift = 126 - e;  // 14 + (113 − e) − 1
    uint32_t q = man >> shift, rem = man & ((1u << shift) - 1), half = 1u << (shift - 1);
    if (rem > half || (rem == half && (q & 1u))) q++;
    return static_cast<uint16_t>(sign | q);
  }
  uint32_t r = a - 0x38000000u;  // rebias exponent 127 → 15
  uint32_t q = r >> 13, rem = r & 0x1fffu;
  if (rem > 0x1000u || (rem == 0x1000u && (q & 1u))) q++;
  return static_cast<uint16_t>(sign | q);
}

/** Stores float v as element i of a tensor of dtype t. */
inline void storeFromFloat(void* data, ONNXTensorElementDataType t, size_t i, float v) {
  if (t == ONNX_TENSOR_ELEMENT_DATA_TYPE_FLOAT) static_cast<float*>(data)[i] = v;
  else if (t == ONNX_TENSOR_ELEMENT_DATA_TYPE_BFLOAT16) static_cast<uint16_t*>(data)[i] = floatToBf16(v);
  else static_cast<uint16_t*>(data)[i] = floatToF16(v);
}

/** v rounded to t's precision (as storing and loading it would), as float. */
inline float roundTo(ONNXTensorElementDataType t, float v) {
  if (t == ONNX_TENSOR_ELEMENT_DATA_TYPE_BFLOAT16) return bf16ToFloat(floatToBf16(v));
  if (t == ONNX_TENSOR_ELEMENT_DATA_TYPE_FLOAT16) return f16ToFloat(floatToF16(v));
  return v;
}


inline const char* floatTypeName(ONNXTensorElementDataType t) {
  switch (t) {
    case ONNX_TENSOR_ELEMENT_DATA_TYPE_FLOAT: return "f32";
    case ONNX_TENSOR_ELEMENT_DATA_TYPE_BFLOAT16: return "bf16";
    case ONNX_TENSOR_ELEMENT_DATA_TYPE_FLOAT16: return "f16";
    default: return nullptr;
  }
}

inline size_t dtypeSize(ONNXTensorElementDataType t) { return t == ONNX_TENSOR_ELEMENT_DATA_TYPE_FLOAT ? 4 : 2; }

constexpr size_t kCpuChunk = 1 << 16;  // CPU work unit (elements), also the SumSquares summation chunk

// ---------------------------------------------------------------------------------------------------
// CUDA: driver API + NVRTC through dlopen (fused_cuda.cc)

using CUresult = int;
using CUdevice = int;
using CUcontext = void*;
using CUmodule = void*;
using CUfunction = void*;
using CUstream = void*;
using CUdeviceptr = unsigned long long;
using nvrtcProgram = void*;

struct Cuda {
  CUresult (*init)(unsigned) = nullptr;
  CUresult (*deviceGet)(CUdevice*, int) = nullptr;
  CUresult (*deviceGetAttribute)(int*, int, CUdevice) = nullptr;
  CUresult (*ctxGetCurrent)(CUcontext*) = nullptr;
  CUresult (*ctxSetCurrent)(CUcontext) = nullptr;
  CUresult (*ctxGetDevice)(CUdevice*) = nullptr;
  CUresult (*primaryCtxRetain)(CUcontext*, CUdevice) = nullptr;
  CUresult (*moduleLoadData)(CUmodule*, const void*) = nullptr;
  CUresult (*moduleGetFunction)(CUfunction*, CUmodule, const char*) = nullptr;
  CUresult (*launchKernel)(CUfunction, unsigned, unsigned, unsigned, unsigned, unsigned, unsigned, unsigned, CUstream, void**, void**) = nullptr;
  CUresult (*funcSetAttribute)(CUfunction, int, int) = nullptr;
  CUresult (*memAlloc)(CUdeviceptr*, size_t) = nullptr;
  CUresult (*memFree)(CUdeviceptr) = nullptr;
  CUresult (*memcpyDtoDAsync)(CUdeviceptr, CUdeviceptr, size_t, CUstream) = nullptr;
  CUresult (*memsetD8Async)(CUdeviceptr, unsigned char, size_t, CUstream) = nullptr;
  CUresult (*getErrorString)(CUresult, const char**) = nullptr;
  int (*nvrtcCreateProgram)(nvrtcProgram*, const char*, const char*, int, const char* const*, const char* const*) = nullptr;
  int (*nvrtcCompileProgram)(nvrtcProgram, int, const char* const*) = nullptr;
  int (*nvrtcGetPTXSize)(nvrtcProgram, size_t*) = nullptr;
  int (*nvrtcGetPTX)(nvrtcProgram, char*) = nullptr;
  int (*nvrtcGetProgramLogSize)(nvrtcProgram, size_t*) = nullptr;
  int (*nvrtcGetProgramLog)(nvrtcProgram, char*) = nullptr;
  int (*nvrtcDestroyProgram)(nvrtcProgram*) = nullptr;
  const char* (*nvrtcGetErrorString)(int) = nullptr;
  std::string error;  // non-empty: unusable, and why
};

/** The driver and NVRTC entry points, loaded once; `error` says why they are unusable. */
const Cuda& cudaApi();

/** Throws "<what> failed: <CUDA error>" unless rc is 0. */
void check(CUresult rc, const char* what);

/** The kernels of one CUDA context. */
struct Kernels {
  CUfunction adamw[3] = {nullptr, nullptr, nullptr};  // f32, bf16, f16
  CUfunction adamwToBf16[3] = {nullptr, nullptr, nullptr};  // AdamWCopy by the gradient's dtype
  CUfunction adamwToF16[3] = {nullptr, nullptr, nullptr};
  CUfunction adamwPBf16[3] = {nullptr, nullptr, nullptr};  // AdamW of bf16 / f16 parameters and moments, by the gradient's dtype
  CUfunction adamwPF16[3] = {nullptr, nullptr, nullptr};
  CUfunction sumsq[3] = {nullptr, nullptr, nullptr};
  CUfunction sumsqFinal = nullptr;
  CUfunction msoftmax[3] = {nullptr, nullptr, nullptr};
  CUfunction msoftmaxGrad[3] = {nullptr, nullptr, nullptr};
  CUfunction rmsnorm[3] = {nullptr, nullptr, nullptr};
  CUfunction rmsnormGrad[3] = {nullptr, nullptr, nullptr};
  CUfunction rmsnormDwSum = nullptr;  // RMSNormGrad's dW: the sum of its blocks' partial rows
  CUfunction swiglu[3] = {nullptr, nullptr, nullptr};
  CUfunction swigluGrad[3] = {nullptr, nullptr, nullptr};
  CUfunction swigluPacked[3] = {nullptr, nullptr, nullptr};
  CUfunction rope[3] = {nullptr, nullptr, nullptr};  // Rope, both directions (the transpose flag)
  CUfunction ceStats[3] = {nullptr, nullptr, nullptr};
  CUfunction ceGrad[3] = {nullptr, nullptr, nullptr};
  CUfunction seededDropout[3] = {nullptr, nullptr, nullptr};
  CUfunction hashWords = nullptr;  // int32 words of the dropout tables (no float dtype)
  CUfunction castToBf16 = nullptr, castToF16 = nullptr;  // CastMulti: float32 -> bfloat16 / float16
  CUfunction decodeAttention[3] = {nullptr, nullptr, nullptr};
  CUfunction flashFwd[2][2] = {{nullptr, nullptr}, {nullptr, nullptr}};  // FlashAttention [bf16, f16][head dim 64, 128]
  CUfunction flashDkDv[2][2] = {{nullptr, nullptr}, {nullptr, nullptr}};
  CUfunction flashDq[2][2] = {{nullptr, nullptr}, {nullptr, nullptr}};
  CUfunction flashDot[2] = {nullptr, nullptr};  // Dsum = dO·O per row [bf16, f16]
  CUfunction flashTiles = nullptr;                // the mask's tile map (any dtype)
  CUfunction vocabTopkPartial = nullptr;  // float32 only
  CUfunction vocabTopkFinal = nullptr;
  int smCount = 0;
  int arch = 0;  // compute capability, major·10 + minor
};

/** Kernels' slot (f32, bf16, f16) of a float dtype. */
inline int gradIndex(ONNXTensorElementDataType t) {
  return t == ONNX_TENSOR_ELEMENT_DATA_TYPE_FLOAT ? 0 : t == ONNX_TENSOR_ELEMENT_DATA_TYPE_BFLOAT16 ? 1 : 2;
}

/**
 * The kernels of the calling thread's current CUDA context (the primary context of `deviceId` when
 * none is current), compiled and loaded once per context.
 */
const Kernels& kernelsForCurrentContext(int deviceId);

/** Blocks of 256 threads for `work` items, at most perSm per multiprocessor, at least 1. */
inline unsigned gridFor(long long work, int smCount, int perSm) {
  long long blocks = (work + 255) / 256;
  long long cap = static_cast<long long>(smCount) * perSm;
  if (blocks > cap) blocks = cap;
  return static_cast<unsigned>(blocks < 1 ? 1 : blocks);
}


inline bool aligned(const void* p, size_t a) { return reinterpret_cast<uintptr_t>(p) % a == 0; }

/** The ORT status of a kernel's exception: "latent_sft.<op>: <what>". */
OrtStatusPtr fail(const char* op, const std::exception& e);

/**
 * Ort::CustomOpBase plus what every fused op shares: kernel creation that turns an exception into an
 * ORT status naming the op, and the execution provider (CUDA kernels on CUDA sessions only).
 */
template <typename Op, typename Kernel, bool OnCuda>
struct FusedOp : Ort::CustomOpBase<Op, Kernel, true> {
  OrtStatusPtr CreateKernelV2(const OrtApi&, const OrtKernelInfo* info, void** kernel) const {
    try {
      *kernel = new Kernel(info);
      return nullptr;
    } catch (const std::exception& e) {
      return fail(static_cast<const Op*>(this)->GetName(), e);
    }
  }
  const char* GetExecutionProviderType() const { return OnCuda ? "CUDAExecutionProvider" : nullptr; }
};

// ---------------------------------------------------------------------------------------------------
// Shape inference (fused_ops.cc)

/** A dim_param name no other dim has (ORT unifies equal names). */
std::string freshDimName();

/** An element type, dims (-1 unknown) and dim_param names ("" none) of one value, for shape inference. */
struct InferredShape {
  ONNXTensorElementDataType type{};
  std::vector<int64_t> dims;
  std::vector<std::string> names;
};

/**
 * Input `index` of the node being inferred. An unknown dim gets a fresh name: given as -1 with no name,
 * ORT writes dim_value -1, and a Shape → Reshape downstream then fails ORT's shape inference
 * ("multiple -1 dimensions").
 */
OrtStatusPtr inferredInput(OrtShapeInferContext* ctx, size_t index, InferredShape& out);

/** Sets output `index` of the node being inferred. */
OrtStatusPtr setInferredOutput(OrtShapeInferContext* ctx, size_t index, const InferredShape& s);

/** X's shape without its last dim, as float32. */
InferredShape rowsOf(const InferredShape& x);

// ---------------------------------------------------------------------------------------------------
// Op families (ops/*.cc): each adds its CPU ops to `cpu` and its CUDA ops to `cuda`.

void addAdamWOps(Ort::CustomOpDomain& cpu, Ort::CustomOpDomain& cuda);
void addSumSquaresOps(Ort::CustomOpDomain& cpu, Ort::CustomOpDomain& cuda);
void addMaskedSoftmaxOps(Ort::CustomOpDomain& cpu, Ort::CustomOpDomain& cuda);
void addRMSNormOps(Ort::CustomOpDomain& cpu, Ort::CustomOpDomain& cuda);
void addSwiGluOps(Ort::CustomOpDomain& cpu, Ort::CustomOpDomain& cuda);
void addRopeOps(Ort::CustomOpDomain& cpu, Ort::CustomOpDomain& cuda);
void addCrossEntropyOps(Ort::CustomOpDomain& cpu, Ort::CustomOpDomain& cuda);
void addAfterOps(Ort::CustomOpDomain& cpu, Ort::CustomOpDomain& cuda);
void addSeededDropoutOps(Ort::CustomOpDomain& cpu, Ort::CustomOpDomain& cuda);
void addDecodeAttentionOps(Ort::CustomOpDomain& cpu, Ort::CustomOpDomain& cuda);
void addVocabTopKOps(Ort::CustomOpDomain& cpu, Ort::CustomOpDomain& cuda);
void addFlashAttentionOps(Ort::CustomOpDomain& cpu, Ort::CustomOpDomain& cuda);

/**
 * A scratch buffer of the allocator of `mi` (KernelContext_GetScratchBuffer: the provider's arena, which ties it to
 * the kernel's stream), given back when it goes out of scope.
 */
class ScratchBuffer {
 public:
  ScratchBuffer(OrtKernelContext* context, const OrtMemoryInfo* mi, size_t bytes) {
    const OrtApi& api = Ort::GetApi();
    Ort::ThrowOnError(api.KernelContext_GetAllocator(context, mi, &alloc_));
    OrtStatus* st = api.KernelContext_GetScratchBuffer(context, mi, bytes, &p_);
    if (st != nullptr || p_ == nullptr) {
      api.ReleaseAllocator(alloc_);
      if (st != nullptr) Ort::ThrowOnError(st);
      throw std::runtime_error("no scratch buffer of " + std::to_string(bytes) + " bytes");
    }
  }
  ~ScratchBuffer() {
    alloc_->Free(alloc_, p_);
    Ort::GetApi().ReleaseAllocator(alloc_);
  }
  ScratchBuffer(const ScratchBuffer&) = delete;
  ScratchBuffer& operator=(const ScratchBuffer&) = delete;
  void* get() const { return p_; }

 private:
  OrtAllocator* alloc_ = nullptr;
  void* p_ = nullptr;
};

}  // namespace latent_sft
