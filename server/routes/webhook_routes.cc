#include "server/routes/webhook_routes.h"

namespace pggitops::server {

void AddWebhookRoutes(Router* router, AppContext* app) {
  (void)router;
  (void)app;
}

}  // namespace pggitops::server
