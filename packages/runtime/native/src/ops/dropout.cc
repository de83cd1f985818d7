// SeededDropout: the inverted dropout of a LoRA input in one elementwise pass (graph.fuseSeededDropout
// rewrites models/src/lora-graph.ts's seededDropout into it).
//
//   SeededDropout(x [N, I], A [N, Wa], B [Rb, Kb], C [N, Wc], D [Rd, Kd]){threshold, scale, a_col, b_row, c_col, d_row} -> y [N, I]
//   a_n = A[n, a_col], b_i = B[b_row, i], c_n = C[n, c_col], d_i = D[d_row, i]   (Kb, Kd >= I)
//   y = round(x · (keep ? scale : 0)),  keep = ((a_n + b_i)·(c_n + d_i) mod 2³², as int32) < threshold
//
// The tables are read in place: A, C are lora-graph.ts's per-forward row table [N, 2·streams] and B, D its
// column table [2·streams, maxCols], so a module's dropout needs no Slice of them (a_col = 2m, c_col = 2m + 1,
// b_row = 2m, d_row = 2m + 1 for stream m); [N, 1] and [1, I] tables with indices 0 are the plain form.
// x, y: one float dtype (f32, bf16, f16); A, B, C, D: int32; scale: 1/(1 − p) as rounded to x's dtype by the
// standard ops; round() = to that dtype. The same values as the standard ops' Slices, int32 Add, Add, Mul,
// Less, Cast and the two Muls (x·0 keeps its sign and NaN, as the Mul by the cast mask does), and its own
// gradient: dx = SeededDropout(dy) with the same tables and indices. The element test is dropoutKeep
// (fused_shared.h), run by this CPU kernel and by kernels/dropout.cu.
#include "../fused_common.h"

#include <vector>

namespace latent_sft {
namespace {

template <bool OnCuda>
struct SeededDropoutKernel {
  int threshold = 0;
  float scale = 1.0f;
  long long index[4] = {0, 0, 0, 0};  // a_col, b_row, c_col, d_row
  int deviceId = 0;

  explicit SeededDropoutKernel(const OrtKernelInfo* info) {
    Ort::ConstKernelInfo ki(info);
    threshold = static_cast<int>(ki.GetAttribute<int64_t>("threshold"));
    scale = ki.GetAttribute<float>("scale");
    const char* names[4] = {"a_col", "b_row", "c_col", "d_row"};
    for (int k = 0; k < 4; k++) {
      index[k] = ki.GetAttribute<int64_t>(names[k]);
      if (index[k] < 0) throw std::runtime_error(std::string("SeededDropout: attribute ") + names[k] + " must be >= 0");
    }
    if (OnCuda) (void)kernelsForCurrentContext(deviceId);
  }

  OrtStatusPtr ComputeV2(OrtKernelContext* context) {
    try {
      Ort::KernelContext ctx(context);
      auto xv = ctx.GetInput(0);
      auto info = xv.GetTensorTypeAndShapeInfo();
      auto shape = info.GetShape();
      auto t = info.GetElementType();
      if (floatTypeName(t) == nullptr) throw std::runtime_error("x must be float32, bfloat16 or float16");
      if (shape.size() != 2) throw std::runtime_error("x must be [N, I]");
      long long rows = shape[0], cols = shape[1];
      // Each table's element pointer at its row / column index and its stride between rows (A, C) or the
      // column offset of B, D's row: a_n = pa[n·sa], b_i = pb[i], c_n = pc[n·sc], d_i = pd[i].
      const int* tab[4];
      long long stride[4] = {0, 0, 0, 0};
      for (size_t k = 0; k < 4; k++) {
        auto v = ctx.GetInput(1 + k);
        auto ti = v.GetTensorTypeAndShapeInfo();
        auto s = ti.GetShape();
        bool perRow = k % 2 == 0;  // a, c per row; b, d per column
        const char* name = k == 0 ? "A" : k == 1 ? "B" : k == 2 ? "C" : "D";
        if (ti.GetElementType() != ONNX_TENSOR_ELEMENT_DATA_TYPE_INT32 || s.size() != 2)
          throw std::runtime_error(std::string("table ") + name + " must be a rank-2 int32 tensor");
        if (perRow && (s[0] != rows || index[k] >= s[1]))
          throw std::runtime_error(std::string("table ") + name + " must be int32 [N, W] with N = x's rows and its column index < W");
        if (!perRow && (s[1] < cols || index[k] >= s[0]))
          throw std::runtime_error(std::string("table ") + name + " must be int32 [R, K] with K >= x's columns and its row index < R");
        stride[k] = s[1];
        tab[k] = v.GetTensorData<int>() + (perRow ? index[k] : index[k] * s[1]);
      }
      const long long sa = stride[0], sc = stride[2];
      const void* x = xv.GetTensorRawData();
      void* y = ctx.GetOutput(0, shape).GetTensorMutableRawData();
      long long n = rows * cols;
      if (n == 0) return nullptr;
      if constexpr (OnCuda) {
        const Kernels& k = kernelsForCurrentContext(deviceId);
        // Grid x covers a row's columns (256 per block, at most 64 blocks), grid y the rows, up to 16 blocks per SM in all.
        unsigned gx = static_cast<unsigned>(std::min<long long>((cols + 255) / 256, 64));
        unsigned gy = static_cast<unsigned>(std::max<long long>(1, std::min<long long>({rows, 65535LL, static_cast<long long>(k.smCount) * 16 / gx + 1})));
        int th = threshold;
        float scl = scale;
        long long sA = sa, sC = sc;
        const int *a = tab[0], *b = tab[1], *c = tab[2], *d = tab[3];
        void* args[] = {&rows, &cols, &th, &scl, &x, &a, &sA, &b, &c, &sC, &d, &y};
        check(cudaApi().launchKernel(k.seededDropout[gradIndex(t)], gx, gy, 1, 256, 1, 1, 0, ctx.GetGPUComputeStream(), args, nullptr),
              "cuLaunchKernel (SeededDropout)");
      } else {
        struct Job { const void* x; const int *a, *b, *c, *d; size_t sa, sc; void* y; ONNXTensorElementDataType t; size_t n, cols; int threshold; float scale; } job{
            x, tab[0], tab[1], tab[2], tab[3], static_cast<size_t>(sa), static_cast<size_t>(sc), y, t, static_cast<size_t>(n), static_cast<size_t>(cols), threshold, scale};
        ctx.ParallelFor([](void* data, size_t chunk) {
          const Job& j = *static_cast<const Job*>(data);
          size_t e = (chunk + 1) * kCpuChunk < j.n ? (chunk + 1) * kCpuChunk : j.n;
          for (size_t i = chunk * kCpuChunk; i < e; i++) {
            size_t row = i / j.cols, col = i - row * j.cols;
            float m = dropoutKeep(j.a[row * j.sa], j.b[col], j.c[row * j.sc], j.d[col], j.threshold) ? j.scale : 0.0f;
            storeFromFloat(j.y, j.t, i, loadAsFloat(j.x, j.t, i) * m);
          }
        }, (static_cast<size_t>(n) + kCpuChunk - 1) / kCpuChunk, 0, &job);
      }
      return nullptr;
    } catch (const std::exception& e) {
      return fail("SeededDropout", e);
    }
  }
};

/** Output type/shape: as input 0 (x). */
OrtStatusPtr inferSeededDropout(const OrtCustomOp*, OrtShapeInferContext* ctx) {
  InferredShape x;
  if (OrtStatusPtr st = inferredInput(ctx, 0, x)) return st;
  return setInferredOutput(ctx, 0, x);
}

template <bool OnCuda>
struct SeededDropoutOp : FusedOp<SeededDropoutOp<OnCuda>, SeededDropoutKernel<OnCuda>, OnCuda> {
  SeededDropoutOp() { this->InferOutputShapeFn = &inferSeededDropout; }
  const char* GetName() const { return "SeededDropout"; }
  size_t GetInputTypeCount() const { return 5; }
  ONNXTensorElementDataType GetInputType(size_t i) const { return i == 0 ? ONNX_TENSOR_ELEMENT_DATA_TYPE_UNDEFINED : ONNX_TENSOR_ELEMENT_DATA_TYPE_INT32; }
  size_t GetOutputTypeCount() const { return 1; }
  ONNXTensorElementDataType GetOutputType(size_t) const { return ONNX_TENSOR_ELEMENT_DATA_TYPE_UNDEFINED; }
};

// HashWords(seed int64 scalar){count, width, offset_lo, offset_hi} -> int32 [count / width, width]: the
// dropout tables' words, graph's hash.ts hashWords in one pass (fuseHashWords rewrites that subgraph into
// it when its count is a constant: lora-graph.ts's column table). Word i is hashWord (fused_shared.h), the
// graph's int64 arithmetic exactly, so the tables are the standard ops' bit for bit.
template <bool OnCuda>
struct HashWordsKernel {
  long long count = 0, width = 1, lo = 0, hi = 0;
  int deviceId = 0;

  explicit HashWordsKernel(const OrtKernelInfo* info) {
    Ort::ConstKernelInfo ki(info);
    count = ki.GetAttribute<int64_t>("count");
    width = ki.GetAttribute<int64_t>("width");
    lo = ki.GetAttribute<int64_t>("offset_lo");
    hi = ki.GetAttribute<int64_t>("offset_hi");
    if (count < 0 || width < 1 || count % width != 0) throw std::runtime_error("HashWords: count must be a multiple of width >= 1");
    if (lo < 0 || lo >= kHashP || hi < 0 || hi >= kHashP) throw std::runtime_error("HashWords: offsets must be in [0, 2^31 - 1)");
    if (OnCuda) (void)kernelsForCurrentContext(deviceId);
  }

  OrtStatusPtr ComputeV2(OrtKernelContext* context) {
    try {
      Ort::KernelContext ctx(context);
      auto sv = ctx.GetInput(0);
      auto si = sv.GetTensorTypeAndShapeInfo();
      if (si.GetElementType() != ONNX_TENSOR_ELEMENT_DATA_TYPE_INT64 || si.GetElementCount() != 1) throw std::runtime_error("seed must be an int64 scalar");
      const int64_t* seed = sv.GetTensorData<int64_t>();
      int* out = ctx.GetOutput(0, std::vector<int64_t>{count / width, width}).GetTensorMutableData<int>();
      if (count == 0) return nullptr;
      if constexpr (OnCuda) {
        const Kernels& k = kernelsForCurrentContext(deviceId);
        unsigned grid = static_cast<unsigned>(std::max<long long>(1, std::min<long long>((count + 255) / 256, static_cast<long long>(k.smCount) * 8)));
        long long n = count, l = lo, h = hi;
        void* args[] = {&n, &l, &h, &seed, &out};
        check(cudaApi().launchKernel(k.hashWords, grid, 1, 1, 256, 1, 1, 0, ctx.GetGPUComputeStream(), args, nullptr), "cuLaunchKernel (HashWords)");
      } else {
        struct Job { long long seed, lo, hi; int* out; size_t n; } job{static_cast<long long>(*seed), lo, hi, out, static_cast<size_t>(count)};
        ctx.ParallelFor([](void* data, size_t chunk) {
          const Job& j = *static_cast<const Job*>(data);
          size_t e = (chunk + 1) * kCpuChunk < j.n ? (chunk + 1) * kCpuChunk : j.n;
          for (size_t i = chunk * kCpuChunk; i < e; i++) j.out[i] = hashWord(static_cast<long long>(i), j.seed, j.lo, j.hi);
        }, (static_cast<size_t>(count) + kCpuChunk - 1) / kCpuChunk, 0, &job);
      }
      return nullptr;
    } catch (const std::exception& e) {
      return fail("HashWords", e);
    }
  }
};

/** Output: int32 [count / width, width] (from the attributes). */
OrtStatusPtr inferHashWords(const OrtCustomOp*, OrtShapeInferContext* ctx) {
  const OrtApi& api = Ort::GetApi();
  int64_t v[2] = {0, 1};
  const char* names[2] = {"count", "width"};
  for (int i = 0; i < 2; i++) {
    const OrtOpAttr* attr = nullptr;
    if (OrtStatusPtr st = api.ShapeInferContext_GetAttribute(ctx, names[i], &attr)) return st;
    size_t size = 0;
    if (OrtStatusPtr st = api.ReadOpAttr(attr, ORT_OP_ATTR_INT, &v[i], sizeof(int64_t), &size)) return st;
  }
  if (v[1] < 1) return api.CreateStatus(ORT_INVALID_ARGUMENT, "HashWords: width must be >= 1");
  InferredShape out{ONNX_TENSOR_ELEMENT_DATA_TYPE_INT32, {v[0] / v[1], v[1]}, {"", ""}};
  return setInferredOutput(ctx, 0, out);
}

template <bool OnCuda>
struct HashWordsOp : FusedOp<HashWordsOp<OnCuda>, HashWordsKernel<OnCuda>, OnCuda> {
  HashWordsOp() { this->InferOutputShapeFn = &inferHashWords; }
  const char* GetName() const { return "HashWords"; }
  size_t GetInputTypeCount() const { return 1; }
  ONNXTensorElementDataType GetInputType(size_t) const { return ONNX_TENSOR_ELEMENT_DATA_TYPE_INT64; }
  size_t GetOutputTypeCount() const { return 1; }
  ONNXTensorElementDataType GetOutputType(size_t) const { return ONNX_TENSOR_ELEMENT_DATA_TYPE_INT32; }
};

}  // namespace

void addSeededDropoutOps(Ort::CustomOpDomain& cpu, Ort::CustomOpDomain& cuda) {
  cpu.Add(new SeededDropoutOp<false>());
  cuda.Add(new SeededDropoutOp<true>());
  cpu.Add(new HashWordsOp<false>());
  cuda.Add(new HashWordsOp<true>());
}

}  // namespace latent_sft
