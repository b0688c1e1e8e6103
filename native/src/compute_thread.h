// One compute thread per device, each with a FIFO job queue. LibTorch's intra-op thread
// count is per-thread state, and letting libuv's pool run jobs on whichever worker is free
// multiplies OpenMP pools (measured: ~35 % slower). So all work for a device runs here.
#pragma once

#include <condition_variable>
#include <deque>
#include <functional>
#include <mutex>
#include <string>
#include <thread>

namespace rs {

class ComputeThread {
 public:
  // The process-wide thread for a device key ("cpu", "cuda:0"). Threads live until the
  // process ends; they are never destroyed, so exit never joins a busy thread.
  static ComputeThread& For(const std::string& deviceKey);

  void Post(std::function<void()> job);
  // Applies to the jobs posted after it (runs on the thread itself, as it must).
  void SetThreads(int n);
  int threads() const { return threads_; }

 private:
  ComputeThread();
  void Loop();

  std::mutex mu_;
  std::condition_variable cv_;
  std::deque<std::function<void()>> queue_;
  int threads_;
  std::thread thread_;
};

// The default intra-op thread count: the cores this process may use.
int DefaultThreads();

}  // namespace rs
