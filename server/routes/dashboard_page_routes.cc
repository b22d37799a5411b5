#include "server/routes/dashboard_page_routes.h"

#include <optional>
#include <string>

#include "absl/strings/str_cat.h"
#include "server/http/access_control.h"
#include "server/http/errors.h"
#include "server/http/request_context.h"
#include "server/http/session_cookie.h"

namespace pggitops::server {
namespace {

// The longest `key` the session route reads; real keys have 49 characters.
constexpr size_t kMaxKeyLength = 512;

// The `key` of a POST /dashboard/session body. Throws HttpError 422 naming
// the field for a missing or empty key, one of another type, or an unknown
// field (the body is a JSON object: the dispatcher answered 400 otherwise).
std::string SessionKey(const nlohmann::json& body) {
  for (auto field = body.begin(); field != body.end(); ++field) {
    if (field.key() != "key") {
      throw Validation(
          absl::StrCat("unknown field '", field.key(), "': expected key"));
    }
  }
  auto it = body.find("key");
  if (it == body.end()) throw Validation("key: required");
  if (!it->is_string()) throw Validation("key: must be a string");
  const std::string& key = it->get_ref<const std::string&>();
  if (key.empty() || key.size() > kMaxKeyLength) {
    throw Validation(
        absl::StrCat("key: must be 1 to ", kMaxKeyLength, " characters"));
  }
  return key;
}

void Login(RequestContext& ctx, ApiKeyVerifier* keys,
           const TrustedProxies* proxies) {
  const std::string key = SessionKey(ctx.body);
  if (keys->protected_mode()) {
    throw Unauthorized(
        "no API key exists (protected mode): the dashboard needs no key from "
        "this host, and answers no other");
  }
  std::optional<ApiScope> scope = keys->Verify(key);
  // Checked before it goes into a header, though a verified key is safe.
  if (!scope.has_value() || *scope < ApiScope::kRead || !IsCookieSafe(key)) {
    throw Unauthorized("the API key is not valid (unknown or revoked)");
  }
  ctx.res.status = 204;
  ctx.res.set_header("Set-Cookie",
                     SessionCookie(key, ForwardedOverHttps(ctx.req, *proxies)));
  ctx.res.set_header("Cache-Control", "no-store");
}

void Logout(RequestContext& ctx, const TrustedProxies* proxies) {
  ctx.res.status = 204;
  ctx.res.set_header("Set-Cookie", ClearedSessionCookie(
                                       ForwardedOverHttps(ctx.req, *proxies)));
  ctx.res.set_header("Cache-Control", "no-store");
}

void ServePage(RequestContext& ctx) {
  ctx.res.status = 200;
  ctx.res.set_header("Content-Security-Policy", kDashboardCsp);
  ctx.res.set_header("X-Content-Type-Options", "nosniff");
  ctx.res.set_header("Cache-Control", "no-store");
  ctx.res.set_header("X-Frame-Options", "DENY");
  ctx.res.set_header("Referrer-Policy", "no-referrer");
  absl::string_view html = DashboardPageHtml();
  ctx.res.set_content(html.data(), html.size(), "text/html; charset=utf-8");
}

}  // namespace

void AddDashboardPageRoutes(Router* router, ApiKeyVerifier* keys,
                            const TrustedProxies* proxies) {
  router->Add({"GET", "/dashboard", BodyPolicy::kNone, Scope::kPublic,
               [](RequestContext& ctx) { ServePage(ctx); }});
  router->Add(
      {"POST", "/dashboard/session", BodyPolicy::kRequiredJson, Scope::kPublic,
       [keys, proxies](RequestContext& ctx) { Login(ctx, keys, proxies); }});
  router->Add({"DELETE", "/dashboard/session", BodyPolicy::kNone,
               Scope::kPublic,
               [proxies](RequestContext& ctx) { Logout(ctx, proxies); }});
}

}  // namespace pggitops::server
