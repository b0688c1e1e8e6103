// Module registration: the classes and functions the addon exports (binding/index.ts types
// them). The code lives by concern: util/ (argument parsing, JS <-> tensor conversion),
// objects/ (NativeModel, PgdSession), process.cc (process-level functions and settings).
#include <napi.h>

#include "jobs.h"
#include "objects/model_wrap.h"
#include "objects/session_wrap.h"
#include "process.h"
#include "selfcheck.h"

namespace rs {

namespace {

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
  exports.Set("stopJobsForExit", Napi::Function::New(env, StopJobsForExitJs));
  exports.Set("kernelCheckCases", Napi::Function::New(env, KernelCheckCasesJs));
  exports.Set("kernelCheckRun", Napi::Function::New(env, KernelCheckRunJs));
  exports.Set("kernelCheckSaveNet", Napi::Function::New(env, KernelCheckSaveNetJs));
  exports.Set("setTensorExprFuser", Napi::Function::New(env, SetTensorExprFuserJs));
  exports.Set("getTensorExprFuser", Napi::Function::New(env, GetTensorExprFuserJs));
  return exports;
}

}  // namespace

}  // namespace rs

static Napi::Object InitModule(Napi::Env env, Napi::Object exports) { return rs::Init(env, exports); }

NODE_API_MODULE(robust_synth, InitModule)
