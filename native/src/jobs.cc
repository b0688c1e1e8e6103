#include "jobs.h"

#include <c10/util/Exception.h>
#include <torch/csrc/jit/runtime/jit_exception.h>

#include <sys/syscall.h>
#include <unistd.h>

#include <chrono>
#include <cstdlib>

#include "common.h"
#include "model.h"

namespace rs {

// What a job owns on the JS side. Deleted by its thread-safe function's finalizer, which runs
// on the JS thread (after the last delivery, or when the environment is torn down), so no JS
// reference is ever released by the compute thread.
struct JobState {
  explicit JobState(Napi::Env env) : deferred(Napi::Promise::Deferred::New(env)) {}
  Napi::Promise::Deferred deferred;
  Napi::FunctionReference onProgress;
  Napi::ObjectReference keep;
};

namespace {

struct Failure {
  const char* code;
  std::string message;
};

bool LooksLikeOom(const std::string& m) {
  return m.find("out of memory") != std::string::npos || m.find("can't allocate memory") != std::string::npos;
}

// Queues `d` for the JS thread; frees it if the environment no longer takes calls.
void Send(const JobTsfn& tsfn, Delivery* d, napi_threadsafe_function_call_mode mode) {
  napi_status s = mode == napi_tsfn_blocking ? tsfn.BlockingCall(d) : tsfn.NonBlockingCall(d);
  if (s != napi_ok) delete d;
}

// Environment teardown (process exit, worker.terminate()): abort this environment's jobs and
// stop them from touching it. Queued jobs see `closing` and drop themselves; a running one is
// waited for (it stops within one PGD step), so that process exit never unloads LibTorch
// under a busy compute thread. Jobs queued behind another environment's work are not waited
// for, so terminating a worker never waits on the main thread's jobs.
void OnEnvCleanup(EnvData* raw) {
  {
    std::unique_lock<std::mutex> lock(raw->mu);
    raw->closing = true;
    for (auto& flag : raw->active) flag->store(true);
    raw->cv.wait_for(lock, std::chrono::seconds(60), [raw] { return raw->running == 0; });
  }
  // A queued job may hold EnvData past this environment; its references must go with it.
  raw->modelClass.Reset();
  raw->sessionClass.Reset();
  // The main environment is torn down when the process ends on its own, after the 'exit'
  // event and before static destructors: the compute threads stop here even for a caller
  // that loaded the addon without the loader's 'exit' listener.
  if (raw->main) StopJobsForExit();
}

bool OnMainThread() {
#if defined(__linux__)
  return syscall(SYS_gettid) == getpid();
#else
  return false;
#endif
}

// Process exit (process.exit(), an uncaught exception) calls exit() without tearing the
// environments down, so no cleanup hook runs, and static destructors (LibTorch's, oneDNN's)
// would run under a compute thread still inside an operator: a segfault, every time.
// StopJobsForExit() stops every job first, then the compute threads themselves (an idle one may
// still be running a thread-count change: see ComputeThread::StopAllForExit). The loader calls
// it from process.on('exit'), which runs before exit(); the main environment's cleanup hook
// and an atexit handler are further lines (the latter runs before the destructors registered
// earlier, but after those of statics LibTorch creates lazily).
struct ExitGate {
  std::mutex mu;
  std::condition_variable cv;
  std::atomic<bool> exiting{false};
  int pending = 0;  // jobs posted to any compute thread and not finished
};

ExitGate& Gate() {
  static auto* gate = new ExitGate();  // never destroyed: compute threads outlive statics
  return *gate;
}

void OnProcessExit() { StopJobsForExit(); }

}  // namespace

void StopJobsForExit() {
  auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(60);
  auto& g = Gate();
  {
    std::unique_lock<std::mutex> lock(g.mu);
    g.exiting = true;
    g.cv.wait_until(lock, deadline, [&g] { return g.pending == 0; });
  }
  ComputeThread::StopAllForExit(deadline);
}

void DeliverOnJsThread(Napi::Env env, Napi::Function, JobState* state, Delivery* d) {
  std::unique_ptr<Delivery> owned(d);
  if (static_cast<napi_env>(env) == nullptr || state == nullptr || !owned) return;  // torn down: just free it
  // While an environment is torn down it still dispatches queued calls but cannot run JS:
  // N-API calls fail and node-addon-api throws. Nothing may escape into this C callback
  // (it would std::terminate the process).
  try {
    (*owned)(env, *state);
  } catch (...) {
  }
}

std::shared_ptr<EnvData> GetEnvData(Napi::Env env) {
  auto* holder = env.GetInstanceData<std::shared_ptr<EnvData>>();
  if (holder) return *holder;
  static std::once_flag atExit;
  std::call_once(atExit, [] { std::atexit(OnProcessExit); });
  auto data = std::make_shared<EnvData>();
  data->main = OnMainThread();
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
  if (abort_->load(std::memory_order_relaxed) || Gate().exiting.load(std::memory_order_relaxed)) {
    throw Error(code::kAborted, "the job was aborted");
  }
  if (model && model->disposed.load(std::memory_order_relaxed)) {
    throw Error(code::kDisposed, "the classifier was disposed");
  }
  ComputeThread::Adapt();
}

void JobContext::Progress(int64_t step, int64_t total, double loss, double elapsedMs) const {
  if (!hasProgress_) return;
  std::lock_guard<std::mutex> lock(env_->mu);
  if (env_->closing) return;
  Send(tsfn_, new Delivery([=](Napi::Env env, JobState& s) {
         if (s.onProgress.IsEmpty()) return;
         auto p = Napi::Object::New(env);
         p.Set("step", Napi::Number::New(env, static_cast<double>(step)));
         p.Set("total", Napi::Number::New(env, static_cast<double>(total)));
         p.Set("loss", Napi::Number::New(env, loss));
         p.Set("elapsedMs", Napi::Number::New(env, elapsedMs));
         // A throwing progress callback must not poison the job: the error is dropped (by
         // DeliverOnJsThread), the job keeps computing, and its promise is what the caller awaits.
         s.onProgress.Call({p});
       }),
       napi_tsfn_nonblocking);
}

Napi::Object StartJob(Napi::Env env, ComputeThread& thread, Napi::Value onProgress,
                      std::function<Builder(JobContext&)> work, Napi::Object keep) {
  auto envData = GetEnvData(env);
  auto* state = new JobState(env);
  auto promise = state->deferred.Promise();

  JobContext ctx;
  ctx.abort_ = std::make_shared<std::atomic<bool>>(false);
  ctx.env_ = envData;
  ctx.hasProgress_ = onProgress.IsFunction();
  try {
    if (ctx.hasProgress_) state->onProgress = Napi::Persistent(onProgress.As<Napi::Function>());
    if (!keep.IsEmpty()) state->keep = Napi::Persistent(keep);
    ctx.tsfn_ = JobTsfn::New(env, "robust-synth", 0, 1, state, [](Napi::Env, void*, JobState* s) { delete s; });
  } catch (...) {
    delete state;
    throw;
  }

  {
    std::lock_guard<std::mutex> lock(envData->mu);
    envData->active.insert(ctx.abort_);
  }

  auto& gate = Gate();
  {
    std::lock_guard<std::mutex> lock(gate.mu);
    ++gate.pending;
  }
  thread.Post([ctx, work = std::move(work), &gate]() mutable {
    EnvData& envData = *ctx.env_;
    // Last thing the job does: everything it owned is released before, so that process exit,
    // which waits for this, never runs static destructors under a live tensor.
    auto leave = [&gate] {
      {
        std::lock_guard<std::mutex> lock(gate.mu);
        --gate.pending;
      }
      gate.cv.notify_all();
    };
    {
      std::lock_guard<std::mutex> lock(envData.mu);
      // Its environment is gone, or the process is exiting: never start, never touch it.
      if (envData.closing || gate.exiting) {
        envData.active.erase(ctx.abort_);
        work = nullptr;
        leave();
        return;
      }
      ++envData.running;
    }
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
    } catch (const torch::jit::JITException& e) {  // the model's own `raise`
      failure = {code::kTorch, e.what()};
    } catch (const std::bad_alloc&) {
      failure = {code::kOutOfMemory, "out of memory"};
    } catch (const std::exception& e) {
      failure = {code::kInternal, e.what()};
    } catch (...) {
      failure = {code::kInternal, "unknown native error"};
    }
    // The job's inputs (and whatever else the work captured) are freed here, before the
    // promise settles: a caller that sees the result or the rejection sees the memory back.
    work = nullptr;

    {
      // Under the lock, so that teardown cannot delete the thread-safe function mid-call. The
      // queue is unbounded: this never blocks.
      std::lock_guard<std::mutex> lock(envData.mu);
      if (!envData.closing && !gate.exiting) {
        Send(ctx.tsfn_, new Delivery([builder = std::move(builder), failure](Napi::Env env, JobState& s) {
               if (failure.code) {
                 s.deferred.Reject(CodedError(env, failure.code, failure.message).Value());
                 return;
               }
               try {
                 s.deferred.Resolve(builder(env));
               } catch (const Napi::Error& e) {
                 s.deferred.Reject(e.Value());
               } catch (const std::exception& e) {
                 s.deferred.Reject(CodedError(env, code::kInternal, e.what()).Value());
               }
             }),
             napi_tsfn_blocking);
        ctx.tsfn_.Release();
      }
      --envData.running;
      envData.active.erase(ctx.abort_);
    }
    envData.cv.notify_all();
    builder = nullptr;  // undelivered (exiting or torn down): freed before leaving
    leave();
  });

  auto handle = Napi::Object::New(env);
  handle.Set("promise", promise);
  auto flag = ctx.abort_;
  handle.Set("cancel", Napi::Function::New(env, [flag](const Napi::CallbackInfo&) { flag->store(true); }));
  return handle;
}

}  // namespace rs
