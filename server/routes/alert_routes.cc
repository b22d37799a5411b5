#include "server/routes/alert_routes.h"

namespace pggitops::server {

void AddAlertRoutes(Router* router, AppContext* app) {
  (void)router;
  (void)app;
}

}  // namespace pggitops::server
