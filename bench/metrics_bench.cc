// metrics_bench: ns/op of the metrics hot path with 1 and 2 threads.
//
// A standalone program (no benchmark framework): each case runs its
// operation on N threads for about 250 ms (bench/thread_bench.h) and prints the
// mean time per operation seen by one thread and the total throughput. Built by
// bench/meson.build; run with `meson test -C <build> --benchmark` or
// directly.
#include <atomic>
#include <cstdint>
#include <cstdio>
#include <string>
#include <vector>

#include "bench/thread_bench.h"
#include "pggitops/latency_window.h"
#include "pggitops/metrics.h"

namespace {

void Report(const char* name, const pggitops::bench::ThreadBenchOp& op) {
  for (int threads : {1, 2}) {
    pggitops::bench::ThreadBenchResult r =
        pggitops::bench::RunThreads(threads, op);
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
  Report("Counter::Inc", [&](int, uint64_t) { counter.Inc(); });
  Report("Histogram::Observe", [&](int, uint64_t i) {
    histogram.Observe((i & 1023) * 1e-4);  // 0 .. 0.1 s
  });
  Report("Family::WithLabels (2 labels)", [&](int, uint64_t i) {
    pggitops::Counter& c = family.WithLabels({"GET", routes[i & 3]});
    sink.fetch_add(reinterpret_cast<uintptr_t>(&c) & 1,
                   std::memory_order_relaxed);
  });
  Report("LatencyWindow::Record", [&](int, uint64_t i) {
    window.Record(absl::Microseconds(100 + (i & 1023)));
  });
  std::printf("(families serialized: %zu bytes; sink %lu)\n",
              registry.Serialize().size(),
              static_cast<unsigned long>(sink.load()));
  return 0;
}
