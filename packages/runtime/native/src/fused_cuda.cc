// The fused ops' CUDA side on the host: libcuda and libnvrtc opened with dlopen (so the addon builds
// and loads on machines without CUDA), the kernels compiled by NVRTC at run time (PTX for the device's
// compute capability, once per process) and loaded once per CUDA context.
//
// The CUDA source is kernels/*.cu, joined into one program and embedded as a C++ string at build time
// by native/embed-kernels.mjs (native/gen/fused_kernels.gen.h, made by native/install.mjs).
#include <dlfcn.h>

#include <map>
#include <mutex>

#include "fused_common.h"
#include "fused_kernels.gen.h"
#include "fused_ops.h"

namespace latent_sft {
namespace {

template <typename F>
void sym(void* lib, const char* name, F& out, std::string& missing) {
  out = reinterpret_cast<F>(dlsym(lib, name));
  if (out == nullptr) missing += std::string(missing.empty() ? "" : ", ") + name;
}


/** One row of Kernels: its functions per dtype slot are `<prefix><f32|bf16|f16><suffix>`. */
struct KernelFamily {
  const char* prefix;
  const char* suffix;
  CUfunction (Kernels::*fns)[3];
};

constexpr KernelFamily kFamilies[] = {
    {"adamw_", "", &Kernels::adamw},       {"adamw_", "_to_bf16", &Kernels::adamwToBf16}, {"adamw_", "_to_f16", &Kernels::adamwToF16},
    {"adamw_", "_p_bf16", &Kernels::adamwPBf16}, {"adamw_", "_p_f16", &Kernels::adamwPF16},
    {"sumsq_", "", &Kernels::sumsq},     {"msoftmax_", "", &Kernels::msoftmax},
    {"msoftmax_", "_grad", &Kernels::msoftmaxGrad}, {"rmsnorm_", "", &Kernels::rmsnorm}, {"rmsnorm_", "_grad", &Kernels::rmsnormGrad},
    {"swiglu_", "", &Kernels::swiglu},       {"swiglu_", "_grad", &Kernels::swigluGrad}, {"swiglu_", "_packed", &Kernels::swigluPacked},
    {"rope_", "", &Kernels::rope},
    {"ce_", "", &Kernels::ceStats},  {"ce_", "_grad", &Kernels::ceGrad}, {"seeded_dropout_", "", &Kernels::seededDropout},
    {"decode_attention_", "", &Kernels::decodeAttention},
};
constexpr const char* kDtypeNames[3] = {"f32", "bf16", "f16"};

/** Every slot of `k` with the kernel name it loads. */
std::vector<std::pair<std::string, CUfunction*>> kernelSlots(Kernels& k) {
  std::vector<std::pair<std::string, CUfunction*>> slots;
  for (const KernelFamily& f : kFamilies)
    for (int i = 0; i < 3; i++) slots.emplace_back(std::string(f.prefix) + kDtypeNames[i] + f.suffix, &(k.*f.fns)[i]);
  slots.emplace_back("sumsq_final", &k.sumsqFinal);
  slots.emplace_back("hash_words", &k.hashWords);
  slots.emplace_back("cast_f32_to_bf16", &k.castToBf16);
  slots.emplace_back("cast_f32_to_f16", &k.castToF16);
  slots.emplace_back("vocab_topk_partial", &k.vocabTopkPartial);
  slots.emplace_back("vocab_topk_final", &k.vocabTopkFinal);
  slots.emplace_back("flash_tiles", &k.flashTiles);
  slots.emplace_back("rmsnorm_dw_sum", &k.rmsnormDwSum);
  for (int t = 0; t < 2; t++) {
    const std::string name = t == 0 ? "flash_bf16" : "flash_f16";
    slots.emplace_back(name + "_dot", &k.flashDot[t]);
    for (int d = 0; d < 2; d++) {
      const std::string dim = d == 0 ? "_d64" : "_d128";
      slots.emplace_back(name + "_fwd" + dim, &k.flashFwd[t][d]);
      slots.emplace_back(name + "_dkdv" + dim, &k.flashDkDv[t][d]);
      slots.emplace_back(name + "_dq" + dim, &k.flashDq[t][d]);
    }
  }
  return slots;
}

std::string compilePtx(int major, int minor) {
  const Cuda& c = cudaApi();
  nvrtcProgram prog = nullptr;
  int rc = c.nvrtcCreateProgram(&prog, kCudaSource, "latent_sft_fused.cu", 0, nullptr, nullptr);
  if (rc != 0) throw std::runtime_error(std::string("nvrtcCreateProgram failed: ") + c.nvrtcGetErrorString(rc));
  std::string arch = "--gpu-architecture=compute_" + std::to_string(major) + std::to_string(minor);
  const char* opts[] = {arch.c_str(), "--std=c++17", "--fmad=false", "--prec-div=true", "--prec-sqrt=true", "--ftz=false"};
  rc = c.nvrtcCompileProgram(prog, 6, opts);
  if (rc != 0) {
    size_t n = 0;
    c.nvrtcGetProgramLogSize(prog, &n);
    std::string log(n, '\0');
    c.nvrtcGetProgramLog(prog, log.data());
    c.nvrtcDestroyProgram(&prog);
    for (char& ch : log)
      if (ch == '\n') ch = ' ';
    throw std::runtime_error("NVRTC could not compile the fused kernels: " + log);
  }
  size_t n = 0;
  c.nvrtcGetPTXSize(prog, &n);
  std::string ptx(n, '\0');
  c.nvrtcGetPTX(prog, ptx.data());
  c.nvrtcDestroyProgram(&prog);
  return ptx;
}

}  // namespace

const Cuda& cudaApi() {
  static Cuda c;
  static std::once_flag once;
  std::call_once(once, [] {
    void* cu = dlopen("libcuda.so.1", RTLD_NOW | RTLD_GLOBAL);
    if (cu == nullptr) {
      c.error = "cannot load the CUDA driver (libcuda.so.1)";
      return;
    }
    void* rtc = nullptr;
    for (const char* name : {"libnvrtc.so.13", "libnvrtc.so.12", "libnvrtc.so"}) {
      rtc = dlopen(name, RTLD_NOW | RTLD_GLOBAL);
      if (rtc != nullptr) break;
    }
    if (rtc == nullptr) {
      c.error = "cannot load NVRTC (libnvrtc.so.13) to compile the fused kernels; put its folder on LD_LIBRARY_PATH";
      return;
    }
    std::string missing;
    sym(cu, "cuInit", c.init, missing);
    sym(cu, "cuDeviceGet", c.deviceGet, missing);
    sym(cu, "cuDeviceGetAttribute", c.deviceGetAttribute, missing);
    sym(cu, "cuCtxGetCurrent", c.ctxGetCurrent, missing);
    sym(cu, "cuCtxSetCurrent", c.ctxSetCurrent, missing);
    sym(cu, "cuCtxGetDevice", c.ctxGetDevice, missing);
    sym(cu, "cuDevicePrimaryCtxRetain", c.primaryCtxRetain, missing);
    sym(cu, "cuModuleLoadData", c.moduleLoadData, missing);
    sym(cu, "cuModuleGetFunction", c.moduleGetFunction, missing);
    sym(cu, "cuLaunchKernel", c.launchKernel, missing);
    sym(cu, "cuFuncSetAttribute", c.funcSetAttribute, missing);
    sym(cu, "cuMemAlloc_v2", c.memAlloc, missing);
    sym(cu, "cuMemFree_v2", c.memFree, missing);
    sym(cu, "cuMemcpyDtoDAsync_v2", c.memcpyDtoDAsync, missing);
    sym(cu, "cuMemsetD8Async", c.memsetD8Async, missing);
    sym(cu, "cuGetErrorString", c.getErrorString, missing);
    sym(rtc, "nvrtcCreateProgram", c.nvrtcCreateProgram, missing);
    sym(rtc, "nvrtcCompileProgram", c.nvrtcCompileProgram, missing);
    sym(rtc, "nvrtcGetPTXSize", c.nvrtcGetPTXSize, missing);
    sym(rtc, "nvrtcGetPTX", c.nvrtcGetPTX, missing);
    sym(rtc, "nvrtcGetProgramLogSize", c.nvrtcGetProgramLogSize, missing);
    sym(rtc, "nvrtcGetProgramLog", c.nvrtcGetProgramLog, missing);
    sym(rtc, "nvrtcDestroyProgram", c.nvrtcDestroyProgram, missing);
    sym(rtc, "nvrtcGetErrorString", c.nvrtcGetErrorString, missing);
    if (!missing.empty()) c.error = "libcuda/libnvrtc lack " + missing;
  });
  return c;
}

void check(CUresult rc, const char* what) {
  if (rc == 0) return;
  const char* s = nullptr;
  cudaApi().getErrorString(rc, &s);
  throw std::runtime_error(std::string(what) + " failed: " + (s != nullptr ? s : std::to_string(rc)));
}

/**
 * The kernels of the calling thread's current CUDA context (the primary context of `deviceId` when
 * none is current), compiled and loaded once per context.
 */
const Kernels& kernelsForCurrentContext(int deviceId) {
  static std::mutex mu;
  static std::map<CUcontext, Kernels> loaded;
  static std::map<int, std::string> ptxByArch;
  const Cuda& c = cudaApi();
  if (!c.error.empty()) throw std::runtime_error(c.error);
  std::lock_guard<std::mutex> lock(mu);
  check(c.init(0), "cuInit");
  CUcontext ctx = nullptr;
  check(c.ctxGetCurrent(&ctx), "cuCtxGetCurrent");
  if (ctx == nullptr) {
    CUdevice dev = 0;
    check(c.deviceGet(&dev, deviceId), "cuDeviceGet");
    check(c.primaryCtxRetain(&ctx, dev), "cuDevicePrimaryCtxRetain");
    check(c.ctxSetCurrent(ctx), "cuCtxSetCurrent");
  }
  auto it = loaded.find(ctx);
  if (it != loaded.end()) return it->second;
  CUdevice dev = 0;
  check(c.ctxGetDevice(&dev), "cuCtxGetDevice");
  int major = 0, minor = 0, sms = 0;
  check(c.deviceGetAttribute(&major, 75, dev), "cuDeviceGetAttribute");  // COMPUTE_CAPABILITY_MAJOR
  check(c.deviceGetAttribute(&minor, 76, dev), "cuDeviceGetAttribute");  // COMPUTE_CAPABILITY_MINOR
  check(c.deviceGetAttribute(&sms, 16, dev), "cuDeviceGetAttribute");    // MULTIPROCESSOR_COUNT
  int arch = major * 10 + minor;
  auto p = ptxByArch.find(arch);
  if (p == ptxByArch.end()) p = ptxByArch.emplace(arch, compilePtx(major, minor)).first;
  CUmodule mod = nullptr;
  check(c.moduleLoadData(&mod, p->second.c_str()), "cuModuleLoadData (fused kernels)");
  Kernels k;
  for (auto& [name, fn] : kernelSlots(k)) check(c.moduleGetFunction(fn, mod, name.c_str()), "cuModuleGetFunction");
  k.smCount = sms;
  k.arch = arch;
  // FlashAttention's kernels take more than the default 48 KB of dynamic shared memory at head dim 128.
  constexpr int kMaxDynamicSharedBytes = 8;  // CU_FUNC_ATTRIBUTE_MAX_DYNAMIC_SHARED_SIZE_BYTES
  if (arch >= 80)
    for (int t = 0; t < 2; t++)
      for (int d = 0; d < 2; d++) {
        const int D = d == 0 ? 64 : 128;
        check(c.funcSetAttribute(k.flashFwd[t][d], kMaxDynamicSharedBytes, static_cast<int>(flashSmemBytes(0, D))), "cuFuncSetAttribute");
        check(c.funcSetAttribute(k.flashDkDv[t][d], kMaxDynamicSharedBytes, static_cast<int>(flashSmemBytes(1, D))), "cuFuncSetAttribute");
        check(c.funcSetAttribute(k.flashDq[t][d], kMaxDynamicSharedBytes, static_cast<int>(flashSmemBytes(2, D))), "cuFuncSetAttribute");
      }
  return loaded.emplace(ctx, k).first->second;
}

std::vector<std::string> cudaKernelNames() {
  Kernels k;
  std::vector<std::string> names;
  for (auto& slot : kernelSlots(k)) names.push_back(slot.first);
  return names;
}

const char* cudaKernelSource() { return kCudaSource; }

std::string cudaKernelsStatus(int deviceId) {
  try {
    (void)kernelsForCurrentContext(deviceId);
    return "";
  } catch (const std::exception& e) {
    return e.what();
  }
}

}  // namespace latent_sft
