#include "server/routes/health_routes.h"

#include "absl/time/clock.h"
#include "pggitops/version.h"
#include "server/http/errors.h"
#include "server/http/json_util.h"
#include "server/http/request_context.h"

namespace pggitops::server {

void AddHealthRoutes(Router* router, AppContext* app) {
  // Liveness only: never touches the database.
  router->Add({"GET", "/health", BodyPolicy::kNone, Scope::kPublic,
               [app](RequestContext& ctx) {
                 absl::Time now = absl::Now();
                 ctx.Json(200,
                          {{"status", "healthy"},
                           {"timestamp", Rfc3339(now)},
                           {"version", kVersionString},
                           {"uptime_seconds",
                            absl::ToDoubleSeconds(now - app->started_at)}});
               }});
  router->Add({"GET", "/health/live", BodyPolicy::kNone, Scope::kPublic,
               [](RequestContext& ctx) {
                 ctx.Json(200, {{"status", "alive"},
                                {"timestamp", Rfc3339(absl::Now())}});
               }});
  router->Add(
      {"GET", "/health/ready", BodyPolicy::kNone, Scope::kPublic,
       [app](RequestContext& ctx) {
         Phase phase = app->phase.load();
         if (phase != Phase::kServing) {
           throw Unavailable(std::string("not ready: ") + PhaseName(phase));
         }
         HealthReport report = app->health->Run();
         if (report.status == HealthStatus::kUnhealthy) {
           std::string failing;
           for (const auto& [name, result] : report.checks) {
             if (!result.ok) failing += (failing.empty() ? "" : ", ") + name;
           }
           throw Unavailable("not ready: failing checks: " + failing);
         }
         ctx.Json(200,
                  {{"status", "ready"}, {"timestamp", Rfc3339(absl::Now())}});
       }});
  router->Add(
      {"GET", "/health/deep", BodyPolicy::kNone, Scope::kPublic,
       [app](RequestContext& ctx) {
         HealthReport report = app->health->Run();
         int status = report.status == HealthStatus::kUnhealthy ? 503 : 200;
         ctx.res.status = status;
         // Raw dependency errors (hosts, ports, user names) only
         // for admin callers; everyone sees the error codes.
         ctx.res.set_content(report.ToJson(ctx.admin), "application/json");
       }});
  Scope metrics_scope =
      app->config->metrics_require_key ? Scope::kRead : Scope::kPublic;
  router->Add({"GET", "/metrics", BodyPolicy::kNone, metrics_scope,
               [app](RequestContext& ctx) {
                 ctx.res.status = 200;
                 ctx.res.set_content(
                     app->metrics->Serialize(),
                     "text/plain; version=0.0.4; charset=utf-8");
               }});
}

}  // namespace pggitops::server
