// Runs the FlashAttention CUDA kernels (src/kernels/flash_attention.cu, compiled here by g++ as C++) on the CPU,
// so that their indexing, tiling, masking and online softmax are tested without a GPU
// (packages/runtime/src/flash-emu.test.ts compares them with the CPU op).
//
// Each CUDA thread of a block is a fiber (ucontext), run one at a time until it reaches a barrier:
// __syncthreads (the block), and the warp-wide __shfl_xor_sync and mma.sync (its warp). mma.sync.m16n8k16 is
// emulated per lane from the fragment layout the kernel file's header states: every lane posts its A and B
// registers, and each lane then reads the elements of its own C rows and columns from the warp's posts; ldmatrix
// likewise from the row addresses the lanes post (its rows must lie in flashShared, as on the GPU in shared memory)
// (float32 products summed in k order; the hardware's order and internal precision are its own, so the
// comparison has a tolerance). Shared memory starts as NaN bits, so a read of a word no thread wrote shows.
//
//   flash_emu IN OUT [--no-skip] [--wrong-layout]   (prints how many warp steps the kernels skipped; --no-skip:
//                      none; --wrong-layout: B's 16-bit halves swapped in every mma, a negative control)
//                      IN: int64 [kind (0 bf16, 1 f16), B, G, N, T, S, D, rep, mb, mg, mr, mt, ms], float32 scale,
//                          then Q, K, V, dO (16-bit bits), M (float32, mask elements as the strides address them)
//                      OUT: O (16-bit), stats [B·G·N, 2] f32, Dsum [B·G·N] f32, dQ, dK, dV (16-bit)
// _longjmp between fiber stacks: glibc's fortified longjmp (__longjmp_chk, on by default in some distributions'
// gcc at -O2) refuses to jump into another stack, so fortification is off here.
#undef _FORTIFY_SOURCE
#include <setjmp.h>
#include <ucontext.h>

#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <functional>
#include <stdexcept>
#include <string>
#include <vector>

// ---- CUDA C++ as plain C++ --------------------------------------------------------------------------
#define __device__
#define __global__
#define __host__
#define __shared__
#define __forceinline__ inline
#define __restrict__ __restrict
#define __launch_bounds__(n)
#define LSFT_FLASH_EMULATE 1

typedef unsigned short u16;
typedef unsigned int u32;
struct bf16 { u16 b; };
struct f16 { u16 b; };

inline float __int_as_float(unsigned u) { float f; std::memcpy(&f, &u, 4); return f; }
inline float __uint_as_float(u32 u) { return __int_as_float(u); }
inline u32 __float_as_uint(float f) { u32 u; std::memcpy(&u, &f, 4); return u; }
inline float tof(bf16 x) { return __uint_as_float(((u32)x.b) << 16); }
inline float tof(f16 x) { _Float16 h; std::memcpy(&h, &x.b, 2); return (float)h; }
inline u16 f2bf(float v) {  // round to nearest even, NaN kept quiet (common.cuh's)
  u32 u = __float_as_uint(v);
  if ((u & 0x7fffffffu) > 0x7f800000u) return (u16)((u >> 16) | 0x40u);
  return (u16)((u + 0x7fffu + ((u >> 16) & 1u)) >> 16);
}
inline u16 f2h(float v) { _Float16 h = (_Float16)v; u16 b; std::memcpy(&b, &h, 2); return b; }
[[noreturn]] inline void __trap() { throw std::runtime_error("__trap"); }

namespace emu {
struct Dim { unsigned x, y, z; };
Dim threadIdx{0, 0, 0}, blockIdx{0, 0, 0}, blockDim{1, 1, 1};

struct Fiber {
  ucontext_t ctx;  // the first entry (makecontext); later switches are _setjmp / _longjmp, no signal-mask syscalls
  jmp_buf jb;
  std::vector<char> stack;
  unsigned tid = 0;
  bool started = false;
  bool done = false;
};
std::vector<Fiber> fibers;
size_t current = 0;
ucontext_t scheduler;
jmp_buf schedulerJb;
std::function<void()> body;
struct Barrier {
  unsigned count = 0;
  unsigned long generation = 0;
};
Barrier block;
Barrier warps[32];

void yield() {
  if (_setjmp(fibers[current].jb) == 0) _longjmp(schedulerJb, 1);
}
/** A barrier of `size` threads; the last to arrive runs `last` (for the whole group) before any leaves. */
template <typename F>
void wait(Barrier& b, unsigned size, F last) {
  unsigned long gen = b.generation;
  if (++b.count == size) {
    last();
    b.count = 0;
    b.generation++;
  } else {
    while (b.generation == gen) yield();
  }
}
void wait(Barrier& b, unsigned size) {
  wait(b, size, [] {});
}
void entry() {
  body();
  fibers[current].done = true;
  _longjmp(schedulerJb, 1);
}

/** Runs f over a grid (x, y) of blocks of `threads` threads, one block at a time. */
void launch(unsigned gx, unsigned gy, unsigned threads, const std::function<void()>& f);

/** What each lane of a warp posts for a shuffle (value, where its result goes) or an mma (fragments, its C). */
struct WarpPost {
  float f;
  float* out;
  u32 a[4], b[2];
  const u16* addr;
  u32* words;
};
WarpPost posts[32][32];
/** __all_sync (the kernels' skip vote): how often it was true for a warp, and --no-skip (it is always false). */
long long votesTrue = 0;
bool noSkip = false;
/** --wrong-layout: mma reads B's two 16-bit halves swapped (a negative control: the test must then fail). */
bool wrongLayout = false;
}  // namespace emu

#define threadIdx emu::threadIdx
#define blockIdx emu::blockIdx
#define blockDim emu::blockDim

inline void __syncthreads() { emu::wait(emu::block, blockDim.x); }
inline float __shfl_xor_sync(unsigned, float v, int laneMask) {
  const unsigned lane = threadIdx.x & 31, w = threadIdx.x >> 5;
  float r = 0.0f;
  emu::posts[w][lane].f = v;
  emu::posts[w][lane].out = &r;
  emu::wait(emu::warps[w], 32, [w, laneMask] {
    for (int l = 0; l < 32; l++) *emu::posts[w][l].out = emu::posts[w][l ^ laneMask].f;
  });
  return r;
}
inline int __all_sync(unsigned, int pred) {
  const unsigned lane = threadIdx.x & 31, w = threadIdx.x >> 5;
  float r = 0.0f;
  emu::posts[w][lane].f = pred ? 1.0f : 0.0f;
  emu::posts[w][lane].out = &r;
  emu::wait(emu::warps[w], 32, [w] {
    float all = 1.0f;
    for (int l = 0; l < 32; l++) all = emu::posts[w][l].f != 0.0f ? all : 0.0f;
    if (emu::noSkip) all = 0.0f;
    if (all != 0.0f) emu::votesTrue++;
    for (int l = 0; l < 32; l++) *emu::posts[w][l].out = all;
  });
  return r != 0.0f;
}
inline float warpSum(float v) {
  for (int o = 16; o > 0; o >>= 1) v += __shfl_xor_sync(0xffffffffu, v, o);
  return v;
}

template <typename T>
float emuHalf(u32 word, int hi) {
  T x;
  x.b = (u16)(hi ? word >> 16 : word & 0xffffu);
  return tof(x);
}

/** mma.sync.aligned.m16n8k16.row.col.f32.{bf16,f16}: c += A·B over the warp's posted fragments. */
template <typename T>
void emuMma(float* c, const u32* a, u32 b0, u32 b1) {
  const unsigned lane = threadIdx.x & 31, w = threadIdx.x >> 5;
  emu::WarpPost& post = emu::posts[w][lane];
  for (int i = 0; i < 4; i++) post.a[i] = a[i];
  post.b[0] = b0;
  post.b[1] = b1;
  post.out = c;
  emu::wait(emu::warps[w], 32, [w] {
    // A[r][k]: lane 4·(r mod 8) + (k mod 8)/2, register (r ≥ 8) + 2·(k ≥ 8), the odd k in the high half.
    // B[k][n]: lane 4·n + (k mod 8)/2, register (k ≥ 8), the odd k in the high half.
    auto A = [&](int r, int k) { return emuHalf<T>(emu::posts[w][4 * (r & 7) + (k & 7) / 2].a[(r >= 8) + 2 * (k >= 8)], k & 1); };
    auto B = [&](int k, int n) { return emuHalf<T>(emu::posts[w][4 * n + (k & 7) / 2].b[k >= 8], (k & 1) ^ (emu::wrongLayout ? 1 : 0)); };
    float d[32][4];
    for (int l = 0; l < 32; l++) {
      const int g = l >> 2, tq = l & 3;
      for (int e = 0; e < 4; e++) {
        const int r = g + 8 * (e >> 1), n = 2 * tq + (e & 1);
        float s = 0.0f;
        for (int k = 0; k < 16; k++) s += A(r, k) * B(k, n);
        d[l][e] = emu::posts[w][l].out[e] + s;
      }
    }
    for (int l = 0; l < 32; l++)
      for (int e = 0; e < 4; e++) emu::posts[w][l].out[e] = d[l][e];
  });
}

/**
 * ldmatrix.sync.aligned.m8n8.x4[.trans].shared.b16: lane 8j + r gives the address of row r of tile j; lane 4r + w
 * receives, of each tile j, the two 16-bit values of word w of row r (with .trans: of column r, rows 2w and 2w + 1).
 */
void emuLdmatrix(u32* r, const u16* p, bool trans) {
  const unsigned lane = threadIdx.x & 31, w = threadIdx.x >> 5;
  emu::posts[w][lane].addr = p;
  emu::posts[w][lane].words = r;
  emu::wait(emu::warps[w], 32, [w, trans] {
    auto at = [&](int j, int row, int col) -> u32 { return emu::posts[w][8 * j + row].addr[col]; };
    u32 out[32][4];
    for (int l = 0; l < 32; l++) {
      const int row = l >> 2, word = l & 3;
      for (int j = 0; j < 4; j++)
        out[l][j] = trans ? at(j, 2 * word, row) | (at(j, 2 * word + 1, row) << 16) : at(j, row, 2 * word) | (at(j, row, 2 * word + 1) << 16);
    }
    for (int l = 0; l < 32; l++)
      for (int j = 0; j < 4; j++) emu::posts[w][l].words[j] = out[l][j];
  });
}

// The kernels, as NVRTC compiles them (their common.cuh include is skipped under LSFT_FLASH_EMULATE).
#include "../src/kernels/flash_attention.cu"

constexpr size_t kSharedWords = 256 * 1024 / sizeof(FlashU4);
FlashU4 flashShared[kSharedWords];

void emu::launch(unsigned gx, unsigned gy, unsigned threads, const std::function<void()>& f) {
  body = f;
  blockDim = {threads, 1, 1};
  for (unsigned by = 0; by < gy; by++)
    for (unsigned bx = 0; bx < gx; bx++) {
      std::memset(flashShared, 0xff, sizeof(flashShared));  // NaN bits in every 16-bit and 32-bit word
      fibers.assign(threads, Fiber{});
      for (unsigned t = 0; t < threads; t++) {
        Fiber& fb = fibers[t];
        fb.tid = t;
        fb.stack.resize(256 * 1024);
        getcontext(&fb.ctx);
        fb.ctx.uc_stack.ss_sp = fb.stack.data();
        fb.ctx.uc_stack.ss_size = fb.stack.size();
        fb.ctx.uc_link = nullptr;
        makecontext(&fb.ctx, entry, 0);
      }
      volatile size_t live = threads;  // volatile: the fibers come back by _longjmp
      while (live > 0) {
        live = 0;
        for (volatile size_t t = 0; t < threads; t++) {
          if (fibers[t].done) continue;
          current = t;
          threadIdx = {fibers[t].tid, 0, 0};
          blockIdx = {bx, by, 0};
          if (_setjmp(schedulerJb) == 0) {
            if (!fibers[t].started) {
              fibers[t].started = true;
              swapcontext(&scheduler, &fibers[t].ctx);
            } else {
              _longjmp(fibers[t].jb, 1);
            }
          }
          if (!fibers[t].done) live = live + 1;
        }
      }
      if (block.count != 0) throw std::runtime_error("a block ended with threads waiting at __syncthreads");
    }
}

template <typename T, int D>
void run(const latent_sft::FlashDims& d, std::vector<u16>& q, std::vector<u16>& k, std::vector<u16>& v, std::vector<u16>& dO, std::vector<float>& m,
         std::vector<u16>& o, std::vector<float>& stats, std::vector<float>& dsum, std::vector<u16>& dq, std::vector<u16>& dk, std::vector<u16>& dv) {
  auto p = [](std::vector<u16>& x) { return reinterpret_cast<T*>(x.data()); };
  const unsigned bg = static_cast<unsigned>(d.B * d.G);
  const unsigned qTiles = static_cast<unsigned>((d.N + kFlashRows - 1) / kFlashRows), kTiles = static_cast<unsigned>((d.S + kFlashKeys - 1) / kFlashKeys);
  for (int kernel = 0; kernel < 3; kernel++)
    if (latent_sft::flashSmemBytes(kernel, D) > static_cast<long long>(sizeof(flashShared))) throw std::runtime_error("shared memory");
  emu::launch(qTiles, bg, 128, [&] { flashFwd<T, D>(p(q), p(k), p(v), m.data(), p(o), stats.data(), d); });
  emu::launch(static_cast<unsigned>((d.B * d.G * d.N + 7) / 8), 1, 256, [&] { flashDot<T>(p(dO), p(o), dsum.data(), d); });
  emu::launch(kTiles, bg, 128, [&] { flashDkDv<T, D>(p(dO), p(q), p(k), p(v), m.data(), stats.data(), dsum.data(), p(dk), p(dv), d); });
  emu::launch(qTiles, bg, 128, [&] { flashDq<T, D>(p(dO), p(q), p(k), p(v), m.data(), stats.data(), dsum.data(), p(dq), d); });
}

int main(int argc, char** argv) {
  try {
    for (int i = 3; i < argc; i++) {
      const std::string flag = argv[i];
      if (flag == "--no-skip") emu::noSkip = true;
      else if (flag == "--wrong-layout") emu::wrongLayout = true;
      else throw std::runtime_error("usage: flash_emu IN OUT [--no-skip] [--wrong-layout]");
    }
    if (argc < 3) throw std::runtime_error("usage: flash_emu IN OUT [--no-skip] [--wrong-layout]");
    FILE* in = std::fopen(argv[1], "rb");
    if (in == nullptr) throw std::runtime_error(std::string("cannot open ") + argv[1]);
    long long h[13];
    float scale = 0;
    auto read = [&](void* dst, size_t bytes) {
      if (std::fread(dst, 1, bytes, in) != bytes) throw std::runtime_error("short input");
    };
    read(h, sizeof(h));
    read(&scale, 4);
    latent_sft::FlashDims d{h[1], h[2], h[3], h[4], h[5], h[6], h[7], h[8], h[9], h[10], h[11], h[12], scale};
    long long mCount = 0;
    read(&mCount, 8);
    const size_t nq = d.B * d.G * d.N * d.D, nk = d.B * d.G * d.S * d.D, rows = d.B * d.G * d.N;
    std::vector<u16> q(nq), k(nk), v(nk), dO(nq), o(nq), dq(nq), dk(nk), dv(nk);
    std::vector<float> m(mCount), stats(2 * rows), dsum(rows);
    read(q.data(), 2 * nq);
    read(k.data(), 2 * nk);
    read(v.data(), 2 * nk);
    read(dO.data(), 2 * nq);
    read(m.data(), 4 * mCount);
    std::fclose(in);
    const bool f16 = h[0] == 1;
    if (d.D == 64) {
      if (f16) run<struct f16, 64>(d, q, k, v, dO, m, o, stats, dsum, dq, dk, dv);
      else run<bf16, 64>(d, q, k, v, dO, m, o, stats, dsum, dq, dk, dv);
    } else if (d.D == 128) {
      if (f16) run<struct f16, 128>(d, q, k, v, dO, m, o, stats, dsum, dq, dk, dv);
      else run<bf16, 128>(d, q, k, v, dO, m, o, stats, dsum, dq, dk, dv);
    } else {
      throw std::runtime_error("head dim must be 64 or 128");
    }
    FILE* out = std::fopen(argv[2], "wb");
    if (out == nullptr) throw std::runtime_error(std::string("cannot write ") + argv[2]);
    std::fwrite(o.data(), 2, nq, out);
    std::fwrite(stats.data(), 4, 2 * rows, out);
    std::fwrite(dsum.data(), 4, rows, out);
    std::fwrite(dq.data(), 2, nq, out);
    std::fwrite(dk.data(), 2, nk, out);
    std::fwrite(dv.data(), 2, nk, out);
    std::fclose(out);
    std::printf("warp steps skipped: %lld\n", emu::votesTrue);
    return 0;
  } catch (const std::exception& e) {
    std::fprintf(stderr, "flash_emu: %s\n", e.what());
    return 1;
  }
}
