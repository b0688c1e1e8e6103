// Async jobs: a promise created on the JS thread, work run on a device's compute thread,
// progress and the result delivered back through a thread-safe function. Nothing the compute
// thread does can throw past this layer: every exception becomes a rejected promise whose
// error has a stable `code`.
#pragma once

#include <napi.h>

#include <atomic>
#include <condition_variable>
#include <functional>
#include <memory>
#include <mutex>
#include <set>

#include "compute_thread.h"

namespace rs {

class Model;
struct JobState;

// What a JS environment (the main thread or one worker) owns. Jobs hold it by shared_ptr,
// so it outlives a torn-down environment whose jobs are still queued.
struct EnvData {
  std::mutex mu;
  std::condition_variable cv;
  // Set when the environment is torn down (exit, worker.terminate()). From then on no job
  // touches its thread-safe functions, which the teardown deletes.
  bool closing = false;
  // The environment of the process's main thread: its teardown is the process ending.
  bool main = false;
  int running = 0;                                      // jobs of this env inside their work
  std::set<std::shared_ptr<std::atomic<bool>>> active;  // abort flags of running/queued jobs
  Napi::FunctionReference modelClass;
  Napi::FunctionReference sessionClass;
};

std::shared_ptr<EnvData> GetEnvData(Napi::Env env);

// Builds the JS value of a finished job, on the JS thread.
using Builder = std::function<Napi::Value(Napi::Env)>;

// Something to run on the JS thread for a job: its progress or its result.
using Delivery = std::function<void(Napi::Env, JobState&)>;
void DeliverOnJsThread(Napi::Env env, Napi::Function, JobState* state, Delivery* d);
using JobTsfn = Napi::TypedThreadSafeFunction<JobState, Delivery, DeliverOnJsThread>;

// Handed to the work function on the compute thread.
class JobContext {
 public:
  // Throws rs::Error (ERR_ABORTED / ERR_DISPOSED) if the job should stop now.
  void Check(const Model* model = nullptr) const;
  // Non-blocking: a slow JS thread drops nothing but delays progress; never stalls compute.
  void Progress(int64_t step, int64_t total, double loss, double elapsedMs) const;
  bool wantsProgress() const { return hasProgress_; }

 private:
  friend Napi::Object StartJob(Napi::Env, ComputeThread&, Napi::Value, std::function<Builder(JobContext&)>,
                               Napi::Object);
  std::shared_ptr<std::atomic<bool>> abort_;
  std::shared_ptr<EnvData> env_;
  JobTsfn tsfn_;
  bool hasProgress_ = false;
};

// Posts `work` to `thread`. Returns { promise, cancel } to JS; cancel() sets the abort flag
// that the work checks between steps (and before it starts, if still queued). `keep` (a JS
// object the result will hand back) is held strongly until the job is over; it is released on
// the JS thread, never by the compute thread.
Napi::Object StartJob(Napi::Env env, ComputeThread& thread, Napi::Value onProgress,
                      std::function<Builder(JobContext&)> work, Napi::Object keep = Napi::Object());

// For process exit: aborts every job of every environment, waits until no compute thread is
// inside one, then ends and joins the compute threads (up to a minute in all); jobs started
// afterwards do nothing. Irreversible; safe to call again.
void StopJobsForExit();

// An Error with a `code` property, as every native failure reaches JS.
Napi::Error CodedError(Napi::Env env, const char* code, const std::string& message);

}  // namespace rs
