// GET /api/v1/dashboard: the summary of CONTRACT section 5 (see
// docs/api/dashboard.md).
#ifndef PGGITOPS_SERVER_ROUTES_DASHBOARD_ROUTES_H_
#define PGGITOPS_SERVER_ROUTES_DASHBOARD_ROUTES_H_

#include "server/app_context.h"
#include "server/http/router.h"

namespace pggitops::server {

// Adds the route and registers the "dashboard summary" cache warmer with
// app->cache. *app must outlive the router.
void AddDashboardRoutes(Router* router, AppContext* app);

}  // namespace pggitops::server

#endif  // PGGITOPS_SERVER_ROUTES_DASHBOARD_ROUTES_H_
