// Who may call what (CONTRACT sections 8 and 10): the rate limit of /api/*
// (and /dashboard/session) per client address, then API keys (a bearer
// header, or the dashboard's cookie on GET) and scopes, or protected mode
// while no key exists. Both are HttpServer middlewares, run after routing (so
// only known routes count) and before the body is parsed.
#ifndef PGGITOPS_SERVER_HTTP_ACCESS_CONTROL_H_
#define PGGITOPS_SERVER_HTTP_ACCESS_CONTROL_H_

#include <optional>
#include <string>

#include "absl/strings/string_view.h"
#include "pggitops/api_keys.h"
#include "pggitops/rate_limiter.h"
#include "server/http/client_address.h"
#include "server/http/errors.h"
#include "server/http/http_server.h"

namespace pggitops::server {

// True for the names API_HOST may hold that only this host can reach:
// 127.0.0.0/8, ::1 and "localhost".
bool IsLoopbackHost(absl::string_view host);

// The token of an `Authorization` header value "Bearer <token>" (the
// scheme in any case, spaces around the token ignored), or nullopt.
std::optional<std::string> BearerTokenOf(absl::string_view header);

// 401 UNAUTHORIZED with `WWW-Authenticate: Bearer`, for a missing or bad
// key.
HttpError Unauthorized(const std::string& detail);

// Whether the rate limit counts a request for `path`: every path under
// /api/ (a 404 included), and /dashboard/session, where keys can be guessed
// too. Not the page (/dashboard), /health* or /metrics.
bool IsRateLimitedPath(absl::string_view path);

// Rate-limits the requests IsRateLimitedPath names, before routing, by
// client address (TrustedProxies decides whose X-Forwarded-For is
// believed); IPv6 clients share one bucket per /`ipv6_prefix`
// (RATE_LIMIT_IPV6_PREFIX). Every answer of such a request carries
// X-RateLimit-Limit, -Remaining and -Reset (epoch seconds); a refused one is
// 429 RATE_LIMITED with Retry-After. Loopback clients are exempt when
// `exempt_loopback`. *limiter and *proxies must outlive the server.
Screen RateLimitScreen(RateLimiter* limiter, const TrustedProxies* proxies,
                       bool exempt_loopback, int ipv6_prefix);

// Whether a Host header names this host: localhost, 127.0.0.0/8 or [::1],
// with any port. An absent Host (HTTP/1.0) counts as this host.
bool IsLoopbackHostHeader(absl::string_view host);
// Whether an Origin is a page of this host (http or https, a loopback
// name as above, any port).
bool IsLoopbackOrigin(absl::string_view origin);

// Protected mode (no API key exists) on every path: refuses with 403
// FORBIDDEN what a browser on this host could be made to send, a Host that
// is not a loopback name (DNS rebinding), a cross-site Origin, or
// `Sec-Fetch-Site: cross-site` (CSRF). Passes everything once a key exists.
// *keys must outlive the server.
Screen ProtectedModeScreen(ApiKeyVerifier* keys);

// Requires what each route's Scope asks for. Public routes pass. While no
// API key exists (protected mode) only loopback clients pass, and a request
// with X-Forwarded-For or Forwarded is not a loopback client; otherwise
// `Authorization: Bearer <key>` is required (401 UNAUTHORIZED without a
// valid one, 403 FORBIDDEN when its scope is too narrow). A GET or HEAD
// request without an Authorization header may carry the key in the
// dashboard's `pggit_session` cookie instead (server/http/session_cookie.h);
// any other method with only the cookie is 401. *keys must outlive the
// server.
// Also sets RequestContext::admin: an admin key, or a loopback client in
// protected mode; on public routes, from an Authorization header if one is
// sent (it is not required there).
Middleware AuthMiddleware(ApiKeyVerifier* keys);

// Whether `req` may see details: protected mode and a loopback client, or
// `Authorization: Bearer` with a valid admin key.
bool IsAdminCaller(const httplib::Request& req, ApiKeyVerifier* keys);

}  // namespace pggitops::server

#endif  // PGGITOPS_SERVER_HTTP_ACCESS_CONTROL_H_
