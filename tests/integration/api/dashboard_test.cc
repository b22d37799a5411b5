// GET /api/v1/dashboard (CONTRACT sections 5 and 10) against the real
// pggit-api binary, a migrated database of the harness's PostgreSQL, Redis
// database 7 (cached pages carry no database name, so no other suite may
// share it) and a webhook receiver on loopback: every key present (zeros
// and nulls) on an empty database; the figures equal to what SQL counts
// after real deliveries, alerts made over HTTP and SQL and rows written in
// SQL; X-Cache, invalidation by writes, the queue figures' staleness until
// an invalidation, the warm set (at start and by POST /api/v1/cache/warm),
// the 100-webhook cap and 405 for other methods.
#include <chrono>
#include <cstdint>
#include <map>
#include <sstream>
#include <string>
#include <vector>

#include "doctest/doctest.h"
#include "httplib.h"
#include "nlohmann/json.hpp"
#include "tests/harness/harness.h"
#include "tests/integration/api/api_test_util.h"
#include "tests/integration/delivery/delivery_test_util.h"

namespace pggitops {
namespace {

using namespace api_test;  // NOLINT

harness::EnvMap DashboardEnv() {
  return ApiEnv({{"REDIS_URL", harness::Get().redis_url + "/7"},
                 {"WEBHOOK_ALLOW_PRIVATE_TARGETS", "true"},
                 {"WEBHOOK_POLL_INTERVAL", "0.2"}});
}

struct Read {
  json body;
  std::string x_cache;
};

Read Dashboard(httplib::Client& c) {
  auto r = c.Get("/api/v1/dashboard");
  REQUIRE(r);
  REQUIRE_MESSAGE(r->status == 200, r->body);
  CHECK(r->get_header_value("Content-Type") == "application/json");
  return {json::parse(r->body), r->get_header_value("X-Cache")};
}

const std::vector<std::string> kOverviewCounts = {
    "deliveries_total",  "pending",
    "in_progress",       "failed",
    "delivered_24h",     "failed_24h",
    "active_webhooks",   "degraded_webhooks",
    "disabled_webhooks", "inactive_webhooks",
    "queue_depth"};

bool IsTimestamp(const json& v) {
  return v.is_string() && v.get<std::string>().size() >= 20 &&
         v.get<std::string>().back() == 'Z';
}

bool IsRate(const json& v) {
  return v.is_null() || (v.is_number() && v >= 0 && v <= 1);
}

// Every key of the summary is there, with its type.
void CheckShape(const json& d) {
  REQUIRE(d.is_object());
  for (const char* k :
       {"overview", "performance", "webhooks", "alerts", "generated_at"}) {
    REQUIRE_MESSAGE(d.contains(k), k);
  }
  CHECK(d.size() == 5);
  CHECK(IsTimestamp(d["generated_at"]));

  const json& o = d["overview"];
  REQUIRE(o.is_object());
  CHECK(o.size() == kOverviewCounts.size() + 2);
  for (const std::string& k : kOverviewCounts) {
    REQUIRE_MESSAGE(o.contains(k), k);
    CHECK_MESSAGE(o[k].is_number_integer(), k);
    CHECK_MESSAGE(o[k] >= 0, k);
  }
  REQUIRE(o.contains("success_rate_24h"));
  CHECK(IsRate(o["success_rate_24h"]));
  REQUIRE(o.contains("oldest_pending_seconds"));
  CHECK(o["oldest_pending_seconds"].is_number());
  CHECK(o["oldest_pending_seconds"] >= 0);

  const json& p = d["performance"];
  REQUIRE(p.is_object());
  CHECK(p.size() == 6);
  for (const char* k : {"p50_ms", "p95_ms", "p99_ms", "error_rate",
                        "requests_per_second", "cache_hit_rate"}) {
    REQUIRE_MESSAGE(p.contains(k), k);
    CHECK_MESSAGE(p[k].is_number(), k);
    CHECK_MESSAGE(p[k] >= 0, k);
  }
  CHECK(p["p50_ms"] <= p["p95_ms"]);
  CHECK(p["p95_ms"] <= p["p99_ms"]);
  CHECK(p["error_rate"] <= 1);
  CHECK(p["cache_hit_rate"] <= 1);

  REQUIRE(d["webhooks"].is_array());
  CHECK(d["webhooks"].size() <= 100);
  for (const json& w : d["webhooks"]) {
    REQUIRE(w.is_object());
    CHECK(w.size() == 10);
    CHECK(w["id"].is_number_integer());
    CHECK(w["name"].is_string());
    CHECK(w["status"].is_string());
    CHECK(w["breaker_state"].is_string());
    REQUIRE(w.contains("success_rate_24h"));
    CHECK(IsRate(w["success_rate_24h"]));
    CHECK(w["deliveries_24h"].is_number_integer());
    for (const char* k :
         {"last_delivery_at", "last_success_at", "last_failure_at"}) {
      REQUIRE_MESSAGE(w.contains(k), k);
      CHECK_MESSAGE((w[k].is_null() || IsTimestamp(w[k])), k);
    }
    CHECK(w["consecutive_failures"].is_number_integer());
  }

  const json& a = d["alerts"];
  REQUIRE(a.is_object());
  CHECK(a.size() == 3);
  CHECK(a["total"].is_number_integer());
  REQUIRE(a["by_severity"].is_object());
  CHECK(a["by_severity"].size() == 3);
  for (const char* k : {"INFO", "WARNING", "CRITICAL"}) {
    CHECK_MESSAGE(a["by_severity"][k].is_number_integer(), k);
  }
  REQUIRE(a["by_status"].is_object());
  CHECK(a["by_status"].size() == 3);
  for (const char* k : {"pending", "acknowledged", "resolved"}) {
    CHECK_MESSAGE(a["by_status"][k].is_number_integer(), k);
  }
}

int64_t Count(const Daemon& d, const std::string& sql) {
  return std::stoll(d.Sql(sql));
}

// The overview and alert counts as SQL written here counts them.
void CheckAgainstSql(const Daemon& d, const json& s) {
  const json& o = s["overview"];
  const std::string q = "SELECT count(*) FROM pggit.alert_delivery_queue";
  const std::string w =
      "SELECT count(*) FROM pggit.webhooks WHERE deleted_at IS NULL AND ";
  const std::string day = "now() - interval '1 day'";
  CHECK(o["deliveries_total"] == Count(d, q));
  CHECK(o["pending"] == Count(d, q + " WHERE delivery_status = 'pending'"));
  CHECK(o["in_progress"] ==
        Count(d, q + " WHERE delivery_status = 'in_progress'"));
  CHECK(o["failed"] == Count(d, q + " WHERE delivery_status = 'failed'"));
  const int64_t delivered_24h = Count(
      d, q + " WHERE delivery_status = 'delivered' AND delivered_at > " + day);
  const int64_t failed_24h =
      Count(d, q + " WHERE delivery_status = 'failed' AND updated_at > " + day);
  CHECK(o["delivered_24h"] == delivered_24h);
  CHECK(o["failed_24h"] == failed_24h);
  if (delivered_24h + failed_24h == 0) {
    CHECK(o["success_rate_24h"].is_null());
  } else {
    CHECK(o["success_rate_24h"].get<double>() ==
          doctest::Approx(static_cast<double>(delivered_24h) /
                          (delivered_24h + failed_24h))
              .epsilon(0.001));
  }
  CHECK(o["queue_depth"] ==
        Count(d, q + " WHERE delivery_status IN ('pending', 'in_progress')"));
  CHECK(o["active_webhooks"] == Count(d, w + "status = 'active'"));
  CHECK(o["degraded_webhooks"] ==
        Count(d, w + "status = 'active' AND (breaker_state != 'closed' OR "
                     "consecutive_failures != 0)"));
  CHECK(o["disabled_webhooks"] == Count(d, w + "status = 'disabled'"));
  CHECK(o["inactive_webhooks"] == Count(d, w + "status = 'inactive'"));

  const json& a = s["alerts"];
  const std::string al = "SELECT count(*) FROM pggit.alerts";
  CHECK(a["total"] == Count(d, al));
  for (const char* sev : {"INFO", "WARNING", "CRITICAL"}) {
    CHECK_MESSAGE(a["by_severity"][sev] ==
                      Count(d, al + " WHERE severity = '" + sev + "'"),
                  sev);
  }
  for (const char* st : {"pending", "acknowledged", "resolved"}) {
    CHECK_MESSAGE(
        a["by_status"][st] == Count(d, al + " WHERE status = '" + st + "'"),
        st);
  }
}

// Invalidates dashboard:* and reads a new snapshot, checked against SQL.
json FreshDashboard(const Daemon& d, httplib::Client& c) {
  auto inv = c.Post("/api/v1/cache/invalidate", R"({"pattern": "dashboard:*"})",
                    "application/json");
  REQUIRE(inv);
  REQUIRE_MESSAGE(inv->status == 200, inv->body);
  Read r = Dashboard(c);
  CHECK(r.x_cache == "MISS");
  CheckShape(r.body);
  CheckAgainstSql(d, r.body);
  return r.body;
}

// The item of webhook `name` in the summary's list (null when absent).
json Item(const json& s, const std::string& name) {
  for (const json& w : s["webhooks"]) {
    if (w["name"] == name) return w;
  }
  return nullptr;
}

// The "cache warmed" line the daemon logs at start.
json StartWarmLog(Daemon& d) {
  std::istringstream lines(d.Output());
  for (std::string line; std::getline(lines, line);) {
    json j = json::parse(line, nullptr, /*allow_exceptions=*/false);
    if (j.is_object() && j.value("message", "") == "cache warmed") return j;
  }
  return nullptr;
}

TEST_CASE(
    "dashboard: empty database: every key present, zeros and nulls; "
    "cached, warmed, GET only") {
  Daemon d("api_dashboard_empty", DashboardEnv());
  auto c = d.Client();

  // Warmed at start with the other two warm sets, before READY.
  json warm_log = StartWarmLog(d);
  REQUIRE_MESSAGE(warm_log.is_object(), d.Output());
  CHECK(warm_log["entries"] == "3");
  CHECK(warm_log["failed"] == "0");

  Read first = Dashboard(c);
  CheckShape(first.body);
  const json& o = first.body["overview"];
  for (const std::string& k : kOverviewCounts) CHECK_MESSAGE(o[k] == 0, k);
  CHECK(o["success_rate_24h"].is_null());
  CHECK(o["oldest_pending_seconds"] == 0);
  CHECK(first.body["webhooks"] == json::array());
  const json& a = first.body["alerts"];
  CHECK(a["total"] == 0);
  CHECK(a["by_severity"] ==
        json({{"INFO", 0}, {"WARNING", 0}, {"CRITICAL", 0}}));
  CHECK(a["by_status"] ==
        json({{"pending", 0}, {"acknowledged", 0}, {"resolved", 0}}));

  // The second read is a hit on the same snapshot; the performance block
  // is this process's, measured now (the readiness polls and the first
  // read are in its window, the first read's lookup in the hit rate).
  Read second = Dashboard(c);
  CHECK(second.x_cache == "HIT");
  CheckShape(second.body);
  CHECK(second.body["generated_at"] == first.body["generated_at"]);
  CHECK(second.body["overview"] == first.body["overview"]);
  const json& p = second.body["performance"];
  CHECK(p["requests_per_second"] > 0);
  CHECK(p["p99_ms"] > 0);
  CHECK(p["cache_hit_rate"] > 0);
  CHECK(p["error_rate"] == 0);

  // Invalidated: the next read is a miss and loads a new snapshot.
  auto inv = c.Post("/api/v1/cache/invalidate", R"({"pattern": "dashboard:*"})",
                    "application/json");
  REQUIRE(inv);
  REQUIRE_MESSAGE(inv->status == 200, inv->body);
  CHECK(json::parse(inv->body)["invalidated"] == 1);
  Read missed = Dashboard(c);
  CHECK(missed.x_cache == "MISS");
  CheckShape(missed.body);
  CHECK(missed.body["generated_at"] >= first.body["generated_at"]);

  // POST /api/v1/cache/warm loads it for real: one more entry than the
  // webhooks and alerts first pages.
  auto warm = c.Post("/api/v1/cache/warm");
  REQUIRE(warm);
  REQUIRE_MESSAGE(warm->status == 200, warm->body);
  json warmed = json::parse(warm->body);
  CHECK(warmed["status"] == "success");
  CHECK(warmed["warmed_entries"] == 3);
  bool found = false;
  for (const json& w : warmed["warmers"]) {
    if (w["name"] != "dashboard summary") continue;
    found = true;
    CHECK(w["status"] == "ok");
    CHECK(w["entries"] == 1);
  }
  CHECK(found);
  Read after_warm = Dashboard(c);
  CHECK(after_warm.x_cache == "HIT");
  CHECK(after_warm.body["generated_at"] >= missed.body["generated_at"]);

  // GET (and HEAD) only.
  for (const char* method : {"POST", "PUT", "DELETE"}) {
    INFO(method);
    const std::string m = method;
    auto r = m == "POST"  ? c.Post("/api/v1/dashboard")
             : m == "PUT" ? c.Put("/api/v1/dashboard", "{}", "application/json")
                          : c.Delete("/api/v1/dashboard");
    CheckErrorBody(r, 405, method);
    CHECK(r->get_header_value("Allow") == "GET");
  }
  CHECK(c.Head("/api/v1/dashboard")->status == 200);
}

TEST_CASE(
    "dashboard: figures equal SQL counts after real deliveries; writes "
    "invalidate it, queue progress waits for the TTL") {
  // The receiver: /fail answers 500, anything else 200.
  delivery_test::Receiver rx(
      [](const delivery_test::Received& r, int) {
        delivery_test::Receiver::Reply reply;
        if (r.path == "/fail") reply.status = 500;
        return reply;
      },
      32);
  Daemon d("api_dashboard_figures", DashboardEnv());
  auto c = d.Client();
  CHECK(Dashboard(c).body["webhooks"] == json::array());

  // A webhook created over the API is in the next read (the write
  // invalidates dashboard:*).
  auto made =
      PostJson(c, "/api/v1/webhooks", {{"name", "ok"}, {"url", rx.url("/ok")}});
  REQUIRE(made);
  REQUIRE_MESSAGE(made->status == 201, made->body);
  const int64_t ok_id = json::parse(made->body)["id"].get<int64_t>();
  Read r = Dashboard(c);
  CHECK(r.x_cache == "MISS");
  REQUIRE(r.body["webhooks"].size() == 1);
  CHECK(r.body["webhooks"][0]["id"] == ok_id);
  CHECK(r.body["webhooks"][0]["status"] == "active");
  CHECK(r.body["webhooks"][0]["breaker_state"] == "closed");
  CHECK(r.body["overview"]["active_webhooks"] == 1);

  // CRITICAL alerts go to a receiver that fails them at once.
  made = PostJson(c, "/api/v1/webhooks",
                  {{"name", "fail"},
                   {"url", rx.url("/fail")},
                   {"filters", {{"severities", {"CRITICAL"}}}},
                   {"retry_policy", {{"max_retries", 0}}}});
  REQUIRE(made);
  REQUIRE_MESSAGE(made->status == 201, made->body);
  made = PostJson(c, "/api/v1/webhooks",
                  {{"name", "gone"}, {"url", rx.url("/gone")}});
  REQUIRE(made);
  REQUIRE(made->status == 201);
  auto gone = c.Delete(
      ("/api/v1/webhooks/" + json::parse(made->body)["id"].dump()).c_str());
  REQUIRE(gone);
  CHECK(gone->status == 204);
  // Written in SQL: an inactive webhook and one the engine disabled.
  d.Sql(
      "INSERT INTO pggit.webhooks (name, url, secret, is_active) VALUES "
      "('paused', '" +
      rx.url("/paused") +
      "', 's', false);"
      "INSERT INTO pggit.webhooks (name, url, secret, status) VALUES "
      "('broken', '" +
      rx.url("/broken") + "', 's', 'disabled')");

  // Alerts over HTTP and in SQL; one acknowledged, one resolved.
  std::vector<int64_t> ids;
  for (const char* sev : {"CRITICAL", "WARNING", "INFO"}) {
    auto a = PostJson(c, "/api/v1/alerts",
                      {{"operation_type", "commit"},
                       {"severity", sev},
                       {"message", std::string("over http ") + sev}});
    REQUIRE(a);
    REQUIRE_MESSAGE(a->status == 201, a->body);
    ids.push_back(json::parse(a->body)["id"].get<int64_t>());
  }
  d.Sql(
      "INSERT INTO pggit.alerts (operation_type, severity, message) VALUES "
      "('merge', 'CRITICAL', 'from sql'), ('merge', 'INFO', 'from sql')");
  auto ack =
      PostJson(c, "/api/v1/alerts/acknowledge", {{"alert_ids", {ids[0]}}});
  REQUIRE(ack);
  CHECK(ack->status == 200);
  auto res = PostJson(c, "/api/v1/alerts/resolve", {{"alert_ids", {ids[1]}}});
  REQUIRE(res);
  CHECK(res->status == 200);

  // Real deliveries: 5 to "ok", 2 (CRITICAL) to "fail", each one attempt.
  const bool settled = delivery_test::WaitFor(
      [&d] {
        return Count(d,
                     "SELECT count(*) FROM pggit.alert_delivery_queue "
                     "WHERE delivery_status IN ('delivered', 'failed')") == 7;
      },
      std::chrono::seconds(20));
  REQUIRE_MESSAGE(settled, d.Output());
  CHECK(rx.count() == 7);

  // Delivery progress does not invalidate the summary: read it fresh.
  r.body = FreshDashboard(d, c);
  const json o = r.body["overview"];
  CHECK(o["deliveries_total"] == 7);
  CHECK(o["delivered_24h"] == 5);
  CHECK(o["failed_24h"] == 2);
  CHECK(o["failed"] == 2);
  CHECK(o["queue_depth"] == 0);
  CHECK(o["oldest_pending_seconds"] == 0);
  CHECK(o["success_rate_24h"].get<double>() ==
        doctest::Approx(5.0 / 7).epsilon(0.001));
  CHECK(o["active_webhooks"] == 2);
  CHECK(o["degraded_webhooks"] == 1);  // "fail": consecutive failures
  CHECK(o["disabled_webhooks"] == 1);
  CHECK(o["inactive_webhooks"] == 1);
  const json a = r.body["alerts"];
  CHECK(a["total"] == 5);
  CHECK(a["by_severity"] ==
        json({{"INFO", 2}, {"WARNING", 1}, {"CRITICAL", 2}}));
  CHECK(a["by_status"] ==
        json({{"pending", 3}, {"acknowledged", 1}, {"resolved", 1}}));

  // The list: non-deleted webhooks by id, with their delivery figures.
  std::vector<std::string> names;
  for (const json& w : r.body["webhooks"]) {
    names.push_back(w["name"].get<std::string>());
  }
  CHECK(names == std::vector<std::string>{"ok", "fail", "paused", "broken"});
  json ok = Item(r.body, "ok");
  CHECK(ok["success_rate_24h"] == 1);
  CHECK(ok["deliveries_24h"] == 5);
  CHECK(IsTimestamp(ok["last_delivery_at"]));
  CHECK(IsTimestamp(ok["last_success_at"]));
  CHECK(ok["last_failure_at"].is_null());
  CHECK(ok["consecutive_failures"] == 0);
  json fail = Item(r.body, "fail");
  CHECK(fail["success_rate_24h"] == 0);
  CHECK(fail["deliveries_24h"] == 2);
  CHECK(fail["last_success_at"].is_null());
  CHECK(IsTimestamp(fail["last_failure_at"]));
  CHECK(IsTimestamp(fail["last_delivery_at"]));
  CHECK(fail["consecutive_failures"] ==
        Count(d,
              "SELECT consecutive_failures FROM pggit.webhooks "
              "WHERE name = 'fail'"));
  CHECK(fail["breaker_state"] ==
        d.Sql("SELECT breaker_state FROM pggit.webhooks WHERE name = 'fail'"));
  json paused = Item(r.body, "paused");
  CHECK(paused["status"] == "inactive");
  CHECK(paused["deliveries_24h"] == 0);
  CHECK(paused["success_rate_24h"].is_null());
  CHECK(paused["last_delivery_at"].is_null());
  CHECK(Item(r.body, "broken")["status"] == "disabled");

  // Queue rows written in SQL for "paused": one waiting (due in an hour,
  // queued 90 s ago), one delivered and one failed two days ago.
  d.Sql(
      "INSERT INTO pggit.alert_delivery_queue (alert_id, webhook_id, "
      "delivery_status, next_attempt_at, created_at, updated_at, "
      "delivered_at) SELECT a.id, w.id, x.status, x.next_at, x.created, "
      "x.created, x.delivered FROM pggit.webhooks w, (VALUES "
      "(" +
      std::to_string(ids[0]) +
      ", 'pending', now() + interval '1 hour', now() - interval '90 s', "
      "NULL::timestamptz), (" +
      std::to_string(ids[1]) +
      ", 'delivered', now(), now() - interval '2 days', now() - interval "
      "'2 days'), (" +
      std::to_string(ids[2]) +
      ", 'failed', now(), now() - interval '2 days', NULL)) "
      "AS x(alert, status, next_at, created, delivered) "
      "JOIN pggit.alerts a ON a.id = x.alert WHERE w.name = 'paused'");
  CHECK(Count(d, "SELECT count(*) FROM pggit.alert_delivery_queue") == 10);
  // Up to CACHE_TTL_DASHBOARD old (docs/api/dashboard.md): still the
  // cached snapshot.
  Read stale = Dashboard(c);
  CHECK(stale.x_cache == "HIT");
  CHECK(stale.body["overview"] == o);
  r.body = FreshDashboard(d, c);
  const json o2 = r.body["overview"];
  CHECK(o2["deliveries_total"] == 10);
  CHECK(o2["pending"] == 1);
  CHECK(o2["queue_depth"] == 1);
  CHECK(o2["failed"] == 3);
  CHECK(o2["delivered_24h"] == 5);  // the old rows are not in the last 24 h
  CHECK(o2["failed_24h"] == 2);
  CHECK(o2["oldest_pending_seconds"] >= 89);
  CHECK(o2["oldest_pending_seconds"] < 300);
  CHECK(Item(r.body, "paused")["deliveries_24h"] == 0);

  // More webhooks than the list holds: the first 100 by id; the overview
  // counts them all. Inserted in SQL: the trigger's NOTIFY invalidates.
  d.Sql(
      "INSERT INTO pggit.webhooks (name, url, secret, is_active) "
      "SELECT 'bulk' || g, 'http://127.0.0.1:9/x', 's', false "
      "FROM generate_series(1, 120) g");
  const bool seen = delivery_test::WaitFor(
      [&c] {
        return Dashboard(c).body["overview"]["inactive_webhooks"] == 121;
      },
      std::chrono::seconds(10));
  REQUIRE(seen);
  r = Dashboard(c);
  CheckShape(r.body);
  CheckAgainstSql(d, r.body);
  const json& list = r.body["webhooks"];
  REQUIRE(list.size() == 100);
  CHECK(list[0]["id"] == ok_id);
  for (size_t i = 1; i < list.size(); ++i) {
    CHECK(list[i]["id"] > list[i - 1]["id"]);
  }
  CHECK(list[99]["name"] == "bulk96");
}

}  // namespace
}  // namespace pggitops
