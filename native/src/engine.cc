#include "engine.h"

#include <ATen/Parallel.h>
#include <ATen/autocast_mode.h>
#include <torch/version.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <string>

#include "common.h"

namespace rs {

namespace {

// View shape [n, 1, 1, 1] for per-sample broadcasting.
std::vector<int64_t> PerSample(const torch::Tensor& x) {
  std::vector<int64_t> s(x.dim(), 1);
  s[0] = x.size(0);
  return s;
}

torch::Tensor FlatNorm(const torch::Tensor& t) { return t.flatten(1).norm(2, 1).view(PerSample(t)); }

// Dimensions 1.. of a batch. A per-sample linalg_vector_norm over them runs the kernel FlatNorm's
// norm runs, in the same order, without the flatten/norm/view dispatch (about 10 us a call).
std::vector<int64_t> SampleDims(const torch::Tensor& t) {
  std::vector<int64_t> dims;
  for (int64_t d = 1; d < t.dim(); ++d) dims.push_back(d);
  return dims;
}

// Autocast for the forward/backward only; restores the previous state on scope exit. LibTorch
// 2.4 replaced the per-device functions (deprecated, a warning on every call) by ones that take
// the device type.
#if TORCH_VERSION_MAJOR > 2 || (TORCH_VERSION_MAJOR == 2 && TORCH_VERSION_MINOR >= 4)
#define RS_AUTOCAST_BY_DEVICE_TYPE 1
#endif
class AutocastScope {
 public:
  AutocastScope(bool on, const torch::Device& dev) : on_(on), cuda_(dev.is_cuda()) {
    if (!on_) return;
#ifdef RS_AUTOCAST_BY_DEVICE_TYPE
    prev_ = at::autocast::is_autocast_enabled(type());
    at::autocast::set_autocast_dtype(type(), at::kBFloat16);
    at::autocast::set_autocast_enabled(type(), true);
#else
    if (cuda_) {
      prev_ = at::autocast::is_enabled();
      at::autocast::set_autocast_gpu_dtype(at::kBFloat16);
      at::autocast::set_enabled(true);
    } else {
      prev_ = at::autocast::is_cpu_enabled();
      at::autocast::set_autocast_cpu_dtype(at::kBFloat16);
      at::autocast::set_cpu_enabled(true);
    }
#endif
  }
  ~AutocastScope() {
    if (!on_) return;
#ifdef RS_AUTOCAST_BY_DEVICE_TYPE
    at::autocast::set_autocast_enabled(type(), prev_);
#else
    if (cuda_) at::autocast::set_enabled(prev_); else at::autocast::set_cpu_enabled(prev_);
#endif
    at::autocast::clear_cache();
  }

 private:
  at::DeviceType type() const { return cuda_ ? at::kCUDA : at::kCPU; }
  bool on_, cuda_, prev_ = false;
};

}  // namespace

PgdRun::PgdRun(std::shared_ptr<Model> model, const PgdConfig& cfg, const PgdInputs& in)
    : model_(std::move(model)), cfg_(cfg) {
  const auto dev = model_->device();
  const auto& x0 = in.x0;
  if (x0.dim() != 4) throw Error(code::kBadInput, "x0 must be [n, c, h, w]");
  if (in.targets.dim() != 1 || in.targets.size(0) != x0.size(0)) {
    throw Error(code::kBadInput, "targets must hold one class per sample");
  }
  const auto& shape = model_->inputShape();
  for (size_t i = 0; i < shape.size() && i + 1 < static_cast<size_t>(x0.dim()); ++i) {
    if (shape[i] != x0.size(i + 1)) {
      throw Error(code::kBadInput, "x0 sample shape does not match the model's input shape");
    }
  }
  if (in.targets.numel() > 0) {
    const auto lo = in.targets.min().item<int64_t>(), hi = in.targets.max().item<int64_t>();
    if (lo < 0 || hi >= model_->numClasses()) throw Error(code::kBadInput, "target class out of range");
  }

  x0_ = x0.to(dev, torch::kFloat32).contiguous();
  targets_ = in.targets.to(dev, torch::kInt64);
  if (cfg_.penaltyWeight != 0) {
    keep_ = (1 - in.mask.to(dev, torch::kFloat32));
    reference_ = in.reference.to(dev, torch::kFloat32);
  }
  if (cfg_.objective == Objective::kInversion) {
    const auto& t = in.targetRep;
    if (!t.defined() || t.dim() != 2 || t.size(0) != x0.size(0)) {
      throw Error(code::kBadInput, "inversion.target must hold one representation per sample: [n, d]");
    }
    targetRep_ = t.to(dev, torch::kFloat32).contiguous();
  }

  meanSeed_ = torch::full({x0_.size(0)}, 1.0 / std::max<int64_t>(1, x0_.size(0)), x0_.options());
  x_ = x0_.clone();
  if (cfg_.randomStart) {
    // Noise is drawn on the CPU from a seeded generator so a run is reproducible on any device.
    auto gen = at::make_generator<at::CPUGeneratorImpl>(cfg_.seed);
    auto opts = torch::TensorOptions().dtype(torch::kFloat32);
    switch (cfg_.constraint) {
      case Constraint::kL2: {
        auto n = at::normal(0, 1, x0.sizes(), gen, opts).to(dev);
        x_ = (x0_ + cfg_.eps * n / (FlatNorm(n) + 1e-10)).clamp(0, 1);
        break;
      }
      case Constraint::kLinf: {
        auto u = at::rand(x0.sizes(), gen, opts).to(dev);
        x_ = (x0_ + 2 * (u - 0.5) * cfg_.eps).clamp(0, 1);
        break;
      }
      case Constraint::kUnconstrained: {
        auto u = at::rand(x0.sizes(), gen, opts).to(dev);
        x_ = (x0_ + (u - 0.5).renorm(2, 0, cfg_.step)).clamp(0, 1);
        break;
      }
    }
  }
}

torch::Tensor PgdRun::Loss(const torch::Tensor& x, torch::Tensor* logits) {
  torch::Tensor loss;
  {
    AutocastScope autocast(cfg_.bf16, model_->device());
    if (cfg_.objective == Objective::kCrossEntropy) {
      auto lg = model_->Logits(x).to(torch::kFloat32);
      loss = torch::nn::functional::cross_entropy(
          lg, targets_, torch::nn::functional::CrossEntropyFuncOptions().reduction(torch::kNone));
      if (!cfg_.targeted) loss = -loss;
      if (logits) *logits = lg;
    } else {
      auto rep = model_->Features(x).to(torch::kFloat32);
      const auto shape = rep.dim() == 2 ? std::to_string(rep.size(1)) + " values per image"
                                        : "a tensor of " + std::to_string(rep.dim()) + " dimensions, not [n, d]";
      if (cfg_.objective == Objective::kFeature) {
        if (rep.dim() != 2 || cfg_.featureIndex >= rep.size(1)) {
          throw Error(code::kBadInput, "feature.index " + std::to_string(cfg_.featureIndex) + " is out of range: features() gives " + shape);
        }
        loss = -cfg_.featureWeight * rep.select(1, cfg_.featureIndex);
      } else {
        if (rep.dim() != 2 || rep.size(1) != targetRep_.size(1)) {
          throw Error(code::kBadInput, "inversion.target has " + std::to_string(targetRep_.size(1)) +
                                           " values per sample, but features() gives " + shape);
        }
        loss = at::linalg_vector_norm(rep - targetRep_, 2, {1});  // torch.linalg.vector_norm(rep - t, 2, dim=1)
      }
      // The logits only name each iterate's class (useBest, predictions): no graph for them.
      if (logits) {
        torch::NoGradGuard noGrad;
        *logits = model_->Logits(x).to(torch::kFloat32);
      }
    }
  }
  if (cfg_.penaltyWeight != 0) {
    loss = loss + cfg_.penaltyWeight * ((reference_ - x) * keep_).pow(2).flatten(1).mean(1);
  }
  return loss;
}

void PgdRun::Remember(const torch::Tensor& x, const torch::Tensor& loss, const torch::Tensor& logits) {
  auto pred = logits.argmax(1);
  if (!bestX_.defined()) {
    bestX_ = x.clone();
    bestLoss_ = loss.clone();
    bestPred_ = pred;
    return;
  }
  auto better = loss < bestLoss_;  // strictly lower, as the reference
  bestX_ = torch::where(better.view(PerSample(x)), x, bestX_);
  bestLoss_ = torch::where(better, loss, bestLoss_);
  bestPred_ = torch::where(better, pred, bestPred_);
}

bool PgdRun::FastCpu() const {
  return x_.device().is_cpu() && x_.scalar_type() == torch::kFloat32 && x_.is_contiguous() && x0_.is_contiguous();
}

void PgdRun::RememberCpu(const torch::Tensor& lossIn, const torch::Tensor& logitsIn) {
  if (!bestX_.defined()) {
    bestX_ = x_.clone();
    bestLoss_ = lossIn.to(torch::kFloat32).contiguous().clone();
    bestPred_ = logitsIn.argmax(1);
    return;
  }
  auto loss = lossIn.to(torch::kFloat32).contiguous();
  auto logits = logitsIn.to(torch::kFloat32).contiguous();
  const int64_t n = x_.size(0), per = x_.numel() / std::max<int64_t>(1, n), k = logits.size(1);
  const float* l = loss.data_ptr<float>();
  const float* lg = logits.data_ptr<float>();
  const float* x = x_.data_ptr<float>();
  float* bl = bestLoss_.data_ptr<float>();
  float* bx = bestX_.data_ptr<float>();
  int64_t* bp = bestPred_.data_ptr<int64_t>();
  for (int64_t i = 0; i < n; ++i) {
    if (!(l[i] < bl[i])) continue;  // strictly lower, as the reference
    bl[i] = l[i];
    std::memcpy(bx + i * per, x + i * per, sizeof(float) * per);
    const float* row = lg + i * k;
    int64_t best = 0;
    for (int64_t j = 1; j < k && !std::isnan(row[best]); ++j) {
      if (row[j] > row[best] || std::isnan(row[j])) best = j;  // argmax: first maximum, NaN wins
    }
    bp[i] = best;
  }
}

// The same formulas as the ATen path in Step() (docs/algorithm.md), elementwise in float in
// the same order; the two per-sample norms come from the same ATen kernels (a norm summed in
// another order moves a result by an ulp, and a non-robust model's trajectory can amplify that).
void PgdRun::UpdateCpu(const torch::Tensor& gradIn) {
  auto grad = gradIn.to(torch::kFloat32).contiguous();
  auto next = torch::empty_like(x_, at::MemoryFormat::Contiguous);
  const int64_t n = x_.size(0), per = x_.numel() / std::max<int64_t>(1, n);
  const float* xp = x_.data_ptr<float>();
  const float* gp = grad.data_ptr<float>();
  const float* x0p = x0_.data_ptr<float>();
  float* op = next.data_ptr<float>();
  const float step = static_cast<float>(cfg_.step), eps = static_cast<float>(cfg_.eps);
  const int64_t grain = std::max<int64_t>(1, 32768 / std::max<int64_t>(1, per));
  switch (cfg_.constraint) {
    case Constraint::kL2: {
      // next = x - step * g / (||g|| + 1e-10);  x = x0 + renorm(next - x0, 2, 0, eps);  clamp
      auto gnorm = at::linalg_vector_norm(grad, 2, SampleDims(grad), /*keepdim=*/true).contiguous();
      const float* gn = gnorm.data_ptr<float>();
      at::parallel_for(0, n, grain, [&](int64_t begin, int64_t end) {
        for (int64_t i = begin; i < end; ++i) {
          const float* x = xp + i * per;
          const float* g = gp + i * per;
          const float* x0 = x0p + i * per;
          float* o = op + i * per;
          const float denom = gn[i] + 1e-10f;
          for (int64_t j = 0; j < per; ++j) o[j] = (x[j] - step * g[j] / denom) - x0[j];
        }
      });
      auto dnorm = at::linalg_vector_norm(next, 2, SampleDims(next), /*keepdim=*/true).contiguous();  // as at::renorm
      const float* dn = dnorm.data_ptr<float>();
      at::parallel_for(0, n, grain, [&](int64_t begin, int64_t end) {
        for (int64_t i = begin; i < end; ++i) {
          const float* x0 = x0p + i * per;
          float* o = op + i * per;
          const float factor = dn[i] > eps ? eps / (dn[i] + 1e-7f) : 1.0f;  // at::renorm's scale factor
          for (int64_t j = 0; j < per; ++j) o[j] = std::min(std::max(x0[j] + o[j] * factor, 0.0f), 1.0f);
        }
      });
      break;
    }
    case Constraint::kLinf:
      at::parallel_for(0, n, grain, [&](int64_t begin, int64_t end) {
        for (int64_t j = begin * per; j < end * per; ++j) {
          const float g = gp[j];
          const float s = g > 0 ? 1.0f : (g < 0 ? -1.0f : g);  // sign(): 0 stays 0, NaN stays NaN
          float v = xp[j] - step * s;
          v = std::min(std::max(v, x0p[j] - eps), x0p[j] + eps);
          op[j] = std::min(std::max(v, 0.0f), 1.0f);
        }
      });
      break;
    case Constraint::kUnconstrained:
      at::parallel_for(0, n, grain, [&](int64_t begin, int64_t end) {
        for (int64_t j = begin * per; j < end * per; ++j) op[j] = std::min(std::max(xp[j] - step * gp[j], 0.0f), 1.0f);
      });
      break;
  }
  x_ = next;
}

torch::Tensor PgdRun::Step() {
  auto x = x_.detach().requires_grad_(true);
  torch::Tensor logits;
  auto losses = Loss(x, cfg_.useBest ? &logits : nullptr);
  // d mean(losses)/dx, seeded with 1/n per sample: the values MeanBackward would hand on, without
  // running it (with its expand and divide, ~20 us of a 1.4 ms Fashion-MNIST step at batch 1).
  auto grad = torch::autograd::grad({losses}, {x}, {meanSeed_})[0];

  torch::NoGradGuard noGrad;
  losses = losses.detach();
  if (FastCpu()) {
    if (cfg_.useBest) RememberCpu(losses, logits.detach());
    UpdateCpu(grad);
    ++steps_;
    return losses;
  }
  if (cfg_.useBest) Remember(x_, losses, logits.detach());

  torch::Tensor next;
  switch (cfg_.constraint) {
    case Constraint::kL2:
      next = x_ - cfg_.step * grad / (FlatNorm(grad) + 1e-10);
      next = x0_ + (next - x0_).renorm(2, 0, cfg_.eps);
      break;
    case Constraint::kLinf:
      next = x_ - cfg_.step * grad.sign();
      next = torch::min(torch::max(next, x0_ - cfg_.eps), x0_ + cfg_.eps);
      break;
    case Constraint::kUnconstrained:
      next = x_ - cfg_.step * grad;
      break;
  }
  x_ = next.clamp(0, 1);
  ++steps_;
  return losses.to(torch::kCPU);
}

PgdResult PgdRun::Finish() {
  torch::NoGradGuard noGrad;
  torch::Tensor logits;
  auto loss = Loss(x_, &logits);
  PgdResult r;
  if (cfg_.useBest) {
    Remember(x_, loss, logits);
    r.images = bestX_;
    r.losses = bestLoss_;
    r.predictions = bestPred_;
  } else {
    r.images = x_;
    r.losses = loss;
    r.predictions = logits.argmax(1);
  }
  // Reported losses are in the "lower is better" convention of the loop; for an untargeted
  // attack flip back so the user sees the cross-entropy itself.
  if (!cfg_.targeted && cfg_.objective == Objective::kCrossEntropy && cfg_.penaltyWeight == 0) {
    r.losses = -r.losses;
  }
  r.images = r.images.to(torch::kCPU, torch::kFloat32).contiguous();
  r.losses = r.losses.to(torch::kCPU, torch::kFloat32).contiguous();
  r.predictions = r.predictions.to(torch::kCPU, torch::kInt32).contiguous();
  r.steps = steps_;
  return r;
}

void ForwardBackward(Model& model, const torch::Tensor& x, const torch::Tensor& targets, bool bf16) {
  auto xi = x.detach().requires_grad_(true);
  torch::Tensor loss;
  {
    AutocastScope autocast(bf16, model.device());
    loss = torch::nn::functional::cross_entropy(model.Logits(xi).to(torch::kFloat32), targets);
  }
  auto g = torch::autograd::grad({loss}, {xi})[0];
  if (g.is_cuda()) g.sum().item<float>();  // wait for the device so timings mean something
}

torch::Tensor PgdRun::Current() const {
  torch::NoGradGuard noGrad;
  return x_.detach().to(torch::kCPU, torch::kFloat32).contiguous().clone();
}

}  // namespace rs
