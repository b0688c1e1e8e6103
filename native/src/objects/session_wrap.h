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

  std::shared_ptr<Model> model;
  std::shared_ptr<PgdRun> run;

 private:
  Napi::Value Step(const Napi::CallbackInfo& info);
  Napi::Value Current(const Napi::CallbackInfo& info);
  Napi::Value Finish(const Napi::CallbackInfo& info);
};

}  // namespace rs
