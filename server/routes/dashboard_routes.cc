#include "server/routes/dashboard_routes.h"

#include <string>
#include <utility>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/string_view.h"
#include "absl/time/clock.h"
#include "nlohmann/json.hpp"
#include "pggitops/log.h"
#include "server/http/errors.h"
#include "server/http/json_util.h"
#include "server/http/request_context.h"
#include "server/routes/cached_read.h"
#include "server/routes/request_figures.h"

namespace pggitops::server {
namespace {

using nlohmann::json;

// delivered / (delivered + failed), 4 decimals; NULL when both are 0.
std::string RateSql(absl::string_view delivered, absl::string_view failed) {
  return absl::StrCat("CASE WHEN ", delivered, " + ", failed,
                      " > 0 THEN round(", delivered, "::numeric / (", delivered,
                      " + ", failed, "), 4)::float8 END");
}

// The figures the summary renders, as named subqueries: one pass over the
// queue (grouped by webhook, deleted ones included, so the overview counts
// their deliveries too), one over the webhooks and one over the alerts.
// "The last 24 h": delivered rows by delivered_at, failed rows by
// updated_at (the moment they failed: a failed row is not updated again
// until retry-pending makes it pending). `listed`: the webhooks of the
// list, the first 100 by id.
constexpr char kFiguresSql[] = R"sql(
WITH per_webhook AS (
  SELECT q.webhook_id,
         count(*) AS total,
         count(*) FILTER (WHERE q.delivery_status = 'pending') AS pending,
         count(*) FILTER (WHERE q.delivery_status = 'in_progress')
           AS in_progress,
         count(*) FILTER (WHERE q.delivery_status = 'failed') AS failed,
         count(*) FILTER (WHERE q.delivery_status = 'delivered'
                            AND q.delivered_at >= now() - interval '24 hours')
           AS delivered_24h,
         count(*) FILTER (WHERE q.delivery_status = 'failed'
                            AND q.updated_at >= now() - interval '24 hours')
           AS failed_24h,
         min(q.created_at) FILTER (WHERE q.delivery_status
                                     IN ('pending', 'in_progress'))
           AS oldest_pending
    FROM pggit.alert_delivery_queue q
   GROUP BY q.webhook_id),
totals AS (
  SELECT coalesce(sum(total), 0)::bigint AS total,
         coalesce(sum(pending), 0)::bigint AS pending,
         coalesce(sum(in_progress), 0)::bigint AS in_progress,
         coalesce(sum(failed), 0)::bigint AS failed,
         coalesce(sum(delivered_24h), 0)::bigint AS delivered_24h,
         coalesce(sum(failed_24h), 0)::bigint AS failed_24h,
         min(oldest_pending) AS oldest_pending
    FROM per_webhook),
hooks AS (
  SELECT count(*) FILTER (WHERE status = 'active') AS active,
         count(*) FILTER (WHERE status = 'active'
                            AND (breaker_state <> 'closed'
                                 OR consecutive_failures > 0)) AS degraded,
         count(*) FILTER (WHERE status = 'disabled') AS disabled,
         count(*) FILTER (WHERE status = 'inactive') AS inactive
    FROM pggit.webhooks
   WHERE deleted_at IS NULL),
alert_counts AS (
  SELECT count(*) AS total,
         count(*) FILTER (WHERE severity = 'INFO') AS info,
         count(*) FILTER (WHERE severity = 'WARNING') AS warning,
         count(*) FILTER (WHERE severity = 'CRITICAL') AS critical,
         count(*) FILTER (WHERE status = 'pending') AS pending,
         count(*) FILTER (WHERE status = 'acknowledged') AS acknowledged,
         count(*) FILTER (WHERE status = 'resolved') AS resolved
    FROM pggit.alerts),
listed AS (
  SELECT w.id, w.name, w.status, w.breaker_state, w.consecutive_failures,
         w.last_used_at, w.last_success_at, w.last_failure_at,
         p.delivered_24h, p.failed_24h
    FROM pggit.webhooks w
    LEFT JOIN per_webhook p ON p.webhook_id = w.id
   WHERE w.deleted_at IS NULL
   ORDER BY w.id
   LIMIT 100)
)sql";

std::string OverviewJsonSql() {
  return absl::StrCat(
      "(SELECT json_build_object("
      "'deliveries_total', q.total, 'pending', q.pending,"
      " 'in_progress', q.in_progress, 'failed', q.failed,"
      " 'delivered_24h', q.delivered_24h, 'failed_24h', q.failed_24h,"
      " 'success_rate_24h', ",
      RateSql("q.delivered_24h", "q.failed_24h"),
      ", 'active_webhooks', h.active, 'degraded_webhooks', h.degraded,"
      " 'disabled_webhooks', h.disabled, 'inactive_webhooks', h.inactive,"
      " 'queue_depth', q.pending + q.in_progress,"
      " 'oldest_pending_seconds', coalesce(round(greatest(extract(epoch FROM"
      " now() - q.oldest_pending)::numeric, 0), 3)::float8, 0))"
      " FROM totals q, hooks h)");
}

std::string WebhooksJsonSql() {
  return absl::StrCat(
      "(SELECT coalesce(json_agg(json_build_object("
      "'id', l.id, 'name', l.name, 'status', l.status,"
      " 'breaker_state', l.breaker_state, 'success_rate_24h', ",
      RateSql("l.delivered_24h", "l.failed_24h"),
      ", 'deliveries_24h', coalesce(l.delivered_24h + l.failed_24h, 0),"
      " 'last_delivery_at', ",
      Rfc3339Sql("l.last_used_at"), ", 'last_success_at', ",
      Rfc3339Sql("l.last_success_at"), ", 'last_failure_at', ",
      Rfc3339Sql("l.last_failure_at"),
      ", 'consecutive_failures', l.consecutive_failures) ORDER BY l.id),"
      " '[]'::json) FROM listed l)");
}

constexpr char kAlertsJsonSql[] =
    "(SELECT json_build_object("
    "'by_severity', json_build_object('INFO', a.info, 'WARNING', a.warning,"
    " 'CRITICAL', a.critical),"
    " 'by_status', json_build_object('pending', a.pending,"
    " 'acknowledged', a.acknowledged, 'resolved', a.resolved),"
    " 'total', a.total) FROM alert_counts a)";

// Every database figure of the summary in one statement, so they all come
// from one snapshot, rendered by PostgreSQL as one JSON object.
const std::string& SummarySql() {
  static const std::string* sql = new std::string(
      absl::StrCat(kFiguresSql, "SELECT json_build_object('overview', ",
                   OverviewJsonSql(), ", 'webhooks', ", WebhooksJsonSql(),
                   ", 'alerts', ", kAlertsJsonSql, ")::text"));
  return *sql;
}

// The cached part of the summary: the database figures and generated_at.
json DatabaseFigures(ConnectionPool* pool) {
  absl::StatusOr<PooledConnection> lease = pool->Acquire();
  if (!lease.ok()) throw FromStatus(lease.status());
  absl::StatusOr<QueryResult> r = lease->Query(SummarySql());
  if (!r.ok()) throw FromStatus(r.status());
  if (r->rows.empty() || !r->rows[0].at(0).has_value()) {
    throw FromStatus(absl::InternalError("dashboard query returned no row"));
  }
  json figures = json::parse(*r->rows[0][0]);
  figures["generated_at"] = Rfc3339(absl::Now());
  return figures;
}

std::string SummaryKey() {
  return CacheKey(CacheFamily::kDashboard, {"summary"});
}

// This process's figures, measured now (never cached: each instance
// reports its own).
json Performance(const AppContext& app) {
  RequestFigures r =
      SummarizeRequests(*app.latency, absl::Now() - app.started_at);
  return {{"p50_ms", r.p50_ms},
          {"p95_ms", r.p95_ms},
          {"p99_ms", r.p99_ms},
          {"error_rate", r.error_rate},
          {"requests_per_second", r.requests_per_second},
          {"cache_hit_rate",
           app.cache != nullptr ? app.cache->Stats().hit_rate : 0.0}};
}

// The cached summary (a JSON object this file rendered: "{...}" with
// members) with `performance` added as its first member, without parsing
// it again.
std::string WithPerformance(const std::string& summary,
                            const json& performance) {
  if (summary.size() < 2 || summary.front() != '{' || summary[1] == '}') {
    throw FromStatus(absl::InternalError("cached dashboard is not an object"));
  }
  return absl::StrCat("{\"performance\":", DumpJson(performance), ",",
                      absl::string_view(summary).substr(1));
}

void ServeSummary(RequestContext& ctx, AppContext* app) {
  bool hit = false;
  CacheValue summary = app->reads->Load(
      CacheFamily::kDashboard, SummaryKey(),
      [app] { return DatabaseFigures(app->pool); }, &hit);
  const std::string body = WithPerformance(*summary, Performance(*app));
  ctx.res.status = 200;
  ctx.res.set_header("X-Cache", hit ? "HIT" : "MISS");
  ctx.res.set_content(body, "application/json");
}

}  // namespace

void AddDashboardRoutes(Router* router, AppContext* app) {
  router->Add({"GET", "/api/v1/dashboard", BodyPolicy::kNone, Scope::kRead,
               [app](RequestContext& ctx) { ServeSummary(ctx, app); }});

  // CONTRACT 10: the dashboard summary is a warm set.
  if (app->cache != nullptr) {
    absl::Status s =
        app->cache->RegisterWarmer("dashboard summary", [app](Cache&) {
          return app->reads->Warm(CacheFamily::kDashboard, SummaryKey(),
                                  [app] { return DatabaseFigures(app->pool); });
        });
    if (!s.ok()) {
      Log::Error("dashboard warmer not registered",
                 {{"error", std::string(s.message())}});
    }
  }
}

}  // namespace pggitops::server
