// The page for people (CONTRACT section 5, "Dashboard") and its cookie
// login (section 10, "Dashboard with keys"):
//   GET    /dashboard          the page; public, it holds no data itself
//   POST   /dashboard/session  {"key": "..."} → 204 + Set-Cookie pggit_session
//   DELETE /dashboard/session  204 + the cookie cleared
// The page reads GET /api/v1/dashboard and the stream /api/v1/alerts/stream
// like any client, with the cookie (or from loopback in protected mode).
#ifndef PGGITOPS_SERVER_ROUTES_DASHBOARD_PAGE_ROUTES_H_
#define PGGITOPS_SERVER_ROUTES_DASHBOARD_PAGE_ROUTES_H_

#include "absl/strings/string_view.h"
#include "pggitops/api_keys.h"
#include "server/http/client_address.h"
#include "server/http/router.h"

namespace pggitops::server {

// The headers of the page: a Content-Security-Policy that allows nothing
// but this origin and the page's own inline script and style.
inline constexpr char kDashboardCsp[] =
    "default-src 'self'; script-src 'self' 'unsafe-inline'; "
    "style-src 'unsafe-inline'; img-src 'self' data:; connect-src 'self'";

// server/routes/dashboard_page.html, embedded at build time by
// scripts/embed_page.py (the generated dashboard_page.cc).
absl::string_view DashboardPageHtml();

// *keys and *proxies must outlive the router. `proxies` decides whether a
// request came over HTTPS (X-Forwarded-Proto from a trusted proxy), which
// adds `Secure` to the cookie.
void AddDashboardPageRoutes(Router* router, ApiKeyVerifier* keys,
                            const TrustedProxies* proxies);

}  // namespace pggitops::server

#endif  // PGGITOPS_SERVER_ROUTES_DASHBOARD_PAGE_ROUTES_H_
