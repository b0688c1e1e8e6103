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
                      InstanceMethod("finish", &SessionWrap::Finish)});
}

namespace {

// A job on the session's compute thread that works on the live run and hands back one tensor.
Napi::Value TensorJob(const Napi::CallbackInfo& info, std::shared_ptr<Model> model, std::shared_ptr<PgdRun> run,
                      torch::Tensor (*work)(PgdRun&)) {
  if (!run) throw CodedError(info.Env(), code::kBadInput, "the session is finished");
  return StartJob(info.Env(), ComputeThread::For(DeviceKey(model->device())), info.Env().Undefined(),
                  [model, run, work](JobContext& ctx) -> Builder {
                    ctx.Check(model.get());
                    auto t = work(*run);
                    return [t](Napi::Env env) { return TensorToJs(env, t); };
                  });
}

}  // namespace

Napi::Value SessionWrap::Step(const Napi::CallbackInfo& info) {
  return TensorJob(info, model, run, [](PgdRun& r) { return r.Step(); });
}

Napi::Value SessionWrap::Current(const Napi::CallbackInfo& info) {
  return TensorJob(info, model, run, [](PgdRun& r) { return r.Current(); });
}

Napi::Value SessionWrap::Finish(const Napi::CallbackInfo& info) {
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

}  // namespace rs
