// The OpenAPI document against the real daemon: every operation is called
// (successes and the usual errors), and every answer is checked against
// the document that daemon serves at /openapi.json by scripts/check-openapi
// (JSON Schema draft 2020-12, python3-jsonschema). The other direction,
// every route described and every description routed, is
// server/routes/route_table_test.cc.
#include <cstdio>
#include <fstream>
#include <string>
#include <vector>

#include "api_test_util.h"

namespace pggitops::api_test {
namespace {

// The answers collected, as scripts/check-openapi reads them.
class Samples {
 public:
  // Records `r` as an answer of the operation (method, route template).
  const httplib::Result& Add(const std::string& method, const std::string& path,
                             const httplib::Result& r) {
    REQUIRE_MESSAGE(r, method << " " << path << ": no answer");
    json body = json::parse(r->body, nullptr, false);
    const std::string type = r->get_header_value("Content-Type");
    bool is_json = type.rfind("application/json", 0) == 0;
    if (is_json) CHECK_MESSAGE(!body.is_discarded(), method << " " << path);
    items_.push_back(
        {{"method", method},
         {"path", path},
         {"status", r->status},
         {"content_type", type},
         {"body_bytes", r->body.size()},
         {"body", is_json && !body.is_discarded() ? body : json()}});
    return r;
  }
  size_t size() const { return items_.size(); }
  void Write(const std::string& file) const {
    std::ofstream(file) << items_.dump();
  }

 private:
  json items_ = json::array();
};

TEST_CASE("every answer of every operation matches /openapi.json") {
  // Private targets allowed: the webhook points at a closed loopback port.
  Daemon d("api_openapi", ApiEnv({{"WEBHOOK_ALLOW_PRIVATE_TARGETS", "true"}}));
  httplib::Client c = d.Client();
  Samples s;

  // Health, metrics, the documents and the dashboard page.
  for (const char* p :
       {"/health", "/health/live", "/health/ready", "/health/deep", "/metrics",
        "/openapi.json", "/docs", "/dashboard"}) {
    CHECK(s.Add("GET", p, c.Get(p))->status == 200);
  }
  httplib::Result doc = c.Get("/openapi.json");
  REQUIRE(doc);
  CHECK(doc->get_header_value("Content-Type") == "application/json");
  CHECK(json::parse(doc->body)["openapi"] == "3.1.0");
  httplib::Result page = c.Get("/docs");
  REQUIRE(page);
  CHECK(page->get_header_value("Content-Security-Policy")
            .find("default-src 'none'") != std::string::npos);
  CHECK(page->body.find("/api/v1/webhooks/{id}/deliveries") !=
        std::string::npos);

  // Webhooks.
  const json hook = {{"name", "openapi-hook"},
                     {"url", "http://127.0.0.1:9/hook"},
                     {"filters", {{"severities", {"CRITICAL"}}}},
                     {"retry_policy", {{"max_retries", 0}}}};
  const std::string W = "/api/v1/webhooks";
  const std::string WI = "/api/v1/webhooks/{id}";
  json created = Body(s.Add("POST", W, PostJson(c, W, hook)));
  REQUIRE(created.contains("id"));
  const std::string id = std::to_string(created["id"].get<int64_t>());
  const std::string item = W + "/" + id;
  CHECK(s.Add("POST", W, PostJson(c, W, hook))->status == 409);
  CHECK(s.Add("POST", W, PostJson(c, W, {{"name", 1}}))->status == 422);
  CHECK(s.Add("POST", W, c.Post(W, "{", "application/json"))->status == 400);
  CHECK(s.Add("POST", W, c.Post(W, "{}", "text/plain"))->status == 415);
  CHECK(s.Add("GET", W, c.Get(W))->status == 200);
  CHECK(s.Add("GET", W, c.Get(W + "?is_active=true&limit=5"))->status == 200);
  CHECK(s.Add("GET", W, c.Get(W + "?limit=0"))->status == 422);
  CHECK(s.Add("GET", WI, c.Get(item))->status == 200);
  CHECK(s.Add("GET", WI, c.Get(W + "/999999"))->status == 404);
  CHECK(s.Add("GET", WI, c.Get(W + "/abc"))->status == 422);
  CHECK(s.Add("PATCH", WI,
              c.Patch(item, R"({"description": "d"})", "application/json"))
            ->status == 200);
  CHECK(s.Add("PUT", WI,
              c.Put(item, R"({"timeout_seconds": 5})", "application/json"))
            ->status == 200);
  CHECK(s.Add("PUT", WI,
              c.Put(W + "/999999", R"({"timeout_seconds": 5})",
                    "application/json"))
            ->status == 404);
  CHECK(s.Add("POST", WI + "/test", c.Post(item + "/test"))->status == 200);
  CHECK(s.Add("POST", W + "/retry-pending", c.Post(W + "/retry-pending"))
            ->status == 200);
  CHECK(s.Add("POST", W + "/retry-pending",
              PostJson(c, W + "/retry-pending", {{"webhook_id", 999999}}))
            ->status == 404);

  // Alerts (one matching the webhook, so it has a delivery and attempts).
  const std::string A = "/api/v1/alerts";
  json alert = Body(s.Add("POST", A,
                          PostJson(c, A,
                                   {{"operation_type", "commit"},
                                    {"severity", "CRITICAL"},
                                    {"message", "openapi"},
                                    {"context", {{"host", "db1"}}}})));
  REQUIRE(alert.contains("id"));
  const int64_t alert_id = alert["id"].get<int64_t>();
  CHECK(s.Add("POST", A, PostJson(c, A, {{"severity", "LOW"}}))->status == 422);
  CHECK(s.Add("GET", A, c.Get(A))->status == 200);
  CHECK(s.Add("GET", A, c.Get(A + "?sevrity=INFO"))->status == 422);
  CHECK(s.Add("GET", A + "/{id}", c.Get(A + "/" + std::to_string(alert_id)))
            ->status == 200);
  CHECK(s.Add("GET", A + "/{id}", c.Get(A + "/999999"))->status == 404);
  CHECK(s.Add("POST", A + "/acknowledge",
              PostJson(c, A + "/acknowledge",
                       {{"alert_ids", {alert_id, 999999}}}))
            ->status == 200);
  CHECK(s.Add("POST", A + "/resolve",
              PostJson(c, A + "/resolve", {{"alert_ids", {alert_id}}}))
            ->status == 200);
  CHECK(s.Add("POST", A + "/resolve",
              PostJson(c, A + "/resolve", {{"alert_ids", json::array()}}))
            ->status == 422);
  // The delivery to the closed port has ended (no retries) with attempts.
  REQUIRE(harness::WaitFor(
      [&] {
        return d.Sql(
                   "SELECT count(*) FROM pggit.alert_delivery_queue "
                   "WHERE delivery_status = 'failed'") == "1";
      },
      std::chrono::seconds(30)));
  json deliveries =
      Body(s.Add("GET", WI + "/deliveries", c.Get(item + "/deliveries")));
  CHECK(deliveries["total"] == 1);
  CHECK(
      s.Add("GET", WI + "/deliveries", c.Get(item + "/deliveries?status=bogus"))
          ->status == 422);

  // Dashboard, cache.
  CHECK(s.Add("GET", "/api/v1/dashboard", c.Get("/api/v1/dashboard"))->status ==
        200);
  CHECK(s.Add("GET", "/api/v1/cache/stats", c.Get("/api/v1/cache/stats"))
            ->status == 200);
  CHECK(s.Add("POST", "/api/v1/cache/warm", c.Post("/api/v1/cache/warm"))
            ->status == 200);
  CHECK(s.Add("POST", "/api/v1/cache/invalidate",
              PostJson(c, "/api/v1/cache/invalidate",
                       {{"pattern", "webhooks:*"}}))
            ->status == 200);
  CHECK(s.Add("POST", "/api/v1/cache/invalidate",
              PostJson(c, "/api/v1/cache/invalidate", {{"keys", 1}}))
            ->status == 422);

  // The dashboard session (no key exists: protected mode refuses a login).
  CHECK(s.Add("POST", "/dashboard/session",
              PostJson(c, "/dashboard/session", {{"key", "pggit_nope"}}))
            ->status == 401);
  CHECK(s.Add("DELETE", "/dashboard/session", c.Delete("/dashboard/session"))
            ->status == 204);
  // Deleting the webhook last, so the other calls had it.
  CHECK(s.Add("DELETE", WI, c.Delete(item))->status == 204);
  CHECK(s.Add("DELETE", WI, c.Delete(item))->status == 404);

  // Checked against the document this daemon serves.
  char dir_template[] = "/tmp/pggit-openapi-XXXXXX";
  REQUIRE(mkdtemp(dir_template) != nullptr);
  const std::string dir = dir_template;
  std::ofstream(dir + "/openapi.json") << doc->body;
  s.Write(dir + "/samples.json");
  std::string out;
  int rc = harness::Run(harness::SourcePath("scripts/check-openapi") + " " +
                            dir + "/openapi.json " + dir + "/samples.json" +
                            " --exempt 'GET /api/v1/alerts/stream'",
                        &out);
  CHECK_MESSAGE(rc == 0, out);
  CHECK(out.find(std::to_string(s.size()) + " answers checked") !=
        std::string::npos);
  std::remove((dir + "/openapi.json").c_str());
  std::remove((dir + "/samples.json").c_str());
  rmdir(dir.c_str());
}

}  // namespace
}  // namespace pggitops::api_test
