// NativeModel: a loaded classifier as JS sees it. Every method validates its arguments on the
// JS thread and runs its work as a job on the model's device's compute thread.
// Created by load() (process.cc), never from JS directly.
#pragma once

#include <napi.h>

#include <memory>

namespace rs {

class ComputeThread;
class Model;

class ModelWrap : public Napi::ObjectWrap<ModelWrap> {
 public:
  static Napi::Function Class(Napi::Env env);
  explicit ModelWrap(const Napi::CallbackInfo& info) : Napi::ObjectWrap<ModelWrap>(info) {}

  std::shared_ptr<Model> model;

 private:
  // The model, or ERR_DISPOSED.
  std::shared_ptr<Model> Live(Napi::Env env);
  ComputeThread& Thread();

  Napi::Value Info(const Napi::CallbackInfo& info);
  Napi::Value Forward(const Napi::CallbackInfo& info, bool features);
  Napi::Value Logits(const Napi::CallbackInfo& info);
  Napi::Value Features(const Napi::CallbackInfo& info);
  Napi::Value Pgd(const Napi::CallbackInfo& info);
  Napi::Value CreateSession(const Napi::CallbackInfo& info);
  Napi::Value Floor(const Napi::CallbackInfo& info);
  Napi::Value Dispose(const Napi::CallbackInfo& info);
};

}  // namespace rs
