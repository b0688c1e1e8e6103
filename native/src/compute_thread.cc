#include "compute_thread.h"

#include <ATen/Parallel.h>
#include <sched.h>

#include <map>
#include <memory>

namespace rs {

int DefaultThreads() {
  cpu_set_t set;
  if (sched_getaffinity(0, sizeof(set), &set) == 0) {
    int n = CPU_COUNT(&set);
    if (n > 0) return n;
  }
  unsigned n = std::thread::hardware_concurrency();
  return n > 0 ? static_cast<int>(n) : 1;
}

ComputeThread& ComputeThread::For(const std::string& deviceKey) {
  static std::mutex registryMu;
  static auto* registry = new std::map<std::string, ComputeThread*>();  // leaked on purpose
  std::lock_guard<std::mutex> lock(registryMu);
  auto it = registry->find(deviceKey);
  if (it != registry->end()) return *it->second;
  auto* t = new ComputeThread();
  (*registry)[deviceKey] = t;
  return *t;
}

ComputeThread::ComputeThread() : threads_(DefaultThreads()), thread_([this] { Loop(); }) { thread_.detach(); }

void ComputeThread::Post(std::function<void()> job) {
  {
    std::lock_guard<std::mutex> lock(mu_);
    queue_.push_back(std::move(job));
  }
  cv_.notify_one();
}

void ComputeThread::SetThreads(int n) {
  threads_ = n;
  Post([n] { at::set_num_threads(n); });
}

void ComputeThread::Loop() {
  at::set_num_threads(threads_);
  for (;;) {
    std::function<void()> job;
    {
      std::unique_lock<std::mutex> lock(mu_);
      cv_.wait(lock, [this] { return !queue_.empty(); });
      job = std::move(queue_.front());
      queue_.pop_front();
    }
    job();  // jobs catch their own exceptions; see addon.cc
  }
}

}  // namespace rs
