#include "objects/model_wrap.h"

#include <torch/torch.h>

#include <chrono>
#include <utility>
#include <vector>

#include "common.h"
#include "compute_thread.h"
#include "engine.h"
#include "jobs.h"
#include "model.h"
#include "objects/session_wrap.h"
#include "util/args.h"
#include "util/convert.h"

namespace rs {

namespace {

using Clock = std::chrono::steady_clock;

double MsSince(Clock::time_point t0) {
  return std::chrono::duration<double, std::milli>(Clock::now() - t0).count();
}

}  // namespace

Napi::Function ModelWrap::Class(Napi::Env env) {
  return DefineClass(env, "NativeModel",
                     {InstanceMethod("logits", &ModelWrap::Logits),
                      InstanceMethod("features", &ModelWrap::Features),
                      InstanceMethod("pgd", &ModelWrap::Pgd),
                      InstanceMethod("createSession", &ModelWrap::CreateSession),
                      InstanceMethod("floor", &ModelWrap::Floor),
                      InstanceMethod("dispose", &ModelWrap::Dispose),
                      InstanceMethod("info", &ModelWrap::Info)});
}

std::shared_ptr<Model> ModelWrap::Live(Napi::Env env) {
  if (!model || model->disposed) throw CodedError(env, code::kDisposed, "the classifier was disposed");
  return model;
}

ComputeThread& ModelWrap::Thread() { return ComputeThread::For(DeviceKey(model->device())); }

Napi::Value ModelWrap::Info(const Napi::CallbackInfo& info) {
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

Napi::Value ModelWrap::Forward(const Napi::CallbackInfo& info, bool features) {
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

Napi::Value ModelWrap::Logits(const Napi::CallbackInfo& info) { return Forward(info, false); }
Napi::Value ModelWrap::Features(const Napi::CallbackInfo& info) { return Forward(info, true); }

Napi::Value ModelWrap::Pgd(const Napi::CallbackInfo& info) {
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

Napi::Value ModelWrap::CreateSession(const Napi::CallbackInfo& info) {
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
Napi::Value ModelWrap::Floor(const Napi::CallbackInfo& info) {
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
Napi::Value ModelWrap::Dispose(const Napi::CallbackInfo& info) {
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

}  // namespace rs
