// A loaded TorchScript classifier, pinned to one device. Used only from that device's
// compute thread, so it needs no locking of its own.
#pragma once

#include <torch/script.h>

#include <atomic>
#include <memory>
#include <string>
#include <vector>

namespace rs {

// How a module is prepared at load time (measured in bench/; see bench/README.md).
struct LoadConfig {
  // Weights (and inputs, on the way in) in channels-last (NHWC) memory format: oneDNN's
  // convolutions then skip a layout reorder before and after each call.
  bool channelsLast = false;
  // torch::jit::freeze: weights become constants, BatchNorm folds into the convolution before
  // it. Gradients w.r.t. the input still flow. Changes results at the 1e-7 (relative) level.
  // Freezing drops aten::detach: a forward() that detaches is never frozen, and a features()
  // that detaches (the fake ReLU) runs on the unfrozen module while forward() runs frozen.
  bool freeze = false;
  // When freezing fails: true throws ERR_MODEL_LOAD, false keeps the module unfrozen.
  bool freezeStrict = false;
  // No shape was given and the model has no card: probe common shapes (see ShapeCandidates).
  bool inferShape = false;
};

class Model {
 public:
  // Loads `path`, moves it to `device`, freezes the weights (only input gradients are ever
  // needed) and probes one forward on zeros of `inputShape` (C, H, W) to learn the class count
  // and reject modules whose output is not [n, classes]. With config.inferShape, `inputShape`
  // is ignored: the first common shape the module accepts is used (inputShape() tells which).
  static std::shared_ptr<Model> Load(const std::string& path, const torch::Device& device,
                                     const std::vector<int64_t>& inputShape, const LoadConfig& config = {});

  torch::Tensor Logits(const torch::Tensor& x);
  torch::Tensor Features(const torch::Tensor& x);

  const torch::Device& device() const { return device_; }
  int64_t numClasses() const { return numClasses_; }
  bool hasFeatures() const { return hasFeatures_; }
  const std::vector<int64_t>& inputShape() const { return inputShape_; }
  const LoadConfig& config() const { return config_; }

  // Set by dispose(); every job checks it before and during its work.
  std::atomic<bool> disposed{false};

 private:
  Model(torch::jit::Module module, torch::jit::Module forward, torch::Device device)
      : module_(std::move(module)), forward_(std::move(forward)), device_(device) {}
  torch::Tensor In(const torch::Tensor& x) const;

  torch::jit::Module module_;   // features()
  torch::jit::Module forward_;  // forward(): the same module, or its frozen copy
  torch::Device device_;
  int64_t numClasses_ = 0;
  bool hasFeatures_ = false;
  std::vector<int64_t> inputShape_;
  LoadConfig config_;
};

// Resolves 'cpu' | 'cuda' | 'cuda:N' | 'auto' against what this LibTorch and machine offer.
torch::Device ResolveDevice(const std::string& name);
bool CudaAvailable();

// The TorchScript graph executor for modules loaded (first run) afterwards; process-wide.
// "profiling" (LibTorch's default: two profiling runs, then an optimized plan), "simple" (runs
// the graph as scripted) or "legacy" (the pre-1.7 executor).
void SetJitExecutor(const std::string& mode);
std::string JitExecutor();

}  // namespace rs
