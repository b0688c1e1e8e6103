#include "selfcheck.h"

#include <ATen/CPUGeneratorImpl.h>
#include <torch/csrc/jit/passes/tensorexpr_fuser.h>
#include <torch/script.h>
#include <torch/torch.h>

#include <algorithm>
#include <cmath>
#include <limits>
#include <string>
#include <vector>

#include "util/args.h"

namespace rs {

namespace {

// Convolutions that broken LibTorch builds were seen to get wrong: strided ones (ResNet's
// stem, downsampling 3x3 and 1x1; oneDNN 3.7 divides by zero setting them up on a CPU that
// reports no cache sizes) and 3x3 ones whose output channels are not a multiple of 16 (wrong
// input-gradients from oneDNN's AVX-512 kernels in the standard layout). Each runs in both
// layouts. Small sizes: the whole set takes well under a second.
struct ConvCase {
  const char* name;
  int64_t n, cin, cout, hw, k, stride, pad;
};

const ConvCase kCases[] = {
    {"3x3 16->24", 2, 16, 24, 12, 3, 1, 1},
    {"3x3 3->40", 2, 3, 40, 12, 3, 1, 1},
    {"3x3 8->20 stride 2", 2, 8, 20, 13, 3, 2, 1},
    {"3x3 32->32", 1, 32, 32, 10, 3, 1, 1},
    {"7x7 3->64 stride 2", 1, 3, 64, 32, 7, 2, 3},
    {"3x3 64->128 stride 2", 1, 64, 128, 16, 3, 2, 1},
    {"1x1 256->512 stride 2", 1, 256, 512, 8, 1, 2, 0},
    {"1x1 64->256", 1, 64, 256, 8, 1, 1, 0},
};
constexpr int kNumCases = sizeof(kCases) / sizeof(kCases[0]);

// max |a - b| / max |b|; NaN anywhere gives NaN.
double RelErr(const torch::Tensor& a, const torch::Tensor& b) {
  auto ad = a.to(torch::kDouble).contiguous();
  auto scale = b.abs().max().item<double>();
  auto diff = (ad - b).abs();
  if (diff.isnan().any().item<bool>() || ad.isnan().any().item<bool>()) return std::nan("");
  return diff.max().item<double>() / std::max(scale, 1e-12);
}

struct Result {
  double forward, gradient;
};

Result RunCase(const ConvCase& c, bool channelsLast) {
  torch::AutoGradMode grad(true);
  auto gen = at::detail::createCPUGenerator(1234 + c.cin * 7 + c.cout);
  auto opts = torch::TensorOptions().dtype(torch::kFloat);
  auto x = at::randn({c.n, c.cin, c.hw, c.hw}, gen, opts);
  auto w = at::randn({c.cout, c.cin, c.k, c.k}, gen, opts) / std::sqrt(static_cast<double>(c.cin * c.k * c.k));
  auto b = at::randn({c.cout}, gen, opts);
  int64_t out = (c.hw + 2 * c.pad - c.k) / c.stride + 1;
  auto g = at::randn({c.n, c.cout, out, out}, gen, opts);
  auto fmt = channelsLast ? torch::MemoryFormat::ChannelsLast : torch::MemoryFormat::Contiguous;

  // The path under test: the settings this process runs with.
  auto xt = x.contiguous(fmt).detach().requires_grad_(true);
  auto y = torch::conv2d(xt, w.contiguous(fmt), b, {c.stride, c.stride}, {c.pad, c.pad});
  y.backward(g.contiguous(fmt));
  auto gx = xt.grad();

  // The reference: float64, oneDNN off (ATen's own kernels).
  auto& ctx = at::globalContext();
  bool mkldnn = ctx.userEnabledMkldnn();
  ctx.setUserEnabledMkldnn(false);
  auto xd = x.to(torch::kDouble).requires_grad_(true);
  auto yd = torch::conv2d(xd, w.to(torch::kDouble), b.to(torch::kDouble), {c.stride, c.stride}, {c.pad, c.pad});
  yd.backward(g.to(torch::kDouble));
  ctx.setUserEnabledMkldnn(mkldnn);
  return {RelErr(y.detach(), yd.detach()), RelErr(gx, xd.grad())};
}

}  // namespace

// kernelCheckCases(): the number of cases; each runs in both layouts (2 * count runs).
Napi::Value KernelCheckCasesJs(const Napi::CallbackInfo& info) { return Napi::Number::New(info.Env(), kNumCases); }

// kernelCheckRun(i, channelsLast): {name, forward, gradient} relative errors (NaN when any is NaN).
// Synchronous, on the calling thread: for the check's child process only.
Napi::Value KernelCheckRunJs(const Napi::CallbackInfo& info) {
  auto env = info.Env();
  if (info.Length() < 2 || !info[0].IsNumber() || !info[1].IsBoolean()) Bad(env, "kernelCheckRun(i, channelsLast)");
  int i = info[0].As<Napi::Number>().Int32Value();
  if (i < 0 || i >= kNumCases) Bad(env, "kernelCheckRun: no such case");
  bool cl = info[1].As<Napi::Boolean>().Value();
  Result r{};
  try {
    r = RunCase(kCases[i], cl);
  } catch (const std::exception& e) {
    throw Napi::Error::New(env, std::string("kernel check case failed: ") + e.what());
  }
  auto o = Napi::Object::New(env);
  o.Set("name", Napi::String::New(env, std::string(kCases[i].name) + (cl ? ", channels-last" : ", standard layout")));
  o.Set("forward", Napi::Number::New(env, r.forward));
  o.Set("gradient", Napi::Number::New(env, r.gradient));
  return o;
}

// kernelCheckSaveNet(path): writes a small TorchScript classifier for [n, 3, 16, 16] inputs
// (convolution, batch norm, ReLU, a strided convolution, pooling, a linear head, and a features()
// method), the shape of network on which Debian 13's LibTorch 2.6 fuser hangs once frozen and
// channels-last. The check's child loads it through the engine, as an app loads a model.
Napi::Value KernelCheckSaveNetJs(const Napi::CallbackInfo& info) {
  auto env = info.Env();
  if (info.Length() < 1 || !info[0].IsString()) Bad(env, "kernelCheckSaveNet(path) expects a string");
  auto path = info[0].As<Napi::String>().Utf8Value();
  try {
    auto gen = at::detail::createCPUGenerator(7);
    auto opts = torch::TensorOptions().dtype(torch::kFloat);
    torch::jit::Module m("KernelCheckNet");
    m.register_parameter("w1", at::randn({8, 3, 3, 3}, gen, opts) * 0.3, false);
    m.register_parameter("b1", at::randn({8}, gen, opts) * 0.1, false);
    m.register_parameter("g", at::rand({8}, gen, opts) + 0.5, false);
    m.register_parameter("beta", at::randn({8}, gen, opts) * 0.1, false);
    m.register_buffer("mean", at::randn({8}, gen, opts) * 0.1);
    m.register_buffer("var", at::rand({8}, gen, opts) + 0.5);
    m.register_parameter("w2", at::randn({16, 8, 3, 3}, gen, opts) * 0.15, false);
    m.register_parameter("b2", at::randn({16}, gen, opts) * 0.1, false);
    m.register_parameter("wf", at::randn({5, 16}, gen, opts) * 0.3, false);
    m.register_parameter("bf", at::randn({5}, gen, opts) * 0.1, false);
    m.define(R"JIT(
def features(self, x):
    x = torch.conv2d((x - 0.5) / 0.25, self.w1, self.b1, [1, 1], [1, 1])
    x = torch.relu(torch.batch_norm(x, self.g, self.beta, self.mean, self.var, False, 0.1, 1e-5, False))
    x = torch.relu(torch.conv2d(x, self.w2, self.b2, [2, 2], [1, 1]))
    return torch.flatten(torch.adaptive_avg_pool2d(x, [1, 1]), 1)

def forward(self, x):
    return torch.linear(self.features(x), self.wf, self.bf)
)JIT");
    m.eval();
    m.save(path);
  } catch (const std::exception& e) {
    throw Napi::Error::New(env, std::string("kernelCheckSaveNet: ") + e.what());
  }
  return env.Undefined();
}

// Process-wide: TorchScript's TensorExpr fuser (on by default where LibTorch has LLVM). Applies to
// graphs optimized afterwards; the loader sets it before any model loads.
Napi::Value SetTensorExprFuserJs(const Napi::CallbackInfo& info) {
  auto env = info.Env();
  if (info.Length() < 1 || !info[0].IsBoolean()) Bad(env, "setTensorExprFuser(enabled) expects a boolean");
  torch::jit::setTensorExprFuserEnabled(info[0].As<Napi::Boolean>().Value());
  return env.Undefined();
}

Napi::Value GetTensorExprFuserJs(const Napi::CallbackInfo& info) {
  return Napi::Boolean::New(info.Env(), torch::jit::tensorExprFuserEnabled());
}

}  // namespace rs
