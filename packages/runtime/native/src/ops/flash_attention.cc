// FlashAttention / FlashAttentionGrad: attention of grouped queries without the [.., T, S] scores in memory.
//
//   FlashAttention(Q [B, G, N, D], K [B, G, S, D], V [B, G, S, D], M f32){scale, rep} -> O [B, G, N, D], stats [B, G, N, 2] f32
//   FlashAttentionGrad(dO, Q, K, V, M, O, stats){scale, rep} -> dQ, dK, dV, Dsum [B, G, N] f32
// N = rep·T: row i = r·T + t is query t of the r-th query head of KV head g (the decoder's [B, kvH, rep·T, hd]);
// M is rank 5, broadcastable to [B, G, rep, T, S] (each dim 1 or full). Q, K, V, dO: one dtype (f32, bf16, f16).
// Per row, z_s = scale·(q·k_s) + M (the dot in float32), m = max z, l = Σ e^(z − m) in float32; O = (Σ_s rnd(e^(z_s − m))·v_s) / l
// rounded once (rnd = to the dtype, identity for f32: the GPU's P·V product takes 16-bit P); stats = (m, l).
// Grad: P = e^(z − m) / l, dP_s = dO·v_s, Dsum = dO·O (O as stored), dS = P·(dP − Dsum);
// dV_s = Σ_i rnd(P_is)·dO_i, dK_s = scale·Σ_i rnd(dS_is)·q_i, dQ_i = scale·Σ_s rnd(dS_is)·k_s, each rounded once.
// Dsum is a workspace output (ORT allocates it, so a CUDA graph replays the same address). The CUDA kernels first
// summarise M in 64 × 64 tiles (the tile map: which steps to skip, which to run without the mask) in a scratch buffer.
// The CPU kernels compute this row by row in float32 (the reference of the CUDA kernels, which use tensor
// cores: kernels/flash_attention.cu; bf16/f16 only, head dim 64 or 128, sm_80+; the sums run in another order).
#include "../fused_common.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <memory>
#include <vector>

namespace latent_sft {
namespace {

/** Q/K/V shapes checked against each other and M; the dims and M's element strides (0 where broadcast). */
FlashDims flashDims(const std::vector<int64_t>& qs, const std::vector<int64_t>& ks, const std::vector<int64_t>& vs, const std::vector<int64_t>& ms,
                    int64_t rep, float scale) {
  if (qs.size() != 4) throw std::runtime_error("Q must be [B, G, N, D]");
  if (ks.size() != 4 || ks[0] != qs[0] || ks[1] != qs[1] || ks[3] != qs[3]) throw std::runtime_error("K must be [B, G, S, D] with Q's B, G and D");
  if (vs != ks) throw std::runtime_error("V must have K's shape");
  if (rep < 1 || qs[2] % rep != 0) throw std::runtime_error("rep must be >= 1 and divide Q's dim 2 (N = rep·T)");
  if (ms.size() != 5) throw std::runtime_error("M must be rank 5, broadcastable to [B, G, rep, T, S]");
  FlashDims d{};
  d.B = qs[0];
  d.G = qs[1];
  d.N = qs[2];
  d.S = ks[2];
  d.D = qs[3];
  d.rep = rep;
  d.T = qs[2] / rep;
  d.scale = scale;
  const long long full[5] = {d.B, d.G, d.rep, d.T, d.S};
  long long stride = 1;
  long long* strides[5] = {&d.mb, &d.mg, &d.mr, &d.mt, &d.ms};
  for (int i = 4; i >= 0; i--) {
    if (ms[i] != 1 && ms[i] != full[i])
      throw std::runtime_error("M dim " + std::to_string(i) + " is " + std::to_string(ms[i]) + ", not 1 or " + std::to_string(full[i]));
    *strides[i] = ms[i] == 1 ? 0 : stride;
    stride *= ms[i];
  }
  return d;
}

template <bool OnCuda, bool Grad>
struct FlashAttentionKernel {
  float scale = 1.0f;
  int64_t rep = 1;
  int deviceId = 0;

  explicit FlashAttentionKernel(const OrtKernelInfo* info) {
    Ort::ConstKernelInfo ki(info);
    try {
      scale = ki.GetAttribute<float>("scale");
    } catch (const Ort::Exception&) {
      scale = 1.0f;
    }
    try {
      rep = ki.GetAttribute<int64_t>("rep");
    } catch (const Ort::Exception&) {
      rep = 1;
    }
    if (rep < 1) throw std::runtime_error("rep must be >= 1, got " + std::to_string(rep));
    if (OnCuda) (void)kernelsForCurrentContext(deviceId);
  }

  OrtStatusPtr ComputeV2(OrtKernelContext* context) {
    const char* name = Grad ? "FlashAttentionGrad" : "FlashAttention";
    try {
      Ort::KernelContext ctx(context);
      const size_t o = Grad ? 1 : 0;  // Grad's inputs: dO first
      auto qv = ctx.GetInput(o), kv = ctx.GetInput(o + 1), vv = ctx.GetInput(o + 2), mv = ctx.GetInput(o + 3);
      auto qi = qv.GetTensorTypeAndShapeInfo();
      auto t = qi.GetElementType();
      if (floatTypeName(t) == nullptr) throw std::runtime_error("Q, K, V must be float32, bfloat16 or float16");
      if (kv.GetTensorTypeAndShapeInfo().GetElementType() != t || vv.GetTensorTypeAndShapeInfo().GetElementType() != t)
        throw std::runtime_error("K and V must have Q's dtype");
      if (mv.GetTensorTypeAndShapeInfo().GetElementType() != ONNX_TENSOR_ELEMENT_DATA_TYPE_FLOAT) throw std::runtime_error("M must be float32");
      auto qs = qi.GetShape(), ks = kv.GetTensorTypeAndShapeInfo().GetShape();
      FlashDims d = flashDims(qs, ks, vv.GetTensorTypeAndShapeInfo().GetShape(), mv.GetTensorTypeAndShapeInfo().GetShape(), rep, scale);
      std::vector<int64_t> rows = {qs[0], qs[1], qs[2]}, statsShape = {qs[0], qs[1], qs[2], 2};
      const void* q = qv.GetTensorRawData();
      const void* k = kv.GetTensorRawData();
      const void* v = vv.GetTensorRawData();
      const float* m = mv.GetTensorData<float>();
      const void* dO = nullptr;
      const void* oIn = nullptr;
      const float* statsIn = nullptr;
      void *out0 = nullptr, *dK = nullptr, *dV = nullptr;
      float* out1 = nullptr;  // stats (forward) or Dsum (grad)
      if constexpr (Grad) {
        auto dov = ctx.GetInput(0), ov = ctx.GetInput(5), sv = ctx.GetInput(6);
        for (auto* x : {&dov, &ov})
          if (x->GetTensorTypeAndShapeInfo().GetElementType() != t || x->GetTensorTypeAndShapeInfo().GetShape() != qs)
            throw std::runtime_error("dO and O must have Q's dtype and shape");
        if (sv.GetTensorTypeAndShapeInfo().GetElementType() != ONNX_TENSOR_ELEMENT_DATA_TYPE_FLOAT || sv.GetTensorTypeAndShapeInfo().GetShape() != statsShape)
          throw std::runtime_error("stats must be float32 [B, G, N, 2]");
        dO = dov.GetTensorRawData();
        oIn = ov.GetTensorRawData();
        statsIn = sv.GetTensorData<float>();
        out0 = ctx.GetOutput(0, qs).GetTensorMutableRawData();
        dK = ctx.GetOutput(1, ks).GetTensorMutableRawData();
        dV = ctx.GetOutput(2, ks).GetTensorMutableRawData();
        out1 = ctx.GetOutput(3, rows).GetTensorMutableData<float>();
      } else {
        out0 = ctx.GetOutput(0, qs).GetTensorMutableRawData();
        out1 = ctx.GetOutput(1, statsShape).GetTensorMutableData<float>();
      }
      const long long nRows = d.B * d.G * d.N;
      // Empty shapes return zero-filled outputs on both providers (CUDA: memsets on the op's stream, before the
      // CUDA kernels' own requirements apply). Zero bytes are not touched (ORT may give them no buffer).
      auto zeroFill = [&](void* p, long long bytes) {
        if (bytes <= 0) return;
        if constexpr (OnCuda)
          check(cudaApi().memsetD8Async(reinterpret_cast<CUdeviceptr>(p), 0, static_cast<size_t>(bytes), ctx.GetGPUComputeStream()), "cuMemsetD8Async (FlashAttention)");
        else
          std::memset(p, 0, static_cast<size_t>(bytes));
      };
      if constexpr (Grad) {
        // Empty keys or head dim: every gradient is 0, and Dsum (and the forward's outputs were 0 / NaN rows).
        if (d.S == 0 || d.D == 0 || nRows == 0) {
          const long long es = static_cast<long long>(dtypeSize(t));
          zeroFill(out0, nRows * d.D * es);
          zeroFill(dK, d.B * d.G * d.S * d.D * es);
          zeroFill(dV, d.B * d.G * d.S * d.D * es);
          zeroFill(out1, nRows * static_cast<long long>(sizeof(float)));
          return nullptr;
        }
      } else if (nRows == 0 || d.D == 0) {
        // No rows or head dim: O has no elements; stats are 0.
        zeroFill(out1, 2 * nRows * static_cast<long long>(sizeof(float)));
        return nullptr;
      } else if (d.S == 0) {
        throw std::runtime_error("K and V must have at least one key (S >= 1)");
      }
      if constexpr (OnCuda) {
        if (t == ONNX_TENSOR_ELEMENT_DATA_TYPE_FLOAT) throw std::runtime_error("the CUDA kernels take bfloat16 or float16 (tensor cores), not float32");
        if (d.D != 64 && d.D != 128) throw std::runtime_error("the CUDA kernels support head dim 64 or 128, got " + std::to_string(d.D));
        if (d.B * d.G > 65535) throw std::runtime_error("B·G must be at most 65535 on CUDA");
        const Kernels& kk = kernelsForCurrentContext(deviceId);
        if (kk.arch < 80) throw std::runtime_error("the CUDA kernels need compute capability 8.0 or newer (mma.sync bf16/f16), got " + std::to_string(kk.arch));
        for (const void* p : {q, k, v, dO})
          if (p != nullptr && !aligned(p, 16)) throw std::runtime_error("Q, K, V and dO must be 16-byte aligned on CUDA");
        const int ti = t == ONNX_TENSOR_ELEMENT_DATA_TYPE_BFLOAT16 ? 0 : 1, di = d.D == 64 ? 0 : 1;
        void* stream = ctx.GetGPUComputeStream();
        const unsigned bg = static_cast<unsigned>(d.B * d.G);
        // The mask's tile map (kernels/flash_attention.cu flashTiles; fused_shared.h), in a scratch buffer of the
        // provider's allocator freed when this call returns (the allocator orders its reuse on this stream), made by
        // each call (the forward's and the backward's: their masks are the same tensor, a few µs each).
        const long long slices = flashTileSlices(d);
        if (slices > 65535) throw std::runtime_error("the mask's own dims of B, G and rep must have at most 65535 combinations on CUDA");
        // Without a buffer (the allocator refused it) the kernels run every step with its mask, as before the map,
        // and say so once on stderr.
        Ort::ConstMemoryInfo mi = mv.GetTensorMemoryInfo();
        std::unique_ptr<ScratchBuffer> tiles;
        try {
          tiles = std::make_unique<ScratchBuffer>(context, mi, static_cast<size_t>(flashTileWords(d)) * sizeof(unsigned));
        } catch (const std::exception& e) {
          static bool warned = false;
          if (!warned) std::fprintf(stderr, "latent_sft FlashAttention: no tile map (%s); every step runs with its mask\n", e.what());
          warned = true;
        }
        unsigned* tp = tiles ? static_cast<unsigned*>(tiles->get()) : nullptr;
        if (tp != nullptr) {
          check(cudaApi().memsetD8Async(reinterpret_cast<CUdeviceptr>(tp), 0, static_cast<size_t>(flashTileWords(d)) * sizeof(unsigned), stream),
                "cuMemsetD8Async (FlashAttention tile map)");
          void* tileArgs[] = {&m, &tp, &d};
          check(cudaApi().launchKernel(kk.flashTiles, static_cast<unsigned>((d.T + 7) / 8), static_cast<unsigned>(slices), 1, 256, 1, 1, 0, stream, tileArgs, nullptr),
                "cuLaunchKernel (FlashAttention tile map)");
        }
        const unsigned qTiles = static_cast<unsigned>((d.N + kFlashRows - 1) / kFlashRows);
        if constexpr (Grad) {
          void* dotArgs[] = {&dO, &oIn, &out1, &d};
          unsigned dotGrid = static_cast<unsigned>((nRows + 7) / 8);  // one warp per row, 8 per block
          check(cudaApi().launchKernel(kk.flashDot[ti], dotGrid, 1, 1, 256, 1, 1, 0, stream, dotArgs, nullptr), "cuLaunchKernel (FlashAttentionGrad Dsum)");
          const unsigned kTiles = static_cast<unsigned>((d.S + kFlashKeys - 1) / kFlashKeys);
          void* kvArgs[] = {&dO, &q, &k, &v, &m, &tp, &statsIn, &out1, &dK, &dV, &d};
          check(cudaApi().launchKernel(kk.flashDkDv[ti][di], kTiles, bg, 1, 128, 1, 1, static_cast<unsigned>(flashSmemBytes(1, static_cast<int>(d.D))), stream, kvArgs, nullptr), "cuLaunchKernel (FlashAttentionGrad dK dV)");
          void* qArgs[] = {&dO, &q, &k, &v, &m, &tp, &statsIn, &out1, &out0, &d};
          check(cudaApi().launchKernel(kk.flashDq[ti][di], qTiles, bg, 1, 128, 1, 1, static_cast<unsigned>(flashSmemBytes(2, static_cast<int>(d.D))), stream, qArgs, nullptr), "cuLaunchKernel (FlashAttentionGrad dQ)");
        } else {
          void* args[] = {&q, &k, &v, &m, &tp, &out0, &out1, &d};
          check(cudaApi().launchKernel(kk.flashFwd[ti][di], qTiles, bg, 1, 128, 1, 1, static_cast<unsigned>(flashSmemBytes(0, static_cast<int>(d.D))), stream, args, nullptr), "cuLaunchKernel (FlashAttention)");
        }
      } else {
        struct Job {
          const void *q, *k, *v, *dO, *o;
          const float *m, *stats;
          void *out0, *dK, *dV;
          float* out1;
          ONNXTensorElementDataType t;
          FlashDims d;
        } job{q, k, v, dO, oIn, m, statsIn, out0, dK, dV, out1, t, d};
        if constexpr (Grad) {
          // One task per (b, g): it owns dK, dV of its keys and dQ of its rows.
          ctx.ParallelFor([](void* data, size_t bg) {
            const Job& j = *static_cast<const Job*>(data);
            const FlashDims& d = j.d;
            const long long b = static_cast<long long>(bg) / d.G, g = static_cast<long long>(bg) % d.G;
            const size_t qBase = bg * d.N * d.D, kBase = bg * d.S * d.D;
            std::vector<float> dk(d.S * d.D, 0.0f), dv(d.S * d.D, 0.0f), dq(d.D), z(d.S), ds(d.S);
            for (long long i = 0; i < d.N; i++) {
              const size_t qr = qBase + i * d.D;
              const long long r = i / d.T, tt = i % d.T;
              const float* mRow = j.m + b * d.mb + g * d.mg + r * d.mr + tt * d.mt;
              float dsum = 0.0f;
              for (long long c = 0; c < d.D; c++) dsum += loadAsFloat(j.dO, j.t, qr + c) * loadAsFloat(j.o, j.t, qr + c);
              j.out1[bg * d.N + i] = dsum;
              const float mx = j.stats[2 * (bg * d.N + i)], l = j.stats[2 * (bg * d.N + i) + 1];
              for (long long s = 0; s < d.S; s++) {
                float dot = 0.0f, dp = 0.0f;
                for (long long c = 0; c < d.D; c++) {
                  dot += loadAsFloat(j.q, j.t, qr + c) * loadAsFloat(j.k, j.t, kBase + s * d.D + c);
                  dp += loadAsFloat(j.dO, j.t, qr + c) * loadAsFloat(j.v, j.t, kBase + s * d.D + c);
                }
                const float p = std::exp(d.scale * dot + mRow[s * d.ms] - mx) / l;
                const float dsv = p * (dp - dsum);
                const float pr = roundTo(j.t, p), dsr = roundTo(j.t, dsv);
                ds[s] = dsr;
                for (long long c = 0; c < d.D; c++) {
                  dv[s * d.D + c] += pr * loadAsFloat(j.dO, j.t, qr + c);
                  dk[s * d.D + c] += dsr * loadAsFloat(j.q, j.t, qr + c);
                }
              }
              std::fill(dq.begin(), dq.end(), 0.0f);
              for (long long s = 0; s < d.S; s++)
                for (long long c = 0; c < d.D; c++) dq[c] += ds[s] * loadAsFloat(j.k, j.t, kBase + s * d.D + c);
              for (long long c = 0; c < d.D; c++) storeFromFloat(j.out0, j.t, qr + c, d.scale * dq[c]);
            }
            for (long long e = 0; e < d.S * d.D; e++) {
              storeFromFloat(j.dK, j.t, kBase + e, d.scale * dk[e]);
              storeFromFloat(j.dV, j.t, kBase + e, dv[e]);
            }
          }, static_cast<size_t>(d.B * d.G), 0, &job);
        } else {
          ctx.ParallelFor([](void* data, size_t row) {
            const Job& j = *static_cast<const Job*>(data);
            const FlashDims& d = j.d;
            const long long bg = static_cast<long long>(row) / d.N, i = static_cast<long long>(row) % d.N;
            const long long b = bg / d.G, g = bg % d.G, r = i / d.T, tt = i % d.T;
            const size_t qr = row * d.D, kBase = bg * d.S * d.D;
            const float* mRow = j.m + b * d.mb + g * d.mg + r * d.mr + tt * d.mt;
            std::vector<float> z(d.S), acc(d.D, 0.0f);
            float mx = -INFINITY;
            for (long long s = 0; s < d.S; s++) {
              float dot = 0.0f;
              for (long long c = 0; c < d.D; c++) dot += loadAsFloat(j.q, j.t, qr + c) * loadAsFloat(j.k, j.t, kBase + s * d.D + c);
              z[s] = d.scale * dot + mRow[s * d.ms];
              mx = std::max(mx, z[s]);
            }
            float l = 0.0f;
            for (long long s = 0; s < d.S; s++) {
              const float p = std::exp(z[s] - mx);
              l += p;
              const float pr = roundTo(j.t, p);
              for (long long c = 0; c < d.D; c++) acc[c] += pr * loadAsFloat(j.v, j.t, kBase + s * d.D + c);
            }
            for (long long c = 0; c < d.D; c++) storeFromFloat(j.out0, j.t, qr + c, acc[c] / l);
            j.out1[2 * row] = mx;
            j.out1[2 * row + 1] = l;
          }, static_cast<size_t>(nRows), 0, &job);
        }
      }
      return nullptr;
    } catch (const std::exception& e) {
      return fail(name, e);
    }
  }
};

/** Output types/shapes: forward O as Q, stats [B, G, N, 2] f32; grad dQ/dK/dV as Q/K/V, Dsum [B, G, N] f32. */
template <bool Grad>
OrtStatusPtr inferFlashAttention(const OrtCustomOp*, OrtShapeInferContext* ctx) {
  const size_t o = Grad ? 1 : 0;
  InferredShape q, k;
  if (OrtStatusPtr st = inferredInput(ctx, o, q)) return st;
  if (OrtStatusPtr st = inferredInput(ctx, o + 1, k)) return st;
  if (OrtStatusPtr st = setInferredOutput(ctx, 0, q)) return st;
  if (q.dims.size() != 4) return nullptr;
  InferredShape rows = rowsOf(q);
  if constexpr (Grad) {
    if (OrtStatusPtr st = setInferredOutput(ctx, 1, k)) return st;
    if (OrtStatusPtr st = setInferredOutput(ctx, 2, k)) return st;
    return setInferredOutput(ctx, 3, rows);
  } else {
    rows.dims.push_back(2);
    rows.names.emplace_back();
    return setInferredOutput(ctx, 1, rows);
  }
}

template <bool OnCuda, bool Grad>
struct FlashAttentionOp : FusedOp<FlashAttentionOp<OnCuda, Grad>, FlashAttentionKernel<OnCuda, Grad>, OnCuda> {
  FlashAttentionOp() { this->InferOutputShapeFn = &inferFlashAttention<Grad>; }
  const char* GetName() const { return Grad ? "FlashAttentionGrad" : "FlashAttention"; }
  // Forward: Q, K, V (any float), M (f32). Grad: dO, Q, K, V, M, O, stats.
  size_t GetInputTypeCount() const { return Grad ? 7 : 4; }
  ONNXTensorElementDataType GetInputType(size_t i) const {
    bool isM = Grad ? i == 4 || i == 6 : i == 3;
    return isM ? ONNX_TENSOR_ELEMENT_DATA_TYPE_FLOAT : ONNX_TENSOR_ELEMENT_DATA_TYPE_UNDEFINED;
  }
  size_t GetOutputTypeCount() const { return Grad ? 4 : 2; }
  ONNXTensorElementDataType GetOutputType(size_t i) const {
    bool isF32 = Grad ? i == 3 : i == 1;
    return isF32 ? ONNX_TENSOR_ELEMENT_DATA_TYPE_FLOAT : ONNX_TENSOR_ELEMENT_DATA_TYPE_UNDEFINED;
  }
};

}  // namespace

void addFlashAttentionOps(Ort::CustomOpDomain& cpu, Ort::CustomOpDomain& cuda) {
  cpu.Add(new FlashAttentionOp<false, false>());
  cpu.Add(new FlashAttentionOp<false, true>());
  cuda.Add(new FlashAttentionOp<true, false>());
  cuda.Add(new FlashAttentionOp<true, true>());
}

}  // namespace latent_sft
