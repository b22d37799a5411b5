// The webhooks endpoints of CONTRACT section 5 (see docs/api/webhooks.md).
#ifndef PGGITOPS_SERVER_ROUTES_WEBHOOK_ROUTES_H_
#define PGGITOPS_SERVER_ROUTES_WEBHOOK_ROUTES_H_

#include "server/app_context.h"
#include "server/http/router.h"

namespace pggitops::server {

// Adds the routes, and registers their cache warmers with app->cache.
// *app must outlive the router.
void AddWebhookRoutes(Router* router, AppContext* app);

}  // namespace pggitops::server

#endif  // PGGITOPS_SERVER_ROUTES_WEBHOOK_ROUTES_H_
