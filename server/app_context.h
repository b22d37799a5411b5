// The components the daemon wires together, as the route handlers see them.
// Owned by App; handlers borrow them.
#ifndef PGGITOPS_SERVER_APP_CONTEXT_H_
#define PGGITOPS_SERVER_APP_CONTEXT_H_

#include <atomic>

#include "absl/time/time.h"
#include "pggitops/config.h"
#include "pggitops/connection_pool.h"
#include "pggitops/health.h"
#include "pggitops/latency_window.h"
#include "pggitops/metrics.h"
#include "server/lifecycle.h"

namespace pggitops::server {

struct AppContext {
  const Config* config = nullptr;
  MetricsRegistry* metrics = nullptr;
  HealthRegistry* health = nullptr;
  LatencyWindow* latency = nullptr;
  ConnectionPool* pool = nullptr;
  absl::Time started_at;
  std::atomic<Phase> phase{Phase::kStarting};
};

}  // namespace pggitops::server

#endif  // PGGITOPS_SERVER_APP_CONTEXT_H_
