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
  // The process-wide thread for a device key ("cpu", "cuda:0"). The objects are never
  // destroyed; the threads run until StopAllForExit().
  static ComputeThread& For(const std::string& deviceKey);

  // For process exit, after the last job: every compute thread finishes what it is running,
  // skips what is queued, and ends; each that ends by `deadline` is joined. Threads made
  // afterwards never start. Without this, exit() runs LibTorch's static destructors while a
  // compute thread may still be inside at::set_num_threads, which replaces the pthreadpool
  // that one of those destructors frees: a double free, seen as a hang in
  // pthreadpool_destroy or a segfault. Irreversible; safe to call more than once.
  static void StopAllForExit(std::chrono::steady_clock::time_point deadline);

  void Post(std::function<void()> job);
  // n >= 1: always n intra-op threads, from the next job on, or from the next step of a running
  // one (the thread applies it itself, as it must). 0: adaptive (the CPU thread's default): as
  // many as the allowed cores that other processes leave free, re-read before each job and
  // every 250 ms during one.
  void SetThreads(int n);
  // The count the thread computes with: a fixed count as soon as SetThreads() sets it (it is in
  // force for every step that starts afterwards); when adaptive, the count of the last reading.
  int threads() const {
    int fixed = fixed_.load(std::memory_order_relaxed);
    return fixed > 0 ? fixed : current_.load(std::memory_order_relaxed);
  }
  // 0 when adaptive.
  int fixedThreads() const { return fixed_.load(std::memory_order_relaxed); }
  int maxThreads() const { return max_; }

  // On a compute thread, between the steps of a long job: lets the adaptive policy follow the
  // machine's load. Cheap (a clock read) except when a new reading is due.
  static void Adapt();

 private:
  ComputeThread(bool adaptive, bool stopped);
  void Loop();
  void Start();  // on the thread, before its first job: the first LibTorch call it makes
  bool StopForExit(std::chrono::steady_clock::time_point deadline);
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
  bool stopping_;                  // under mu_: end the loop, run nothing more
  bool finished_ = false;          // under mu_: the loop has ended
  std::condition_variable finishedCv_;
  std::thread thread_;             // joinable until StopForExit() joins it
};

// The default intra-op thread count: the cores this process may use.
int DefaultThreads();

// The adaptive rule: the allowed cores minus what other processes keep busy, rounded to the
// nearest whole core, at least 1. Exposed for tests.
int ThreadsForLoad(int allowed, double otherBusyCores);

}  // namespace rs
