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
                     {InstanceMethod("step", &SessionWrap::Step), InstanceMethod("finish", &SessionWrap::Finish)});
}

Napi::Value SessionWrap::Step(const Napi::CallbackInfo& info) {
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
