// AdamW, one fused pass (docs/performance.md has the measurements): ORT's inference build has no fused
// optimizer kernels, and AdamW written with standard ops is ~14 elementwise passes over every parameter.
//
//   AdamW(p, g, m, v, step_size, decay, bc2_sqrt, coef: f32 scalars) -> p', m', v' (as p, m, v): p float32
//       (masters) or bfloat16 / float16 (16-bit parameters); m, v bfloat16 with bfloat16 p (PyTorch's bf16
//       recipe), else float32 (a float16 v = g² underflows); 16-bit values widened exactly, the same float32
//       math, each result rounded once to nearest even; g float32, bfloat16 or float16; attributes beta2, one_minus_beta1, one_minus_beta2, eps (float), per element
//     gr = g·coef; pd = p·decay; m' = m + (1−β1)(gr − m); v' = v·β2 + ((1−β2)·gr)·gr;
//     p' = pd − step_size · (m' / (sqrt(v')/bc2_sqrt + eps))
//   each operation rounded to float32 in this order: bit for bit what the same formula written with
//   ONNX Mul/Add/Sub/Div/Sqrt computes (no FMA contraction: NVRTC -fmad=false, -ffp-contract=off).
//   The element is adamwElement (fused_shared.h), run by this CPU kernel and by kernels/adamw.cu.
//   A non-finite coef (the step graph's signal that the grad norm or the loss is not finite) skips the
//   update: p', m', v' = p, m, v (and AdamWCopy's copy = p rounded, the copy the Trainer already holds).
//   In place: each output may be bound to its input's buffer (p' to p, m' to m, v' to v); every element
//   is read before it is written, by the one thread that owns it, so the result is the same.
//
//   AdamWCopy: the same inputs and attributes plus `to` (bfloat16 or float16, ONNX's TensorProto enum as
//   Cast's) -> p', m', v', and p' rounded to `to` (round to nearest even: what Cast(p', to) writes) — the
//   compute-dtype copy of the weight the next step's forward reads instead of casting the master.
#include "../fused_common.h"


namespace latent_sft {
namespace {

/** AdamWCopy's `to`: bfloat16 or float16, else throws. */
ONNXTensorElementDataType copyType(int64_t to) {
  if (to != ONNX_TENSOR_ELEMENT_DATA_TYPE_BFLOAT16 && to != ONNX_TENSOR_ELEMENT_DATA_TYPE_FLOAT16)
    throw std::runtime_error("attribute to must be bfloat16 (16) or float16 (10), got " + std::to_string(to));
  return static_cast<ONNXTensorElementDataType>(to);
}

/** The four scalar inputs (step_size, decay, bc2_sqrt, coef) from input `at` on: float32 scalars. */
void readScalars(Ort::KernelContext& ctx, size_t at, const float* scal[4]) {
  for (size_t i = 0; i < 4; i++) {
    auto s = ctx.GetInput(at + i);
    if (s.GetTensorTypeAndShapeInfo().GetElementCount() != 1) throw std::runtime_error("step_size, decay, bc2_sqrt and coef must be scalars");
    scal[i] = s.GetTensorData<float>();
  }
}

/**
 * One tensor's update: p, g, m, v are inputs in .. in + 3, p', m', v' (and AdamWCopy's copy) outputs out ..
 * out + 2 (+ 3); scal: the four scalars. The single op runs it once, the multi-tensor op once per tensor.
 */
template <bool OnCuda, bool Copy>
void updateTensor(Ort::KernelContext& ctx, size_t in, size_t out, const float* const scal[4], float b2, float omb1, float omb2, float eps,
                  ONNXTensorElementDataType to, int deviceId) {
  auto p = ctx.GetInput(in), g = ctx.GetInput(in + 1), m = ctx.GetInput(in + 2), v = ctx.GetInput(in + 3);
  auto shape = p.GetTensorTypeAndShapeInfo().GetShape();
  size_t n = p.GetTensorTypeAndShapeInfo().GetElementCount();
  auto gt = g.GetTensorTypeAndShapeInfo().GetElementType();
  auto pt = p.GetTensorTypeAndShapeInfo().GetElementType();
  if (floatTypeName(gt) == nullptr) throw std::runtime_error("the gradient must be float32, bfloat16 or float16");
  if (floatTypeName(pt) == nullptr) throw std::runtime_error("p must be float32, bfloat16 or float16");
  if (Copy && pt != ONNX_TENSOR_ELEMENT_DATA_TYPE_FLOAT) throw std::runtime_error("AdamWCopy needs float32 p, m and v");
  for (auto* t : {&g, &m, &v})
    if (t->GetTensorTypeAndShapeInfo().GetElementCount() != n) throw std::runtime_error("p, g, m and v must have the same size");
  // Moments: float32 with float32 or float16 p, bfloat16 with bfloat16 p (graph's adamwMomentDtype).
  auto mt = pt == ONNX_TENSOR_ELEMENT_DATA_TYPE_BFLOAT16 ? ONNX_TENSOR_ELEMENT_DATA_TYPE_BFLOAT16 : ONNX_TENSOR_ELEMENT_DATA_TYPE_FLOAT;
  for (auto* t : {&m, &v})
    if (t->GetTensorTypeAndShapeInfo().GetElementType() != mt)
      throw std::runtime_error(std::string("m and v must be ") + floatTypeName(mt) + " for " + floatTypeName(pt) + " p");
  auto po = ctx.GetOutput(out, shape), mo = ctx.GetOutput(out + 1, shape), vo = ctx.GetOutput(out + 2, shape);
  void* co = Copy ? ctx.GetOutput(out + 3, shape).GetTensorMutableRawData() : nullptr;
  if (n == 0) return;
  void *pop = po.GetTensorMutableRawData(), *mop = mo.GetTensorMutableRawData(), *vop = vo.GetTensorMutableRawData();
  const void *pp = p.GetTensorRawData(), *mp = m.GetTensorRawData(), *vp = v.GetTensorRawData();
  const void* gp = g.GetTensorRawData();
  if constexpr (OnCuda) {
    const Kernels& k = kernelsForCurrentContext(deviceId);
    long long nn = static_cast<long long>(n);
    int vec = 1;
    for (const void* q : {static_cast<const void*>(pop), pp})
      if (!aligned(q, 4 * dtypeSize(pt))) vec = 0;  // 4 elements of p, of m and v
    for (const void* q : {static_cast<const void*>(mop), static_cast<const void*>(vop), mp, vp})
      if (!aligned(q, 4 * dtypeSize(mt))) vec = 0;
    if (!aligned(gp, 4 * dtypeSize(gt))) vec = 0;
    if (Copy && !aligned(co, 8)) vec = 0;
    float hb2 = b2, homb1 = omb1, homb2 = omb2, heps = eps;
    const float* sc[4] = {scal[0], scal[1], scal[2], scal[3]};
    void* args[] = {&nn, &vec, &pop, &mop, &vop, &pp, &gp, &mp, &vp, &sc[0], &sc[1], &sc[2], &sc[3], &hb2, &homb1, &homb2, &heps, &co};
    unsigned grid = gridFor(vec != 0 ? (nn + 3) / 4 : nn, k.smCount, 16);
    int gi = gradIndex(gt);
    CUfunction fn = Copy ? (to == ONNX_TENSOR_ELEMENT_DATA_TYPE_BFLOAT16 ? k.adamwToBf16[gi] : k.adamwToF16[gi])
                    : pt == ONNX_TENSOR_ELEMENT_DATA_TYPE_BFLOAT16 ? k.adamwPBf16[gi]
                    : pt == ONNX_TENSOR_ELEMENT_DATA_TYPE_FLOAT16  ? k.adamwPF16[gi]
                                                                   : k.adamw[gi];
    check(cudaApi().launchKernel(fn, grid, 1, 1, 256, 1, 1, 0, ctx.GetGPUComputeStream(), args, nullptr), Copy ? "cuLaunchKernel (AdamWCopy)" : "cuLaunchKernel (AdamW)");
  } else {
    AdamWHyper h{*scal[0], *scal[1], *scal[2], *scal[3], b2, omb1, omb2, eps};
    struct Job {
      const AdamWHyper* h; const void *p, *m, *v, *g; ONNXTensorElementDataType pt, mt, gt; void *po, *mo, *vo, *co;
      ONNXTensorElementDataType ct; size_t n;
    } job{&h, pp, mp, vp, gp, pt, mt, gt, pop, mop, vop, co, to, n};
    size_t chunks = (n + kCpuChunk - 1) / kCpuChunk;
    ctx.ParallelFor([](void* data, size_t c) {
      const Job& j = *static_cast<const Job*>(data);
      size_t e = (c + 1) * kCpuChunk < j.n ? (c + 1) * kCpuChunk : j.n;
      if (j.pt == ONNX_TENSOR_ELEMENT_DATA_TYPE_FLOAT) {
        const float *p = static_cast<const float*>(j.p), *m = static_cast<const float*>(j.m), *v = static_cast<const float*>(j.v);
        float *po = static_cast<float*>(j.po), *mo = static_cast<float*>(j.mo), *vo = static_cast<float*>(j.vo);
        for (size_t i = c * kCpuChunk; i < e; i++) {
          adamwElement(*j.h, p[i], loadAsFloat(j.g, j.gt, i), m[i], v[i], po[i], mo[i], vo[i]);
          if (Copy) storeFromFloat(j.co, j.ct, i, po[i]);
        }
      } else {
        // 16-bit parameters (and bfloat16 moments): widened exactly, float32 math, each result rounded once.
        for (size_t i = c * kCpuChunk; i < e; i++) {
          float po, mo, vo;
          adamwElement(*j.h, loadAsFloat(j.p, j.pt, i), loadAsFloat(j.g, j.gt, i), loadAsFloat(j.m, j.mt, i), loadAsFloat(j.v, j.mt, i), po, mo, vo);
          storeFromFloat(j.po, j.pt, i, po);
          storeFromFloat(j.mo, j.mt, i, mo);
          storeFromFloat(j.vo, j.mt, i, vo);
        }
      }
    }, chunks, 0, &job);
  }
}

/**
 * AdamW / AdamWCopy (Multi false: p, g, m, v, then the 4 scalars) and AdamWMulti / AdamWCopyMulti (Multi true:
 * the 4 scalars, then p, g, m, v of each of k tensors -> p', m', v' (and the copy) of each tensor in order):
 * updateTensor per tensor (the single op's kernel and launch), in one node. In place like the single op (each
 * output over its own tensor's input).
 */
template <bool OnCuda, bool Copy, bool Multi>
struct AdamWKernel {
  float b2, omb1, omb2, eps;
  ONNXTensorElementDataType to = ONNX_TENSOR_ELEMENT_DATA_TYPE_UNDEFINED;
  int deviceId = 0;

  explicit AdamWKernel(const OrtKernelInfo* info) {
    Ort::ConstKernelInfo ki(info);
    if (Copy) to = copyType(ki.GetAttribute<int64_t>("to"));
    b2 = ki.GetAttribute<float>("beta2");
    omb1 = ki.GetAttribute<float>("one_minus_beta1");
    omb2 = ki.GetAttribute<float>("one_minus_beta2");
    eps = ki.GetAttribute<float>("eps");
    if (OnCuda) (void)kernelsForCurrentContext(deviceId);  // compile now: errors surface at session creation
  }

  OrtStatusPtr ComputeV2(OrtKernelContext* context) {
    try {
      Ort::KernelContext ctx(context);
      const float* scal[4];
      if constexpr (!Multi) {
        readScalars(ctx, 4, scal);
        updateTensor<OnCuda, Copy>(ctx, 0, 0, scal, b2, omb1, omb2, eps, to, deviceId);
      } else {
        size_t inputs = ctx.GetInputCount(), outputs = ctx.GetOutputCount();
        const size_t per = Copy ? 4 : 3;
        if (inputs < 8 || (inputs - 4) % 4 != 0 || outputs != (inputs - 4) / 4 * per)
          throw std::runtime_error("expects 4 scalars then p, g, m, v per tensor, and " + std::to_string(per) + " outputs per tensor");
        readScalars(ctx, 0, scal);
        for (size_t i = 0; 4 + 4 * i < inputs; i++) updateTensor<OnCuda, Copy>(ctx, 4 + 4 * i, per * i, scal, b2, omb1, omb2, eps, to, deviceId);
      }
      return nullptr;
    } catch (const std::exception& e) {
      return fail(Multi ? (Copy ? "AdamWCopyMulti" : "AdamWMulti") : (Copy ? "AdamWCopy" : "AdamW"), e);
    }
  }
};

/** AdamWMulti's outputs: per tensor i, p' as p_i, m' and v' as m_i (AdamWCopyMulti: and the copy as p_i in `to`). */
template <bool Copy>
OrtStatusPtr inferAdamWMulti(const OrtCustomOp*, OrtShapeInferContext* ctx) {
  try {
    Ort::ShapeInferContext sc(&Ort::GetApi(), ctx);
    size_t inputs = sc.GetInputCount();
    const size_t per = Copy ? 4 : 3;
    ONNXTensorElementDataType to = Copy ? copyType(sc.GetAttrInt("to")) : ONNX_TENSOR_ELEMENT_DATA_TYPE_UNDEFINED;
    for (size_t i = 0; 4 + 4 * i < inputs; i++) {
      InferredShape p, m;
      if (OrtStatusPtr st = inferredInput(ctx, 4 + 4 * i, p)) return st;
      if (OrtStatusPtr st = inferredInput(ctx, 6 + 4 * i, m)) return st;
      if (OrtStatusPtr st = setInferredOutput(ctx, per * i, p)) return st;
      if (OrtStatusPtr st = setInferredOutput(ctx, per * i + 1, m)) return st;
      if (OrtStatusPtr st = setInferredOutput(ctx, per * i + 2, m)) return st;
      if (Copy) {
        p.type = to;
        if (OrtStatusPtr st = setInferredOutput(ctx, per * i + 3, p)) return st;
      }
    }
    return nullptr;
  } catch (const std::exception& e) {
    return fail(Copy ? "AdamWCopyMulti" : "AdamWMulti", e);
  }
}

template <bool OnCuda, bool Copy>
struct AdamWMultiOp : FusedOp<AdamWMultiOp<OnCuda, Copy>, AdamWKernel<OnCuda, Copy, true>, OnCuda> {
  AdamWMultiOp() { this->InferOutputShapeFn = &inferAdamWMulti<Copy>; }
  const char* GetName() const { return Copy ? "AdamWCopyMulti" : "AdamWMulti"; }
  // The four float32 scalars, then the tensors: variadic, of mixed float dtypes (checked by the kernel).
  size_t GetInputTypeCount() const { return 5; }
  ONNXTensorElementDataType GetInputType(size_t i) const { return i < 4 ? ONNX_TENSOR_ELEMENT_DATA_TYPE_FLOAT : ONNX_TENSOR_ELEMENT_DATA_TYPE_UNDEFINED; }
  OrtCustomOpInputOutputCharacteristic GetInputCharacteristic(size_t i) const { return i < 4 ? INPUT_OUTPUT_REQUIRED : INPUT_OUTPUT_VARIADIC; }
  int GetVariadicInputMinArity() const { return 4; }
  bool GetVariadicInputHomogeneity() const { return false; }
  size_t GetOutputTypeCount() const { return 1; }
  ONNXTensorElementDataType GetOutputType(size_t) const { return ONNX_TENSOR_ELEMENT_DATA_TYPE_UNDEFINED; }
  OrtCustomOpInputOutputCharacteristic GetOutputCharacteristic(size_t) const { return INPUT_OUTPUT_VARIADIC; }
  int GetVariadicOutputMinArity() const { return Copy ? 4 : 3; }
  bool GetVariadicOutputHomogeneity() const { return false; }
};

/** AdamW's outputs: p' as p, m' and v' as m (dtype and shape). */
OrtStatusPtr inferAdamW(const OrtCustomOp*, OrtShapeInferContext* ctx) {
  InferredShape p, m;
  if (OrtStatusPtr st = inferredInput(ctx, 0, p)) return st;
  if (OrtStatusPtr st = inferredInput(ctx, 2, m)) return st;
  if (OrtStatusPtr st = setInferredOutput(ctx, 0, p)) return st;
  if (OrtStatusPtr st = setInferredOutput(ctx, 1, m)) return st;
  return setInferredOutput(ctx, 2, m);
}

/** AdamWCopy's outputs: p', m', v' float32 as p; the copy as p in dtype `to`. */
OrtStatusPtr inferAdamWCopy(const OrtCustomOp*, OrtShapeInferContext* ctx) {
  try {
    InferredShape p;
    if (OrtStatusPtr st = inferredInput(ctx, 0, p)) return st;
    for (size_t i = 0; i < 3; i++)
      if (OrtStatusPtr st = setInferredOutput(ctx, i, p)) return st;
    p.type = copyType(Ort::ShapeInferContext(&Ort::GetApi(), ctx).GetAttrInt("to"));
    return setInferredOutput(ctx, 3, p);
  } catch (const std::exception& e) {
    return fail("AdamWCopy", e);
  }
}

template <bool OnCuda, bool Copy>
struct AdamWOp : FusedOp<AdamWOp<OnCuda, Copy>, AdamWKernel<OnCuda, Copy, false>, OnCuda> {
  AdamWOp() { this->InferOutputShapeFn = Copy ? &inferAdamWCopy : &inferAdamW; }
  const char* GetName() const { return Copy ? "AdamWCopy" : "AdamW"; }
  // p, g, m, v: any float dtype (checked by the kernel); the four scalars float32.
  size_t GetInputTypeCount() const { return 8; }
  ONNXTensorElementDataType GetInputType(size_t i) const { return i < 4 ? ONNX_TENSOR_ELEMENT_DATA_TYPE_UNDEFINED : ONNX_TENSOR_ELEMENT_DATA_TYPE_FLOAT; }
  size_t GetOutputTypeCount() const { return Copy ? 4 : 3; }
  ONNXTensorElementDataType GetOutputType(size_t) const { return ONNX_TENSOR_ELEMENT_DATA_TYPE_UNDEFINED; }
};

/**
 * CastMulti(x_1 .. x_k float32){to} -> each x_i rounded to `to` (bfloat16 or float16, nearest even: what ORT's
 * Cast writes, the rounding AdamWCopy's copy is checked against): the step's casts of the float32 masters to
 * the compute dtype in one node (graph.fuseMultiTensorCast). CUDA: one cast kernel launch per tensor.
 */
template <bool OnCuda>
struct CastMultiKernel {
  ONNXTensorElementDataType to = ONNX_TENSOR_ELEMENT_DATA_TYPE_UNDEFINED;
  int deviceId = 0;

  explicit CastMultiKernel(const OrtKernelInfo* info) {
    to = copyType(Ort::ConstKernelInfo(info).GetAttribute<int64_t>("to"));
    if (OnCuda) (void)kernelsForCurrentContext(deviceId);
  }

  OrtStatusPtr ComputeV2(OrtKernelContext* context) {
    try {
      Ort::KernelContext ctx(context);
      size_t k = ctx.GetInputCount();
      if (ctx.GetOutputCount() != k) throw std::runtime_error("one output per input");
      for (size_t i = 0; i < k; i++) {
        auto x = ctx.GetInput(i);
        auto info = x.GetTensorTypeAndShapeInfo();
        if (info.GetElementType() != ONNX_TENSOR_ELEMENT_DATA_TYPE_FLOAT) throw std::runtime_error("input " + std::to_string(i) + " must be float32");
        size_t n = info.GetElementCount();
        void* y = ctx.GetOutput(i, info.GetShape()).GetTensorMutableRawData();
        if (n == 0) continue;
        const float* xp = x.GetTensorData<float>();
        if constexpr (OnCuda) {
          const Kernels& kern = kernelsForCurrentContext(deviceId);
          long long nn = static_cast<long long>(n);
          void* args[] = {&nn, &xp, &y};
          check(cudaApi().launchKernel(to == ONNX_TENSOR_ELEMENT_DATA_TYPE_BFLOAT16 ? kern.castToBf16 : kern.castToF16, gridFor(nn, kern.smCount, 16), 1, 1, 256, 1,
                                       1, 0, ctx.GetGPUComputeStream(), args, nullptr),
                "cuLaunchKernel (CastMulti)");
        } else {
          struct Job { const float* x; void* y; ONNXTensorElementDataType to; size_t n; } job{xp, y, to, n};
          ctx.ParallelFor([](void* data, size_t c) {
            const Job& j = *static_cast<const Job*>(data);
            size_t e = (c + 1) * kCpuChunk < j.n ? (c + 1) * kCpuChunk : j.n;
            for (size_t t = c * kCpuChunk; t < e; t++) storeFromFloat(j.y, j.to, t, j.x[t]);
          }, (n + kCpuChunk - 1) / kCpuChunk, 0, &job);
        }
      }
      return nullptr;
    } catch (const std::exception& e) {
      return fail("CastMulti", e);
    }
  }
};

/** CastMulti's outputs: each input's shape in dtype `to`. */
OrtStatusPtr inferCastMulti(const OrtCustomOp*, OrtShapeInferContext* ctx) {
  try {
    Ort::ShapeInferContext sc(&Ort::GetApi(), ctx);
    ONNXTensorElementDataType to = copyType(sc.GetAttrInt("to"));
    for (size_t i = 0; i < sc.GetInputCount(); i++) {
      InferredShape x;
      if (OrtStatusPtr st = inferredInput(ctx, i, x)) return st;
      x.type = to;
      if (OrtStatusPtr st = setInferredOutput(ctx, i, x)) return st;
    }
    return nullptr;
  } catch (const std::exception& e) {
    return fail("CastMulti", e);
  }
}

template <bool OnCuda>
struct CastMultiOp : FusedOp<CastMultiOp<OnCuda>, CastMultiKernel<OnCuda>, OnCuda> {
  CastMultiOp() { this->InferOutputShapeFn = &inferCastMulti; }
  const char* GetName() const { return "CastMulti"; }
  size_t GetInputTypeCount() const { return 1; }
  ONNXTensorElementDataType GetInputType(size_t) const { return ONNX_TENSOR_ELEMENT_DATA_TYPE_FLOAT; }
  OrtCustomOpInputOutputCharacteristic GetInputCharacteristic(size_t) const { return INPUT_OUTPUT_VARIADIC; }
  int GetVariadicInputMinArity() const { return 1; }
  bool GetVariadicInputHomogeneity() const { return true; }
  size_t GetOutputTypeCount() const { return 1; }
  ONNXTensorElementDataType GetOutputType(size_t) const { return ONNX_TENSOR_ELEMENT_DATA_TYPE_UNDEFINED; }
  OrtCustomOpInputOutputCharacteristic GetOutputCharacteristic(size_t) const { return INPUT_OUTPUT_VARIADIC; }
  int GetVariadicOutputMinArity() const { return 1; }
  bool GetVariadicOutputHomogeneity() const { return true; }
};

}  // namespace

void addAdamWOps(Ort::CustomOpDomain& cpu, Ort::CustomOpDomain& cuda) {
  cpu.Add(new AdamWOp<false, false>());
  cpu.Add(new AdamWOp<false, true>());
  cuda.Add(new AdamWOp<true, false>());
  cuda.Add(new AdamWOp<true, true>());
  cpu.Add(new AdamWMultiOp<false, false>());
  cpu.Add(new AdamWMultiOp<false, true>());
  cuda.Add(new AdamWMultiOp<true, false>());
  cuda.Add(new AdamWMultiOp<true, true>());
  cpu.Add(new CastMultiOp<false>());
  cuda.Add(new CastMultiOp<true>());
}

}  // namespace latent_sft
