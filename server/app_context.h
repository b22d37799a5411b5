// The components the daemon wires together, as the route handlers see them.
// Owned by App; handlers borrow them.
#ifndef PGGITOPS_SERVER_APP_CONTEXT_H_
#define PGGITOPS_SERVER_APP_CONTEXT_H_

#include <atomic>

#include "absl/time/time.h"
#include "pggitops/cache.h"
#include "pggitops/config.h"
#include "pggitops/connection_pool.h"
#include "pggitops/delivery_queue.h"
#include "pggitops/health.h"
#include "pggitops/latency_window.h"
#include "pggitops/metrics.h"
#include "pggitops/pg_listener.h"
#include "server/lifecycle.h"
#include "server/routes/cached_read.h"
#include "server/server_config.h"

namespace pggitops::server {

class SseHub;  // server/routes/sse_hub.h

struct AppContext {
  const ServerConfig* config = nullptr;
  MetricsRegistry* metrics = nullptr;
  HealthRegistry* health = nullptr;
  LatencyWindow* latency = nullptr;
  ConnectionPool* pool = nullptr;
  // The L1/L2 cache (never null; disabled when CACHE_ENABLED=false) and the
  // read helper of the JSON read endpoints built on it.
  Cache* cache = nullptr;
  const CachedRead* reads = nullptr;
  // The one LISTEN session of the daemon (pggit_cache, pggit_deliveries,
  // pggit_alerts); subscribe here rather than open another.
  PgListener* listener = nullptr;
  // The delivery engine (test sends, Wake after writes).
  DeliveryEngine* engine = nullptr;
  // The alert stream's hub (set by AddAlertRoutes): ended when the daemon
  // drains, shut down before the HTTP server goes.
  SseHub* stream_hub = nullptr;
  absl::Time started_at;
  std::atomic<Phase> phase{Phase::kStarting};
};

}  // namespace pggitops::server

#endif  // PGGITOPS_SERVER_APP_CONTEXT_H_
