// Argument parsing for the N-API surface. JS arguments are copied into plain C++ values on the
// JS thread; lib/ has already validated them, so these checks are a cheap second line that turns
// a mistake into ERR_BAD_INPUT instead of undefined behaviour.
#pragma once

#include <napi.h>

#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

namespace rs {

constexpr double kMaxSafeInteger = 9007199254740991.0;  // 2^53 - 1

// Throws ERR_BAD_INPUT with `message`.
[[noreturn]] void Bad(Napi::Env env, const std::string& message);

Napi::Object ObjectArg(const Napi::CallbackInfo& info, size_t i, const char* what);

// o[key]: `fallback` when undefined, ERR_BAD_INPUT when not of the expected type.
double Num(Napi::Object o, const char* key, double fallback);
int64_t Int(Napi::Object o, const char* key, int64_t fallback, double lo, double hi);
bool Bool(Napi::Object o, const char* key, bool fallback);

// An array of positive integers (at most 2^53 - 1); `what` names it in the error.
std::vector<int64_t> Shape(Napi::Env env, Napi::Value v, const char* what);

}  // namespace rs
