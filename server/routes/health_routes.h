// GET /health, /health/live, /health/ready, /health/deep and /metrics.
#ifndef PGGITOPS_SERVER_ROUTES_HEALTH_ROUTES_H_
#define PGGITOPS_SERVER_ROUTES_HEALTH_ROUTES_H_

#include "server/app_context.h"
#include "server/http/router.h"

namespace pggitops::server {

// *app must outlive the router.
void AddHealthRoutes(Router* router, AppContext* app);

}  // namespace pggitops::server

#endif  // PGGITOPS_SERVER_ROUTES_HEALTH_ROUTES_H_
