#include "process.h"

#include <torch/torch.h>
#include <torch/version.h>

#include <c10/core/CPUAllocator.h>
#include <c10/core/impl/alloc_cpu.h>
#include <malloc.h>

#include <atomic>
#include <cstdlib>
#include <mutex>
#include <string>
#include <vector>

#include "common.h"
#include "compute_thread.h"
#include "jobs.h"
#include "model.h"
#include "objects/model_wrap.h"
#include "util/args.h"
#include "util/convert.h"

namespace rs {

namespace {

// With ROBUST_SYNTH_COUNT_TENSORS=1 in the environment at load, CPU tensor memory is allocated
// through this counting wrapper of LibTorch's own alloc_cpu/free_cpu, so leak tests can ask
// how many allocations are alive (tensorStats()). Off by default: the default allocator is
// left alone.
std::atomic<int64_t> gLiveAllocations{0};
std::atomic<int64_t> gLiveBytes{0};
bool gCounting = false;

class CountingCpuAllocator final : public c10::Allocator {
 public:
// c10 2.3 made allocate() non-const and added copy_data() (pure virtual).
#if TORCH_VERSION_MAJOR > 2 || (TORCH_VERSION_MAJOR == 2 && TORCH_VERSION_MINOR >= 3)
#define RS_ALLOCATOR_2_3 1
#endif
#ifdef RS_ALLOCATOR_2_3
  c10::DataPtr allocate(size_t n) override {
#else
  c10::DataPtr allocate(size_t n) const override {
#endif
    void* p = c10::alloc_cpu(n);
    if (p) Count(p, +1);
    return {p, p, &Free, c10::Device(c10::DeviceType::CPU)};
  }
  c10::DeleterFnPtr raw_deleter() const override { return &Free; }
#ifdef RS_ALLOCATOR_2_3
  void copy_data(void* dest, const void* src, std::size_t count) const override { default_copy_data(dest, src, count); }
#endif

 private:
  static void Count(void* p, int sign) {
    gLiveAllocations.fetch_add(sign, std::memory_order_relaxed);
    gLiveBytes.fetch_add(sign * static_cast<int64_t>(malloc_usable_size(p)), std::memory_order_relaxed);
  }
  static void Free(void* p) {
    if (p) Count(p, -1);
    c10::free_cpu(p);
  }
};

}  // namespace

void MaybeCountAllocations() {
  static std::once_flag once;
  std::call_once(once, [] {
    const char* v = std::getenv("ROBUST_SYNTH_COUNT_TENSORS");
    if (!v || std::string(v) != "1") return;
    static auto* allocator = new CountingCpuAllocator();  // never destroyed: tensors outlive statics
    c10::SetCPUAllocator(allocator, /*priority=*/10);
    gCounting = true;
  });
}

// glibc malloc returns freed memory above 128 KB (mmap) or at the top of a heap (trim) to the
// kernel, and every PGD step allocates its activations again: thousands of page faults per step
// (Fashion-MNIST batch 64: ~6000 per forward + backward, a quarter of its time on this VM).
// Keeping blocks up to 32 MB in the heap and trimming only past 1 GB makes the steps reuse their
// memory (0 faults; 36-39 ms instead of 52 ms on 1 thread). The compute thread allocates from a
// per-thread arena, whose 64 MB heaps glibc unmaps as soon as one is wholly free, whatever the
// trim threshold (Fashion-MNIST batch 256: ~15,000 faults, 10-15 ms, per forward + backward);
// a top pad of a whole heap keeps them (heap_trim stops when the free space is below the pad).
// Process-wide: freed memory is kept for reuse instead of returned. Skipped when the user tunes
// malloc or sets ROBUST_SYNTH_MALLOC=default.
void TuneMalloc() {
#if defined(__GLIBC__)
  static std::once_flag once;
  std::call_once(once, [] {
    const char* opt = std::getenv("ROBUST_SYNTH_MALLOC");
    if (opt && std::string(opt) == "default") return;
    for (const char* var : {"MALLOC_MMAP_THRESHOLD_", "MALLOC_TRIM_THRESHOLD_", "MALLOC_TOP_PAD_", "GLIBC_TUNABLES"}) {
      if (std::getenv(var)) return;
    }
    mallopt(M_MMAP_THRESHOLD, 32 << 20);  // glibc's maximum on 64-bit
    mallopt(M_TRIM_THRESHOLD, 1 << 30);
    mallopt(M_TOP_PAD, 64 << 20);  // a whole per-thread heap (HEAP_MAX_SIZE on 64-bit)
  });
#endif
}

Napi::Value Load(const Napi::CallbackInfo& info) {
  auto env = info.Env();
  if (info.Length() < 3 || !info[0].IsString() || !info[1].IsString()) {
    Bad(env, "load(path, device, inputShape) expects strings and a shape");
  }
  auto path = info[0].As<Napi::String>().Utf8Value();
  auto deviceName = info[1].As<Napi::String>().Utf8Value();
  auto inputShape = Shape(env, info[2], "inputShape");
  LoadConfig config;
  if (info.Length() > 3 && info[3].IsObject()) {
    auto o = info[3].As<Napi::Object>();
    config.channelsLast = Bool(o, "channelsLast", false);
    config.freeze = Bool(o, "freeze", false);
    config.freezeStrict = Bool(o, "freezeStrict", false);
    config.inferShape = Bool(o, "inferShape", false);
  }
  torch::Device device(torch::kCPU);
  try {
    device = ResolveDevice(deviceName);
  } catch (const Error& e) {
    throw CodedError(env, e.code(), e.what());
  }
  auto data = GetEnvData(env);
  auto obj = data->modelClass.New({});
  auto* wrap = ModelWrap::Unwrap(obj);
  // As in ModelWrap::CreateSession: the job holds `obj`, and releases it on the JS thread.
  return StartJob(
      env, ComputeThread::For(DeviceKey(device)), env.Undefined(),
      [path, device, inputShape, config, wrap](JobContext&) -> Builder {
        auto model = Model::Load(path, device, inputShape, config);
        return [model, wrap](Napi::Env) -> Napi::Value {
          wrap->model = model;
          return wrap->Value();
        };
      },
      obj);
}

// n >= 1: a fixed count; 0: adaptive (see ComputeThread::SetThreads).
Napi::Value SetThreads(const Napi::CallbackInfo& info) {
  auto env = info.Env();
  if (info.Length() < 1 || !info[0].IsNumber()) Bad(env, "setThreads(n) expects a number");
  int n = info[0].As<Napi::Number>().Int32Value();
  if (n < 0) Bad(env, "thread count must be >= 0 (0: adaptive)");
  ComputeThread::For("cpu").SetThreads(n);
  return env.Undefined();
}

Napi::Value GetThreads(const Napi::CallbackInfo& info) {
  return Napi::Number::New(info.Env(), ComputeThread::For("cpu").threads());
}

Napi::Value ThreadPolicy(const Napi::CallbackInfo& info) {
  auto env = info.Env();
  auto& t = ComputeThread::For("cpu");
  auto o = Napi::Object::New(env);
  o.Set("mode", Napi::String::New(env, t.fixedThreads() > 0 ? "fixed" : "auto"));
  o.Set("current", Napi::Number::New(env, t.threads()));
  o.Set("max", Napi::Number::New(env, t.fixedThreads() > 0 ? t.fixedThreads() : t.maxThreads()));
  return o;
}

Napi::Value ThreadsForLoadJs(const Napi::CallbackInfo& info) {
  auto env = info.Env();
  if (info.Length() < 2 || !info[0].IsNumber() || !info[1].IsNumber()) Bad(env, "threadsForLoad(allowed, busy)");
  return Napi::Number::New(env, ThreadsForLoad(info[0].As<Napi::Number>().Int32Value(), info[1].As<Napi::Number>().DoubleValue()));
}

// Process-wide; applies to models whose methods first run afterwards (a load runs one).
Napi::Value SetJitExecutorJs(const Napi::CallbackInfo& info) {
  auto env = info.Env();
  if (info.Length() < 1 || !info[0].IsString()) Bad(env, "setJitExecutor(mode) expects a string");
  try {
    SetJitExecutor(info[0].As<Napi::String>().Utf8Value());
  } catch (const Error& e) {
    throw CodedError(env, e.code(), e.what());
  }
  return env.Undefined();
}

Napi::Value GetJitExecutorJs(const Napi::CallbackInfo& info) { return Napi::String::New(info.Env(), JitExecutor()); }

// Process-wide switch for oneDNN (mkldnn) convolutions; on by default. For benchmarks.
Napi::Value SetMkldnnJs(const Napi::CallbackInfo& info) {
  auto env = info.Env();
  if (info.Length() < 1 || !info[0].IsBoolean()) Bad(env, "setMkldnn(enabled) expects a boolean");
  at::globalContext().setUserEnabledMkldnn(info[0].As<Napi::Boolean>().Value());
  return env.Undefined();
}

Napi::Value BuildInfo(const Napi::CallbackInfo& info) {
  auto env = info.Env();
  auto o = Napi::Object::New(env);
  o.Set("torchVersion", Napi::String::New(env, std::to_string(TORCH_VERSION_MAJOR) + "." +
                                                   std::to_string(TORCH_VERSION_MINOR) + "." +
                                                   std::to_string(TORCH_VERSION_PATCH)));
  o.Set("cudaAvailable", Napi::Boolean::New(env, CudaAvailable()));
#ifdef RS_VARIANT
  o.Set("variant", Napi::String::New(env, RS_VARIANT));
#else
  o.Set("variant", Napi::String::New(env, "cpu"));
#endif
  o.Set("defaultThreads", Napi::Number::New(env, DefaultThreads()));
  o.Set("parallelInfo", Napi::String::New(env, at::get_parallel_info()));
  o.Set("config", Napi::String::New(env, at::show_config()));
  o.Set("mkldnn", Napi::Boolean::New(env, at::hasMKLDNN()));
  return o;
}

// Live CPU tensor allocations, when counting is on (see CountingCpuAllocator).
Napi::Value TensorStats(const Napi::CallbackInfo& info) {
  auto env = info.Env();
  auto o = Napi::Object::New(env);
  o.Set("counting", Napi::Boolean::New(env, gCounting));
  o.Set("allocations", Napi::Number::New(env, static_cast<double>(gLiveAllocations.load())));
  o.Set("bytes", Napi::Number::New(env, static_cast<double>(gLiveBytes.load())));
  return o;
}

Napi::Value StopJobsForExitJs(const Napi::CallbackInfo& info) {
  StopJobsForExit();
  return info.Env().Undefined();
}

}  // namespace rs
