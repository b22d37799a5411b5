// GET /api/v1/cache/stats, POST /api/v1/cache/warm and
// POST /api/v1/cache/invalidate (CONTRACT sections 5 and 10).
#ifndef PGGITOPS_SERVER_ROUTES_CACHE_ROUTES_H_
#define PGGITOPS_SERVER_ROUTES_CACHE_ROUTES_H_

#include "pggitops/cache.h"
#include "pggitops/latency_window.h"
#include "server/http/router.h"

namespace pggitops::server {

// Scopes: stats needs `read` (monitoring scripts read it), warm and
// invalidate need `admin`. *cache and *latency (the daemon's request
// latency window, for `cache_stats`) must outlive the router.
void AddCacheRoutes(Router* router, Cache* cache, LatencyWindow* latency);

}  // namespace pggitops::server

#endif  // PGGITOPS_SERVER_ROUTES_CACHE_ROUTES_H_
