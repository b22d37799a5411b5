// metrics_bench: ns/op of the metrics hot path with 1 and 2 threads.
//
// A standalone program (no benchmark framework): each case runs its
// operation on N threads for about kRunTime and prints the mean time per
// operation seen by one thread and the total throughput. Built by
// bench/meson.build; run with `meson test -C <build> --benchmark` or
// directly.
#include <atomic>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <functional>
#include <string>
#include <thread>
#include <vector>

#include "pggitops/latency_window.h"
#include "pggitops/metrics.h"

namespace {

using Clock = std::chrono::steady_clock;

constexpr auto kRunTime = std::chrono::milliseconds(250);
constexpr int kChunk = 10000;  // operations between clock reads

struct Result {
  double ns_per_op;  // mean over threads
  double mops;       // total, all threads
};

// Runs `op(thread_index, i)` on `threads` threads until kRunTime passes.
Result Run(int threads, const std::function<void(int, int)>& op) {
  std::atomic<bool> go{false};
  std::vector<double> ns(threads);
  std::vector<uint64_t> ops(threads);
  std::vector<std::thread> workers;
  for (int t = 0; t < threads; ++t) {
    workers.emplace_back([&, t] {
      while (!go.load(std::memory_order_acquire)) std::this_thread::yield();
      Clock::time_point start = Clock::now(), now = start;
      uint64_t n = 0;
      while (now - start < kRunTime) {
        for (int i = 0; i < kChunk; ++i) op(t, i);
        n += kChunk;
        now = Clock::now();
      }
      ns[t] = std::chrono::duration<double, std::nano>(now - start).count();
      ops[t] = n;
    });
  }
  go.store(true, std::memory_order_release);
  for (std::thread& w : workers) w.join();
  Result r{0, 0};
  for (int t = 0; t < threads; ++t) {
    r.ns_per_op += ns[t] / ops[t] / threads;
    r.mops += ops[t] / (ns[t] / 1e3);
  }
  return r;
}

void Report(const char* name, const std::function<void(int, int)>& op) {
  for (int threads : {1, 2}) {
    Result r = Run(threads, op);
    std::printf("%-34s %7d %10.1f %14.1f\n", name, threads, r.ns_per_op,
                r.mops);
  }
}

}  // namespace

int main() {
  pggitops::MetricsRegistry registry;
  pggitops::Counter& counter =
      registry.AddCounter("bench_ops_total", "Ops.").WithLabels({});
  pggitops::Histogram& histogram =
      registry.AddHistogram("bench_seconds", "Latency.").WithLabels({});
  auto& family = registry.AddCounter("bench_requests_total", "Requests.",
                                     {"method", "route"});
  const std::vector<std::string> routes = {"/api/v1/webhooks", "/health",
                                           "/api/v1/alerts", "/metrics"};
  for (const std::string& route : routes) family.WithLabels({"GET", route});
  pggitops::LatencyWindow window;
  std::atomic<uintptr_t> sink{0};

  std::printf("%-34s %7s %10s %14s\n", "operation", "threads", "ns/op",
              "total Mops/s");
  Report("Counter::Inc", [&](int, int) { counter.Inc(); });
  Report("Histogram::Observe", [&](int, int i) {
    histogram.Observe((i & 1023) * 1e-4);  // 0 .. 0.1 s
  });
  Report("Family::WithLabels (2 labels)", [&](int, int i) {
    pggitops::Counter& c = family.WithLabels({"GET", routes[i & 3]});
    sink.fetch_add(reinterpret_cast<uintptr_t>(&c) & 1,
                   std::memory_order_relaxed);
  });
  Report("LatencyWindow::Record", [&](int, int i) {
    window.Record(absl::Microseconds(100 + (i & 1023)));
  });
  std::printf("(families serialized: %zu bytes; sink %lu)\n",
              registry.Serialize().size(),
              static_cast<unsigned long>(sink.load()));
  return 0;
}
