// DecodeAttention: one decode step (one new token per row) of grouped-query attention with RoPE on a static KV
// cache written in place — what ORT's GroupQueryAttention (com.microsoft, do_rotary = 1, rotate_half) computes
// for sequence length 1, as one kernel per step and layer (the generation engine's decode step, issue 19).
//
//   DecodeAttention(q [B, 1, H·hd], k [B, 1, kvH·hd], v [B, 1, kvH·hd], past_key [B, kvH, C, hd],
//                   past_value [B, kvH, C, hd], seqlens_k int32 [B], cos [P, hd/2], sin [P, hd/2])
//                   {num_heads H, kv_num_heads kvH, scale} -> out [B, 1, H·hd], present_key, present_value
//
// Row b's new token sits at position pos = seqlens_k[b] (its keys before the step: 0..pos−1). q and k are
// rotated at pos (x₁' = x₁·cos − x₂·sin, x₂' = x₂·cos + x₁·sin over the halves of each head; q rounded to
// the dtype, as GroupQueryAttention stores it), the rotated k and v are written at pos, and query head h
// attends over keys 0..pos of KV head h / (H / kvH): softmax(scale · q·Kᵀ) · V in float32, rounded once to
// the dtype. The presents are the pasts' memory when both are bound to the same buffers (the engine does);
// otherwise the pasts are copied to the presents first. Positions outside [0, C) are clamped to C − 1 (and
// RoPE positions to P − 1). float32, bfloat16 (CUDA) and float16; the CUDA kernel needs H / kvH ≤ 8 and
// hd ≤ 128 (kernels/decode_attention.cu); the CPU kernel is the reference (two-pass softmax per head).
#include "../fused_common.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <vector>

namespace latent_sft {
namespace {

constexpr int kDecodeMaxRep = 8;
constexpr int kDecodeMaxHd = 128;

template <bool OnCuda>
struct DecodeAttentionKernel {
  int H = 0, kvH = 0;
  float scale = 1.0f;
  int deviceId = 0;

  explicit DecodeAttentionKernel(const OrtKernelInfo* info) {
    Ort::ConstKernelInfo ki(info);
    H = static_cast<int>(ki.GetAttribute<int64_t>("num_heads"));
    kvH = static_cast<int>(ki.GetAttribute<int64_t>("kv_num_heads"));
    scale = ki.GetAttribute<float>("scale");
    if (H <= 0 || kvH <= 0 || H % kvH != 0) throw std::runtime_error("num_heads must be a positive multiple of kv_num_heads");
    if (OnCuda && H / kvH > kDecodeMaxRep) throw std::runtime_error("the CUDA kernel takes at most 8 query heads per KV head");
    if (OnCuda) (void)kernelsForCurrentContext(deviceId);
  }

  OrtStatusPtr ComputeV2(OrtKernelContext* context) {
    try {
      Ort::KernelContext ctx(context);
      auto pkv = ctx.GetInput(3);
      auto pki = pkv.GetTensorTypeAndShapeInfo();
      auto cs = pki.GetShape();
      auto t = pki.GetElementType();
      if (floatTypeName(t) == nullptr) throw std::runtime_error("past_key must be float32, bfloat16 or float16");
      if (cs.size() != 4 || cs[1] != kvH) throw std::runtime_error("past_key must be [B, kv_num_heads, C, hd]");
      const long long B = cs[0], C = cs[2], hd = cs[3];
      if (hd % 2 != 0 || hd <= 0) throw std::runtime_error("the head size must be even");
      if (OnCuda && hd > kDecodeMaxHd) throw std::runtime_error("the CUDA kernel takes head sizes up to 128");
      const std::vector<int64_t> qShape{B, 1, H * hd}, kvShape{B, 1, kvH * hd};
      const char* names[3] = {"q", "k", "v"};
      for (size_t i = 0; i < 3; i++) {
        auto ti = ctx.GetInput(i).GetTensorTypeAndShapeInfo();
        if (ti.GetElementType() != t || ti.GetShape() != (i == 0 ? qShape : kvShape))
          throw std::runtime_error(std::string(names[i]) + " must be [B, 1, " + std::to_string(i == 0 ? H * hd : kvH * hd) + "] in past_key's dtype");
      }
      auto pvi = ctx.GetInput(4).GetTensorTypeAndShapeInfo();
      if (pvi.GetElementType() != t || pvi.GetShape() != cs) throw std::runtime_error("past_value must match past_key");
      auto ski = ctx.GetInput(5).GetTensorTypeAndShapeInfo();
      if (ski.GetElementType() != ONNX_TENSOR_ELEMENT_DATA_TYPE_INT32 || ski.GetShape() != std::vector<int64_t>{B})
        throw std::runtime_error("seqlens_k must be int32 [B]");
      auto coi = ctx.GetInput(6).GetTensorTypeAndShapeInfo();
      auto co = coi.GetShape();
      if (coi.GetElementType() != t || co.size() != 2 || co[1] != hd / 2 || ctx.GetInput(7).GetTensorTypeAndShapeInfo().GetShape() != co)
        throw std::runtime_error("cos and sin must be [P, hd/2] in past_key's dtype");
      const long long P = co[0];
      if (P < 1) throw std::runtime_error("cos and sin need at least one position");
      const void* q = ctx.GetInput(0).GetTensorRawData();
      const void* k = ctx.GetInput(1).GetTensorRawData();
      const void* v = ctx.GetInput(2).GetTensorRawData();
      const void* pk = pkv.GetTensorRawData();
      const void* pv = ctx.GetInput(4).GetTensorRawData();
      const int* seqlens = ctx.GetInput(5).GetTensorData<int>();
      const void* cosT = ctx.GetInput(6).GetTensorRawData();
      const void* sinT = ctx.GetInput(7).GetTensorRawData();
      void* out = ctx.GetOutput(0, qShape).GetTensorMutableRawData();
      void* kc = ctx.GetOutput(1, cs).GetTensorMutableRawData();
      void* vc = ctx.GetOutput(2, cs).GetTensorMutableRawData();
      const size_t cacheBytes = static_cast<size_t>(B * kvH * C * hd) * dtypeSize(t);
      if (B == 0 || C == 0) return nullptr;
      if constexpr (OnCuda) {
        const Cuda& cu = cudaApi();
        CUstream stream = ctx.GetGPUComputeStream();
        if (kc != pk) check(cu.memcpyDtoDAsync(reinterpret_cast<CUdeviceptr>(kc), reinterpret_cast<CUdeviceptr>(pk), cacheBytes, stream), "cuMemcpyDtoDAsync (DecodeAttention past_key)");
        if (vc != pv) check(cu.memcpyDtoDAsync(reinterpret_cast<CUdeviceptr>(vc), reinterpret_cast<CUdeviceptr>(pv), cacheBytes, stream), "cuMemcpyDtoDAsync (DecodeAttention past_value)");
        const Kernels& kern = kernelsForCurrentContext(deviceId);
        int h = H, kh = kvH, c = static_cast<int>(C), d = static_cast<int>(hd), p = static_cast<int>(P);
        float sc = scale;
        const int threads = 256, warps = threads / 32, rep = H / kvH;
        const unsigned shared = static_cast<unsigned>((rep * hd + warps * rep * (hd + 2)) * sizeof(float));
        void* args[] = {&q, &k, &v, &kc, &vc, &seqlens, &cosT, &sinT, &out, &h, &kh, &c, &d, &p, &sc};
        check(cu.launchKernel(kern.decodeAttention[gradIndex(t)], static_cast<unsigned>(B * kvH), 1, 1, threads, 1, 1, shared, stream, args, nullptr),
              "cuLaunchKernel (DecodeAttention)");
      } else {
        if (kc != pk) std::memcpy(kc, pk, cacheBytes);
        if (vc != pv) std::memcpy(vc, pv, cacheBytes);
        struct Job {
          const void *q, *k, *v, *cosT, *sinT;
          void *kc, *vc, *out;
          const int* seqlens;
          ONNXTensorElementDataType t;
          long long H, kvH, C, hd, P;
          float scale;
        } job{q, k, v, cosT, sinT, kc, vc, out, seqlens, t, H, kvH, C, hd, P, scale};
        ctx.ParallelFor([](void* data, size_t bk) {
          const Job& j = *static_cast<const Job*>(data);
          const long long b = static_cast<long long>(bk) / j.kvH, kh = static_cast<long long>(bk) % j.kvH, rep = j.H / j.kvH, half = j.hd / 2;
          long long pos = j.seqlens[b];
          pos = pos < 0 ? 0 : pos >= j.C ? j.C - 1 : pos;
          const long long rp = std::min(pos, j.P - 1);
          const size_t head = static_cast<size_t>(((b * j.kvH + kh) * j.C) * j.hd);
          auto cosAt = [&](long long i) { return loadAsFloat(j.cosT, j.t, static_cast<size_t>(rp * half + i)); };
          auto sinAt = [&](long long i) { return loadAsFloat(j.sinT, j.t, static_cast<size_t>(rp * half + i)); };
          const size_t kvRow = static_cast<size_t>((b * j.kvH + kh) * j.hd);
          for (long long i = 0; i < half; i++) {
            const float x1 = loadAsFloat(j.k, j.t, kvRow + i), x2 = loadAsFloat(j.k, j.t, kvRow + i + half);
            storeFromFloat(j.kc, j.t, head + pos * j.hd + i, x1 * cosAt(i) - x2 * sinAt(i));
            storeFromFloat(j.kc, j.t, head + pos * j.hd + i + half, x2 * cosAt(i) + x1 * sinAt(i));
          }
          for (long long i = 0; i < j.hd; i++) storeFromFloat(j.vc, j.t, head + pos * j.hd + i, loadAsFloat(j.v, j.t, kvRow + i));
          std::vector<float> qr(static_cast<size_t>(j.hd)), s(static_cast<size_t>(pos + 1)), o(static_cast<size_t>(j.hd));
          for (long long h = 0; h < rep; h++) {
            const long long qh = kh * rep + h;
            const size_t qRow = static_cast<size_t>((b * j.H + qh) * j.hd);
            for (long long i = 0; i < half; i++) {
              const float x1 = loadAsFloat(j.q, j.t, qRow + i), x2 = loadAsFloat(j.q, j.t, qRow + i + half);
              qr[static_cast<size_t>(i)] = roundTo(j.t, x1 * cosAt(i) - x2 * sinAt(i));
              qr[static_cast<size_t>(i + half)] = roundTo(j.t, x2 * cosAt(i) + x1 * sinAt(i));
            }
            float mx = -INFINITY;
            for (long long tk = 0; tk <= pos; tk++) {
              float dot = 0.0f;
              for (long long i = 0; i < j.hd; i++) dot += qr[static_cast<size_t>(i)] * loadAsFloat(j.kc, j.t, head + tk * j.hd + i);
              s[static_cast<size_t>(tk)] = dot * j.scale;
              mx = std::max(mx, s[static_cast<size_t>(tk)]);
            }
            float sum = 0.0f;
            std::fill(o.begin(), o.end(), 0.0f);
            for (long long tk = 0; tk <= pos; tk++) {
              const float e = std::exp(s[static_cast<size_t>(tk)] - mx);
              sum += e;
              for (long long i = 0; i < j.hd; i++) o[static_cast<size_t>(i)] += e * loadAsFloat(j.vc, j.t, head + tk * j.hd + i);
            }
            for (long long i = 0; i < j.hd; i++) storeFromFloat(j.out, j.t, qRow + i, o[static_cast<size_t>(i)] / sum);
          }
        }, static_cast<size_t>(B * kvH), 0, &job);
      }
      return nullptr;
    } catch (const std::exception& e) {
      return fail("DecodeAttention", e);
    }
  }
};

/** Output types/shapes: out as q, the presents as the pasts. */
OrtStatusPtr inferDecodeAttention(const OrtCustomOp*, OrtShapeInferContext* ctx) {
  InferredShape q, pk, pv;
  if (OrtStatusPtr st = inferredInput(ctx, 0, q)) return st;
  if (OrtStatusPtr st = inferredInput(ctx, 3, pk)) return st;
  if (OrtStatusPtr st = inferredInput(ctx, 4, pv)) return st;
  if (OrtStatusPtr st = setInferredOutput(ctx, 0, q)) return st;
  if (OrtStatusPtr st = setInferredOutput(ctx, 1, pk)) return st;
  return setInferredOutput(ctx, 2, pv);
}

template <bool OnCuda>
struct DecodeAttentionOp : FusedOp<DecodeAttentionOp<OnCuda>, DecodeAttentionKernel<OnCuda>, OnCuda> {
  DecodeAttentionOp() { this->InferOutputShapeFn = &inferDecodeAttention; }
  const char* GetName() const { return "DecodeAttention"; }
  size_t GetInputTypeCount() const { return 8; }
  ONNXTensorElementDataType GetInputType(size_t i) const { return i == 5 ? ONNX_TENSOR_ELEMENT_DATA_TYPE_INT32 : ONNX_TENSOR_ELEMENT_DATA_TYPE_UNDEFINED; }
  size_t GetOutputTypeCount() const { return 3; }
  ONNXTensorElementDataType GetOutputType(size_t) const { return ONNX_TENSOR_ELEMENT_DATA_TYPE_UNDEFINED; }
};

}  // namespace

void addDecodeAttentionOps(Ort::CustomOpDomain& cpu, Ort::CustomOpDomain& cuda) {
  cpu.Add(new DecodeAttentionOp<false>());
  cuda.Add(new DecodeAttentionOp<true>());
}

}  // namespace latent_sft
