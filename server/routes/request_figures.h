// The request figures of this process that the dashboard's `performance`
// block and the alert stream's `system_status` event report, from the
// daemon's request latency window.
#ifndef PGGITOPS_SERVER_ROUTES_REQUEST_FIGURES_H_
#define PGGITOPS_SERVER_ROUTES_REQUEST_FIGURES_H_

#include <cstdint>

#include "absl/time/time.h"
#include "pggitops/latency_window.h"

namespace pggitops::server {

// The length of the daemon's request latency window (CONTRACT 10: the
// latency percentiles cover the last 60 s of requests).
inline constexpr int kRequestWindowSeconds = 60;

struct RequestFigures {
  uint64_t count = 0;  // requests answered in the window
  double p50_ms = 0;   // 0 when count == 0
  double p95_ms = 0;
  double p99_ms = 0;
  double error_rate = 0;           // fraction answered 5xx; 0 when count == 0
  double requests_per_second = 0;  // count over the window (or the uptime,
                                   // when shorter)
};

// Summarizes `window` now. `uptime` is how long the process has served
// (requests_per_second divides by it while it is shorter than the window).
RequestFigures SummarizeRequests(const LatencyWindow& window,
                                 absl::Duration uptime);

}  // namespace pggitops::server

#endif  // PGGITOPS_SERVER_ROUTES_REQUEST_FIGURES_H_
