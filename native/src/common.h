// Shared types of the robust-synth native addon. Nothing here touches N-API, so the engine
// and the compute thread can be unit-compiled and reasoned about without a JS engine.
#pragma once

#include <stdexcept>
#include <string>

namespace rs {

// Stable error codes; lib/errors.ts defines the same set for JS.
namespace code {
constexpr const char* kBadInput = "ERR_BAD_INPUT";
constexpr const char* kModelLoad = "ERR_MODEL_LOAD";
constexpr const char* kModelOutput = "ERR_MODEL_OUTPUT";
constexpr const char* kDevice = "ERR_DEVICE";
constexpr const char* kAborted = "ERR_ABORTED";
constexpr const char* kDisposed = "ERR_DISPOSED";
constexpr const char* kOutOfMemory = "ERR_OUT_OF_MEMORY";
constexpr const char* kTorch = "ERR_TORCH";
constexpr const char* kInternal = "ERR_INTERNAL";
}  // namespace code

// Every failure the native side reports carries one of the codes above.
class Error : public std::runtime_error {
 public:
  Error(const char* code, const std::string& message) : std::runtime_error(message), code_(code) {}
  const char* code() const noexcept { return code_; }

 private:
  const char* code_;
};

}  // namespace rs
