#include "server/http/access_control.h"

#include <algorithm>
#include <optional>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "server/http/errors.h"
#include "server/http/request_context.h"
#include "server/http/session_cookie.h"

namespace pggitops::server {
namespace {

ApiScope Needed(Scope s) {
  switch (s) {
    case Scope::kAdmin:
      return ApiScope::kAdmin;
    case Scope::kWrite:
      return ApiScope::kWrite;
    default:
      return ApiScope::kRead;
  }
}

// The token of "Authorization: Bearer <token>", or nullopt.
std::optional<std::string> BearerToken(const httplib::Request& req) {
  if (!req.has_header("Authorization")) return std::nullopt;
  return BearerTokenOf(req.get_header_value("Authorization"));
}

// GET and HEAD: the methods the session cookie is accepted for. They change
// nothing, so a request a browser sends on its own with the cookie (it
// would not cross sites anyway: SameSite=Strict) can only read.
bool IsReadMethod(const std::string& method) {
  return method == "GET" || method == "HEAD";
}

int64_t CeilSeconds(absl::Duration d) {
  return std::max<int64_t>(
      1, absl::ToInt64Seconds(absl::Ceil(d, absl::Seconds(1))));
}

}  // namespace

std::optional<std::string> BearerTokenOf(absl::string_view header) {
  absl::string_view v = absl::StripAsciiWhitespace(header);
  if (v.size() < 7 || !absl::EqualsIgnoreCase(v.substr(0, 7), "bearer ")) {
    return std::nullopt;
  }
  v = absl::StripAsciiWhitespace(v.substr(7));
  if (v.empty()) return std::nullopt;
  return std::string(v);
}

HttpError Unauthorized(const std::string& detail) {
  HttpError e(401, "UNAUTHORIZED", detail);
  e.headers.emplace_back("WWW-Authenticate", "Bearer realm=\"pggit-api\"");
  return e;
}

bool IsRateLimitedPath(absl::string_view path) {
  return absl::StartsWith(path, "/api/") || path == "/dashboard/session";
}

bool IsLoopbackHost(absl::string_view host) {
  if (absl::EqualsIgnoreCase(host, "localhost")) return true;
  return IsLoopbackAddress(host);
}

bool IsLoopbackHostHeader(absl::string_view host) {
  if (host.empty()) return true;
  absl::string_view name = host;
  if (name.front() == '[') {
    size_t close = name.find(']');
    if (close == absl::string_view::npos) return false;
    absl::string_view rest = name.substr(close + 1);
    if (!rest.empty() &&
        (rest.front() != ':' ||
         !std::all_of(rest.begin() + 1, rest.end(), absl::ascii_isdigit))) {
      return false;
    }
    return IsLoopbackAddress(name.substr(1, close - 1));
  }
  size_t colon = name.rfind(':');
  if (colon != absl::string_view::npos) {
    absl::string_view port = name.substr(colon + 1);
    if (!std::all_of(port.begin(), port.end(), absl::ascii_isdigit)) {
      return false;
    }
    name = name.substr(0, colon);
  }
  if (absl::EndsWith(name, ".")) name.remove_suffix(1);
  return IsLoopbackHost(name);
}

bool IsLoopbackOrigin(absl::string_view origin) {
  absl::string_view rest;
  if (absl::StartsWithIgnoreCase(origin, "http://")) {
    rest = origin.substr(7);
  } else if (absl::StartsWithIgnoreCase(origin, "https://")) {
    rest = origin.substr(8);
  } else {
    return false;  // "null" (sandboxed, file:) and other schemes
  }
  if (rest.empty() || rest.find('/') != absl::string_view::npos ||
      rest.find('@') != absl::string_view::npos) {
    return false;
  }
  return IsLoopbackHostHeader(rest);
}

Screen ProtectedModeScreen(ApiKeyVerifier* keys) {
  return [keys](const httplib::Request& req, httplib::Response&) {
    if (!keys->protected_mode()) return;
    const std::string host = req.get_header_value("Host");
    if (!IsLoopbackHostHeader(host)) {
      throw HttpError(403, "FORBIDDEN",
                      "protected mode: the Host header must name this host "
                      "(localhost, 127.0.0.1 or [::1]); create an API key to "
                      "serve other names");
    }
    if (req.has_header("Origin") &&
        !IsLoopbackOrigin(req.get_header_value("Origin"))) {
      throw HttpError(403, "FORBIDDEN",
                      "protected mode: cross-site requests are refused "
                      "(Origin is not a page of this host)");
    }
    if (absl::EqualsIgnoreCase(req.get_header_value("Sec-Fetch-Site"),
                               "cross-site")) {
      throw HttpError(403, "FORBIDDEN",
                      "protected mode: cross-site requests are refused "
                      "(Sec-Fetch-Site: cross-site)");
    }
  };
}

Screen RateLimitScreen(RateLimiter* limiter, const TrustedProxies* proxies,
                       bool exempt_loopback, int ipv6_prefix) {
  return [limiter, proxies, exempt_loopback, ipv6_prefix](
             const httplib::Request& req, httplib::Response& res) {
    if (!IsRateLimitedPath(req.path)) return;
    std::string client = ClientAddress(req, *proxies);
    if (exempt_loopback && IsLoopbackAddress(client)) return;
    RateLimitDecision d = limiter->Check(ClientBucket(client, ipv6_prefix));
    res.set_header("X-RateLimit-Limit", absl::StrCat(d.limit));
    res.set_header("X-RateLimit-Remaining", absl::StrCat(d.remaining));
    int64_t reset = absl::ToUnixSeconds(d.reset);
    if (absl::FromUnixSeconds(reset) < d.reset) ++reset;  // rounded up
    res.set_header("X-RateLimit-Reset", absl::StrCat(reset));
    if (d.allowed) return;
    int64_t retry = CeilSeconds(d.retry_after);
    HttpError e(429, "RATE_LIMITED",
                absl::StrCat("rate limit of ", d.limit,
                             " requests per minute exceeded for ", client,
                             "; retry in ", retry, " s"));
    e.headers.emplace_back("Retry-After", absl::StrCat(retry));
    throw e;
  };
}

bool IsAdminCaller(const httplib::Request& req, ApiKeyVerifier* keys) {
  if (keys->protected_mode()) return IsLoopbackClient(req);
  std::optional<std::string> token = BearerToken(req);
  if (!token.has_value()) return false;
  std::optional<ApiScope> scope = keys->Verify(*token);
  return scope.has_value() && *scope >= ApiScope::kAdmin;
}

Middleware AuthMiddleware(ApiKeyVerifier* keys) {
  return [keys](RequestContext& ctx, const Route& route) {
    if (route.scope == Scope::kPublic) {
      ctx.admin = IsAdminCaller(ctx.req, keys);
      return;
    }
    if (keys->protected_mode()) {
      if (IsLoopbackClient(ctx.req)) {
        ctx.admin = true;  // the operator on this host
        return;
      }
      throw HttpError(
          403, "FORBIDDEN",
          "protected mode: no API key exists, so the API answers loopback "
          "clients only (and not through a proxy); create a key with "
          "`pggit-api keys create --name NAME --scopes read`");
    }
    // An Authorization header, when present, decides; the session cookie
    // stands in for it on GET and HEAD only.
    std::optional<std::string> token = BearerToken(ctx.req);
    bool from_cookie = false;
    if (!ctx.req.has_header("Authorization")) {
      token = RequestCookie(ctx.req, kSessionCookieName);
      from_cookie = token.has_value();
    }
    if (!token.has_value()) {
      throw Unauthorized(
          "an API key is required: send `Authorization: Bearer <key>`");
    }
    if (from_cookie && !IsReadMethod(ctx.req.method)) {
      throw Unauthorized(
          absl::StrCat("the ", kSessionCookieName,
                       " cookie is accepted for GET requests only; send ",
                       ctx.req.method, " with `Authorization: Bearer <key>`"));
    }
    std::optional<ApiScope> scope = keys->Verify(*token);
    if (!scope.has_value()) {
      throw Unauthorized(
          from_cookie ? absl::StrCat("the API key of the ", kSessionCookieName,
                                     " cookie is not valid (unknown or "
                                     "revoked): sign in again at /dashboard")
                      : "the API key is not valid (unknown or revoked)");
    }
    ctx.admin = *scope >= ApiScope::kAdmin;
    ApiScope needed = Needed(route.scope);
    if (*scope < needed) {
      throw HttpError(
          403, "FORBIDDEN",
          absl::StrCat(route.method, " ", route.path_template, " needs the `",
                       ApiScopeName(needed), "` scope; this key has `",
                       ApiScopeName(*scope), "`"));
    }
  };
}

}  // namespace pggitops::server
