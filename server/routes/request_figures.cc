#include "server/routes/request_figures.h"

#include <algorithm>

namespace pggitops::server {

RequestFigures SummarizeRequests(const LatencyWindow& window,
                                 absl::Duration uptime) {
  const LatencyWindow::Summary s = window.Summarize();
  RequestFigures f;
  f.count = s.count;
  f.p50_ms = s.p50_ms;
  f.p95_ms = s.p95_ms;
  f.p99_ms = s.p99_ms;
  if (s.count > 0) {
    f.error_rate = static_cast<double>(s.errors) / s.count;
    // At least one second: the window's resolution.
    const double seconds = std::clamp(absl::ToDoubleSeconds(uptime), 1.0,
                                      double{kRequestWindowSeconds});
    f.requests_per_second = s.count / seconds;
  }
  return f;
}

}  // namespace pggitops::server
