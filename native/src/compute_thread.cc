#include "compute_thread.h"

#include <ATen/Parallel.h>
#include <sched.h>

#include <algorithm>
#include <cmath>
#include <map>
#include <vector>

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

namespace {
struct Registry {
  std::mutex mu;
  std::map<std::string, ComputeThread*> threads;
  bool exiting = false;  // StopAllForExit() ran: threads made afterwards never start
};
Registry& Threads() {
  static auto* registry = new Registry();  // leaked on purpose: compute threads outlive statics
  return *registry;
}
}  // namespace

ComputeThread& ComputeThread::For(const std::string& deviceKey) {
  auto& r = Threads();
  std::lock_guard<std::mutex> lock(r.mu);
  auto it = r.threads.find(deviceKey);
  if (it != r.threads.end()) return *it->second;
  // A CUDA thread's intra-op team only runs the few CPU ops around kernel launches: no policy.
  auto* t = new ComputeThread(deviceKey == "cpu", r.exiting);
  r.threads[deviceKey] = t;
  return *t;
}

void ComputeThread::StopAllForExit(std::chrono::steady_clock::time_point deadline) {
  static std::mutex stopMu;  // one caller at a time joins (the 'exit' listener, cleanup, atexit)
  std::lock_guard<std::mutex> stopLock(stopMu);
  std::vector<ComputeThread*> all;
  {
    auto& r = Threads();
    std::lock_guard<std::mutex> lock(r.mu);
    r.exiting = true;
    for (auto& entry : r.threads) all.push_back(entry.second);
  }
  for (auto* t : all) t->StopForExit(deadline);
}

bool ComputeThread::StopForExit(std::chrono::steady_clock::time_point deadline) {
  std::unique_lock<std::mutex> lock(mu_);
  stopping_ = true;
  cv_.notify_all();
  // A thread still inside a job past the deadline (one operator that does not return) is left
  // running, as before; exit is then no safer, but it is not blocked forever either.
  if (!finishedCv_.wait_until(lock, deadline, [this] { return finished_; })) return false;
  lock.unlock();
  if (thread_.joinable()) thread_.join();
  return true;
}

ComputeThread::ComputeThread(bool adaptive, bool stopped)
    : max_(DefaultThreads()),
      adaptiveDevice_(adaptive),
      fixed_(adaptive ? 0 : max_),
      current_(max_),
      stopping_(stopped),
      thread_([this] { Loop(); }) {}

void ComputeThread::Post(std::function<void()> job) {
  {
    std::lock_guard<std::mutex> lock(mu_);
    queue_.push_back(std::move(job));
  }
  cv_.notify_one();
}

void ComputeThread::SetThreads(int n) {
  fixed_.store(n);
  // A fixed count needs nothing queued: the thread applies it before each job and between the
  // steps of a running one (AdaptNow), so threads() can report it at once.
  if (n > 0) return;
  Post([this] {
    if (fixed_.load() > 0) return;  // fixed again since
    Apply(max_);
    AdaptNow(std::chrono::milliseconds(0));
  });
}

void ComputeThread::Apply(int n) {
  // at::set_num_threads also clears oneDNN's primitive cache: only on a real change.
  if (n != at::get_num_threads()) at::set_num_threads(n);
  current_.store(n, std::memory_order_relaxed);
}

void ComputeThread::AdaptNow(std::chrono::milliseconds minWindow) {
  int fixed = fixed_.load(std::memory_order_relaxed);
  if (fixed > 0) {
    if (fixed != current_.load(std::memory_order_relaxed)) Apply(fixed);
    return;
  }
  if (!adaptiveDevice_ || !load_) return;
  double other = load_->Sample(minWindow);
  if (other < 0) return;
  int n = ThreadsForLoad(std::min(max_, load_->allowed() > 0 ? load_->allowed() : max_), other);
  if (fixed_.load(std::memory_order_relaxed) > 0) return;  // fixed meanwhile: the next call applies it
  Apply(n);
}

void ComputeThread::Adapt() {
  if (tCurrent) tCurrent->AdaptNow(kStepWindow);
}

void ComputeThread::Start() {
  if (adaptiveDevice_) load_ = std::make_unique<CpuLoad>();
  int fixed = fixed_.load();
  int n = fixed > 0 ? fixed : max_;
  at::set_num_threads(n);
  current_.store(n, std::memory_order_relaxed);
}

void ComputeThread::Loop() {
  tCurrent = this;
  bool started = false;
  for (;;) {
    std::function<void()> job;
    {
      std::unique_lock<std::mutex> lock(mu_);
      cv_.wait(lock, [this] { return stopping_ || !queue_.empty(); });
      if (stopping_) break;  // what is queued stays there (the object is never destroyed)
      job = std::move(queue_.front());
      queue_.pop_front();
    }
    // LibTorch is first touched here: a thread that exit stops before its first job never does.
    if (!started) {
      Start();
      started = true;
    }
    AdaptNow(kJobWindow);
    job();  // jobs catch their own exceptions; see addon.cc
  }
  {
    std::lock_guard<std::mutex> lock(mu_);
    finished_ = true;
  }
  finishedCv_.notify_all();
}

}  // namespace rs
