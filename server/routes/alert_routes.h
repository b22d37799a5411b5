// The alerts endpoints of CONTRACT section 5, including the event stream
// (see docs/api/alerts.md).
#ifndef PGGITOPS_SERVER_ROUTES_ALERT_ROUTES_H_
#define PGGITOPS_SERVER_ROUTES_ALERT_ROUTES_H_

#include "server/app_context.h"
#include "server/http/router.h"

namespace pggitops::server {

// Adds the routes, registers the "alerts first page" cache warmer with
// app->cache and subscribes the stream to app->listener (pggit_alerts).
// *app must outlive the router.
void AddAlertRoutes(Router* router, AppContext* app);

}  // namespace pggitops::server

#endif  // PGGITOPS_SERVER_ROUTES_ALERT_ROUTES_H_
