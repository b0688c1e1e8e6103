// One compute thread per device, each with a FIFO job queue. LibTorch's intra-op thread
// count is per-thread state, and letting libuv's pool run jobs on whichever worker is free
// multiplies OpenMP pools (measured: ~35 % slower). So all work for a device runs here.
#pragma once

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <deque>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <thread>

namespace rs {

class CpuLoad;

class ComputeThread {
 public:
  // The process-wide thread for a device key ("cpu", "cuda:0"). Threads live until the
  // process ends; they are never destroyed, so exit never joins a busy thread.
  static ComputeThread& For(const std::string& deviceKey);

  void Post(std::function<void()> job);
  // n >= 1: always n intra-op threads. 0: adaptive (the CPU thread's default): as many as the
  // allowed cores that other processes leave free, re-read before each job and every 250 ms
  // during one. Applies to the jobs posted after it (it runs on the thread itself, as it must).
  void SetThreads(int n);
  // The count the thread computes with now.
  int threads() const { return current_.load(std::memory_order_relaxed); }
  // 0 when adaptive.
  int fixedThreads() const { return fixed_.load(std::memory_order_relaxed); }
  int maxThreads() const { return max_; }

  // On a compute thread, between the steps of a long job: lets the adaptive policy follow the
  // machine's load. Cheap (a clock read) except when a new reading is due.
  static void Adapt();

 private:
  explicit ComputeThread(bool adaptive);
  void Loop();
  void AdaptNow(std::chrono::milliseconds minWindow);
  void Apply(int n);

  std::mutex mu_;
  std::condition_variable cv_;
  std::deque<std::function<void()>> queue_;
  const int max_;
  const bool adaptiveDevice_;
  std::atomic<int> fixed_;
  std::atomic<int> current_;
  std::unique_ptr<CpuLoad> load_;  // touched by the compute thread only
  std::thread thread_;
};

// The default intra-op thread count: the cores this process may use.
int DefaultThreads();

// The adaptive rule: the allowed cores minus what other processes keep busy, rounded to the
// nearest whole core, at least 1. Exposed for tests.
int ThreadsForLoad(int allowed, double otherBusyCores);

}  // namespace rs
