// The addon's process-level functions (load, the thread policy, the JIT executor, oneDNN, build
// facts, tensor counting, exit) and the process-wide malloc and allocator settings that module
// load applies. addon.cc exports them.
#pragma once

#include <napi.h>

namespace rs {

// Applied once per process, before anything allocates tensors.
void TuneMalloc();
void MaybeCountAllocations();

Napi::Value Load(const Napi::CallbackInfo& info);
Napi::Value SetThreads(const Napi::CallbackInfo& info);
Napi::Value GetThreads(const Napi::CallbackInfo& info);
Napi::Value ThreadPolicy(const Napi::CallbackInfo& info);
Napi::Value ThreadsForLoadJs(const Napi::CallbackInfo& info);
Napi::Value SetJitExecutorJs(const Napi::CallbackInfo& info);
Napi::Value GetJitExecutorJs(const Napi::CallbackInfo& info);
Napi::Value SetMkldnnJs(const Napi::CallbackInfo& info);
Napi::Value BuildInfo(const Napi::CallbackInfo& info);
Napi::Value TensorStats(const Napi::CallbackInfo& info);
Napi::Value StopJobsForExitJs(const Napi::CallbackInfo& info);

}  // namespace rs
