// The daemon's whole route table in one place, so that the daemon and the
// test that holds it against docs/api/openapi.json see the same routes.
#ifndef PGGITOPS_SERVER_ROUTES_ROUTE_TABLE_H_
#define PGGITOPS_SERVER_ROUTES_ROUTE_TABLE_H_

#include "pggitops/api_keys.h"
#include "server/app_context.h"
#include "server/http/client_address.h"
#include "server/http/router.h"

namespace pggitops::server {

// Adds every route of the daemon. Handlers borrow `app`, `keys` and
// `proxies`; nothing is called on them here beyond reading app->config.
void AddAllRoutes(Router* router, AppContext* app, ApiKeyVerifier* keys,
                  const TrustedProxies* proxies);

}  // namespace pggitops::server

#endif  // PGGITOPS_SERVER_ROUTES_ROUTE_TABLE_H_
