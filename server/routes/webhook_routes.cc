#include "server/routes/webhook_routes.h"

#include <limits>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "absl/strings/str_cat.h"
#include "nlohmann/json.hpp"
#include "pggitops/log.h"
#include "pggitops/webhook_store.h"
#include "server/http/errors.h"
#include "server/http/request_context.h"
#include "server/routes/domain_json.h"
#include "server/routes/webhook_json.h"

namespace pggitops::server {
namespace {

using nlohmann::json;

// The library's answer, or the HTTP error that says why not. Errors the
// client caused (refused input, unknown ids) and dependency outages are
// expected; anything else is logged here because the 500 body is generic.
template <typename T>
T OrThrow(absl::StatusOr<T> r) {
  if (r.ok()) return *std::move(r);
  throw FromStatus(r.status());
}

void OrThrow(const absl::Status& s) {
  if (!s.ok()) throw FromStatus(s);
}

// --- reads ------------------------------------------------------------------

json PageJson(json items, int64_t total, const PageParams& page) {
  return {{"items", std::move(items)},
          {"total", total},
          {"limit", page.limit},
          {"offset", page.offset}};
}

json ListWebhooks(ConnectionPool* pool, const PageParams& page,
                  const std::optional<std::string>& is_active) {
  WebhookFilter filter;
  if (is_active) filter.is_active = *is_active == "true";
  filter.limit = page.limit;
  filter.offset = page.offset;
  WebhookPage found = OrThrow(WebhookStore(pool).List(filter));
  json items = json::array();
  for (const Webhook& w : found.items) items.push_back(WebhookJson(w));
  return PageJson(std::move(items), found.total, page);
}

std::string ListKey(const PageParams& page,
                    const std::optional<std::string>& is_active) {
  return CacheKey(CacheFamily::kWebhooks,
                  {"list", absl::StrCat("limit=", page.limit),
                   absl::StrCat("offset=", page.offset),
                   absl::StrCat("is_active=", is_active.value_or("any"))});
}

json GetWebhook(ConnectionPool* pool, int64_t id) {
  return WebhookJson(OrThrow(WebhookStore(pool).Get(id)));
}

void ListDeliveries(RequestContext& ctx, ConnectionPool* pool) {
  int64_t id = ParseWebhookId(ctx.params["id"]);
  DeliveryFilter filter;
  filter.status = ParseChoice(
      ctx, "status",
      {"pending", "in_progress", "delivered", "failed", "cancelled"});
  PageParams page = ParsePage(ctx);
  filter.limit = page.limit;
  filter.offset = page.offset;
  DeliveryPage found = OrThrow(WebhookStore(pool).DeliveryHistory(id, filter));
  json items = json::array();
  for (const Delivery& d : found.items) items.push_back(DeliveryJson(d));
  ctx.Json(200, PageJson(std::move(items), found.total, page));
}

// --- writes -----------------------------------------------------------------

void CreateWebhook(RequestContext& ctx, AppContext* app) {
  WebhookWrite write =
      ParseWebhookBody(ctx.body, WebhookBodyMode::kCreate,
                       app->config->webhook_allow_private_targets);
  NewWebhook made = OrThrow(WebhookStore(app->pool).Create(write.fields));
  app->reads->InvalidateAfterWrite(
      {CacheFamily::kWebhooks, CacheFamily::kDashboard});
  json item = WebhookJson(made.webhook);
  item["secret"] = made.secret;
  ctx.res.set_header("Location",
                     absl::StrCat("/api/v1/webhooks/", made.webhook.id));
  ctx.Json(201, item);
}

// PUT and PATCH: only the fields the client sent are written (CONTRACT
// 10), so the is_active trigger fires only when is_active was sent.
void UpdateWebhook(RequestContext& ctx, AppContext* app) {
  int64_t id = ParseWebhookId(ctx.params["id"]);
  WebhookWrite write =
      ParseWebhookBody(ctx.body, WebhookBodyMode::kUpdate,
                       app->config->webhook_allow_private_targets);
  Webhook w = OrThrow(WebhookStore(app->pool).Update(id, write.fields));
  if (!write.fields.empty()) {
    app->reads->InvalidateAfterWrite(
        {CacheFamily::kWebhooks, CacheFamily::kDashboard});
  }
  // Parked deliveries of a webhook switched back on become due again.
  if (write.names("is_active")) app->engine->Wake();
  ctx.Json(200, WebhookJson(w));
}

// Soft delete: the row (and its delivery history) stays; its pending
// deliveries are cancelled.
void DeleteWebhook(RequestContext& ctx, AppContext* app) {
  int64_t id = ParseWebhookId(ctx.params["id"]);
  OrThrow(WebhookStore(app->pool).Delete(id));
  app->reads->InvalidateAfterWrite(
      {CacheFamily::kWebhooks, CacheFamily::kAlerts, CacheFamily::kDashboard});
  ctx.res.status = 204;
}

void TestWebhook(RequestContext& ctx, AppContext* app) {
  int64_t id = ParseWebhookId(ctx.params["id"]);
  absl::StatusOr<TestSendResult> t = app->engine->SendTest(id);
  if (!t.ok()) throw FromStatus(t.status());
  ctx.Json(200, {{"success", t->success},
                 {"http_status",
                  t->http_status ? json(*t->http_status) : json(nullptr)},
                 {"duration_ms", t->duration_ms},
                 {"error", t->error ? json(*t->error) : json(nullptr)}});
}

void RetryPendingDeliveries(RequestContext& ctx, AppContext* app) {
  std::optional<int64_t> webhook_id;
  if (ctx.body.is_object()) {
    for (const auto& [field, v] : ctx.body.items()) {
      if (field != "webhook_id") {
        throw Validation(
            absl::StrCat(field, ": unknown field (expected webhook_id)"));
      }
      webhook_id =
          JsonInteger(v, "webhook_id", 1, std::numeric_limits<int64_t>::max());
    }
  }
  absl::StatusOr<int> n = RetryPending(app->pool, webhook_id);
  if (!n.ok()) throw FromStatus(n.status());
  app->reads->InvalidateAfterWrite(
      {CacheFamily::kWebhooks, CacheFamily::kAlerts, CacheFamily::kDashboard});
  ctx.Json(200, {{"retried", *n}});
}

}  // namespace

void AddWebhookRoutes(Router* router, AppContext* app) {
  // Every webhook answer may show a URL or a refused delivery's address:
  // masked below admin (CONTRACT section 8).
  auto add = [router](Route r) {
    r.redact_for_non_admin = MaskForNonAdminInPlace;
    router->Add(std::move(r));
  };
  add({"GET", "/api/v1/webhooks", BodyPolicy::kNone, Scope::kRead,
       [app](RequestContext& ctx) {
         PageParams page = ParsePage(ctx);
         std::optional<std::string> is_active =
             ParseChoice(ctx, "is_active", {"true", "false"});
         app->reads->Serve(ctx, CacheFamily::kWebhooks,
                           ListKey(page, is_active), [app, page, is_active] {
                             return ListWebhooks(app->pool, page, is_active);
                           });
       }});
  add({"POST", "/api/v1/webhooks", BodyPolicy::kRequiredJson, Scope::kWrite,
       [app](RequestContext& ctx) { CreateWebhook(ctx, app); }});
  add({"GET", "/api/v1/webhooks/{id}", BodyPolicy::kNone, Scope::kRead,
       [app](RequestContext& ctx) {
         int64_t id = ParseWebhookId(ctx.params["id"]);
         app->reads->Serve(
             ctx, CacheFamily::kWebhooks,
             CacheKey(CacheFamily::kWebhooks, {"item", absl::StrCat(id)}),
             [app, id] { return GetWebhook(app->pool, id); });
       }});
  for (const char* method : {"PUT", "PATCH"}) {
    add({method, "/api/v1/webhooks/{id}", BodyPolicy::kRequiredJson,
         Scope::kWrite,
         [app](RequestContext& ctx) { UpdateWebhook(ctx, app); }});
  }
  add({"DELETE", "/api/v1/webhooks/{id}", BodyPolicy::kNone, Scope::kWrite,
       [app](RequestContext& ctx) { DeleteWebhook(ctx, app); }});
  add({"GET", "/api/v1/webhooks/{id}/deliveries", BodyPolicy::kNone,
       Scope::kRead,
       [app](RequestContext& ctx) { ListDeliveries(ctx, app->pool); }});
  add({"POST", "/api/v1/webhooks/{id}/test", BodyPolicy::kNone, Scope::kWrite,
       [app](RequestContext& ctx) { TestWebhook(ctx, app); }});
  add({"POST", "/api/v1/webhooks/retry-pending", BodyPolicy::kOptionalJson,
       Scope::kWrite,
       [app](RequestContext& ctx) { RetryPendingDeliveries(ctx, app); }});

  // CONTRACT 10's warm set: the first page, under the key a plain
  // GET /api/v1/webhooks reads.
  absl::Status s =
      app->cache->RegisterWarmer("webhooks first page", [app](Cache&) {
        const PageParams first;
        return app->reads->Warm(
            CacheFamily::kWebhooks, ListKey(first, std::nullopt), [app, first] {
              return ListWebhooks(app->pool, first, std::nullopt);
            });
      });
  if (!s.ok()) {
    Log::Error("could not register the webhooks warmer",
               {{"error", std::string(s.message())}});
  }
}

}  // namespace pggitops::server
