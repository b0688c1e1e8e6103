// A loaded TorchScript classifier, pinned to one device. Used only from that device's
// compute thread, so it needs no locking of its own.
#pragma once

#include <torch/script.h>

#include <atomic>
#include <memory>
#include <string>
#include <vector>

namespace rs {

class Model {
 public:
  // Loads `path`, moves it to `device`, freezes the weights (only input gradients are ever
  // needed) and probes one forward on zeros of `inputShape` (C, H, W) to learn the class count
  // and reject modules whose output is not [n, classes].
  static std::shared_ptr<Model> Load(const std::string& path, const torch::Device& device,
                                     const std::vector<int64_t>& inputShape);

  torch::Tensor Logits(const torch::Tensor& x);
  torch::Tensor Features(const torch::Tensor& x);

  const torch::Device& device() const { return device_; }
  int64_t numClasses() const { return numClasses_; }
  bool hasFeatures() const { return hasFeatures_; }
  const std::vector<int64_t>& inputShape() const { return inputShape_; }

  // Set by dispose(); every job checks it before and during its work.
  std::atomic<bool> disposed{false};

 private:
  Model(torch::jit::Module module, torch::Device device) : module_(std::move(module)), device_(device) {}

  torch::jit::Module module_;
  torch::Device device_;
  int64_t numClasses_ = 0;
  bool hasFeatures_ = false;
  std::vector<int64_t> inputShape_;
};

// Resolves 'cpu' | 'cuda' | 'cuda:N' | 'auto' against what this LibTorch and machine offer.
torch::Device ResolveDevice(const std::string& name);
bool CudaAvailable();

}  // namespace rs
