#include "server/routes/webhook_routes.h"

#include <limits>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_replace.h"
#include "nlohmann/json.hpp"
#include "pggitops/log.h"
#include "server/http/errors.h"
#include "server/http/json_util.h"
#include "server/http/request_context.h"
#include "server/routes/webhook_json.h"

namespace pggitops::server {
namespace {

using nlohmann::json;
using Params = std::vector<std::optional<std::string>>;

// The API's webhook (CONTRACT section 5), rendered by PostgreSQL from row
// `w`. Never the secret.
const std::string& WebhookJsonSql() {
  static const std::string* sql = new std::string(absl::StrCat(
      "json_build_object("
      "'id', w.id, 'name', w.name, 'url', w.url,"
      " 'description', w.description, 'is_active', w.is_active,"
      " 'status', w.status,"
      " 'filters', json_build_object('severities', w.filter_severities,"
      " 'operation_types', w.filter_operation_types),"
      " 'retry_policy', json_build_object('max_retries', w.max_retries,"
      " 'backoff_base', w.backoff_base, 'max_backoff', w.max_backoff),"
      " 'timeout_seconds', w.timeout_seconds, 'ssl_verify', w.ssl_verify,"
      " 'created_at', ",
      Rfc3339Sql("w.created_at"), ", 'updated_at', ",
      Rfc3339Sql("w.updated_at"), ", 'last_used_at', ",
      Rfc3339Sql("w.last_used_at"),
      ", 'health', json_build_object("
      "'consecutive_failures', w.consecutive_failures,"
      " 'success_rate', CASE WHEN w.total_deliveries > 0 THEN"
      " round(((w.total_deliveries - w.total_failures)::numeric"
      " / w.total_deliveries), 4)::float8 END,"
      " 'last_success_at', ",
      Rfc3339Sql("w.last_success_at"), ", 'last_failure_at', ",
      Rfc3339Sql("w.last_failure_at"), "))"));
  return *sql;
}

// A database error as the client should see it. Constraint violations are
// refused input (the checks above should have caught them); anything
// unexpected is logged here because the 500 body is generic.
HttpError DbError(const absl::Status& s) {
  const std::string state = SqlStateOf(s);
  if (state == "23505") {
    return Conflict("name: a webhook with this name already exists");
  }
  if (state.rfind("23", 0) == 0 || state.rfind("22", 0) == 0) {
    // The database's own wording is not shown; the constraint's name says
    // which rule the value broke.
    Log::Info("webhook write refused by the database",
              {{"error", std::string(s.message())}, {"sqlstate", state}});
    const std::string m(s.message());
    size_t c = m.find("constraint \"");
    std::string name = c == std::string::npos
                           ? std::string()
                           : m.substr(c + 12, m.find('"', c + 12) - (c + 12));
    return Validation(name.empty()
                          ? std::string("a field is out of range")
                          : absl::StrCat("a field breaks the rule ", name));
  }
  if (s.code() != absl::StatusCode::kDeadlineExceeded &&
      s.code() != absl::StatusCode::kUnavailable) {
    Log::Error("webhooks query failed",
               {{"error", std::string(s.message())}, {"sqlstate", state}});
  }
  return FromStatus(s);
}

QueryResult Run(ConnectionPool* pool, absl::string_view sql,
                const Params& params) {
  absl::StatusOr<PooledConnection> lease = pool->Acquire();
  if (!lease.ok()) throw FromStatus(lease.status());
  absl::StatusOr<QueryResult> r = lease->Query(sql, params);
  if (!r.ok()) throw DbError(r.status());
  return *std::move(r);
}

// Column `column` of the first row (nullopt for NULL or no row).
std::optional<std::string> Scalar(const QueryResult& r, size_t column = 0) {
  if (r.rows.empty()) return std::nullopt;
  return r.rows[0][column];
}

int64_t ToInt(const std::optional<std::string>& v) {
  int64_t n = 0;
  if (!v || !absl::SimpleAtoi(*v, &n)) {
    throw HttpError(500, "INTERNAL_ERROR", "internal error");
  }
  return n;
}

[[noreturn]] void ThrowNotFound(int64_t id) {
  throw NotFound(absl::StrCat("webhook ", id, " not found"));
}

// --- reads ------------------------------------------------------------------

const std::string& ListSql() {
  static const std::string* sql = new std::string(
      absl::StrCat("WITH matching AS (SELECT * FROM pggit.webhooks w"
                   " WHERE w.deleted_at IS NULL"
                   " AND ($1::boolean IS NULL OR w.is_active = $1::boolean)),"
                   " page AS (SELECT w.id, ",
                   WebhookJsonSql(),
                   " AS item FROM matching w ORDER BY w.id"
                   " LIMIT $2::bigint OFFSET $3::bigint)"
                   " SELECT (SELECT count(*) FROM matching),"
                   " coalesce((SELECT json_agg(item ORDER BY id) FROM page),"
                   " '[]'::json)::text"));
  return *sql;
}

json ListWebhooks(ConnectionPool* pool, const PageParams& page,
                  const std::optional<std::string>& is_active) {
  QueryResult r =
      Run(pool, ListSql(),
          {is_active, absl::StrCat(page.limit), absl::StrCat(page.offset)});
  return {{"items", json::parse(Scalar(r, 1).value_or("[]"))},
          {"total", ToInt(Scalar(r, 0))},
          {"limit", page.limit},
          {"offset", page.offset}};
}

std::string ListKey(const PageParams& page,
                    const std::optional<std::string>& is_active) {
  return CacheKey(CacheFamily::kWebhooks,
                  {"list", absl::StrCat("limit=", page.limit),
                   absl::StrCat("offset=", page.offset),
                   absl::StrCat("is_active=", is_active.value_or("any"))});
}

json GetWebhook(ConnectionPool* pool, int64_t id) {
  QueryResult r =
      Run(pool,
          absl::StrCat("SELECT ", WebhookJsonSql(),
                       "::text FROM pggit.webhooks w"
                       " WHERE w.id = $1::bigint AND w.deleted_at IS NULL"),
          {absl::StrCat(id)});
  std::optional<std::string> item = Scalar(r);
  if (!item) ThrowNotFound(id);
  return json::parse(*item);
}

const std::string& DeliveriesSql() {
  static const std::string* sql = new std::string(absl::StrCat(
      "WITH matching AS (SELECT * FROM pggit.alert_delivery_queue q"
      " WHERE q.webhook_id = $1::bigint"
      " AND ($2::text IS NULL OR q.delivery_status = $2::text)),"
      " page AS (SELECT * FROM matching"
      " ORDER BY created_at DESC, id DESC LIMIT $3::bigint OFFSET $4::bigint)"
      " SELECT EXISTS (SELECT 1 FROM pggit.webhooks WHERE id = $1::bigint),"
      " (SELECT count(*) FROM matching),"
      " coalesce((SELECT json_agg(json_build_object("
      "'id', p.id, 'alert_id', p.alert_id, 'webhook_id', p.webhook_id,"
      " 'delivery_status', p.delivery_status,"
      " 'attempt_count', p.attempt_count, 'next_attempt_at', ",
      Rfc3339Sql("p.next_attempt_at"),
      ", 'last_http_status', p.last_http_status,"
      " 'last_error', p.last_error, 'created_at', ",
      Rfc3339Sql("p.created_at"), ", 'delivered_at', ",
      Rfc3339Sql("p.delivered_at"),
      ", 'attempts', coalesce((SELECT json_agg(json_build_object("
      "'attempt', a.attempt, 'started_at', ",
      Rfc3339Sql("a.started_at"),
      ", 'duration_ms', a.duration_ms, 'http_status', a.http_status,"
      " 'error', a.error) ORDER BY a.started_at, a.id)"
      " FROM pggit.delivery_attempts a WHERE a.delivery_id = p.id),"
      " '[]'::json)) ORDER BY p.created_at DESC, p.id DESC) FROM page p),"
      " '[]'::json)::text"));
  return *sql;
}

void ListDeliveries(RequestContext& ctx, ConnectionPool* pool) {
  int64_t id = ParseWebhookId(ctx.params["id"]);
  std::optional<std::string> status = ParseChoice(
      ctx, "status",
      {"pending", "in_progress", "delivered", "failed", "cancelled"});
  PageParams page = ParsePage(ctx);
  QueryResult r = Run(pool, DeliveriesSql(),
                      {absl::StrCat(id), status, absl::StrCat(page.limit),
                       absl::StrCat(page.offset)});
  if (Scalar(r, 0) != "t") ThrowNotFound(id);
  ctx.Json(200, {{"items", json::parse(Scalar(r, 2).value_or("[]"))},
                 {"total", ToInt(Scalar(r, 1))},
                 {"limit", page.limit},
                 {"offset", page.offset}});
}

// --- writes -----------------------------------------------------------------

// Columns of `write` as "col = value" (or the values list), numbering the
// parameters from params->size() + 1.
std::vector<std::string> Bind(const WebhookWrite& write, Params* params) {
  std::vector<std::string> values;
  for (const WebhookColumn& c : write.columns) {
    params->push_back(c.param);
    values.push_back(absl::StrReplaceAll(
        c.sql_value, {{"$", absl::StrCat("$", params->size())}}));
  }
  return values;
}

void CreateWebhook(RequestContext& ctx, AppContext* app) {
  WebhookWrite write =
      ParseWebhookBody(ctx.body, WebhookBodyMode::kCreate,
                       app->config->webhook_allow_private_targets);
  const std::string secret = GenerateWebhookSecret();
  write.columns.push_back({"secret", "$::text", secret});
  Params params;
  std::vector<std::string> values = Bind(write, &params);
  std::vector<std::string> columns;
  for (const WebhookColumn& c : write.columns) columns.push_back(c.column);
  QueryResult r = Run(app->pool,
                      absl::StrCat("INSERT INTO pggit.webhooks AS w (",
                                   absl::StrJoin(columns, ", "), ") VALUES (",
                                   absl::StrJoin(values, ", "), ") RETURNING ",
                                   WebhookJsonSql(), "::text"),
                      params);
  json item = json::parse(Scalar(r).value_or("null"));
  app->reads->InvalidateAfterWrite(
      {CacheFamily::kWebhooks, CacheFamily::kDashboard});
  item["secret"] = secret;
  ctx.res.set_header("Location",
                     absl::StrCat("/api/v1/webhooks/", item["id"].dump()));
  ctx.Json(201, item);
}

// PUT and PATCH: only the fields the client sent are SET (CONTRACT 10), so
// the is_active trigger fires only when is_active was sent.
void UpdateWebhook(RequestContext& ctx, AppContext* app) {
  int64_t id = ParseWebhookId(ctx.params["id"]);
  WebhookWrite write =
      ParseWebhookBody(ctx.body, WebhookBodyMode::kUpdate,
                       app->config->webhook_allow_private_targets);
  if (write.columns.empty()) {
    ctx.Json(200, GetWebhook(app->pool, id));
    return;
  }
  Params params = {absl::StrCat(id)};
  std::vector<std::string> values = Bind(write, &params);
  std::vector<std::string> sets;
  for (size_t i = 0; i < values.size(); ++i) {
    sets.push_back(absl::StrCat(write.columns[i].column, " = ", values[i]));
  }
  QueryResult r = Run(
      app->pool,
      absl::StrCat("UPDATE pggit.webhooks AS w SET ", absl::StrJoin(sets, ", "),
                   " WHERE w.id = $1::bigint AND w.deleted_at IS NULL"
                   " RETURNING ",
                   WebhookJsonSql(), "::text"),
      params);
  std::optional<std::string> item = Scalar(r);
  if (!item) ThrowNotFound(id);
  app->reads->InvalidateAfterWrite(
      {CacheFamily::kWebhooks, CacheFamily::kDashboard});
  // Parked deliveries of a webhook switched back on become due again.
  if (write.names("is_active")) app->engine->Wake();
  ctx.Json(200, json::parse(*item));
}

// Soft delete: the row (and its delivery history) stays; the
// webhooks_cancel_deleted trigger cancels its pending deliveries in the
// same statement.
void DeleteWebhook(RequestContext& ctx, AppContext* app) {
  int64_t id = ParseWebhookId(ctx.params["id"]);
  QueryResult r = Run(app->pool,
                      "UPDATE pggit.webhooks SET deleted_at = now()"
                      " WHERE id = $1::bigint AND deleted_at IS NULL"
                      " RETURNING id",
                      {absl::StrCat(id)});
  if (r.rows.empty()) ThrowNotFound(id);
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
