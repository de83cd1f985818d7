// Runs the FlashAttention CUDA kernels (src/kernels/flash_attention.cu, compiled here by g++ as C++) on the CPU,
// so that their indexing, tiling, masking and online softmax are tested without a GPU
// (packages/runtime/src/flash-emu.test.ts compares them with the CPU op).
//
// Each CUDA thread of a block is a fiber (ucontext), run one at a time until it reaches a barrier:
// __syncthreads (the block), and the warp-wide __shfl_xor_sync and mma.sync (its warp). mma.sync.m16n8k16 is
// emulated per lane from the fragment layout the kernel file's header states: every lane posts its A and B
// registers, and each lane then reads the elements of its own C rows and columns from the warp's posts; ldmatrix
// likewise from the row addresses the lanes post (float32 products summed in k order; the hardware's order and
// internal precision are its own, so the comparison has a tolerance). Shared memory starts as NaN bits, so a read
// of a word no thread wrote shows. cp.async copies land at their thread's wait for the group, with NaN bits in the
// tile from issue until then (emu::cpAsync below), so a tile read too early or reloaded too soon shows as well.
//
// Shared memory is checked: every load and store of this file is instrumented by g++ (-fsanitize=kernel-address
// with the checks as calls: the __asan_* functions below, no sanitizer runtime), and one that touches the shared
// buffer outside [0, the dynamic shared memory the launch requests) — flashSmemBytes (fused_shared.h) for the
// tiled kernels, 0 for Dsum, as ops/flash_attention.cc launches them — ends the run with a message naming the
// kernel, the access, the block and the thread; so does an ldmatrix row address outside it or not 16-byte aligned.
// The kernels' `extern __shared__` array is the window (emuFlashShared) inside a buffer with slack on both sides.
// Build: g++ -std=c++17 -O2 -ffp-contract=off -U_FORTIFY_SOURCE -fsanitize=kernel-address
//   --param=asan-instrumentation-with-call-threshold=0 --param=asan-stack=0 --param=asan-globals=0 (flash-emu.test.ts).
//
//   flash_emu IN OUT [--no-skip] [--wrong-layout] [--cp-wait-lag] [--smem-shrink BYTES] [--ldmatrix-skew BYTES]
//                      runs the tile map (flashTiles), then the kernels; prints how many warp steps the kernels
//                      skipped, the steps the tile map skipped and ran unmasked and, per kernel, the shared-memory accesses
//                      checked and the bytes they spanned. --no-skip: skip none (and no unmasked steps); negative controls: --wrong-layout:
//                      B's 16-bit halves swapped in every mma; --cp-wait-lag: every cp.async wait one group short
//                      (the tiles read before they land); --smem-shrink: the window BYTES smaller than the
//                      launch requests; --ldmatrix-skew: every ldmatrix row address moved by BYTES.
//                      IN: int64 [kind (0 bf16, 1 f16), B, G, N, T, S, D, rep, mb, mg, mr, mt, ms], float32 scale,
//                          then Q, K, V, dO (16-bit bits), M (float32, mask elements as the strides address them)
//                      OUT: O (16-bit), stats [B·G·N, 2] f32, Dsum [B·G·N] f32, dQ, dK, dV (16-bit)
// _longjmp between fiber stacks: glibc's fortified longjmp (__longjmp_chk, on by default in some distributions'
// gcc at -O2) refuses to jump into another stack, so fortification is off here.
#undef _FORTIFY_SOURCE
#if !defined(__SANITIZE_ADDRESS__)
#error "build with -fsanitize=kernel-address --param=asan-instrumentation-with-call-threshold=0 (the shared-memory checks)"
#endif
#include <setjmp.h>
#include <ucontext.h>

#include <climits>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
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
#define __launch_bounds__(...)
#define LSFT_FLASH_EMULATE 1

typedef unsigned short u16;
typedef unsigned int u32;
struct bf16 { u16 b; };
struct f16 { u16 b; };
struct alignas(8) float2 { float x, y; };

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

/**
 * Runs f over a grid (x, y) of blocks of `threads` threads, one block at a time, with `smemBytes` of dynamic
 * shared memory (the kernel `name`, its accesses counted in smemUse[kernelIndex]).
 */
void launch(int kernelIndex, const char* name, long long smemBytes, unsigned gx, unsigned gy, unsigned threads, const std::function<void()>& f);

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
/** Steps the tile map skipped (flashCountTile 0) and ran without loading the mask (1), counted once per block. */
long long tileSkips = 0, tileUnmasked = 0;
/** --wrong-layout: mma reads B's two 16-bit halves swapped (a negative control: the test must then fail). */
bool wrongLayout = false;

/**
 * Shared memory: the block's window [smemBase, smemBase + smemLimit) in a buffer with kSmemSlack bytes on either
 * side; an access to the buffer outside the window is a violation (as is an ldmatrix row anywhere outside it).
 */
constexpr long long kSmemMax = 256 * 1024, kSmemSlack = 64 * 1024;
alignas(16) unsigned char smemBuffer[kSmemSlack + kSmemMax + kSmemSlack];
unsigned char* const smemBase = smemBuffer + kSmemSlack;
/** The running launch: its name, the shared bytes it requests and the window (less --smem-shrink). */
const char* kernel = "";
long long smemRequest = 0, smemLimit = 0;
/** --smem-shrink, --ldmatrix-skew (negative controls of the checks). */
long long smemShrink = 0, ldmatrixSkew = 0;
/** Per kernel: shared-memory accesses checked and the bytes [lo, hi) they spanned. */
struct SmemUse {
  long long accesses = 0, lo = LLONG_MAX, hi = 0, request = 0;
};
SmemUse smemUse[5];
SmemUse* use = &smemUse[0];

#define LSFT_EMU_UNCHECKED __attribute__((no_sanitize_address, noinline))
[[noreturn]] LSFT_EMU_UNCHECKED void smemViolation(const char* what, long long off, long long bytes, const char* why) {
  std::fprintf(stderr,
               "flash_emu: shared memory %s of %lld bytes at byte %lld %s the %lld bytes of dynamic shared memory of the %s launch "
               "(requested %lld, --smem-shrink %lld), block (%u, %u), thread %u\n",
               what, bytes, off, why, smemLimit, kernel, smemRequest, smemShrink, blockIdx.x, blockIdx.y, threadIdx.x);
  std::fflush(stderr);
  std::_Exit(3);
}
/** Byte offset of p from the window's start (p need not point into the buffer). */
LSFT_EMU_UNCHECKED long long smemOffset(const void* p) {
  return static_cast<long long>(reinterpret_cast<uintptr_t>(p) - reinterpret_cast<uintptr_t>(smemBase));
}
/** A load or store of `bytes` at p (every one of this file's, by the instrumentation): checked where it touches the buffer. */
LSFT_EMU_UNCHECKED void smemAccess(const void* p, long long bytes, const char* what) {
  const long long off = smemOffset(p);
  if (off + bytes <= -kSmemSlack || off >= kSmemMax + kSmemSlack) return;  // not shared memory
  if (off < 0 || off + bytes > smemLimit) smemViolation(what, off, bytes, "outside");
  use->accesses++;
  use->lo = off < use->lo ? off : use->lo;
  use->hi = off + bytes > use->hi ? off + bytes : use->hi;
}
/** 16 shared bytes at p that the GPU requires inside the window and 16-byte aligned (an ldmatrix row, a cp.async store). */
LSFT_EMU_UNCHECKED void alignedRow16(const void* p, const char* what) {
  const long long off = smemOffset(p);
  if (off < 0 || off + 16 > smemLimit) smemViolation(what, off, 16, "outside");
  if (off % 16 != 0) smemViolation(what, off, 16, "not 16-byte aligned in");
}
}  // namespace emu

// The instrumentation's calls (-fsanitize=kernel-address, asan-instrumentation-with-call-threshold=0).
extern "C" {
#define LSFT_EMU_ACCESS(KIND, N)                                                                                   \
  LSFT_EMU_UNCHECKED void __asan_##KIND##N##_noabort(void* p) { emu::smemAccess(p, N, #KIND); }                  \
  LSFT_EMU_UNCHECKED void __asan_##KIND##N(void* p) { emu::smemAccess(p, N, #KIND); }
LSFT_EMU_ACCESS(load, 1)
LSFT_EMU_ACCESS(load, 2)
LSFT_EMU_ACCESS(load, 4)
LSFT_EMU_ACCESS(load, 8)
LSFT_EMU_ACCESS(load, 16)
LSFT_EMU_ACCESS(store, 1)
LSFT_EMU_ACCESS(store, 2)
LSFT_EMU_ACCESS(store, 4)
LSFT_EMU_ACCESS(store, 8)
LSFT_EMU_ACCESS(store, 16)
#undef LSFT_EMU_ACCESS
LSFT_EMU_UNCHECKED void __asan_loadN_noabort(void* p, size_t n) { emu::smemAccess(p, static_cast<long long>(n), "load"); }
LSFT_EMU_UNCHECKED void __asan_storeN_noabort(void* p, size_t n) { emu::smemAccess(p, static_cast<long long>(n), "store"); }
LSFT_EMU_UNCHECKED void __asan_loadN(void* p, size_t n) { emu::smemAccess(p, static_cast<long long>(n), "load"); }
LSFT_EMU_UNCHECKED void __asan_storeN(void* p, size_t n) { emu::smemAccess(p, static_cast<long long>(n), "store"); }
LSFT_EMU_UNCHECKED void __asan_handle_no_return() {}
LSFT_EMU_UNCHECKED void __asan_before_dynamic_init(const char*) {}
LSFT_EMU_UNCHECKED void __asan_after_dynamic_init() {}
}

#define threadIdx emu::threadIdx
#define blockIdx emu::blockIdx
#define blockDim emu::blockDim

inline void __syncthreads() { emu::wait(emu::block, blockDim.x); }
/** __syncwarp: the warp's lanes meet (the kernels' warp-private mask tiles are written and read by different lanes). */
inline void emuSyncWarp() { emu::wait(emu::warps[threadIdx.x >> 5], 32); }
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
/**
 * A warp vote: every lane posts pred and gets back whether all (any false) or any (any true) of them hold. The all
 * vote is the kernels' skip vote: --no-skip makes it false, and votesTrue counts it.
 */
inline bool emuVote(bool pred, bool any) {
  const unsigned lane = threadIdx.x & 31, w = threadIdx.x >> 5;
  float r = 0.0f;
  emu::posts[w][lane].f = pred ? 1.0f : 0.0f;
  emu::posts[w][lane].out = &r;
  emu::wait(emu::warps[w], 32, [w, any] {
    float v = any ? 0.0f : 1.0f;
    for (int l = 0; l < 32; l++)
      if ((emu::posts[w][l].f != 0.0f) == any) v = any ? 1.0f : 0.0f;
    if (!any && emu::noSkip) v = 0.0f;
    if (!any && v != 0.0f) emu::votesTrue++;
    for (int l = 0; l < 32; l++) *emu::posts[w][l].out = v;
  });
  return r != 0.0f;
}
inline int __all_sync(unsigned, int pred) { return emuVote(pred != 0, false); }
/** __any_sync (the tile map's ORs): not a skip vote, so --no-skip leaves it alone. */
inline bool emuAny(bool pred) { return emuVote(pred, true); }
inline bool emuNoSkip() { return emu::noSkip; }
inline void emuCountTile(int what) { (what == 0 ? emu::tileSkips : emu::tileUnmasked)++; }
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
  p = reinterpret_cast<const u16*>(reinterpret_cast<uintptr_t>(p) + static_cast<uintptr_t>(emu::ldmatrixSkew));
  emu::alignedRow16(p, "ldmatrix row");
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

/**
 * cp.async (16 bytes, .cg, zero fill): the copy lands when its thread waits for its group (cp.async.wait_group), the
 * latest the GPU may land it; until then the 16 shared bytes hold NaN bits, written at issue, the earliest it may
 * change them. So a read of the tile between issue and wait, by any thread (a missing wait or barrier, or a stage
 * reloaded while another warp still reads it), sees NaN bits instead of either the old or the new values.
 */
namespace emu {
struct AsyncCopy {
  unsigned char* dst;
  unsigned char bytes[16];
};
/** Per thread: committed groups (oldest first) and the copies issued since the last commit. */
struct AsyncState {
  std::vector<std::vector<AsyncCopy>> groups;
  std::vector<AsyncCopy> open;
};
std::vector<AsyncState> asyncStates;
long long asyncCopies = 0;
LSFT_EMU_UNCHECKED void cpAsync(void* dst, const void* src, bool valid) {
  alignedRow16(dst, "cp.async store");
  const long long off = smemOffset(dst);
  if (reinterpret_cast<uintptr_t>(src) % 16 != 0) throw std::runtime_error("cp.async: a global source not 16-byte aligned");
  use->accesses++;
  use->lo = off < use->lo ? off : use->lo;
  use->hi = off + 16 > use->hi ? off + 16 : use->hi;
  AsyncCopy c;
  c.dst = static_cast<unsigned char*>(dst);
  if (valid) std::memcpy(c.bytes, src, 16);
  else std::memset(c.bytes, 0, 16);
  std::memset(dst, 0xff, 16);
  asyncStates[threadIdx.x].open.push_back(c);
  asyncCopies++;
}
/** --cp-wait-lag: every wait leaves one group more in flight (a negative control: the tiles are read before they land). */
bool cpWaitLag = false;
LSFT_EMU_UNCHECKED void cpWait(int n) {
  AsyncState& st = asyncStates[threadIdx.x];
  if (cpWaitLag) n++;
  while (static_cast<int>(st.groups.size()) > n) {
    for (const AsyncCopy& c : st.groups.front()) std::memcpy(c.dst, c.bytes, 16);
    st.groups.erase(st.groups.begin());
  }
}
}  // namespace emu
inline void emuCpAsync(u16* dst, const u16* src, bool valid) { emu::cpAsync(dst, src, valid); }
inline void emuCpCommit() {
  emu::AsyncState& st = emu::asyncStates[threadIdx.x];
  st.groups.push_back(std::move(st.open));
  st.open.clear();
}
inline void emuCpWait(int n) { emu::cpWait(n); }

// The kernels, as NVRTC compiles them (their common.cuh include is skipped under LSFT_FLASH_EMULATE); their
// `extern __shared__ FlashU4 flashShared[]` declares emuFlashShared, a function returning the window.
#define flashShared (*emuFlashShared())
#include "../src/kernels/flash_attention.cu"
#undef flashShared

FlashU4 (*emuFlashShared())[] { return reinterpret_cast<FlashU4(*)[]>(emu::smemBase); }

void emu::launch(int kernelIndex, const char* name, long long smemBytes, unsigned gx, unsigned gy, unsigned threads, const std::function<void()>& f) {
  body = f;
  blockDim = {threads, 1, 1};
  kernel = name;
  smemRequest = smemBytes;
  smemLimit = smemBytes - smemShrink > 0 ? smemBytes - smemShrink : 0;
  use = &smemUse[kernelIndex];
  use->request = smemBytes;
  for (unsigned by = 0; by < gy; by++)
    for (unsigned bx = 0; bx < gx; bx++) {
      std::memset(smemBuffer, 0xff, sizeof(smemBuffer));  // NaN bits in every 16-bit and 32-bit word
      asyncStates.assign(threads, AsyncState{});
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
    if (latent_sft::flashSmemBytes(kernel, D) > emu::kSmemMax) throw std::runtime_error("shared memory");
  // The grids, block sizes and dynamic shared memory of ops/flash_attention.cc's launches.
  using latent_sft::flashSmemBytes;
  // The tile map first (one launch serves the forward and, as ops/flash_attention.cc makes it again, the backward).
  // Zeroed, as the op's memset does before the launch.
  std::vector<unsigned> tiles(static_cast<size_t>(latent_sft::flashTileWords(d)), 0u);
  emu::launch(4, "flashTiles", 0, static_cast<unsigned>((d.T + 7) / 8), static_cast<unsigned>(latent_sft::flashTileSlices(d)), 256,
              [&] { flashTiles(m.data(), tiles.data(), d); });
  emu::launch(0, "flashFwd", flashSmemBytes(0, D), qTiles, bg, 128, [&] { flashFwd<T, D>(p(q), p(k), p(v), m.data(), tiles.data(), p(o), stats.data(), d); });
  emu::launch(1, "flashDot", 0, static_cast<unsigned>((d.B * d.G * d.N + 7) / 8), 1, 256, [&] { flashDot<T>(p(dO), p(o), dsum.data(), d); });
  emu::launch(2, "flashDkDv", flashSmemBytes(1, D), kTiles, bg, 128,
              [&] { flashDkDv<T, D>(p(dO), p(q), p(k), p(v), m.data(), tiles.data(), stats.data(), dsum.data(), p(dk), p(dv), d); });
  emu::launch(3, "flashDq", flashSmemBytes(2, D), qTiles, bg, 128,
              [&] { flashDq<T, D>(p(dO), p(q), p(k), p(v), m.data(), tiles.data(), stats.data(), dsum.data(), p(dq), d); });
}

int main(int argc, char** argv) {
  try {
    const char* usage = "usage: flash_emu IN OUT [--no-skip] [--wrong-layout] [--cp-wait-lag] [--smem-shrink BYTES] [--ldmatrix-skew BYTES]";
    for (int i = 3; i < argc; i++) {
      const std::string flag = argv[i];
      if (flag == "--no-skip") emu::noSkip = true;
      else if (flag == "--wrong-layout") emu::wrongLayout = true;
      else if (flag == "--cp-wait-lag") emu::cpWaitLag = true;
      else if ((flag == "--smem-shrink" || flag == "--ldmatrix-skew") && i + 1 < argc) (flag == "--smem-shrink" ? emu::smemShrink : emu::ldmatrixSkew) = std::stoll(argv[++i]);
      else throw std::runtime_error(usage);
    }
    if (argc < 3) throw std::runtime_error(usage);
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
    std::printf("tile steps skipped: %lld, unmasked: %lld\n", emu::tileSkips, emu::tileUnmasked);
    const char* names[5] = {"flashFwd", "flashDot", "flashDkDv", "flashDq", "flashTiles"};
    for (int i = 0; i < 5; i++) {
      const emu::SmemUse& u = emu::smemUse[i];
      std::printf("shared memory %s: %lld accesses checked, bytes [%lld, %lld) of %lld\n", names[i], u.accesses, u.accesses > 0 ? u.lo : 0, u.hi, u.request);
    }
    return 0;
  } catch (const std::exception& e) {
    std::fprintf(stderr, "flash_emu: %s\n", e.what());
    return 1;
  }
}
