// How busy the CPUs this process may run on are with *other* processes' work. The adaptive
// thread policy (compute_thread.cc) sizes LibTorch's intra-op team from it: OpenMP workers that
// share a core with another busy process wait for each other at every parallel region (a 3-40x
// slowdown measured on 2 cores), while one fewer thread costs at most the parallel speedup.
#pragma once

#include <chrono>
#include <cstdint>
#include <vector>

namespace rs {

class CpuLoad {
 public:
  CpuLoad();
  // Cores' worth of CPU time that other processes used since the previous Sample() (or since
  // construction), e.g. 1.0 for one busy single-threaded process. Negative when unknown
  // (no /proc/stat, or a window shorter than `minWindow`); the previous sample is then kept.
  double Sample(std::chrono::milliseconds minWindow);
  // The CPUs in this process's affinity mask.
  int allowed() const { return static_cast<int>(cpus_.size()); }

 private:
  struct Reading {
    double busyS = 0;  // all processes, these CPUs
    double selfS = 0;  // this process, all its threads
    std::chrono::steady_clock::time_point at;
    bool ok = false;
  };
  Reading Read() const;

  std::vector<int> cpus_;
  Reading last_;
};

}  // namespace rs
