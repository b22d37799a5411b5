// The route table against docs/api/openapi.json: every route of the daemon
// is described, and every operation described is routed.
#include "server/routes/route_table.h"

#include <memory>
#include <string>
#include <vector>

#include "absl/strings/str_join.h"
#include "absl/strings/string_view.h"
#include "doctest/doctest.h"
#include "nlohmann/json.hpp"
#include "pggitops/cache.h"
#include "pggitops/config.h"
#include "pggitops/health.h"
#include "pggitops/latency_window.h"
#include "pggitops/metrics.h"
#include "pggitops/version.h"
#include "server/routes/docs_routes.h"
#include "server/server_config.h"

namespace pggitops::server {
namespace {

// The daemon's routes, added as App adds them; no handler runs.
struct Table {
  ServerConfig config;
  MetricsRegistry metrics;
  HealthRegistry health{HealthOptions{}};
  LatencyWindow latency{absl::Seconds(60)};
  // An L1-only cache: the read routes register their warmers on it.
  std::unique_ptr<Cache> cache = *Cache::Create(CacheOptions{});
  AppContext app;
  TrustedProxies proxies;
  Router router;
  Table() {
    app.config = &config;
    app.metrics = &metrics;
    app.health = &health;
    app.latency = &latency;
    app.cache = cache.get();
    AddAllRoutes(&router, &app, /*keys=*/nullptr, &proxies);
  }
};

TEST_CASE("every route is in openapi.json and every operation is routed") {
  Table t;
  REQUIRE(t.router.routes().size() >= 29);
  std::vector<std::string> mismatches =
      OpenApiRouteMismatches(t.router, OpenApiJson());
  CHECK_MESSAGE(mismatches.empty(), absl::StrJoin(mismatches, "\n"));
}

TEST_CASE("the embedded document is OpenAPI 3.1 with this build's version") {
  nlohmann::json doc = nlohmann::json::parse(OpenApiJson());
  CHECK(doc["openapi"] == "3.1.0");
  CHECK(doc["info"]["version"] == kVersionString);
  // Every operation names the scope it needs and an operationId.
  for (const auto& path_item : doc["paths"].items()) {
    const std::string& path = path_item.key();
    for (const auto& method_op : path_item.value().items()) {
      const std::string& method = method_op.key();
      const nlohmann::json& op = method_op.value();
      if (method == "parameters") continue;
      INFO(method << " " << path);
      CHECK(op.contains("operationId"));
      CHECK(op.contains("x-scope"));
      CHECK(op["responses"].is_object());
    }
  }
}

TEST_CASE("the docs page lists every path and links the document") {
  absl::string_view page = DocsPageHtml();
  CHECK(page.find("href='/openapi.json'") != absl::string_view::npos);
  CHECK(page.find("<script") == absl::string_view::npos);
  Table t;
  for (const Route& r : t.router.routes()) {
    INFO(r.path_template);
    CHECK(page.find("<code>" + r.path_template + "</code>") !=
          absl::string_view::npos);
  }
}

TEST_CASE("OpenApiRouteMismatches names what is missing on either side") {
  Router router;
  router.Add({"GET", "/a", BodyPolicy::kNone, Scope::kPublic, nullptr});
  router.Add({"POST", "/b/{id}", BodyPolicy::kNone, Scope::kWrite, nullptr});
  CHECK(OpenApiRouteMismatches(
            router,
            R"({"paths": {"/a": {"get": {}}, "/b/{id}": {"parameters": [],
                "post": {}}}})")
            .empty());
  std::vector<std::string> m = OpenApiRouteMismatches(
      router, R"({"paths": {"/a": {"get": {}, "delete": {}}}})");
  REQUIRE(m.size() == 2);
  CHECK(m[0] == "POST /b/{id}: routed but not in the document");
  CHECK(m[1] == "DELETE /a: in the document but not routed");
  CHECK(OpenApiRouteMismatches(router, "not json") ==
        std::vector<std::string>{"the document is not a JSON object"});
  CHECK(OpenApiRouteMismatches(router, "{}") ==
        std::vector<std::string>{"the document has no paths object"});
}

}  // namespace
}  // namespace pggitops::server
