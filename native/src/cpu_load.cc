#include "cpu_load.h"

#include <sched.h>
#include <sys/resource.h>
#include <unistd.h>

#include <cstdio>
#include <cstring>

namespace rs {

CpuLoad::CpuLoad() {
  cpu_set_t set;
  if (sched_getaffinity(0, sizeof(set), &set) == 0) {
    for (int i = 0; i < CPU_SETSIZE; ++i)
      if (CPU_ISSET(i, &set)) cpus_.push_back(i);
  }
  last_ = Read();
}

CpuLoad::Reading CpuLoad::Read() const {
  Reading r;
  r.at = std::chrono::steady_clock::now();
  FILE* f = std::fopen("/proc/stat", "r");
  if (!f) return r;
  static const double hz = static_cast<double>(sysconf(_SC_CLK_TCK));
  char line[512];
  size_t next = 0;  // cpus_ is sorted, as are the cpuN lines
  unsigned long long busy = 0;
  int seen = 0;
  while (std::fgets(line, sizeof(line), f)) {
    if (std::strncmp(line, "cpu", 3) != 0) {
      if (seen > 0) break;  // the per-CPU lines are contiguous
      continue;
    }
    if (line[3] < '0' || line[3] > '9') continue;  // the aggregate "cpu " line
    int id;
    unsigned long long user, nice, system, idle, iowait, irq, softirq, steal;
    if (std::sscanf(line, "cpu%d %llu %llu %llu %llu %llu %llu %llu %llu", &id, &user, &nice, &system, &idle,
                    &iowait, &irq, &softirq, &steal) != 9)
      continue;
    while (next < cpus_.size() && cpus_[next] < id) ++next;
    if (next < cpus_.size() && cpus_[next] == id) {
      busy += user + nice + system + irq + softirq + steal;
      ++seen;
    }
  }
  std::fclose(f);
  if (seen == 0) return r;
  struct rusage ru;
  if (getrusage(RUSAGE_SELF, &ru) != 0) return r;
  r.busyS = static_cast<double>(busy) / hz;
  r.selfS = ru.ru_utime.tv_sec + ru.ru_stime.tv_sec + (ru.ru_utime.tv_usec + ru.ru_stime.tv_usec) * 1e-6;
  r.ok = true;
  return r;
}

double CpuLoad::Sample(std::chrono::milliseconds minWindow) {
  auto now = std::chrono::steady_clock::now();
  if (now - last_.at < minWindow) return -1;
  Reading r = Read();
  if (!r.ok || !last_.ok) {
    last_ = r;
    return -1;
  }
  double wall = std::chrono::duration<double>(r.at - last_.at).count();
  // Our own time can exceed what /proc/stat credited these CPUs (tick sampling, or threads that
  // ran on CPUs outside the mask before it changed): never report negative load.
  double other = ((r.busyS - last_.busyS) - (r.selfS - last_.selfS)) / wall;
  last_ = r;
  return other < 0 ? 0 : other;
}

}  // namespace rs
