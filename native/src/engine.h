// The one PGD engine. Every task (generation, inpainting, super-resolution, translation,
// attacks) is a PgdConfig plus inputs; nothing here knows which task it serves.
// Formulas: docs/algorithm.md, matching MadryLab robustness' attacker.
#pragma once

#include <torch/torch.h>

#include <functional>
#include <memory>

#include "model.h"

namespace rs {

enum class Constraint { kL2, kLinf, kUnconstrained };
enum class Objective { kCrossEntropy, kFeature, kInversion };

struct PgdConfig {
  Constraint constraint = Constraint::kL2;
  double eps = 0;
  double step = 0;
  int64_t iterations = 0;
  bool useBest = true;
  bool randomStart = false;
  uint64_t seed = 0;
  // true: minimize CE toward `targets` (synthesis); false: maximize CE of `targets` (an
  // untargeted attack on the true labels, used to measure robustness).
  bool targeted = true;
  Objective objective = Objective::kCrossEntropy;
  int64_t featureIndex = 0;      // kFeature: loss = -featureWeight * rep[:, featureIndex]
  double featureWeight = 1.0;
  // kInversion: loss = ||rep - targetRep||_2 per sample (PgdInputs::targetRep).
  // Any objective: + w * mean(((reference - x) * (1 - mask))^2) per sample.
  double penaltyWeight = 0;
  bool bf16 = false;             // autocast forward/backward to bfloat16; x and updates stay fp32
};

// CPU float tensors as they arrive from JS; `mask` and `reference` are defined only when a
// penalty is used and then have x0's shape; `targetRep` only for Objective::kInversion.
struct PgdInputs {
  torch::Tensor x0;       // [n, c, h, w] in [0, 1]
  torch::Tensor targets;  // [n] int64
  torch::Tensor mask;
  torch::Tensor reference;
  torch::Tensor targetRep;  // [n, d]: features() of the images to invert, computed by the caller
};

struct PgdResult {
  torch::Tensor images;       // CPU, contiguous float32 [n, c, h, w]
  torch::Tensor losses;       // CPU float32 [n]: loss of each returned image
  torch::Tensor predictions;  // CPU int32 [n]: argmax class of each returned image
  int64_t steps = 0;
};

// One PGD run whose state stays native between steps: the whole loop calls Step()
// `iterations` times then Finish(); a JS-driven loop does the same one call at a time.
class PgdRun {
 public:
  PgdRun(std::shared_ptr<Model> model, const PgdConfig& cfg, const PgdInputs& in);

  // One forward + backward + update. Returns the per-sample loss of the iterate before the
  // update (the same forward that gave the gradient), on the CPU.
  torch::Tensor Step();
  // The useBest final comparison (one more forward), then the result copied to the CPU.
  PgdResult Finish();

  int64_t steps() const { return steps_; }
  const PgdConfig& config() const { return cfg_; }
  // The current iterate (not the useBest pick), copied to a contiguous CPU float32 tensor:
  // what a live preview shows between steps.
  torch::Tensor Current() const;

 private:
  // Per-sample loss, with the logits of the same forward. The feature objectives need a second
  // forward for the logits: `logits` may be null when they are not wanted (no useBest).
  torch::Tensor Loss(const torch::Tensor& x, torch::Tensor* logits);
  void Remember(const torch::Tensor& x, const torch::Tensor& loss, const torch::Tensor& logits);
  // CPU float32 fast path of Remember + the update: one pass per sample instead of about a
  // dozen small ATen ops (~60 us a step at batch 1, 3 % of a Fashion-MNIST step).
  bool FastCpu() const;
  void RememberCpu(const torch::Tensor& loss, const torch::Tensor& logits);
  void UpdateCpu(const torch::Tensor& grad);

  std::shared_ptr<Model> model_;
  PgdConfig cfg_;
  torch::Tensor x0_, x_, targets_, keep_, reference_, targetRep_;
  torch::Tensor bestX_, bestLoss_, bestPred_;
  torch::Tensor meanSeed_;  // [n] of 1/n: the gradient of mean(losses) w.r.t. each loss
  int64_t steps_ = 0;
};

// A forward+backward w.r.t. the input with nothing else: the floor any PGD loop pays per step.
void ForwardBackward(Model& model, const torch::Tensor& x, const torch::Tensor& targets, bool bf16);

}  // namespace rs
