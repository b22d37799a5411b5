// File: pggitops/latency_window.h
//
// LatencyWindow keeps the request latencies of the recent past (default 60 s)
// and answers percentiles over them. The daemon records every HTTP request
// into one; the cache statistics (`cache_stats.p99_ms`) and the dashboard
// read it.
#ifndef PGGITOPS_INCLUDE_LATENCY_WINDOW_H_
#define PGGITOPS_INCLUDE_LATENCY_WINDOW_H_

#include <cstdint>
#include <memory>

#include "absl/time/time.h"
#include "pggitops/env.h"
#include "pggitops/export.h"

namespace pggitops {

// Thread-safe: Record and Summarize take one short mutex; Record is O(1).
//
// Time is cut into one-second slots of env->MonotonicNow(); each slot holds a
// histogram of log-spaced buckets 2 % wide from 10 microseconds to 100 s (plus
// one bucket below and one above). A percentile is the middle of the bucket
// holding it, clamped to the smallest and largest latency seen, so it is
// within about 1 % of the true value for latencies between 10 microseconds
// and 100 s; one outside that range is reported as the range's nearer end. A
// recorded latency stays in the summary for between window - 1 s and window
// (slot resolution). Memory: about 3.3 KB per second of window, allocated as
// slots are first used.
class PGGITOPS_EXPORT LatencyWindow {
 public:
  // `window` is rounded up to whole seconds and clamped to [1 s, 1 h].
  // *env must outlive the window. Default: Env::Default().
  explicit LatencyWindow(absl::Duration window = absl::Seconds(60),
                         Env* env = nullptr);
  ~LatencyWindow();
  LatencyWindow(const LatencyWindow&) = delete;
  LatencyWindow& operator=(const LatencyWindow&) = delete;

  // `is_error` marks a request answered with a 5xx status. Negative
  // latencies count as 0.
  void Record(absl::Duration latency, bool is_error = false);

  struct Summary {
    uint64_t count = 0;   // requests in the window
    uint64_t errors = 0;  // of which answered 5xx
    double p50_ms = 0;    // 0 when count == 0
    double p95_ms = 0;
    double p99_ms = 0;
  };
  // Summarizes the requests recorded within the window ending now.
  Summary Summarize() const;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace pggitops

#endif  // PGGITOPS_INCLUDE_LATENCY_WINDOW_H_
