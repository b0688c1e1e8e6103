// PgdSession: a run whose state stays native between JS calls (the `step` primitive).
// Created by NativeModel.createSession (objects/model_wrap.cc), never from JS directly.
#pragma once

#include <napi.h>

#include <memory>

namespace rs {

class Model;
class PgdRun;

class SessionWrap : public Napi::ObjectWrap<SessionWrap> {
 public:
  static Napi::Function Class(Napi::Env env);
  explicit SessionWrap(const Napi::CallbackInfo& info) : Napi::ObjectWrap<SessionWrap>(info) {}

  // Both are let go by finish() (the run) and dispose() (both), so that a session object JS
  // still holds keeps neither the iterate nor the model's weights alive.
  std::shared_ptr<Model> model;
  std::shared_ptr<PgdRun> run;

 private:
  Napi::Value Step(const Napi::CallbackInfo& info);
  Napi::Value Current(const Napi::CallbackInfo& info);
  Napi::Value Finish(const Napi::CallbackInfo& info);
  Napi::Value Dispose(const Napi::CallbackInfo& info);
  // Throws ERR_DISPOSED after dispose(), ERR_BAD_INPUT after finish().
  void CheckOpen(Napi::Env env) const;

  bool disposed_ = false;
};

}  // namespace rs
