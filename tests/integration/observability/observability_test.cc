// Observability end to end (issue 7): /health/deep tells the truth when a
// dependency fails, and a real Prometheus scraping a running pggit-api finds
// every series the alert rules of ops/prometheus-rules.yml use and evaluates
// every rule without error. Stops PostgreSQL and pauses Redis, so it never
// runs beside another test (is_parallel: false).
#include <signal.h>

#include <chrono>
#include <fstream>
#include <optional>
#include <set>
#include <string>

#include "doctest/doctest.h"
#include "httplib.h"
#include "nlohmann/json.hpp"
#include "testing/temp_dir.h"
#include "tests/harness/daemon.h"
#include "tests/harness/harness.h"

namespace pggitops {
namespace {

using harness::Daemon;
using harness::Process;
using nlohmann::json;
using Clock = std::chrono::steady_clock;

double SecondsSince(Clock::time_point start) {
  return std::chrono::duration<double>(Clock::now() - start).count();
}

// Polls `get` with harness::WaitFor until `done(result)` or `timeout_s`;
// returns the last result.
template <typename Get, typename Done>
auto PollUntil(double timeout_s, Get get, Done done) {
  std::optional<decltype(get())> r;
  harness::WaitFor(
      [&] {
        r.reset();  // httplib::Result is not assignable
        r.emplace(get());
        return done(*r);
      },
      std::chrono::milliseconds(static_cast<int64_t>(timeout_s * 1000)));
  return std::move(*r);
}

// A daemon on a migrated database `db`, with Redis as L2 (a database of
// its own) and short time-outs, so failures show quickly.
Daemon::Options Observed(const std::string& db) {
  Daemon::Options o;
  o.db = db;
  o.env = {{"REDIS_URL", harness::Get().redis_url + "/3"},
           {"REDIS_TIMEOUT", "0.2"},
           {"DATABASE_CONNECT_TIMEOUT", "2"},
           {"DATABASE_POOL_TIMEOUT", "2"},
           // Every /api/* request counts, 404s included: a burst that the
           // traffic below never spends.
           {"RATE_LIMIT_BURST", "1000"},
           {"API_LOG_LEVEL", "WARNING"}};
  return o;
}

httplib::Result Get(const Daemon& d, const std::string& path) {
  httplib::Client c = d.Client();
  c.set_connection_timeout(2, 0);
  c.set_read_timeout(20, 0);
  return c.Get(path.c_str());
}

json Deep(const Daemon& d, int* status = nullptr) {
  auto r = Get(d, "/health/deep");
  REQUIRE(r);
  if (status != nullptr) *status = r->status;
  return json::parse(r->body);
}

std::set<std::string> Failing(const json& j) {
  std::set<std::string> out;
  if (j.contains("failing")) {
    for (const auto& f : j["failing"]) out.insert(f.get<std::string>());
  }
  return out;
}

TEST_CASE("deep health: every check of CONTRACT 5 with its fields, all up") {
  Daemon d(Observed("obs_deep_up"));
  int status = 0;
  json j = Deep(d, &status);
  CHECK(status == 200);
  CHECK(j["status"] == "healthy");
  CHECK(j["timestamp"].get<std::string>().back() == 'Z');
  CHECK(j["database"]["status"] == "connected");
  CHECK(j["database"]["response_time_ms"].get<double>() >= 0);
  CHECK(j["database"]["pool"]["size"].is_number());
  CHECK(j["database"]["pool"]["available"].is_number());
  CHECK(j["schema"]["status"] == "ok");
  CHECK(j["schema"]["missing_indexes"].empty());
  CHECK(j["cache"]["status"] == "operational");
  CHECK(j["cache"].contains("hit_rate"));
  CHECK(j["redis"]["status"] == "connected");
  for (const char* f :
       {"active_count", "failing_count", "disabled_count", "inactive_count"}) {
    CHECK_MESSAGE(j["webhooks"][f] == 0, f);
  }
  CHECK(j["queue"]["depth"] == 0);
  CHECK(j["queue"]["oldest_pending_seconds"] == 0);
  CHECK(Failing(j).empty());

  // The counts are read from the database, not fixed: one webhook of each
  // kind, and a queued delivery.
  harness::AdminQuery(
      "obs_deep_up",
      "INSERT INTO pggit.webhooks (name, url, secret, is_active, status) VALUES"
      " ('a', 'http://192.0.2.1/a', 's', true, 'active'),"
      " ('b', 'http://192.0.2.1/b', 's', false, 'inactive'),"
      " ('c', 'http://192.0.2.1/c', 's', true, 'disabled');"
      "INSERT INTO pggit.alerts (operation_type, severity, message) VALUES"
      " ('commit', 'INFO', 'hello')");
  j = Deep(d);
  CHECK(j["webhooks"]["active_count"] == 1);
  CHECK(j["webhooks"]["inactive_count"] == 1);
  CHECK(j["webhooks"]["disabled_count"] == 1);
  CHECK(j["queue"]["depth"].get<int>() <= 1);
}

TEST_CASE("deep health: Redis paused -> redis unavailable, degraded, 200") {
  Daemon d(Observed("obs_deep_redis"));
  harness::PauseRedis();
  auto start = Clock::now();
  int status = 0;
  json j = Deep(d, &status);
  double took = SecondsSince(start);
  harness::ResumeRedis();
  CHECK(status == 200);
  CHECK(j["status"] == "degraded");
  CHECK(j["redis"]["status"] == "unavailable");
  CHECK(Failing(j).count("redis") == 1);
  CHECK(j["database"]["status"] == "connected");
  CHECK_MESSAGE(took < 5, "deep health took " << took << " s");
  // Back without a restart.
  j = PollUntil(
      10, [&] { return Deep(d); },
      [](const json& x) { return x["redis"]["status"] == "connected"; });
  CHECK(j["redis"]["status"] == "connected");
  CHECK(j["status"] == "healthy");
}

TEST_CASE("deep health: schema behind or missing a guide index -> 503") {
  Daemon d(Observed("obs_deep_schema"));
  harness::AdminQuery("obs_deep_schema", "DROP INDEX pggit.idx_alert_created");
  int status = 0;
  json j = Deep(d, &status);
  CHECK(status == 503);
  CHECK(j["status"] == "unhealthy");
  CHECK(Failing(j).count("schema") == 1);
  CHECK(j["schema"]["missing_indexes"] == json({"idx_alert_created"}));

  harness::AdminQuery("obs_deep_schema",
                      "CREATE INDEX idx_alert_created ON pggit.alerts "
                      "(created_at DESC);"
                      "DELETE FROM pggit.schema_migrations WHERE version ="
                      " (SELECT max(version) FROM pggit.schema_migrations)");
  j = Deep(d, &status);
  CHECK(status == 503);
  CHECK(Failing(j).count("schema") == 1);
  CHECK(j["schema"]["version"].get<int>() <
        j["schema"]["expected_version"].get<int>());
  CHECK(Get(d, "/health/ready")->status == 503);
}

TEST_CASE("deep health: PostgreSQL stopped -> 503 naming database, in time") {
  Daemon d(Observed("obs_deep_pg"));
  harness::StopPostgres();
  auto start = Clock::now();
  int status = 0;
  json j;
  try {
    j = Deep(d, &status);
  } catch (...) {
    harness::StartPostgres();
    throw;
  }
  double took = SecondsSince(start);
  auto ready = Get(d, "/health/ready");
  harness::StartPostgres();
  CHECK(status == 503);
  CHECK(j["status"] == "unhealthy");
  CHECK(Failing(j).count("database") == 1);
  CHECK(j["database"]["status"] != "connected");
  CHECK_MESSAGE(took < 10, "deep health took " << took << " s");
  REQUIRE(ready);
  CHECK(ready->status == 503);
  // Back without a restart of the daemon.
  auto r = PollUntil(
      30, [&] { return Get(d, "/health/ready"); },
      [](const httplib::Result& x) { return x && x->status == 200; });
  REQUIRE(r);
  CHECK(r->status == 200);
}

// The value of the sample `series` (name and labels exactly as exposed)
// in the daemon's /metrics, or -1 when absent.
double Sample(Daemon& d, const std::string& series) {
  auto r = Get(d, "/metrics");
  REQUIRE(r);
  size_t at = r->body.find("\n" + series + " ");
  if (at == std::string::npos) return -1;
  return std::stod(r->body.substr(at + series.size() + 2));
}

TEST_CASE("metrics: counters and histograms move with traffic") {
  Daemon d(Observed("obs_counters"));
  const std::string requests =
      "http_requests_total{method=\"GET\",route=\"/health\",status=\"200\"}";
  const std::string count =
      "http_request_duration_seconds_count{method=\"GET\",route=\"/health\"}";
  const std::string inf =
      "http_request_duration_seconds_bucket{method=\"GET\",route=\"/health\","
      "le=\"+Inf\"}";
  for (int i = 0; i < 3; ++i) REQUIRE(Get(d, "/health")->status == 200);
  double before = Sample(d, requests);
  double count_before = Sample(d, count);
  REQUIRE(before >= 3);
  for (int i = 0; i < 5; ++i) REQUIRE(Get(d, "/health")->status == 200);
  CHECK(Sample(d, requests) == before + 5);
  CHECK(Sample(d, count) == count_before + 5);
  CHECK(Sample(d, inf) == Sample(d, count));
}

json DeepOf(const Daemon& d) {
  int status = 0;
  return Deep(d, &status);
}

TEST_CASE("lock contention: db_lock_waits, db_lock_wait_seconds_max, deep") {
  Daemon d("obs_locks");
  CHECK(Sample(d, "db_lock_waits") == 0);
  CHECK(Sample(d, "db_lock_wait_seconds_max") == 0);
  CHECK(DeepOf(d)["database"]["locks"]["waiting"] == 0);
  // One session holds a lock in an open transaction; another waits for it.
  Process holder({"psql", "-X", "-q", d.dsn(), "-c",
                  "BEGIN; LOCK TABLE pggit.webhooks IN ACCESS EXCLUSIVE MODE;"
                  " SELECT pg_sleep(60)"});
  REQUIRE(PollUntil(
              10,
              [&] {
                return harness::AdminQuery(
                    "obs_locks",
                    "SELECT count(*) FROM pg_locks WHERE granted AND mode ="
                    " 'AccessExclusiveLock' AND relation = "
                    "'pggit.webhooks'::regclass");
              },
              [](const std::string& n) { return n == "1"; }) == "1");
  Process waiter({"psql", "-X", "-q", d.dsn(), "-c",
                  "SELECT count(*) FROM pggit.webhooks"});
  double waits = PollUntil(
      10, [&] { return Sample(d, "db_lock_waits"); },
      [](double v) { return v >= 1; });
  CHECK(waits == 1);
  double longest = PollUntil(
      10, [&] { return Sample(d, "db_lock_wait_seconds_max"); },
      [](double v) { return v > 0; });
  CHECK(longest > 0);
  CHECK(longest < 60);
  json locks = DeepOf(d)["database"]["locks"];
  CHECK(locks["waiting"].get<int>() >= 1);  // the webhooks check waits too
  CHECK(locks["longest_wait_seconds"].get<double>() >= 0);
  // The holder's statement is cancelled: the waiter gets its answer.
  harness::AdminQuery("obs_locks",
                      "SELECT pg_cancel_backend(pid) FROM pg_stat_activity"
                      " WHERE query LIKE '%pg_sleep(60)%' AND pid <>"
                      " pg_backend_pid()");
  CHECK(waiter.Wait(10000) == 0);
  CHECK(PollUntil(
            10, [&] { return Sample(d, "db_lock_waits"); },
            [](double v) { return v == 0; }) == 0);
  holder.Wait(10000);
}

// Prometheus's HTTP API: GET `path` with query `q`, returning "data".
json PromQuery(int port, const std::string& path, const std::string& q) {
  httplib::Client c("127.0.0.1", port);
  c.set_read_timeout(10, 0);
  httplib::Params params;
  if (!q.empty()) params.emplace("query", q);
  auto r = c.Get(path.c_str(), params, httplib::Headers{});
  REQUIRE(r);
  json j = json::parse(r->body);
  INFO(path, " ", q, " -> ", r->body);
  REQUIRE(j["status"] == "success");
  return j["data"];
}

TEST_CASE(
    "Prometheus scrapes the daemon; every rule's series exist and "
    "every rule evaluates") {
  Daemon d(Observed("obs_prometheus"));
  // Traffic: successes, a 404, cache reads.
  for (int i = 0; i < 20; ++i) {
    CHECK(Get(d, "/health")->status == 200);
    CHECK(Get(d, "/api/v1/cache/stats")->status == 200);
  }
  CHECK(Get(d, "/api/v1/nothing")->status == 404);

  const testing::TempDir tmp("pggit-prometheus-");
  const std::string& dir = tmp.path();
  REQUIRE(harness::Run("cp " + harness::SourcePath("ops/prometheus-rules.yml") +
                       " " + dir + "/pggit-rules.yml") == 0);
  {
    std::ofstream cfg(dir + "/prometheus.yml");
    cfg << "global:\n  scrape_interval: 1s\n  evaluation_interval: 1s\n"
           "rule_files:\n  - pggit-rules.yml\n"
           "scrape_configs:\n  - job_name: pggit-api\n    static_configs:\n"
           "      - targets: ['127.0.0.1:"
        << d.port() << "']\n";
  }
  const int prom_port = harness::FreePort();
  Process prom({"prometheus", "--config.file=" + dir + "/prometheus.yml",
                "--storage.tsdb.path=" + dir + "/data",
                "--web.listen-address=127.0.0.1:" + std::to_string(prom_port),
                "--log.level=warn"});

  // The scrape succeeds.
  auto up = PollUntil(
      30,
      [&]() -> json {
        httplib::Client c("127.0.0.1", prom_port);
        httplib::Params p{{"query", "up{job=\"pggit-api\"}"}};
        auto r = c.Get("/api/v1/query", p, httplib::Headers{});
        if (!r || r->status != 200) return json();
        return json::parse(r->body)["data"]["result"];
      },
      [](const json& res) {
        return res.is_array() && !res.empty() && res[0]["value"][1] == "1";
      });
  REQUIRE_MESSAGE((up.is_array() && !up.empty() && up[0]["value"][1] == "1"),
                  prom.Output());

  // Every series the rules read, and the rest of CONTRACT section 7.
  for (const char* name : {"http_requests_total",
                           "http_request_duration_seconds_bucket",
                           "http_request_size_bytes_bucket",
                           "cache_hits_total",
                           "cache_misses_total",
                           "cache_evictions_total",
                           "cache_size_bytes",
                           "db_connection_pool_size",
                           "db_connection_pool_available",
                           "db_connection_pool_checked_out",
                           "db_connection_pool_timeouts_total",
                           "db_connection_pool_wait_seconds_bucket",
                           "webhook_queue_depth",
                           "webhook_deliveries_total",
                           "webhook_delivery_duration_seconds_bucket",
                           "webhook_retries_total",
                           "db_query_duration_seconds_bucket",
                           "db_slow_queries_total",
                           "db_lock_waits",
                           "db_lock_wait_seconds_max",
                           "process_cpu_seconds_total",
                           "process_resident_memory_bytes",
                           "pggit_build_info"}) {
    json res = PromQuery(prom_port, "/api/v1/query",
                         std::string("count(") + name + ")")["result"];
    CHECK_MESSAGE((res.is_array() && !res.empty()), name);
  }
  // Route templates, not raw paths: the 404 is "unmatched".
  json routes = PromQuery(prom_port, "/api/v1/label/route/values", "");
  CHECK(std::find(routes.begin(), routes.end(), "/api/v1/nothing") ==
        routes.end());
  CHECK(std::find(routes.begin(), routes.end(), "unmatched") != routes.end());
  // webhook_deliveries_total's result label has only the section 10 values.
  json results = PromQuery(prom_port, "/api/v1/label/result/values", "");
  for (const auto& v : results) {
    CHECK(std::set<std::string>{"delivered", "retry", "failed"}.count(
              v.get<std::string>()) == 1);
  }

  // The five rules are loaded, and each expression evaluates without error
  // against the scraped series (an empty result is fine: nothing fires).
  json groups = PromQuery(prom_port, "/api/v1/rules", "")["groups"];
  REQUIRE(groups.size() == 1);
  std::set<std::string> names;
  for (const auto& rule : groups[0]["rules"]) {
    names.insert(rule["name"].get<std::string>());
    CHECK(rule["type"] == "alerting");
    PromQuery(prom_port, "/api/v1/query", rule["query"].get<std::string>());
  }
  CHECK(names == std::set<std::string>{"HighP99Latency", "LowCacheHitRate",
                                       "HighErrorRate", "DatabasePoolExhausted",
                                       "QueueDepthHigh"});
  // The latency quantile has a value once requests were scraped twice.
  json q = PollUntil(
      15,
      [&] {
        return PromQuery(
            prom_port, "/api/v1/query",
            "histogram_quantile(0.99, sum by (le) "
            "(rate(http_request_duration_seconds_bucket[1m])))")["result"];
      },
      [](const json& res) { return !res.empty(); });
  CHECK(!q.empty());
  prom.Signal(SIGTERM);
  CHECK(prom.Wait(10000) == 0);
}

}  // namespace
}  // namespace pggitops
