#include "util/convert.h"

#include <cmath>
#include <cstdint>
#include <cstring>
#include <vector>

#include "util/args.h"

namespace rs {

// { data: Float32Array, shape } -> an owned CPU tensor (a copy: the JS array may change or be
// collected while the compute thread works).
torch::Tensor TensorArg(Napi::Env env, Napi::Value v, const char* what, size_t rank) {
  if (!v.IsObject()) Bad(env, std::string(what) + " must be { data, shape }");
  auto o = v.As<Napi::Object>();
  auto shape = Shape(env, o.Get("shape"), what);
  if (rank && shape.size() != rank) Bad(env, std::string(what) + " must have rank " + std::to_string(rank));
  auto d = o.Get("data");
  if (!d.IsTypedArray() || d.As<Napi::TypedArray>().TypedArrayType() != napi_float32_array) {
    Bad(env, std::string(what) + ".data must be a Float32Array");
  }
  auto arr = d.As<Napi::Float32Array>();
  double n = 1;  // in double: an int64 product of hostile sizes could overflow into a match
  for (auto s : shape) n *= static_cast<double>(s);
  if (static_cast<double>(arr.ElementLength()) != n) {
    Bad(env, std::string(what) + ".data has " + std::to_string(arr.ElementLength()) + " values, shape needs " +
                 std::to_string(n));
  }
  // A plain memcpy, not from_blob(...).clone(): an ATen copy this large runs an OpenMP parallel
  // region, and one on the JS thread gives the process a second OpenMP team; libgomp then sees
  // more threads than cores and stops spinning between parallel regions, so every region of
  // every later step pays a futex wake-up (measured: ResNet50 step 150 ms instead of 120 ms).
  auto t = torch::empty(shape, torch::kFloat32);
  if (n > 0) std::memcpy(t.data_ptr<float>(), arr.Data(), sizeof(float) * static_cast<size_t>(n));
  return t;
}

torch::Tensor TargetsArg(Napi::Env env, Napi::Value v) {
  if (!v.IsTypedArray() || v.As<Napi::TypedArray>().TypedArrayType() != napi_int32_array) {
    Bad(env, "targets must be an Int32Array");
  }
  auto a = v.As<Napi::Int32Array>();
  const auto n = static_cast<int64_t>(a.ElementLength());
  auto t = torch::empty({n}, torch::kInt64);  // element by element, for the same reason as above
  auto* out = t.data_ptr<int64_t>();
  for (int64_t i = 0; i < n; ++i) out[i] = a[static_cast<size_t>(i)];
  return t;
}

PgdConfig ConfigArg(Napi::Env env, Napi::Object o) {
  PgdConfig c;
  auto constraint = o.Get("constraint");
  std::string cs = constraint.IsString() ? constraint.As<Napi::String>().Utf8Value() : "2";
  if (cs == "2") c.constraint = Constraint::kL2;
  else if (cs == "inf") c.constraint = Constraint::kLinf;
  else if (cs == "unconstrained") c.constraint = Constraint::kUnconstrained;
  else Bad(env, "constraint must be '2', 'inf' or 'unconstrained'");
  c.eps = Num(o, "eps", 0);
  c.step = Num(o, "step", 0);
  if (!(c.eps >= 0 && std::isfinite(c.eps)) || !(c.step >= 0 && std::isfinite(c.step))) {
    Bad(env, "eps and step must be finite and >= 0");
  }
  c.iterations = Int(o, "iterations", 0, 0, kMaxSafeInteger);
  c.useBest = Bool(o, "useBest", true);
  c.randomStart = Bool(o, "randomStart", false);
  c.seed = static_cast<uint64_t>(Int(o, "seed", 0, 0, kMaxSafeInteger));
  c.targeted = Bool(o, "targeted", true);
  c.bf16 = Bool(o, "bf16", false);
  c.penaltyWeight = Num(o, "penaltyWeight", 0);
  if (!std::isfinite(c.penaltyWeight)) Bad(env, "penaltyWeight must be finite");
  auto feature = o.Get("featureIndex");
  const bool inversion = Bool(o, "inversion", false);
  if (inversion && !feature.IsUndefined()) Bad(env, "give either feature or inversion, not both");
  if (inversion) c.objective = Objective::kInversion;
  if (!feature.IsUndefined()) {
    c.objective = Objective::kFeature;
    c.featureIndex = Int(o, "featureIndex", 0, 0, kMaxSafeInteger);
    c.featureWeight = Num(o, "featureWeight", 1);
    if (!std::isfinite(c.featureWeight)) Bad(env, "featureWeight must be finite");
  }
  return c;
}

PgdInputs InputsArg(Napi::Env env, Napi::Object o, const PgdConfig& c) {
  PgdInputs in;
  in.x0 = TensorArg(env, o.Get("x0"), "x0");
  in.targets = TargetsArg(env, o.Get("targets"));
  if (c.penaltyWeight != 0) {
    in.mask = TensorArg(env, o.Get("mask"), "mask");
    in.reference = TensorArg(env, o.Get("reference"), "reference");
    if (!in.mask.sizes().equals(in.x0.sizes()) || !in.reference.sizes().equals(in.x0.sizes())) {
      Bad(env, "mask and reference must have x0's shape");
    }
  }
  if (c.objective == Objective::kInversion) {
    in.targetRep = TensorArg(env, o.Get("targetRep"), "targetRep", 2);
    if (in.targetRep.size(0) != in.x0.size(0)) Bad(env, "targetRep must hold one representation per sample of x0");
  }
  return in;
}

// Hands a CPU tensor's memory to JS without a copy; the Buffer's finalizer frees the tensor.
Napi::Value TensorToJs(Napi::Env env, torch::Tensor t) {
  auto* holder = new torch::Tensor(t.contiguous());
  const auto bytes = static_cast<int64_t>(holder->nbytes());
  auto buf = Napi::Buffer<uint8_t>::New(
      env, static_cast<uint8_t*>(holder->data_ptr()), holder->nbytes(),
      [](Napi::Env env, uint8_t*, torch::Tensor* h) {
        Napi::MemoryManagement::AdjustExternalMemory(env, -static_cast<int64_t>(h->nbytes()));
        delete h;
      },
      holder);
  Napi::MemoryManagement::AdjustExternalMemory(env, bytes);
  auto shape = Napi::Array::New(env, t.dim());
  for (int64_t i = 0; i < t.dim(); ++i) shape.Set(static_cast<uint32_t>(i), Napi::Number::New(env, t.size(i)));
  auto o = Napi::Object::New(env);
  o.Set("data", buf);
  o.Set("shape", shape);
  o.Set("dtype", Napi::String::New(env, t.scalar_type() == torch::kInt32 ? "int32" : "float32"));
  return o;
}

Napi::Value ResultToJs(Napi::Env env, const PgdResult& r, double ms) {
  auto o = Napi::Object::New(env);
  o.Set("images", TensorToJs(env, r.images));
  o.Set("losses", TensorToJs(env, r.losses));
  o.Set("predictions", TensorToJs(env, r.predictions));
  auto stats = Napi::Object::New(env);
  stats.Set("ms", Napi::Number::New(env, ms));
  stats.Set("steps", Napi::Number::New(env, static_cast<double>(r.steps)));
  o.Set("stats", stats);
  return o;
}

}  // namespace rs
