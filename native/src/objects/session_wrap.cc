#include "objects/session_wrap.h"

#include <utility>

#include "common.h"
#include "compute_thread.h"
#include "engine.h"
#include "jobs.h"
#include "model.h"
#include "util/convert.h"

namespace rs {

Napi::Function SessionWrap::Class(Napi::Env env) {
  return DefineClass(env, "PgdSession",
                     {InstanceMethod("step", &SessionWrap::Step), InstanceMethod("current", &SessionWrap::Current),
                      InstanceMethod("finish", &SessionWrap::Finish),
                      InstanceMethod("dispose", &SessionWrap::Dispose)});
}

void SessionWrap::CheckOpen(Napi::Env env) const {
  if (disposed_) throw CodedError(env, code::kDisposed, "the session was disposed");
  if (!run) throw CodedError(env, code::kBadInput, "the session is finished");
}

namespace {

// A job on the session's compute thread that works on the live run and hands back one tensor.
Napi::Value TensorJob(const Napi::CallbackInfo& info, std::shared_ptr<Model> model, std::shared_ptr<PgdRun> run,
                      torch::Tensor (*work)(PgdRun&)) {
  return StartJob(info.Env(), ComputeThread::For(DeviceKey(model->device())), info.Env().Undefined(),
                  [model, run, work](JobContext& ctx) -> Builder {
                    ctx.Check(model.get());
                    auto t = work(*run);
                    return [t](Napi::Env env) { return TensorToJs(env, t); };
                  });
}

}  // namespace

Napi::Value SessionWrap::Step(const Napi::CallbackInfo& info) {
  CheckOpen(info.Env());
  return TensorJob(info, model, run, [](PgdRun& r) { return r.Step(); });
}

Napi::Value SessionWrap::Current(const Napi::CallbackInfo& info) {
  CheckOpen(info.Env());
  return TensorJob(info, model, run, [](PgdRun& r) { return r.Current(); });
}

// The job takes the session's references: once it is over, the session holds nothing native.
Napi::Value SessionWrap::Finish(const Napi::CallbackInfo& info) {
  CheckOpen(info.Env());
  auto model = std::move(this->model);
  auto run = std::move(this->run);
  return StartJob(info.Env(), ComputeThread::For(DeviceKey(model->device())), info.Env().Undefined(),
                  [model, run](JobContext& ctx) -> Builder {
                    ctx.Check(model.get());
                    auto r = run->Finish();
                    return [r](Napi::Env env) { return ResultToJs(env, r, 0); };
                  });
}

// Frees the run (iterate, best iterate, inputs) and the model reference now, not when V8
// collects this object (it knows nothing of their size). The references are let go on the
// compute thread, after the session's jobs queued before; a step already running finishes
// first and drops its own. Idempotent: a later call resolves at once.
Napi::Value SessionWrap::Dispose(const Napi::CallbackInfo& info) {
  auto env = info.Env();
  disposed_ = true;
  auto model = std::move(this->model);
  auto run = std::move(this->run);
  if (!model) {
    auto d = Napi::Promise::Deferred::New(env);
    d.Resolve(env.Undefined());
    auto h = Napi::Object::New(env);
    h.Set("promise", d.Promise());
    h.Set("cancel", Napi::Function::New(env, [](const Napi::CallbackInfo&) {}));
    return h;
  }
  auto& thread = ComputeThread::For(DeviceKey(model->device()));
  return StartJob(env, thread, env.Undefined(), [model, run](JobContext&) mutable -> Builder {
    run.reset();
    model.reset();
    return [](Napi::Env env) { return env.Undefined(); };
  });
}

}  // namespace rs
