// The kernel self-check's native half (binding/kernel-check.ts runs it in a child process):
// convolution cases compared against a float64 path with oneDNN off, and the TensorExpr fuser
// switch the loader applies from its result.
#pragma once

#include <napi.h>

namespace rs {

Napi::Value KernelCheckCasesJs(const Napi::CallbackInfo& info);
Napi::Value KernelCheckRunJs(const Napi::CallbackInfo& info);
Napi::Value KernelCheckSaveNetJs(const Napi::CallbackInfo& info);
Napi::Value SetTensorExprFuserJs(const Napi::CallbackInfo& info);
Napi::Value GetTensorExprFuserJs(const Napi::CallbackInfo& info);

}  // namespace rs
