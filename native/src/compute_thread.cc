#include "compute_thread.h"

#include <ATen/Parallel.h>
#include <sched.h>

#include <algorithm>
#include <cmath>
#include <map>

#include "cpu_load.h"

namespace rs {

namespace {
thread_local ComputeThread* tCurrent = nullptr;
constexpr std::chrono::milliseconds kJobWindow{100};
constexpr std::chrono::milliseconds kStepWindow{250};
}  // namespace

int DefaultThreads() {
  cpu_set_t set;
  if (sched_getaffinity(0, sizeof(set), &set) == 0) {
    int n = CPU_COUNT(&set);
    if (n > 0) return n;
  }
  unsigned n = std::thread::hardware_concurrency();
  return n > 0 ? static_cast<int>(n) : 1;
}

int ThreadsForLoad(int allowed, double otherBusyCores) {
  int n = static_cast<int>(std::floor(allowed - otherBusyCores + 0.5));
  return std::clamp(n, 1, std::max(1, allowed));
}

ComputeThread& ComputeThread::For(const std::string& deviceKey) {
  static std::mutex registryMu;
  static auto* registry = new std::map<std::string, ComputeThread*>();  // leaked on purpose
  std::lock_guard<std::mutex> lock(registryMu);
  auto it = registry->find(deviceKey);
  if (it != registry->end()) return *it->second;
  // A CUDA thread's intra-op team only runs the few CPU ops around kernel launches: no policy.
  auto* t = new ComputeThread(deviceKey == "cpu");
  (*registry)[deviceKey] = t;
  return *t;
}

ComputeThread::ComputeThread(bool adaptive)
    : max_(DefaultThreads()),
      adaptiveDevice_(adaptive),
      fixed_(adaptive ? 0 : max_),
      current_(max_),
      thread_([this] { Loop(); }) {
  thread_.detach();
}

void ComputeThread::Post(std::function<void()> job) {
  {
    std::lock_guard<std::mutex> lock(mu_);
    queue_.push_back(std::move(job));
  }
  cv_.notify_one();
}

void ComputeThread::SetThreads(int n) {
  fixed_.store(n);
  Post([this, n] {
    if (n > 0) {
      Apply(n);
    } else {
      Apply(max_);
      AdaptNow(std::chrono::milliseconds(0));
    }
  });
}

void ComputeThread::Apply(int n) {
  // at::set_num_threads also clears oneDNN's primitive cache: only on a real change.
  if (n != at::get_num_threads()) at::set_num_threads(n);
  current_.store(n, std::memory_order_relaxed);
}

void ComputeThread::AdaptNow(std::chrono::milliseconds minWindow) {
  if (!adaptiveDevice_ || fixed_.load(std::memory_order_relaxed) > 0 || !load_) return;
  double other = load_->Sample(minWindow);
  if (other < 0) return;
  Apply(ThreadsForLoad(std::min(max_, load_->allowed() > 0 ? load_->allowed() : max_), other));
}

void ComputeThread::Adapt() {
  if (tCurrent) tCurrent->AdaptNow(kStepWindow);
}

void ComputeThread::Loop() {
  tCurrent = this;
  if (adaptiveDevice_) load_ = std::make_unique<CpuLoad>();
  int fixed = fixed_.load();
  at::set_num_threads(fixed > 0 ? fixed : max_);
  for (;;) {
    std::function<void()> job;
    {
      std::unique_lock<std::mutex> lock(mu_);
      cv_.wait(lock, [this] { return !queue_.empty(); });
      job = std::move(queue_.front());
      queue_.pop_front();
    }
    AdaptNow(kJobWindow);
    job();  // jobs catch their own exceptions; see addon.cc
  }
}

}  // namespace rs
