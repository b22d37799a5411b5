#include "server/routes/dashboard_routes.h"

#include <string>
#include <utility>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/string_view.h"
#include "absl/time/clock.h"
#include "nlohmann/json.hpp"
#include "pggitops/dashboard.h"
#include "pggitops/log.h"
#include "server/http/errors.h"
#include "server/http/json_util.h"
#include "server/http/request_context.h"
#include "server/routes/cached_read.h"
#include "server/routes/domain_json.h"
#include "server/routes/request_figures.h"

namespace pggitops::server {
namespace {

using nlohmann::json;

// The cached part of the summary: the database figures and generated_at.
json DatabaseFigures(ConnectionPool* pool) {
  absl::StatusOr<DashboardFigures> f = ReadDashboardFigures(pool);
  if (!f.ok()) throw FromStatus(f.status());
  const DeliveryOverview& o = f->overview;
  json webhooks = json::array();
  for (const WebhookFigures& w : f->webhooks) {
    webhooks.push_back({{"id", w.id},
                        {"name", w.name},
                        {"status", w.status},
                        {"breaker_state", w.breaker_state},
                        {"success_rate_24h", PgNumber(w.success_rate_24h)},
                        {"deliveries_24h", w.deliveries_24h},
                        {"last_delivery_at", TimeJson(w.last_delivery_at)},
                        {"last_success_at", TimeJson(w.last_success_at)},
                        {"last_failure_at", TimeJson(w.last_failure_at)},
                        {"consecutive_failures", w.consecutive_failures}});
  }
  const AlertCounts& a = f->alerts;
  return {
      {"overview",
       {{"deliveries_total", o.deliveries_total},
        {"pending", o.pending},
        {"in_progress", o.in_progress},
        {"failed", o.failed},
        {"delivered_24h", o.delivered_24h},
        {"failed_24h", o.failed_24h},
        {"success_rate_24h", PgNumber(o.success_rate_24h)},
        {"active_webhooks", o.active_webhooks},
        {"degraded_webhooks", o.degraded_webhooks},
        {"disabled_webhooks", o.disabled_webhooks},
        {"inactive_webhooks", o.inactive_webhooks},
        {"queue_depth", o.queue_depth},
        {"oldest_pending_seconds", PgNumber(o.oldest_pending_seconds)}}},
      {"webhooks", std::move(webhooks)},
      {"alerts",
       {{"by_severity",
         {{"INFO", a.info}, {"WARNING", a.warning}, {"CRITICAL", a.critical}}},
        {"by_status",
         {{"pending", a.pending},
          {"acknowledged", a.acknowledged},
          {"resolved", a.resolved}}},
        {"total", a.total}}},
      {"generated_at", Rfc3339(absl::Now())}};
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
