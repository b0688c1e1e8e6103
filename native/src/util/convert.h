// JS values <-> tensors and the engine's types. Inputs are copied into tensors the JS side can
// no longer touch; results go back to JS as zero-copy Buffers that own their tensor.
#pragma once

#include <napi.h>
#include <torch/torch.h>

#include <cstddef>
#include <string>

#include "engine.h"

namespace rs {

// { data: Float32Array, shape } -> an owned CPU float32 tensor; rank 0 accepts any rank.
torch::Tensor TensorArg(Napi::Env env, Napi::Value v, const char* what, size_t rank = 4);
// Int32Array -> an owned CPU int64 tensor [n].
torch::Tensor TargetsArg(Napi::Env env, Napi::Value v);
PgdConfig ConfigArg(Napi::Env env, Napi::Object o);
PgdInputs InputsArg(Napi::Env env, Napi::Object o, const PgdConfig& c);

// A CPU tensor -> { data: Buffer, shape, dtype }.
Napi::Value TensorToJs(Napi::Env env, torch::Tensor t);
// -> { images, losses, predictions, stats: { ms, steps } }.
Napi::Value ResultToJs(Napi::Env env, const PgdResult& r, double ms);

// The key of a device's compute thread (ComputeThread::For).
inline std::string DeviceKey(const torch::Device& d) { return d.str(); }

}  // namespace rs
