// The N-API surface. JS arguments are copied into plain C++ structs here, on the JS thread;
// lib/ has already validated them, so the checks below are a cheap second line that turns a
// mistake into ERR_BAD_INPUT instead of undefined behaviour.
#include <napi.h>
#include <torch/torch.h>
#include <torch/version.h>

#include <c10/core/CPUAllocator.h>
#include <c10/core/impl/alloc_cpu.h>
#include <malloc.h>

#include <atomic>
#include <chrono>
#include <cstring>
#include <cmath>
#include <cstdlib>
#include <mutex>
#include <string>
#include <vector>

#include "common.h"
#include "compute_thread.h"
#include "engine.h"
#include "jobs.h"
#include "model.h"

namespace rs {

namespace {

using Clock = std::chrono::steady_clock;

double MsSince(Clock::time_point t0) {
  return std::chrono::duration<double, std::milli>(Clock::now() - t0).count();
}

[[noreturn]] void Bad(Napi::Env env, const std::string& message) {
  throw CodedError(env, code::kBadInput, message);
}

Napi::Object ObjectArg(const Napi::CallbackInfo& info, size_t i, const char* what) {
  if (info.Length() <= i || !info[i].IsObject()) Bad(info.Env(), std::string(what) + " must be an object");
  return info[i].As<Napi::Object>();
}

double Num(Napi::Object o, const char* key, double fallback) {
  auto v = o.Get(key);
  if (v.IsUndefined()) return fallback;
  if (!v.IsNumber()) Bad(o.Env(), std::string(key) + " must be a number");
  return v.As<Napi::Number>().DoubleValue();
}

// An integral number in [lo, hi]; the range check comes first, since casting an out-of-range
// or NaN double to an integer is undefined behaviour.
int64_t Int(Napi::Object o, const char* key, int64_t fallback, double lo, double hi) {
  double x = Num(o, key, static_cast<double>(fallback));
  if (!(x >= lo && x <= hi) || x != std::floor(x)) {
    Bad(o.Env(), std::string(key) + " must be an integer in [" + std::to_string(static_cast<int64_t>(lo)) + ", " +
                     std::to_string(static_cast<int64_t>(hi)) + "]");
  }
  return static_cast<int64_t>(x);
}

constexpr double kMaxSafeInteger = 9007199254740991.0;  // 2^53 - 1

bool Bool(Napi::Object o, const char* key, bool fallback) {
  auto v = o.Get(key);
  if (v.IsUndefined()) return fallback;
  if (!v.IsBoolean()) Bad(o.Env(), std::string(key) + " must be a boolean");
  return v.As<Napi::Boolean>().Value();
}

std::vector<int64_t> Shape(Napi::Env env, Napi::Value v, const char* what) {
  if (!v.IsArray()) Bad(env, std::string(what) + ".shape must be an array");
  auto a = v.As<Napi::Array>();
  std::vector<int64_t> shape;
  for (uint32_t i = 0; i < a.Length(); ++i) {
    auto d = a.Get(i);
    if (!d.IsNumber()) Bad(env, std::string(what) + ".shape must hold numbers");
    double x = d.As<Napi::Number>().DoubleValue();
    if (!(x >= 1 && x <= kMaxSafeInteger) || x != std::floor(x)) {
      Bad(env, std::string(what) + ".shape must hold positive integers");
    }
    shape.push_back(static_cast<int64_t>(x));
  }
  return shape;
}

// { data: Float32Array, shape } -> an owned CPU tensor (a copy: the JS array may change or be
// collected while the compute thread works).
torch::Tensor TensorArg(Napi::Env env, Napi::Value v, const char* what, size_t rank = 4) {
  if (!v.IsObject()) Bad(env, std::string(what) + " must be { data, shape }");
  auto o = v.As<Napi::Object>();
  auto shape = Shape(env, o.Get("shape"), what);
  if (rank && shape.size() != rank) Bad(env, std::string(what) + " must have rank " + std::to_string(rank));
  auto d = o.Get("data");
  if (!d.IsTypedArray() || d.As<Napi::TypedArray>().TypedArrayType() != napi_float32_array) {
    Bad(env, std::string(what) + ".data must be a Float32Array");
  }
  auto arr = d.As<Napi::Float32Array>();
  double n = 1;  // in double: an int64 product of hostile sizes could overflow into a match
  for (auto s : shape) n *= static_cast<double>(s);
  if (static_cast<double>(arr.ElementLength()) != n) {
    Bad(env, std::string(what) + ".data has " + std::to_string(arr.ElementLength()) + " values, shape needs " +
                 std::to_string(n));
  }
  // A plain memcpy, not from_blob(...).clone(): an ATen copy this large runs an OpenMP parallel
  // region, and one on the JS thread gives the process a second OpenMP team; libgomp then sees
  // more threads than cores and stops spinning between parallel regions, so every region of
  // every later step pays a futex wake-up (measured: ResNet50 step 150 ms instead of 120 ms).
  auto t = torch::empty(shape, torch::kFloat32);
  if (n > 0) std::memcpy(t.data_ptr<float>(), arr.Data(), sizeof(float) * static_cast<size_t>(n));
  return t;
}

torch::Tensor TargetsArg(Napi::Env env, Napi::Value v) {
  if (!v.IsTypedArray() || v.As<Napi::TypedArray>().TypedArrayType() != napi_int32_array) {
    Bad(env, "targets must be an Int32Array");
  }
  auto a = v.As<Napi::Int32Array>();
  const auto n = static_cast<int64_t>(a.ElementLength());
  auto t = torch::empty({n}, torch::kInt64);  // element by element, for the same reason as above
  auto* out = t.data_ptr<int64_t>();
  for (int64_t i = 0; i < n; ++i) out[i] = a[static_cast<size_t>(i)];
  return t;
}

PgdConfig ConfigArg(Napi::Env env, Napi::Object o) {
  PgdConfig c;
  auto constraint = o.Get("constraint");
  std::string cs = constraint.IsString() ? constraint.As<Napi::String>().Utf8Value() : "2";
  if (cs == "2") c.constraint = Constraint::kL2;
  else if (cs == "inf") c.constraint = Constraint::kLinf;
  else if (cs == "unconstrained") c.constraint = Constraint::kUnconstrained;
  else Bad(env, "constraint must be '2', 'inf' or 'unconstrained'");
  c.eps = Num(o, "eps", 0);
  c.step = Num(o, "step", 0);
  if (!(c.eps >= 0 && std::isfinite(c.eps)) || !(c.step >= 0 && std::isfinite(c.step))) {
    Bad(env, "eps and step must be finite and >= 0");
  }
  c.iterations = Int(o, "iterations", 0, 0, kMaxSafeInteger);
  c.useBest = Bool(o, "useBest", true);
  c.randomStart = Bool(o, "randomStart", false);
  c.seed = static_cast<uint64_t>(Int(o, "seed", 0, 0, kMaxSafeInteger));
  c.targeted = Bool(o, "targeted", true);
  c.bf16 = Bool(o, "bf16", false);
  c.penaltyWeight = Num(o, "penaltyWeight", 0);
  if (!std::isfinite(c.penaltyWeight)) Bad(env, "penaltyWeight must be finite");
  auto feature = o.Get("featureIndex");
  if (!feature.IsUndefined()) {
    c.objective = Objective::kFeature;
    c.featureIndex = Int(o, "featureIndex", 0, 0, kMaxSafeInteger);
    c.featureWeight = Num(o, "featureWeight", 1);
    if (!std::isfinite(c.featureWeight)) Bad(env, "featureWeight must be finite");
  }
  return c;
}

PgdInputs InputsArg(Napi::Env env, Napi::Object o, const PgdConfig& c) {
  PgdInputs in;
  in.x0 = TensorArg(env, o.Get("x0"), "x0");
  in.targets = TargetsArg(env, o.Get("targets"));
  if (c.penaltyWeight != 0) {
    in.mask = TensorArg(env, o.Get("mask"), "mask");
    in.reference = TensorArg(env, o.Get("reference"), "reference");
    if (!in.mask.sizes().equals(in.x0.sizes()) || !in.reference.sizes().equals(in.x0.sizes())) {
      Bad(env, "mask and reference must have x0's shape");
    }
  }
  return in;
}

// Hands a CPU tensor's memory to JS without a copy; the Buffer's finalizer frees the tensor.
Napi::Value TensorToJs(Napi::Env env, torch::Tensor t) {
  auto* holder = new torch::Tensor(t.contiguous());
  const auto bytes = static_cast<int64_t>(holder->nbytes());
  auto buf = Napi::Buffer<uint8_t>::New(
      env, static_cast<uint8_t*>(holder->data_ptr()), holder->nbytes(),
      [](Napi::Env env, uint8_t*, torch::Tensor* h) {
        Napi::MemoryManagement::AdjustExternalMemory(env, -static_cast<int64_t>(h->nbytes()));
        delete h;
      },
      holder);
  Napi::MemoryManagement::AdjustExternalMemory(env, bytes);
  auto shape = Napi::Array::New(env, t.dim());
  for (int64_t i = 0; i < t.dim(); ++i) shape.Set(static_cast<uint32_t>(i), Napi::Number::New(env, t.size(i)));
  auto o = Napi::Object::New(env);
  o.Set("data", buf);
  o.Set("shape", shape);
  o.Set("dtype", Napi::String::New(env, t.scalar_type() == torch::kInt32 ? "int32" : "float32"));
  return o;
}

Napi::Value ResultToJs(Napi::Env env, const PgdResult& r, double ms) {
  auto o = Napi::Object::New(env);
  o.Set("images", TensorToJs(env, r.images));
  o.Set("losses", TensorToJs(env, r.losses));
  o.Set("predictions", TensorToJs(env, r.predictions));
  auto stats = Napi::Object::New(env);
  stats.Set("ms", Napi::Number::New(env, ms));
  stats.Set("steps", Napi::Number::New(env, static_cast<double>(r.steps)));
  o.Set("stats", stats);
  return o;
}

std::string DeviceKey(const torch::Device& d) { return d.str(); }

// With ROBUST_SYNTH_COUNT_TENSORS=1 in the environment at load, CPU tensor memory is allocated
// through this counting wrapper of LibTorch's own alloc_cpu/free_cpu, so leak tests can ask
// how many allocations are alive (tensorStats()). Off by default: the default allocator is
// left alone.
std::atomic<int64_t> gLiveAllocations{0};
std::atomic<int64_t> gLiveBytes{0};
bool gCounting = false;

class CountingCpuAllocator final : public c10::Allocator {
 public:
  c10::DataPtr allocate(size_t n) const override {
    void* p = c10::alloc_cpu(n);
    if (p) Count(p, +1);
    return {p, p, &Free, c10::Device(c10::DeviceType::CPU)};
  }
  c10::DeleterFnPtr raw_deleter() const override { return &Free; }

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

}  // namespace

// A run whose state stays native between JS calls: the `step` primitive.
class SessionWrap : public Napi::ObjectWrap<SessionWrap> {
 public:
  static Napi::Function Class(Napi::Env env) {
    return DefineClass(env, "PgdSession",
                       {InstanceMethod("step", &SessionWrap::Step), InstanceMethod("finish", &SessionWrap::Finish)});
  }
  explicit SessionWrap(const Napi::CallbackInfo& info) : Napi::ObjectWrap<SessionWrap>(info) {}

  std::shared_ptr<Model> model;
  std::shared_ptr<PgdRun> run;

 private:
  Napi::Value Step(const Napi::CallbackInfo& info) {
    auto model = this->model;
    auto run = this->run;
    if (!run) throw CodedError(info.Env(), code::kBadInput, "the session is finished");
    return StartJob(info.Env(), ComputeThread::For(DeviceKey(model->device())), info.Env().Undefined(),
                    [model, run](JobContext& ctx) -> Builder {
                      ctx.Check(model.get());
                      auto losses = run->Step();
                      return [losses](Napi::Env env) { return TensorToJs(env, losses); };
                    });
  }
  Napi::Value Finish(const Napi::CallbackInfo& info) {
    auto model = this->model;
    auto run = std::move(this->run);
    if (!run) throw CodedError(info.Env(), code::kBadInput, "the session is finished");
    return StartJob(info.Env(), ComputeThread::For(DeviceKey(model->device())), info.Env().Undefined(),
                    [model, run](JobContext& ctx) -> Builder {
                      ctx.Check(model.get());
                      auto r = run->Finish();
                      return [r](Napi::Env env) { return ResultToJs(env, r, 0); };
                    });
  }
};

class ModelWrap : public Napi::ObjectWrap<ModelWrap> {
 public:
  static Napi::Function Class(Napi::Env env) {
    return DefineClass(env, "NativeModel",
                       {InstanceMethod("logits", &ModelWrap::Logits),
                        InstanceMethod("features", &ModelWrap::Features),
                        InstanceMethod("pgd", &ModelWrap::Pgd),
                        InstanceMethod("createSession", &ModelWrap::CreateSession),
                        InstanceMethod("floor", &ModelWrap::Floor),
                        InstanceMethod("dispose", &ModelWrap::Dispose),
                        InstanceMethod("info", &ModelWrap::Info)});
  }
  explicit ModelWrap(const Napi::CallbackInfo& info) : Napi::ObjectWrap<ModelWrap>(info) {}

  std::shared_ptr<Model> model;

 private:
  std::shared_ptr<Model> Live(Napi::Env env) {
    if (!model || model->disposed) throw CodedError(env, code::kDisposed, "the classifier was disposed");
    return model;
  }
  ComputeThread& Thread() { return ComputeThread::For(DeviceKey(model->device())); }

  Napi::Value Info(const Napi::CallbackInfo& info) {
    auto env = info.Env();
    auto m = Live(env);
    auto o = Napi::Object::New(env);
    o.Set("numClasses", Napi::Number::New(env, static_cast<double>(m->numClasses())));
    o.Set("device", Napi::String::New(env, m->device().str()));
    o.Set("hasFeatures", Napi::Boolean::New(env, m->hasFeatures()));
    o.Set("channelsLast", Napi::Boolean::New(env, m->config().channelsLast));
    o.Set("frozen", Napi::Boolean::New(env, m->config().freeze));
    auto shape = Napi::Array::New(env, m->inputShape().size());
    for (size_t i = 0; i < m->inputShape().size(); ++i) shape.Set(static_cast<uint32_t>(i), Napi::Number::New(env, static_cast<double>(m->inputShape()[i])));
    o.Set("inputShape", shape);
    return o;
  }

  Napi::Value Forward(const Napi::CallbackInfo& info, bool features) {
    auto env = info.Env();
    auto m = Live(env);
    auto x = TensorArg(env, info[0], "images");
    return StartJob(env, Thread(), env.Undefined(), [m, x, features](JobContext& ctx) -> Builder {
      ctx.Check(m.get());
      torch::NoGradGuard noGrad;
      auto xd = x.to(m->device());
      auto out = (features ? m->Features(xd) : m->Logits(xd)).to(torch::kCPU, torch::kFloat32).contiguous();
      return [out](Napi::Env env) { return TensorToJs(env, out); };
    });
  }
  Napi::Value Logits(const Napi::CallbackInfo& info) { return Forward(info, false); }
  Napi::Value Features(const Napi::CallbackInfo& info) { return Forward(info, true); }

  Napi::Value Pgd(const Napi::CallbackInfo& info) {
    auto env = info.Env();
    auto m = Live(env);
    auto o = ObjectArg(info, 0, "options");
    auto cfg = ConfigArg(env, o);
    auto in = InputsArg(env, o, cfg);
    auto every = Int(o, "progressEvery", 1, 1, kMaxSafeInteger);
    Napi::Value onProgress = info.Length() > 1 ? info[1] : env.Undefined();
    return StartJob(env, Thread(), onProgress, [m, cfg, in, every](JobContext& ctx) -> Builder {
      const auto t0 = Clock::now();
      PgdRun run(m, cfg, in);
      for (int64_t i = 0; i < cfg.iterations; ++i) {
        ctx.Check(m.get());
        auto losses = run.Step();
        if (ctx.wantsProgress() && ((i + 1) % every == 0 || i + 1 == cfg.iterations)) {
          ctx.Progress(i + 1, cfg.iterations, losses.mean().item<double>(), MsSince(t0));
        }
      }
      ctx.Check(m.get());
      auto r = run.Finish();
      double ms = MsSince(t0);
      return [r, ms](Napi::Env env) { return ResultToJs(env, r, ms); };
    });
  }

  Napi::Value CreateSession(const Napi::CallbackInfo& info) {
    auto env = info.Env();
    auto m = Live(env);
    auto o = ObjectArg(info, 0, "options");
    auto cfg = ConfigArg(env, o);
    auto in = InputsArg(env, o, cfg);
    auto data = GetEnvData(env);
    auto session = data->sessionClass.New({});
    auto* wrap = SessionWrap::Unwrap(session);
    wrap->model = m;
    // StartJob keeps `session` alive until the job is over (so `wrap` stays valid) and lets go
    // of it on the JS thread.
    return StartJob(
        env, Thread(), env.Undefined(),
        [m, cfg, in, wrap](JobContext& ctx) -> Builder {
          ctx.Check(m.get());
          auto run = std::make_shared<PgdRun>(m, cfg, in);
          return [run, wrap](Napi::Env) -> Napi::Value {
            wrap->run = run;
            return wrap->Value();
          };
        },
        session);
  }

  // Times `reps` bare forward+backward passes: the cost floor of one PGD step.
  Napi::Value Floor(const Napi::CallbackInfo& info) {
    auto env = info.Env();
    auto m = Live(env);
    auto x = TensorArg(env, info[0], "images");
    auto targets = TargetsArg(env, info[1]);
    int64_t reps = info.Length() > 2 && info[2].IsNumber() ? info[2].As<Napi::Number>().Int64Value() : 1;
    bool bf16 = info.Length() > 3 && info[3].IsBoolean() && info[3].As<Napi::Boolean>().Value();
    return StartJob(env, Thread(), env.Undefined(), [m, x, targets, reps, bf16](JobContext& ctx) -> Builder {
      auto xd = x.to(m->device());
      auto td = targets.to(m->device());
      std::vector<double> times;
      for (int64_t i = 0; i < reps; ++i) {
        ctx.Check(m.get());
        auto t0 = Clock::now();
        ForwardBackward(*m, xd, td, bf16);
        times.push_back(MsSince(t0));
      }
      return [times](Napi::Env env) -> Napi::Value {
        auto a = Napi::Array::New(env, times.size());
        for (size_t i = 0; i < times.size(); ++i) a.Set(static_cast<uint32_t>(i), times[i]);
        return a;
      };
    });
  }

  // Marks the model disposed (queued and running jobs reject with ERR_DISPOSED at their next
  // check), then releases it on its compute thread after everything queued before.
  Napi::Value Dispose(const Napi::CallbackInfo& info) {
    auto env = info.Env();
    if (!model) {
      auto d = Napi::Promise::Deferred::New(env);
      d.Resolve(env.Undefined());
      auto h = Napi::Object::New(env);
      h.Set("promise", d.Promise());
      return h;
    }
    model->disposed = true;
    auto& thread = Thread();
    auto m = std::move(model);
    return StartJob(env, thread, env.Undefined(), [m](JobContext&) mutable -> Builder {
      m.reset();
      return [](Napi::Env env) { return env.Undefined(); };
    });
  }
};

namespace {

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
  // As in CreateSession: the job holds `obj`, and releases it on the JS thread.
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

Napi::Object Init(Napi::Env env, Napi::Object exports) {
  TuneMalloc();
  MaybeCountAllocations();
  auto data = GetEnvData(env);
  data->modelClass = Napi::Persistent(ModelWrap::Class(env));
  data->sessionClass = Napi::Persistent(SessionWrap::Class(env));
  exports.Set("load", Napi::Function::New(env, Load));
  exports.Set("setThreads", Napi::Function::New(env, SetThreads));
  exports.Set("getThreads", Napi::Function::New(env, GetThreads));
  exports.Set("threadPolicy", Napi::Function::New(env, ThreadPolicy));
  exports.Set("threadsForLoad", Napi::Function::New(env, ThreadsForLoadJs));
  exports.Set("setJitExecutor", Napi::Function::New(env, SetJitExecutorJs));
  exports.Set("getJitExecutor", Napi::Function::New(env, GetJitExecutorJs));
  exports.Set("setMkldnn", Napi::Function::New(env, SetMkldnnJs));
  exports.Set("buildInfo", Napi::Function::New(env, BuildInfo));
  exports.Set("tensorStats", Napi::Function::New(env, TensorStats));
  exports.Set("stopJobsForExit", Napi::Function::New(env, [](const Napi::CallbackInfo& info) {
                StopJobsForExit();
                return info.Env().Undefined();
              }));
  return exports;
}

}  // namespace

}  // namespace rs

static Napi::Object InitModule(Napi::Env env, Napi::Object exports) { return rs::Init(env, exports); }

NODE_API_MODULE(robust_synth, InitModule)
