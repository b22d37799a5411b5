#include "server/routes/route_table.h"

#include "server/routes/alert_routes.h"
#include "server/routes/cache_routes.h"
#include "server/routes/dashboard_page_routes.h"
#include "server/routes/dashboard_routes.h"
#include "server/routes/docs_routes.h"
#include "server/routes/health_routes.h"
#include "server/routes/webhook_routes.h"

namespace pggitops::server {

void AddAllRoutes(Router* router, AppContext* app, ApiKeyVerifier* keys,
                  const TrustedProxies* proxies) {
  AddHealthRoutes(router, app);
  AddCacheRoutes(router, app->cache, app->latency);
  AddWebhookRoutes(router, app);
  AddAlertRoutes(router, app);
  AddDashboardRoutes(router, app);
  AddDashboardPageRoutes(router, keys, proxies);
  AddDocsRoutes(router);
}

}  // namespace pggitops::server
