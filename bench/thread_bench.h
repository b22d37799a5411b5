// Runs one operation on N threads for a fixed time and reports its cost: the
// harness of the small in-process benchmarks (metrics_bench,
// rate_limit_bench). Header-only; no benchmark framework.
#ifndef PGGITOPS_BENCH_THREAD_BENCH_H_
#define PGGITOPS_BENCH_THREAD_BENCH_H_

#include <time.h>

#include <atomic>
#include <chrono>
#include <cstdint>
#include <functional>
#include <thread>
#include <vector>

namespace pggitops::bench {

struct ThreadBenchResult {
  double ns_per_op;  // wall time one thread spends per op, mean over threads
  double cpu_ns_per_op;  // thread CPU time per op, mean over threads
  double mops;           // total throughput, all threads
};

// The operation: op(thread_index, n), where n counts that thread's calls
// from 0.
using ThreadBenchOp = std::function<void(int, uint64_t)>;

inline double ThreadCpuNanos() {
  timespec ts;
  clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
  return ts.tv_sec * 1e9 + ts.tv_nsec;
}

// Runs `op` on `threads` threads, started together, until `run_time` passes
// (the clock is read every `chunk` calls).
inline ThreadBenchResult RunThreads(
    int threads, const ThreadBenchOp& op,
    std::chrono::milliseconds run_time = std::chrono::milliseconds(250),
    int chunk = 10000) {
  using Clock = std::chrono::steady_clock;
  std::atomic<bool> go{false};
  std::vector<double> ns(threads), cpu_ns(threads);
  std::vector<uint64_t> ops(threads);
  std::vector<std::thread> workers;
  for (int t = 0; t < threads; ++t) {
    workers.emplace_back([&, t] {
      while (!go.load(std::memory_order_acquire)) std::this_thread::yield();
      const double cpu_start = ThreadCpuNanos();
      Clock::time_point start = Clock::now(), now = start;
      uint64_t n = 0;
      while (now - start < run_time) {
        for (int i = 0; i < chunk; ++i) op(t, n + i);
        n += chunk;
        now = Clock::now();
      }
      ns[t] = std::chrono::duration<double, std::nano>(now - start).count();
      cpu_ns[t] = ThreadCpuNanos() - cpu_start;
      ops[t] = n;
    });
  }
  go.store(true, std::memory_order_release);
  for (std::thread& w : workers) w.join();
  ThreadBenchResult r{0, 0, 0};
  for (int t = 0; t < threads; ++t) {
    r.ns_per_op += ns[t] / ops[t] / threads;
    r.cpu_ns_per_op += cpu_ns[t] / ops[t] / threads;
    r.mops += ops[t] / (ns[t] / 1e3);
  }
  return r;
}

}  // namespace pggitops::bench

#endif  // PGGITOPS_BENCH_THREAD_BENCH_H_
