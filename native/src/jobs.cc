#include "jobs.h"

#include <c10/util/Exception.h>

#include <chrono>

#include "common.h"
#include "model.h"

namespace rs {

namespace {

struct Failure {
  const char* code;
  std::string message;
};

bool LooksLikeOom(const std::string& m) {
  return m.find("out of memory") != std::string::npos || m.find("can't allocate memory") != std::string::npos;
}

// Environment teardown (process exit, worker.terminate()): abort this environment's jobs and
// wait until the compute threads have let go of them, so no job outlives the JS engine it
// would report to. A job stops within one PGD step.
void OnEnvCleanup(EnvData* raw) {
  std::unique_lock<std::mutex> lock(raw->mu);
  for (auto& flag : raw->active) flag->store(true);
  raw->cv.wait_for(lock, std::chrono::seconds(60), [raw] { return raw->active.empty(); });
}

}  // namespace

std::shared_ptr<EnvData> GetEnvData(Napi::Env env) {
  auto* holder = env.GetInstanceData<std::shared_ptr<EnvData>>();
  if (holder) return *holder;
  auto data = std::make_shared<EnvData>();
  env.SetInstanceData(new std::shared_ptr<EnvData>(data));
  env.AddCleanupHook(OnEnvCleanup, data.get());
  return data;
}

Napi::Error CodedError(Napi::Env env, const char* code, const std::string& message) {
  auto err = Napi::Error::New(env, message);
  err.Set("code", Napi::String::New(env, code));
  return err;
}

void JobContext::Check(const Model* model) const {
  if (abort_->load(std::memory_order_relaxed)) throw Error(code::kAborted, "the job was aborted");
  if (model && model->disposed.load(std::memory_order_relaxed)) {
    throw Error(code::kDisposed, "the classifier was disposed");
  }
}

void JobContext::Progress(int64_t step, int64_t total, double loss, double elapsedMs) const {
  if (!hasProgress_) return;
  tsfn_.NonBlockingCall([=](Napi::Env env, Napi::Function cb) {
    auto p = Napi::Object::New(env);
    p.Set("step", Napi::Number::New(env, static_cast<double>(step)));
    p.Set("total", Napi::Number::New(env, static_cast<double>(total)));
    p.Set("loss", Napi::Number::New(env, loss));
    p.Set("elapsedMs", Napi::Number::New(env, elapsedMs));
    // A throwing progress callback must not poison the job: report it, keep computing.
    try {
      cb.Call({p});
    } catch (const Napi::Error& e) {
      e.Value();  // swallowed: the job's promise is what the caller awaits
    }
  });
}

Napi::Object StartJob(Napi::Env env, ComputeThread& thread, Napi::Value onProgress,
                      std::function<Builder(JobContext&)> work) {
  auto envData = GetEnvData(env);
  auto* deferred = new Napi::Promise::Deferred(env);
  auto promise = deferred->Promise();

  JobContext ctx;
  ctx.abort_ = std::make_shared<std::atomic<bool>>(false);
  ctx.hasProgress_ = onProgress.IsFunction();
  Napi::Function cb = ctx.hasProgress_ ? onProgress.As<Napi::Function>()
                                       : Napi::Function::New(env, [](const Napi::CallbackInfo&) {});
  ctx.tsfn_ = Napi::ThreadSafeFunction::New(
      env, cb, "robust-synth", 0, 1, deferred,
      [](Napi::Env, Napi::Promise::Deferred* d) { delete d; });

  {
    std::lock_guard<std::mutex> lock(envData->mu);
    envData->active.insert(ctx.abort_);
  }

  thread.Post([ctx, envData, deferred, work = std::move(work)]() mutable {
    Builder builder;
    Failure failure{nullptr, {}};
    try {
      ctx.Check();
      builder = work(ctx);
    } catch (const Error& e) {
      failure = {e.code(), e.what()};
    } catch (const c10::Error& e) {
      std::string m = e.what_without_backtrace();
      failure = {LooksLikeOom(m) ? code::kOutOfMemory : code::kTorch, m};
    } catch (const std::bad_alloc&) {
      failure = {code::kOutOfMemory, "out of memory"};
    } catch (const std::exception& e) {
      failure = {code::kInternal, e.what()};
    } catch (...) {
      failure = {code::kInternal, "unknown native error"};
    }

    // If the environment is already closing this call is refused and the lambda (with any
    // tensors it holds) is simply destroyed.
    ctx.tsfn_.BlockingCall([deferred, builder = std::move(builder), failure](Napi::Env env, Napi::Function) {
      if (failure.code) {
        deferred->Reject(CodedError(env, failure.code, failure.message).Value());
        return;
      }
      try {
        deferred->Resolve(builder(env));
      } catch (const Napi::Error& e) {
        deferred->Reject(e.Value());
      } catch (const std::exception& e) {
        deferred->Reject(CodedError(env, code::kInternal, e.what()).Value());
      }
    });
    ctx.tsfn_.Release();
    {
      std::lock_guard<std::mutex> lock(envData->mu);
      envData->active.erase(ctx.abort_);
    }
    envData->cv.notify_all();
  });

  auto handle = Napi::Object::New(env);
  handle.Set("promise", promise);
  auto flag = ctx.abort_;
  handle.Set("cancel", Napi::Function::New(env, [flag](const Napi::CallbackInfo&) { flag->store(true); }));
  return handle;
}

}  // namespace rs
