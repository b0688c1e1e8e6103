#include "util/args.h"

#include <cmath>

#include "common.h"
#include "jobs.h"

namespace rs {

[[noreturn]] void Bad(Napi::Env env, const std::string& message) {
  throw CodedError(env, code::kBadInput, message);
}

Napi::Object ObjectArg(const Napi::CallbackInfo& info, size_t i, const char* what) {
  if (info.Length() <= i || !info[i].IsObject()) Bad(info.Env(), std::string(what) + " must be an object");
  return info[i].As<Napi::Object>();
}

double Num(Napi::Object o, const char* key, double fallback) {
  auto v = o.Get(key);
  if (v.IsUndefined()) return fallback;
  if (!v.IsNumber()) Bad(o.Env(), std::string(key) + " must be a number");
  return v.As<Napi::Number>().DoubleValue();
}

// An integral number in [lo, hi]; the range check comes first, since casting an out-of-range
// or NaN double to an integer is undefined behaviour.
int64_t Int(Napi::Object o, const char* key, int64_t fallback, double lo, double hi) {
  double x = Num(o, key, static_cast<double>(fallback));
  if (!(x >= lo && x <= hi) || x != std::floor(x)) {
    Bad(o.Env(), std::string(key) + " must be an integer in [" + std::to_string(static_cast<int64_t>(lo)) + ", " +
                     std::to_string(static_cast<int64_t>(hi)) + "]");
  }
  return static_cast<int64_t>(x);
}

bool Bool(Napi::Object o, const char* key, bool fallback) {
  auto v = o.Get(key);
  if (v.IsUndefined()) return fallback;
  if (!v.IsBoolean()) Bad(o.Env(), std::string(key) + " must be a boolean");
  return v.As<Napi::Boolean>().Value();
}

std::vector<int64_t> Shape(Napi::Env env, Napi::Value v, const char* what) {
  if (!v.IsArray()) Bad(env, std::string(what) + ".shape must be an array");
  auto a = v.As<Napi::Array>();
  std::vector<int64_t> shape;
  for (uint32_t i = 0; i < a.Length(); ++i) {
    auto d = a.Get(i);
    if (!d.IsNumber()) Bad(env, std::string(what) + ".shape must hold numbers");
    double x = d.As<Napi::Number>().DoubleValue();
    if (!(x >= 1 && x <= kMaxSafeInteger) || x != std::floor(x)) {
      Bad(env, std::string(what) + ".shape must hold positive integers");
    }
    shape.push_back(static_cast<int64_t>(x));
  }
  return shape;
}

}  // namespace rs
