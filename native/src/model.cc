#include "model.h"

#include <torch/csrc/jit/ir/ir.h>
#include <torch/csrc/jit/passes/inliner.h>
#include <torch/csrc/jit/runtime/graph_executor.h>
#include <torch/cuda.h>

#include "common.h"

namespace rs {

namespace {

std::string ShapeString(const at::IntArrayRef& s) {
  std::string out = "[";
  for (size_t i = 0; i < s.size(); ++i) out += (i ? ", " : "") + std::to_string(s[i]);
  return out + "]";
}

torch::Tensor AsTensor(const c10::IValue& v, const char* what) {
  if (v.isTensor()) return v.toTensor();
  throw Error(code::kModelOutput, std::string(what) + " returned " + v.tagKind() + ", expected a Tensor");
}

}  // namespace

bool CudaAvailable() { return torch::cuda::is_available(); }

torch::Device ResolveDevice(const std::string& name) {
  if (name == "cpu") return torch::Device(torch::kCPU);
  if (name == "auto") return CudaAvailable() ? torch::Device(torch::kCUDA, 0) : torch::Device(torch::kCPU);
  if (name.rfind("cuda", 0) == 0) {
    if (!CudaAvailable()) {
      throw Error(code::kDevice, "device '" + name +
                                     "' requested, but this LibTorch build has no CUDA support or no GPU is visible");
    }
    torch::Device dev(name == "cuda" ? std::string("cuda:0") : name);
    if (dev.index() >= static_cast<int64_t>(torch::cuda::device_count())) {
      throw Error(code::kDevice, "device '" + name + "' requested, but only " +
                                     std::to_string(torch::cuda::device_count()) + " GPU(s) are visible");
    }
    return dev;
  }
  throw Error(code::kDevice, "unknown device '" + name + "' (expected cpu, cuda, cuda:N or auto)");
}

void SetJitExecutor(const std::string& mode) {
  if (mode == "profiling") {
    torch::jit::getExecutorMode() = true;
    torch::jit::getProfilingMode() = true;
  } else if (mode == "simple") {
    torch::jit::getExecutorMode() = true;
    torch::jit::getProfilingMode() = false;
  } else if (mode == "legacy") {
    torch::jit::getExecutorMode() = false;
    torch::jit::getProfilingMode() = false;
  } else {
    throw Error(code::kBadInput, "unknown TorchScript executor '" + mode + "' (expected profiling, simple or legacy)");
  }
}

// Freezing optimizes for inference and drops aten::detach, which changes gradients: the
// exported "fake ReLU" (relu(x) value, identity gradient) is x + (relu(x) - x).detach(). A
// method whose graph detaches anything must therefore never run frozen.
bool Detaches(torch::jit::Module& module, const char* name) {
  auto method = module.find_method(name);
  if (!method) return false;
  auto graph = method->graph()->copy();
  torch::jit::Inline(*graph);
  return !torch::jit::findAllNodes(*graph, c10::Symbol::fromQualString("aten::detach"), /*recurse=*/true).empty();
}

std::string JitExecutor() {
  if (!torch::jit::getExecutorMode()) return "legacy";
  return torch::jit::getProfilingMode() ? "profiling" : "simple";
}

namespace {

// Common classifier inputs, most likely first. Models with global pooling accept any size, so
// the order decides for them: grayscale models are most often 28x28 (the MNIST family), colour
// ones 224x224 (ImageNet, what this library exists for) or 32x32 (CIFAR). `channels` comes from
// the first convolution; 0 means unknown.
std::vector<std::vector<int64_t>> ShapeCandidates(int64_t channels) {
  std::vector<std::vector<int64_t>> out;
  auto add = [&](int64_t c, std::initializer_list<int64_t> sides) {
    for (auto side : sides) out.push_back({c, side, side});
  };
  if (channels == 1) {
    add(1, {28, 32, 64, 224, 96, 128, 256, 299, 16});
  } else if (channels > 0) {
    add(channels, {224, 32, 64, 96, 128, 256, 299, 28, 16});
  } else {
    add(3, {224, 32, 64});
    add(1, {28, 32, 64});
  }
  return out;
}

}  // namespace

std::shared_ptr<Model> Model::Load(const std::string& path, const torch::Device& device,
                                   const std::vector<int64_t>& inputShape, const LoadConfig& config) {
  torch::jit::Module module;
  try {
    module = torch::jit::load(path, device);
  } catch (const c10::Error& e) {
    throw Error(code::kModelLoad, "cannot load TorchScript model '" + path + "': " + e.what_without_backtrace());
  }
  module.eval();
  for (auto p : module.parameters()) p.set_requires_grad(false);
  const bool hasFeatures = module.find_method("features").has_value();
  // The input channels of the first convolution (registration order): the shape probe's hint.
  int64_t channelsHint = 0;
  for (const auto& p : module.parameters()) {
    if (p.dim() == 4) {
      channelsHint = p.size(1);
      break;
    }
  }
  if (config.channelsLast) {
    // Module::to() has no memory format; this is what it does, per tensor.
    for (auto t : module.parameters()) {
      if (t.dim() == 4) t.set_data(t.contiguous(at::MemoryFormat::ChannelsLast));
    }
    for (auto t : module.buffers()) {
      if (t.dim() == 4) t.set_data(t.contiguous(at::MemoryFormat::ChannelsLast));
    }
  }
  LoadConfig applied = config;
  torch::jit::Module forward = module;  // runs forward(); `module` runs features()
  const bool featuresDetach = hasFeatures && Detaches(module, "features");
  if (config.freeze && Detaches(module, "forward")) applied.freeze = false;
  if (applied.freeze) {
    try {
      std::vector<std::string> keep;
      if (hasFeatures && !featuresDetach) keep.push_back("features");
      auto frozen = torch::jit::freeze(module, keep, /*optimize_numerics=*/true);
      forward = frozen;
      // When only features() detaches (a fake ReLU), it keeps running on the unfrozen module:
      // the weights are then held twice (the frozen copy has BatchNorm folded into them).
      if (!featuresDetach) module = frozen;
    } catch (const c10::Error& e) {
      if (config.freezeStrict) {
        throw Error(code::kModelLoad, "cannot freeze TorchScript model '" + path + "' (load it with freeze: false): " +
                                          e.what_without_backtrace());
      }
      applied.freeze = false;  // freezing is an optimization: run the module as it is
    }
  }

  std::shared_ptr<Model> model(new Model(std::move(module), std::move(forward), device));
  model->hasFeatures_ = hasFeatures;
  model->config_ = applied;

  auto probeFor = [](const std::vector<int64_t>& shape) {
    std::vector<int64_t> probe{1};
    probe.insert(probe.end(), shape.begin(), shape.end());
    return probe;
  };
  auto check = [&](const torch::Tensor& out, const std::vector<int64_t>& probe) {
    if (out.dim() != 2 || out.size(0) != 1 || out.size(1) < 2) {
      throw Error(code::kModelOutput, "model '" + path + "' returned shape " + ShapeString(out.sizes()) +
                                          " for an input of shape " + ShapeString(probe) +
                                          "; expected [n, classes] logits");
    }
  };

  torch::Tensor out;
  if (config.inferShape) {
    std::string tried;
    for (const auto& shape : ShapeCandidates(channelsHint)) {
      auto probe = probeFor(shape);
      try {
        torch::NoGradGuard noGrad;
        out = model->Logits(torch::zeros(probe, torch::TensorOptions().device(device)));
        check(out, probe);
        model->inputShape_ = shape;
        break;
      } catch (const std::exception&) {
        out = torch::Tensor();
        tried += (tried.empty() ? "" : ", ") + ShapeString(shape);
      }
    }
    if (!out.defined()) {
      throw Error(code::kModelLoad, "model '" + path + "' has no model card, and none of the input shapes tried (" +
                                        tried + ") gives [1, classes] logits: pass inputShape: [c, h, w] " +
                                        "(CLI: --input-shape C,H,W), or write a model card next to it");
    }
  } else {
    model->inputShape_ = inputShape;
    auto probe = probeFor(inputShape);
    try {
      torch::NoGradGuard noGrad;
      out = model->Logits(torch::zeros(probe, torch::TensorOptions().device(device)));
    } catch (const Error&) {
      throw;
    } catch (const c10::Error& e) {
      throw Error(code::kModelOutput, "model '" + path + "' failed on an input of shape " + ShapeString(probe) +
                                          ": " + e.what_without_backtrace());
    } catch (const std::exception& e) {  // a TorchScript `raise` is a JITException, not a c10::Error
      throw Error(code::kModelOutput, "model '" + path + "' failed on an input of shape " + ShapeString(probe) +
                                          ": " + e.what());
    }
    check(out, probe);
  }
  model->numClasses_ = out.size(1);
  return model;
}

torch::Tensor Model::In(const torch::Tensor& x) const {
  return config_.channelsLast && x.dim() == 4 ? x.contiguous(at::MemoryFormat::ChannelsLast) : x;
}

torch::Tensor Model::Logits(const torch::Tensor& x) { return AsTensor(forward_.forward({In(x)}), "forward()"); }

torch::Tensor Model::Features(const torch::Tensor& x) {
  if (!hasFeatures_) throw Error(code::kBadInput, "this model exports no features() method");
  return AsTensor(module_.get_method("features")({In(x)}), "features()");
}

}  // namespace rs
