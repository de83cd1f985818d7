// latent_sft_ort: ONNX Runtime sessions, device tensors and IO bindings for @latent-sft/runtime.
//
// onnxruntime-node copies every input and output through host memory on each run. This addon keeps
// tensors where the execution provider wants them (CPU memory or CUDA memory) across runs: a tensor
// is an OrtValue allocated by ORT, filled by upload(), read by download(), and bound to session
// inputs/outputs through an OrtIoBinding. Host<->device copies are counted (transferStats).
//
// Ownership: a session's Ort::Session lives in a shared SessionCore; tensors allocated on CUDA and
// bindings hold that core, so session.release() never frees memory still reachable from JS.
// CUDA copies go through libcudart.so.13, opened with dlopen when first needed (the CUDA execution
// provider already loaded it), so the addon itself links only libonnxruntime.so.1.
#include <dlfcn.h>
#include <napi.h>

#include <atomic>
#include <cstring>
#include <memory>
#include <mutex>
#include <string>
#include <unordered_map>
#include <vector>

#include "fused_ops.h"
#include "onnxruntime_cxx_api.h"

namespace {

// ---------------------------------------------------------------------------------------------------
// Element types

struct DTypeInfo {
  const char* name;
  ONNXTensorElementDataType ort;
  size_t size;
};

const DTypeInfo kDTypes[] = {
    {"float32", ONNX_TENSOR_ELEMENT_DATA_TYPE_FLOAT, 4},   {"float64", ONNX_TENSOR_ELEMENT_DATA_TYPE_DOUBLE, 8},
    {"float16", ONNX_TENSOR_ELEMENT_DATA_TYPE_FLOAT16, 2}, {"bfloat16", ONNX_TENSOR_ELEMENT_DATA_TYPE_BFLOAT16, 2},
    {"int32", ONNX_TENSOR_ELEMENT_DATA_TYPE_INT32, 4},     {"int64", ONNX_TENSOR_ELEMENT_DATA_TYPE_INT64, 8},
    {"bool", ONNX_TENSOR_ELEMENT_DATA_TYPE_BOOL, 1},       {"uint8", ONNX_TENSOR_ELEMENT_DATA_TYPE_UINT8, 1},
    {"int8", ONNX_TENSOR_ELEMENT_DATA_TYPE_INT8, 1},
};

const DTypeInfo* dtypeByName(const std::string& name) {
  for (const auto& d : kDTypes)
    if (name == d.name) return &d;
  return nullptr;
}

const DTypeInfo* dtypeByOrt(ONNXTensorElementDataType t) {
  for (const auto& d : kDTypes)
    if (t == d.ort) return &d;
  return nullptr;
}

std::string dtypeName(ONNXTensorElementDataType t) {
  const DTypeInfo* d = dtypeByOrt(t);
  return d != nullptr ? d->name : "onnx-type-" + std::to_string(static_cast<int>(t));
}

// ---------------------------------------------------------------------------------------------------
// Process-wide state

Ort::Env& ortEnv() {
  // Never destroyed: sessions may outlive module teardown at exit.
  static Ort::Env* env = new Ort::Env(ORT_LOGGING_LEVEL_WARNING, "latent-sft");
  return *env;
}

struct TransferCounters {
  std::atomic<uint64_t> h2dBytes{0}, d2hBytes{0}, d2dBytes{0}, h2dCopies{0}, d2hCopies{0}, d2dCopies{0};
};
TransferCounters g_transfers;

/** Where a tensor's memory lives. deviceId is ignored for CPU. */
struct Location {
  bool cuda = false;
  int deviceId = 0;
  std::string str() const { return cuda ? "cuda:" + std::to_string(deviceId) : "cpu"; }
};

// cudart entry points, resolved with dlsym (cudaMemcpyKind: 1 H2D, 2 D2H, 3 D2D).
struct Cudart {
  int (*memcpy)(void*, const void*, size_t, int) = nullptr;
  int (*setDevice)(int) = nullptr;
  int (*deviceSynchronize)() = nullptr;
  const char* (*getErrorString)(int) = nullptr;
  std::string error;
};

const Cudart& cudart() {
  static Cudart c;
  static std::once_flag once;
  std::call_once(once, [] {
    void* h = dlopen("libcudart.so.13", RTLD_NOW | RTLD_GLOBAL);
    if (h == nullptr) {
      const char* e = dlerror();
      c.error = std::string("cannot load libcudart.so.13 to copy CUDA memory: ") + (e != nullptr ? e : "unknown");
      return;
    }
    c.memcpy = reinterpret_cast<int (*)(void*, const void*, size_t, int)>(dlsym(h, "cudaMemcpy"));
    c.setDevice = reinterpret_cast<int (*)(int)>(dlsym(h, "cudaSetDevice"));
    c.deviceSynchronize = reinterpret_cast<int (*)()>(dlsym(h, "cudaDeviceSynchronize"));
    c.getErrorString = reinterpret_cast<const char* (*)(int)>(dlsym(h, "cudaGetErrorString"));
    if (c.memcpy == nullptr || c.setDevice == nullptr || c.deviceSynchronize == nullptr || c.getErrorString == nullptr)
      c.error = "libcudart.so.13 lacks cudaMemcpy/cudaSetDevice/cudaDeviceSynchronize/cudaGetErrorString";
  });
  return c;
}

void cudaCheck(const Cudart& c, int rc, const char* what) {
  if (rc != 0) throw std::runtime_error(std::string(what) + " failed: " + c.getErrorString(rc));
}

/** Copies n bytes between two locations (either may be CPU); blocks until the copy is done. */
void copyBytes(void* dst, const Location& dl, const void* src, const Location& sl, size_t n) {
  if (n == 0) return;
  if (!dl.cuda && !sl.cuda) {
    std::memcpy(dst, src, n);
    return;
  }
  const Cudart& c = cudart();
  if (!c.error.empty()) throw std::runtime_error(c.error);
  int kind = dl.cuda && sl.cuda ? 3 : (dl.cuda ? 1 : 2);
  cudaCheck(c, c.setDevice(dl.cuda ? dl.deviceId : sl.deviceId), "cudaSetDevice");
  cudaCheck(c, c.memcpy(dst, src, n, kind), "cudaMemcpy");
  // ORT's CUDA stream does not synchronize with the legacy default stream; make the copy complete.
  cudaCheck(c, c.deviceSynchronize(), "cudaDeviceSynchronize");
}

Location locationOf(const Ort::ConstMemoryInfo& mi) {
  Location loc;
  loc.cuda = mi.GetDeviceType() == OrtMemoryInfoDeviceType_GPU;
  loc.deviceId = loc.cuda ? mi.GetDeviceId() : 0;
  return loc;
}

// ---------------------------------------------------------------------------------------------------
// Cores (plain C++ objects shared between JS wrappers)

// Set by the env cleanup hook when Node tears the addon's environment down (process exit): the
// wrappers JS never released are finalized after it, and destroying their CUDA sessions and device
// buffers then (the EP, its streams and arena mid-teardown) crashed the process after its work was
// done (SIGSEGV at exit). From then on the cores leak their ORT objects instead; the process is ending.
std::atomic<bool> g_exiting{false};

struct SessionCore {
  Ort::Session session{nullptr};
  Location loc;
  Ort::MemoryInfo deviceMemInfo{nullptr};
  std::unique_ptr<Ort::Allocator> deviceAllocator;  // CUDA sessions only
  SessionCore() = default;
  SessionCore(const SessionCore&) = delete;
  SessionCore& operator=(const SessionCore&) = delete;
  ~SessionCore() {
    if (!g_exiting) return;
    (void)deviceAllocator.release();
    (void)deviceMemInfo.release();
    (void)session.release();
  }
};

std::atomic<int64_t> g_liveTensors{0};

struct TensorCore {
  TensorCore() { g_liveTensors++; }
  ~TensorCore() {
    g_liveTensors--;
    // The value goes first, while `owner` still keeps the session whose allocator frees it alive
    // (member order alone would drop the owner first: a tensor that outlived its session's release()
    // then freed its memory through a destroyed allocator).
    if (g_exiting) (void)value.release();
    else value = Ort::Value{nullptr};
  }
  TensorCore(const TensorCore&) = delete;
  TensorCore& operator=(const TensorCore&) = delete;
  std::shared_ptr<SessionCore> owner;  // keeps a CUDA session's allocator alive (declared before value)
  Ort::Value value{nullptr};
  Location loc;
  const DTypeInfo* dtype = nullptr;
  std::vector<int64_t> dims;
  size_t elements = 0;
  void* data() { return value.GetTensorMutableRawData(); }
  size_t bytes() const { return elements * dtype->size; }
};

size_t elementCount(const std::vector<int64_t>& dims) {
  size_t n = 1;
  for (int64_t d : dims) n *= static_cast<size_t>(d);
  return n;
}

/** Wraps an existing OrtValue (a bound output) as a TensorCore; throws for non-tensors. */
std::unique_ptr<TensorCore> coreFromValue(Ort::Value v, std::shared_ptr<SessionCore> owner, const std::string& name) {
  if (!v.IsTensor()) throw std::runtime_error("output '" + name + "' is not a tensor");
  auto info = v.GetTensorTypeAndShapeInfo();
  auto core = std::make_unique<TensorCore>();
  core->dtype = dtypeByOrt(info.GetElementType());
  if (core->dtype == nullptr)
    throw std::runtime_error("output '" + name + "' has unsupported element type " + dtypeName(info.GetElementType()));
  core->dims = info.GetShape();
  core->elements = elementCount(core->dims);
  core->loc = locationOf(v.GetTensorMemoryInfo());
  core->value = std::move(v);
  core->owner = std::move(owner);
  return core;
}

// ---------------------------------------------------------------------------------------------------
// JS helpers

struct AddonData {
  Napi::FunctionReference tensorCtor;
  Napi::FunctionReference bindingCtor;
};

[[noreturn]] void throwType(Napi::Env env, const std::string& msg) { throw Napi::TypeError::New(env, msg); }

std::vector<int64_t> readDims(Napi::Env env, Napi::Value v) {
  if (!v.IsArray()) throwType(env, "dims must be an array of non-negative integers");
  auto arr = v.As<Napi::Array>();
  std::vector<int64_t> dims;
  for (uint32_t i = 0; i < arr.Length(); i++) {
    Napi::Value e = arr.Get(i);
    double d = e.IsNumber() ? e.As<Napi::Number>().DoubleValue() : -1;
    if (!(d >= 0) || d != static_cast<double>(static_cast<int64_t>(d)))
      throwType(env, "dims must be an array of non-negative integers");
    dims.push_back(static_cast<int64_t>(d));
  }
  return dims;
}

Napi::Array dimsToJs(Napi::Env env, const std::vector<int64_t>& dims) {
  auto arr = Napi::Array::New(env, dims.size());
  for (size_t i = 0; i < dims.size(); i++) arr.Set(i, Napi::Number::New(env, static_cast<double>(dims[i])));
  return arr;
}

Napi::Object locationToJs(Napi::Env env, const Location& loc) {
  auto o = Napi::Object::New(env);
  o.Set("kind", loc.cuda ? "cuda" : "cpu");
  if (loc.cuda) o.Set("deviceId", loc.deviceId);
  return o;
}

/** The bytes of a TypedArray argument. */
std::pair<uint8_t*, size_t> typedBytes(Napi::Env env, Napi::Value v, const char* what) {
  if (!v.IsTypedArray()) throwType(env, std::string(what) + " must be a typed array");
  auto ta = v.As<Napi::TypedArray>();
  auto* base = static_cast<uint8_t*>(ta.ArrayBuffer().Data());
  return {base + ta.ByteOffset(), ta.ByteLength()};
}

// ---------------------------------------------------------------------------------------------------
// NativeTensor

class NativeTensor : public Napi::ObjectWrap<NativeTensor> {
 public:
  static Napi::Function Define(Napi::Env env) {
    return DefineClass(env, "NativeTensor",
                       {
                           InstanceMethod<&NativeTensor::Info>("info"),
                           InstanceMethod<&NativeTensor::Upload>("upload"),
                           InstanceMethod<&NativeTensor::Download>("download"),
                           InstanceMethod<&NativeTensor::CopyFrom>("copyFrom"),
                           InstanceMethod<&NativeTensor::Release>("release"),
                           InstanceAccessor<&NativeTensor::Released>("released"),
                       });
  }

  /** Wraps a core in a new JS object (the constructor takes it through an External). */
  static Napi::Object Wrap(Napi::Env env, std::unique_ptr<TensorCore> core) {
    auto* data = env.GetInstanceData<AddonData>();
    auto ext = Napi::External<TensorCore>::New(env, core.release());
    return data->tensorCtor.New({ext});
  }

  explicit NativeTensor(const Napi::CallbackInfo& info) : Napi::ObjectWrap<NativeTensor>(info) {
    if (info.Length() != 1 || !info[0].IsExternal())
      throwType(info.Env(), "NativeTensor is created by allocateCpu() or session.allocate()");
    core_.reset(info[0].As<Napi::External<TensorCore>>().Data());
  }

  TensorCore& core(Napi::Env env) {
    if (!core_) throw Napi::Error::New(env, "device tensor used after release()");
    return *core_;
  }

 private:
  Napi::Value Info(const Napi::CallbackInfo& info) {
    TensorCore& c = core(info.Env());
    auto o = Napi::Object::New(info.Env());
    o.Set("dtype", c.dtype->name);
    o.Set("dims", dimsToJs(info.Env(), c.dims));
    o.Set("byteSize", Napi::Number::New(info.Env(), static_cast<double>(c.bytes())));
    o.Set("location", locationToJs(info.Env(), c.loc));
    return o;
  }

  // upload(typedArray): host -> tensor memory; the byte length must equal byteSize.
  void Upload(const Napi::CallbackInfo& info) {
    TensorCore& c = core(info.Env());
    auto [ptr, len] = typedBytes(info.Env(), info[0], "upload data");
    if (len != c.bytes())
      throwType(info.Env(), "upload of " + std::to_string(len) + " bytes into a tensor of " + std::to_string(c.bytes()) + " bytes");
    copyBytes(c.data(), c.loc, ptr, Location{}, len);
    g_transfers.h2dBytes += len;
    g_transfers.h2dCopies += 1;
  }

  // download(typedArray): tensor memory -> host array of exactly byteSize bytes.
  void Download(const Napi::CallbackInfo& info) {
    TensorCore& c = core(info.Env());
    auto [ptr, len] = typedBytes(info.Env(), info[0], "download target");
    if (len != c.bytes())
      throwType(info.Env(), "download of a tensor of " + std::to_string(c.bytes()) + " bytes into " + std::to_string(len) + " bytes");
    copyBytes(ptr, Location{}, c.data(), c.loc, len);
    g_transfers.d2hBytes += len;
    g_transfers.d2hCopies += 1;
  }

  // copyFrom(other): same dtype and element count; counted as host<->device when locations differ.
  void CopyFrom(const Napi::CallbackInfo& info) {
    TensorCore& c = core(info.Env());
    if (!info[0].IsObject() || !info[0].As<Napi::Object>().InstanceOf(info.Env().GetInstanceData<AddonData>()->tensorCtor.Value()))
      throwType(info.Env(), "copyFrom needs a device tensor");
    TensorCore& s = Unwrap(info[0].As<Napi::Object>())->core(info.Env());
    if (s.dtype != c.dtype || s.elements != c.elements)
      throwType(info.Env(), std::string("copyFrom: source ") + s.dtype->name + " x" + std::to_string(s.elements) + " does not match target " +
                                c.dtype->name + " x" + std::to_string(c.elements));
    size_t n = c.bytes();
    copyBytes(c.data(), c.loc, s.data(), s.loc, n);
    if (c.loc.cuda && !s.loc.cuda) {
      g_transfers.h2dBytes += n;
      g_transfers.h2dCopies += 1;
    } else if (!c.loc.cuda && s.loc.cuda) {
      g_transfers.d2hBytes += n;
      g_transfers.d2hCopies += 1;
    } else {
      g_transfers.d2dBytes += n;
      g_transfers.d2dCopies += 1;
    }
  }

  void Release(const Napi::CallbackInfo&) { core_.reset(); }
  Napi::Value Released(const Napi::CallbackInfo& info) { return Napi::Boolean::New(info.Env(), !core_); }

  std::unique_ptr<TensorCore> core_;
};

NativeTensor* unwrapTensor(Napi::Env env, Napi::Value v, const std::string& what) {
  auto* data = env.GetInstanceData<AddonData>();
  if (!v.IsObject() || !v.As<Napi::Object>().InstanceOf(data->tensorCtor.Value())) throwType(env, what + " must be a device tensor");
  return NativeTensor::Unwrap(v.As<Napi::Object>());
}

// ---------------------------------------------------------------------------------------------------
// NativeBinding

class NativeBinding : public Napi::ObjectWrap<NativeBinding> {
 public:
  ~NativeBinding() override {
    if (g_exiting) (void)binding_.release();
  }
  static Napi::Function Define(Napi::Env env) {
    return DefineClass(env, "NativeBinding",
                       {
                           InstanceMethod<&NativeBinding::BindInput>("bindInput"),
                           InstanceMethod<&NativeBinding::BindOutput>("bindOutput"),
                           InstanceMethod<&NativeBinding::BindOutputToDevice>("bindOutputToDevice"),
                           InstanceMethod<&NativeBinding::ClearInputs>("clearInputs"),
                           InstanceMethod<&NativeBinding::ClearOutputs>("clearOutputs"),
                           InstanceMethod<&NativeBinding::SynchronizeInputs>("synchronizeInputs"),
                           InstanceMethod<&NativeBinding::SynchronizeOutputs>("synchronizeOutputs"),
                           InstanceMethod<&NativeBinding::Outputs>("outputs"),
                           InstanceMethod<&NativeBinding::Release>("release"),
                       });
  }

  explicit NativeBinding(const Napi::CallbackInfo& info) : Napi::ObjectWrap<NativeBinding>(info) {
    if (info.Length() != 1 || !info[0].IsExternal()) throwType(info.Env(), "NativeBinding is created by session.createBinding()");
    auto* owner = info[0].As<Napi::External<std::shared_ptr<SessionCore>>>().Data();
    session_ = *owner;
    delete owner;
    binding_ = Ort::IoBinding(session_->session);
  }

  Ort::IoBinding& binding(Napi::Env env) {
    if (!session_) throw Napi::Error::New(env, "IO binding used after release()");
    return binding_;
  }
  const std::shared_ptr<SessionCore>& session() const { return session_; }
  /** The binding without the release check (worker thread; the running count blocks release). */
  Ort::IoBinding& raw() { return binding_; }
  std::atomic<int> running{0};

 private:
  void checkIdle(Napi::Env env) {
    if (running.load() != 0) throw Napi::Error::New(env, "IO binding changed while a run using it is in flight");
  }

  void BindInput(const Napi::CallbackInfo& info) {
    auto& b = binding(info.Env());
    checkIdle(info.Env());
    std::string name = info[0].As<Napi::String>();
    TensorCore& t = unwrapTensor(info.Env(), info[1], "input '" + name + "'")->core(info.Env());
    b.BindInput(name.c_str(), t.value);
    inputs_[name] = Napi::Persistent(info[1].As<Napi::Object>());
  }

  void BindOutput(const Napi::CallbackInfo& info) {
    auto& b = binding(info.Env());
    checkIdle(info.Env());
    std::string name = info[0].As<Napi::String>();
    TensorCore& t = unwrapTensor(info.Env(), info[1], "output '" + name + "'")->core(info.Env());
    b.BindOutput(name.c_str(), t.value);
    outputs_[name] = Napi::Persistent(info[1].As<Napi::Object>());
  }

  // bindOutputToDevice(name, kind, deviceId): ORT allocates the output on that device at run time.
  void BindOutputToDevice(const Napi::CallbackInfo& info) {
    auto& b = binding(info.Env());
    checkIdle(info.Env());
    std::string name = info[0].As<Napi::String>();
    std::string kind = info[1].As<Napi::String>();
    int deviceId = info[2].IsNumber() ? info[2].As<Napi::Number>().Int32Value() : 0;
    if (kind == "cpu") {
      auto mi = Ort::MemoryInfo::CreateCpu(OrtArenaAllocator, OrtMemTypeDefault);
      b.BindOutput(name.c_str(), mi);
    } else if (kind == "cuda") {
      Ort::MemoryInfo mi("Cuda", OrtArenaAllocator, deviceId, OrtMemTypeDefault);
      b.BindOutput(name.c_str(), mi);
    } else {
      throwType(info.Env(), "device kind must be 'cpu' or 'cuda', got '" + kind + "'");
    }
    outputs_.erase(name);
  }

  void ClearInputs(const Napi::CallbackInfo& info) {
    binding(info.Env()).ClearBoundInputs();
    inputs_.clear();
  }
  void ClearOutputs(const Napi::CallbackInfo& info) {
    binding(info.Env()).ClearBoundOutputs();
    outputs_.clear();
  }
  void SynchronizeInputs(const Napi::CallbackInfo& info) { binding(info.Env()).SynchronizeInputs(); }
  void SynchronizeOutputs(const Napi::CallbackInfo& info) { binding(info.Env()).SynchronizeOutputs(); }

  // outputs(): [{name, tensor}] for every bound output after a run; each tensor shares the output's
  // memory (for preallocated outputs, the very tensor that was bound).
  Napi::Value Outputs(const Napi::CallbackInfo& info) {
    auto& b = binding(info.Env());
    Ort::AllocatorWithDefaultOptions alloc;
    std::vector<std::string> names = b.GetOutputNames();
    std::vector<Ort::Value> values = b.GetOutputValues();
    auto arr = Napi::Array::New(info.Env(), names.size());
    for (size_t i = 0; i < names.size() && i < values.size(); i++) {
      auto o = Napi::Object::New(info.Env());
      o.Set("name", names[i]);
      if (!values[i]) {
        o.Set("tensor", info.Env().Null());
      } else {
        o.Set("tensor", NativeTensor::Wrap(info.Env(), coreFromValue(std::move(values[i]), session_, names[i])));
      }
      arr.Set(i, o);
    }
    return arr;
  }

  void Release(const Napi::CallbackInfo& info) {
    checkIdle(info.Env());
    binding_ = Ort::IoBinding(nullptr);
    inputs_.clear();
    outputs_.clear();
    session_.reset();
  }

  std::shared_ptr<SessionCore> session_;
  Ort::IoBinding binding_{nullptr};
  // JS tensors bound here stay reachable while bound.
  std::unordered_map<std::string, Napi::ObjectReference> inputs_, outputs_;
};

// ---------------------------------------------------------------------------------------------------
// NativeSession

GraphOptimizationLevel graphOptLevel(Napi::Env env, const std::string& s) {
  if (s == "disabled") return ORT_DISABLE_ALL;
  if (s == "basic") return ORT_ENABLE_BASIC;
  if (s == "extended") return ORT_ENABLE_EXTENDED;
  if (s == "all") return ORT_ENABLE_ALL;
  throwType(env, "graphOptimizationLevel must be disabled, basic, extended or all, got '" + s + "'");
}

class RunWorker;

/** One-line error for a CUDA EP that cannot load: drops ORT's source-location prefix and newlines. */
Napi::Error cudaUnavailable(Napi::Env env, std::string msg) {
  size_t at = msg.find("Failed to load library");
  if (at != std::string::npos) msg = msg.substr(at);
  for (char& ch : msg)
    if (ch == '\n' || ch == '\r') ch = ' ';
  while (!msg.empty() && msg.back() == ' ') msg.pop_back();
  return Napi::Error::New(env, "CUDA execution provider unavailable (install it with `pnpm cuda:install`): " + msg);
}

class NativeSession : public Napi::ObjectWrap<NativeSession> {
 public:
  static Napi::Function Define(Napi::Env env) {
    return DefineClass(env, "NativeSession",
                       {
                           InstanceMethod<&NativeSession::Inputs>("inputs"),
                           InstanceMethod<&NativeSession::Outputs>("outputs"),
                           InstanceMethod<&NativeSession::Allocate>("allocate"),
                           InstanceMethod<&NativeSession::CreateBinding>("createBinding"),
                           InstanceMethod<&NativeSession::Run>("run"),
                           InstanceMethod<&NativeSession::RunAsync>("runAsync"),
                           InstanceMethod<&NativeSession::Release>("release"),
                           InstanceMethod<&NativeSession::EndProfiling>("endProfiling"),
                       });
  }

  // new NativeSession(model: Uint8Array | string, options)
  // options: {device: 'cpu'|'cuda', deviceId, graphOptimizationLevel, deterministic, intraOpThreads,
  //           memoryArena, enableMemPattern, logSeverity, cudaOptions: {key: value}}
  explicit NativeSession(const Napi::CallbackInfo& info) : Napi::ObjectWrap<NativeSession>(info) {
    Napi::Env env = info.Env();
    Napi::Object o = info[1].IsObject() ? info[1].As<Napi::Object>() : Napi::Object::New(env);
    auto str = [&](const char* k, const char* dflt) {
      return o.Has(k) && o.Get(k).IsString() ? o.Get(k).As<Napi::String>().Utf8Value() : std::string(dflt);
    };
    auto num = [&](const char* k, int dflt) { return o.Has(k) && o.Get(k).IsNumber() ? o.Get(k).As<Napi::Number>().Int32Value() : dflt; };
    auto flag = [&](const char* k, bool dflt) { return o.Has(k) && o.Get(k).IsBoolean() ? o.Get(k).As<Napi::Boolean>().Value() : dflt; };

    auto core = std::make_shared<SessionCore>();
    std::string device = str("device", "cpu");
    if (device != "cpu" && device != "cuda") throwType(env, "device must be 'cpu' or 'cuda', got '" + device + "'");
    core->loc.cuda = device == "cuda";
    core->loc.deviceId = core->loc.cuda ? num("deviceId", 0) : 0;

    Ort::SessionOptions so;
    so.SetGraphOptimizationLevel(graphOptLevel(env, str("graphOptimizationLevel", "all")));
    so.SetLogSeverityLevel(num("logSeverity", 3));
    if (flag("deterministic", false)) {
      so.SetDeterministicCompute(true);
      so.SetExecutionMode(ORT_SEQUENTIAL);
    }
    int threads = num("intraOpThreads", 0);
    if (threads > 0) so.SetIntraOpNumThreads(threads);
    if (!flag("memoryArena", true)) so.DisableCpuMemArena();
    // ORT's per-node profiler: JSON trace written at endProfiling(), file name prefixed by this path.
    std::string profile = str("profilePrefix", "");
    if (!profile.empty()) so.EnableProfiling(profile.c_str());
    if (!flag("enableMemPattern", true)) so.DisableMemPattern();
    // The fused optimizer ops (domain latent_sft) with this session's provider's kernels.
    latent_sft::addFusedOps(so, core->loc.cuda);

    if (core->loc.cuda) {
      // The CUDA provider logs through ORT's default logger while its options are created, and that
      // logger exists only once an OrtEnv does: create the process-wide env first.
      (void)ortEnv();
      std::unordered_map<std::string, std::string> cudaOpts{{"device_id", std::to_string(core->loc.deviceId)}};
      if (o.Has("cudaOptions") && o.Get("cudaOptions").IsObject()) {
        auto co = o.Get("cudaOptions").As<Napi::Object>();
        auto keys = co.GetPropertyNames();
        for (uint32_t i = 0; i < keys.Length(); i++) {
          std::string k = keys.Get(i).As<Napi::String>();
          cudaOpts[k] = co.Get(k).ToString().Utf8Value();
        }
      }
      try {
        Ort::CUDAProviderOptions cuda;
        cuda.Update(cudaOpts);
        so.AppendExecutionProvider_CUDA_V2(*cuda);
      } catch (const Ort::Exception& e) {
        throw cudaUnavailable(env, e.what());
      }
    }

    try {
      if (info[0].IsString()) {
        std::string path = info[0].As<Napi::String>();
        core->session = Ort::Session(ortEnv(), path.c_str(), so);
      } else {
        auto [ptr, len] = typedBytes(env, info[0], "model");
        core->session = Ort::Session(ortEnv(), ptr, len, so);
      }
    } catch (const Ort::Exception& e) {
      std::string msg = e.what();
      if (core->loc.cuda && msg.find("providers") != std::string::npos) throw cudaUnavailable(env, msg);
      for (char& ch : msg)
        if (ch == '\n' || ch == '\r') ch = ' ';
      throw Napi::Error::New(env, "cannot create session: " + msg);
    }
    if (core->loc.cuda) {
      core->deviceMemInfo = Ort::MemoryInfo("Cuda", OrtArenaAllocator, core->loc.deviceId, OrtMemTypeDefault);
      core->deviceAllocator = std::make_unique<Ort::Allocator>(core->session, core->deviceMemInfo);
    }
    core_ = std::move(core);
  }

  SessionCore& core(Napi::Env env) {
    if (!core_) throw Napi::Error::New(env, "session used after release()");
    return *core_;
  }

 private:
  static Napi::Value typeInfoToJs(Napi::Env env, const std::string& name, const Ort::TypeInfo& ti) {
    auto o = Napi::Object::New(env);
    o.Set("name", name);
    if (ti.GetONNXType() != ONNX_TYPE_TENSOR) {
      o.Set("dtype", "non-tensor");
      o.Set("dims", Napi::Array::New(env));
      o.Set("symbols", Napi::Array::New(env));
      return o;
    }
    auto t = ti.GetTensorTypeAndShapeInfo();
    o.Set("dtype", dtypeName(t.GetElementType()));
    o.Set("dims", dimsToJs(env, t.GetShape()));
    std::vector<const char*> sym(t.GetDimensionsCount(), nullptr);
    t.GetSymbolicDimensions(sym.data(), sym.size());
    auto syms = Napi::Array::New(env, sym.size());
    for (size_t i = 0; i < sym.size(); i++) syms.Set(i, sym[i] != nullptr ? sym[i] : "");
    o.Set("symbols", syms);
    return o;
  }

  Napi::Value Inputs(const Napi::CallbackInfo& info) {
    auto& s = core(info.Env()).session;
    Ort::AllocatorWithDefaultOptions alloc;
    size_t n = s.GetInputCount();
    auto arr = Napi::Array::New(info.Env(), n);
    for (size_t i = 0; i < n; i++)
      arr.Set(i, typeInfoToJs(info.Env(), s.GetInputNameAllocated(i, alloc).get(), s.GetInputTypeInfo(i)));
    return arr;
  }

  Napi::Value Outputs(const Napi::CallbackInfo& info) {
    auto& s = core(info.Env()).session;
    Ort::AllocatorWithDefaultOptions alloc;
    size_t n = s.GetOutputCount();
    auto arr = Napi::Array::New(info.Env(), n);
    for (size_t i = 0; i < n; i++)
      arr.Set(i, typeInfoToJs(info.Env(), s.GetOutputNameAllocated(i, alloc).get(), s.GetOutputTypeInfo(i)));
    return arr;
  }

  // allocate(dtype, dims): a tensor in the session's device memory (CPU memory for CPU sessions).
  Napi::Value Allocate(const Napi::CallbackInfo& info) {
    core(info.Env());
    return allocateTensor(info.Env(), info[0], info[1], core_);
  }

  Napi::Value CreateBinding(const Napi::CallbackInfo& info) {
    core(info.Env());
    auto* ext = new std::shared_ptr<SessionCore>(core_);
    return info.Env().GetInstanceData<AddonData>()->bindingCtor.New({Napi::External<std::shared_ptr<SessionCore>>::New(info.Env(), ext)});
  }

  NativeBinding* bindingArg(const Napi::CallbackInfo& info) {
    auto* data = info.Env().GetInstanceData<AddonData>();
    if (!info[0].IsObject() || !info[0].As<Napi::Object>().InstanceOf(data->bindingCtor.Value()))
      throwType(info.Env(), "run needs an IO binding");
    NativeBinding* b = NativeBinding::Unwrap(info[0].As<Napi::Object>());
    b->binding(info.Env());
    if (b->session() != core_) throwType(info.Env(), "run: the IO binding belongs to another session");
    return b;
  }

  // run(binding): synchronous Run with the binding; outputs stay where they were bound.
  void Run(const Napi::CallbackInfo& info) {
    core(info.Env());
    NativeBinding* b = bindingArg(info);
    try {
      core_->session.Run(Ort::RunOptions{nullptr}, b->binding(info.Env()));
    } catch (const Ort::Exception& e) {
      throw Napi::Error::New(info.Env(), std::string("run failed: ") + e.what());
    }
  }

  Napi::Value RunAsync(const Napi::CallbackInfo& info);

  void Release(const Napi::CallbackInfo&) { core_.reset(); }

  // endProfiling(): stops ORT's profiler and returns the trace file's path ('' when profiling is off).
  Napi::Value EndProfiling(const Napi::CallbackInfo& info) {
    core(info.Env());
    Ort::AllocatorWithDefaultOptions alloc;
    try {
      auto name = core_->session.EndProfilingAllocated(alloc);
      return Napi::String::New(info.Env(), name.get());
    } catch (const Ort::Exception& e) {
      throw Napi::Error::New(info.Env(), std::string("endProfiling failed: ") + e.what());
    }
  }

  std::shared_ptr<SessionCore> core_;

 public:
  static Napi::Value allocateTensor(Napi::Env env, Napi::Value dtypeArg, Napi::Value dimsArg, std::shared_ptr<SessionCore> owner) {
    std::string dname = dtypeArg.IsString() ? dtypeArg.As<Napi::String>().Utf8Value() : "";
    const DTypeInfo* dt = dtypeByName(dname);
    if (dt == nullptr) throwType(env, "unknown dtype '" + dname + "'");
    auto core = std::make_unique<TensorCore>();
    core->dtype = dt;
    core->dims = readDims(env, dimsArg);
    core->elements = elementCount(core->dims);
    try {
      if (owner && owner->loc.cuda) {
        core->value = Ort::Value::CreateTensor(*owner->deviceAllocator, core->dims.data(), core->dims.size(), dt->ort);
        core->loc = owner->loc;
        core->owner = std::move(owner);
      } else {
        Ort::AllocatorWithDefaultOptions alloc;
        core->value = Ort::Value::CreateTensor(alloc, core->dims.data(), core->dims.size(), dt->ort);
      }
    } catch (const Ort::Exception& e) {
      throw Napi::Error::New(env, "cannot allocate " + std::string(dt->name) + " tensor: " + e.what());
    }
    // Fresh memory is zeroed so a tensor never exposes stale data.
    if (core->bytes() > 0) {
      if (core->loc.cuda) {
        std::vector<uint8_t> zeros(core->bytes(), 0);
        copyBytes(core->data(), core->loc, zeros.data(), Location{}, zeros.size());
      } else {
        std::memset(core->data(), 0, core->bytes());
      }
    }
    return NativeTensor::Wrap(env, std::move(core));
  }
};

/** Runs session.Run(binding) on the libuv pool; keeps session, binding and their JS objects alive. */
class RunWorker : public Napi::AsyncWorker {
 public:
  RunWorker(Napi::Env env, std::shared_ptr<SessionCore> s, NativeBinding* b, Napi::Object bindingObj)
      : Napi::AsyncWorker(env, "latent-sft:run"), deferred_(Napi::Promise::Deferred::New(env)), session_(std::move(s)), binding_(b) {
    bindingRef_ = Napi::Persistent(bindingObj);
    binding_->running++;
  }
  Napi::Promise Promise() { return deferred_.Promise(); }

 protected:
  void Execute() override {
    try {
      session_->session.Run(Ort::RunOptions{nullptr}, binding_->raw());
    } catch (const std::exception& e) {
      SetError(std::string("run failed: ") + e.what());
    }
  }
  void OnOK() override {
    binding_->running--;
    deferred_.Resolve(Env().Undefined());
  }
  void OnError(const Napi::Error& e) override {
    binding_->running--;
    deferred_.Reject(e.Value());
  }

 private:
  Napi::Promise::Deferred deferred_;
  std::shared_ptr<SessionCore> session_;
  NativeBinding* binding_;
  Napi::ObjectReference bindingRef_;
};

Napi::Value NativeSession::RunAsync(const Napi::CallbackInfo& info) {
  core(info.Env());
  NativeBinding* b = bindingArg(info);
  auto* w = new RunWorker(info.Env(), core_, b, info[0].As<Napi::Object>());
  auto p = w->Promise();
  w->Queue();
  return p;
}

// ---------------------------------------------------------------------------------------------------
// Module functions

Napi::Value AllocateCpu(const Napi::CallbackInfo& info) { return NativeSession::allocateTensor(info.Env(), info[0], info[1], nullptr); }

Napi::Value TransferStats(const Napi::CallbackInfo& info) {
  auto o = Napi::Object::New(info.Env());
  auto n = [&](const std::atomic<uint64_t>& v) { return Napi::Number::New(info.Env(), static_cast<double>(v.load())); };
  o.Set("hostToDeviceBytes", n(g_transfers.h2dBytes));
  o.Set("deviceToHostBytes", n(g_transfers.d2hBytes));
  o.Set("deviceToDeviceBytes", n(g_transfers.d2dBytes));
  o.Set("hostToDeviceCopies", n(g_transfers.h2dCopies));
  o.Set("deviceToHostCopies", n(g_transfers.d2hCopies));
  o.Set("deviceToDeviceCopies", n(g_transfers.d2dCopies));
  return o;
}

void ResetTransferStats(const Napi::CallbackInfo&) {
  for (auto* c : {&g_transfers.h2dBytes, &g_transfers.d2hBytes, &g_transfers.d2dBytes, &g_transfers.h2dCopies,
                  &g_transfers.d2hCopies, &g_transfers.d2dCopies})
    c->store(0);
}

// liveTensors(): native tensor handles not yet freed (by release() or garbage collection).
Napi::Value LiveTensors(const Napi::CallbackInfo& info) { return Napi::Number::New(info.Env(), static_cast<double>(g_liveTensors.load())); }

// cudaKernelsStatus(deviceId): "" when the fused CUDA kernels compile and load here, else why not.
Napi::Value CudaKernelsStatus(const Napi::CallbackInfo& info) {
  int deviceId = info[0].IsNumber() ? info[0].As<Napi::Number>().Int32Value() : 0;
  return Napi::String::New(info.Env(), latent_sft::cudaKernelsStatus(deviceId));
}

// cudaKernels(): the fused kernels' CUDA source as embedded at build time and the kernel names the
// addon loads from it (checked against native/src/kernels/*.cu by native.test.ts).
Napi::Value CudaKernels(const Napi::CallbackInfo& info) {
  auto o = Napi::Object::New(info.Env());
  o.Set("source", latent_sft::cudaKernelSource());
  auto names = latent_sft::cudaKernelNames();
  auto arr = Napi::Array::New(info.Env(), names.size());
  for (size_t i = 0; i < names.size(); i++) arr.Set(i, names[i]);
  o.Set("names", arr);
  return o;
}

// ortInfo(): the ORT build in use and the file it was loaded from (dladdr on OrtGetApiBase).
Napi::Value OrtInfo(const Napi::CallbackInfo& info) {
  auto o = Napi::Object::New(info.Env());
  o.Set("version", OrtGetApiBase()->GetVersionString());
  o.Set("apiVersion", ORT_API_VERSION);
  Dl_info dl{};
  if (dladdr(reinterpret_cast<void*>(&OrtGetApiBase), &dl) != 0 && dl.dli_fname != nullptr) o.Set("library", dl.dli_fname);
  auto providers = Ort::GetAvailableProviders();
  auto arr = Napi::Array::New(info.Env(), providers.size());
  for (size_t i = 0; i < providers.size(); i++) arr.Set(i, providers[i]);
  o.Set("providers", arr);
  return o;
}

Napi::Object Init(Napi::Env env, Napi::Object exports) {
  auto* data = new AddonData();
  env.SetInstanceData<AddonData>(data);
  // Runs before the finalizers of the wrappers still alive at teardown (see g_exiting).
  env.AddCleanupHook([] { g_exiting = true; });
  Napi::Function tensor = NativeTensor::Define(env);
  Napi::Function binding = NativeBinding::Define(env);
  data->tensorCtor = Napi::Persistent(tensor);
  data->bindingCtor = Napi::Persistent(binding);
  exports.Set("NativeTensor", tensor);
  exports.Set("NativeBinding", binding);
  exports.Set("NativeSession", NativeSession::Define(env));
  exports.Set("allocateCpu", Napi::Function::New<AllocateCpu>(env, "allocateCpu"));
  exports.Set("transferStats", Napi::Function::New<TransferStats>(env, "transferStats"));
  exports.Set("resetTransferStats", Napi::Function::New<ResetTransferStats>(env, "resetTransferStats"));
  exports.Set("ortInfo", Napi::Function::New<OrtInfo>(env, "ortInfo"));
  exports.Set("liveTensors", Napi::Function::New<LiveTensors>(env, "liveTensors"));
  exports.Set("cudaKernelsStatus", Napi::Function::New<CudaKernelsStatus>(env, "cudaKernelsStatus"));
  exports.Set("cudaKernels", Napi::Function::New<CudaKernels>(env, "cudaKernels"));
  return exports;
}

}  // namespace

NODE_API_MODULE(latent_sft_ort, Init)
