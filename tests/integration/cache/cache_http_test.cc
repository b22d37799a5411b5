// The cache routes over real sockets, with warmers and read endpoints that
// load real rows from PostgreSQL through the library's pool: warm loads for
// real, stats follow, invalidate validates strictly and a refused request
// changes nothing; the read helper caches, and a write through it is read
// back at once.
#include <fstream>
#include <memory>
#include <pqxx/pqxx>
#include <set>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "doctest/doctest.h"
#include "httplib.h"
#include "nlohmann/json.hpp"
#include "pggitops/cache.h"
#include "pggitops/connection_pool.h"
#include "pggitops/schema.h"
#include "server/http/errors.h"
#include "server/http/http_server.h"
#include "server/routes/cache_routes.h"
#include "server/routes/cached_read.h"
#include "tests/harness/harness.h"

namespace pggitops::server {
namespace {

using nlohmann::json;

std::string CacheDatabase(const std::string& name) {
  const std::string dsn = harness::FreshDatabase(name);
  absl::StatusOr<MigrateResult> m = Migrate(dsn);
  REQUIRE_MESSAGE(m.ok(), m.status().ToString());
  std::ifstream in(harness::SourcePath("sql/002_cache_invalidation.sql"));
  std::stringstream sql;
  sql << in.rdbuf();
  pqxx::connection c(dsn);
  pqxx::nontransaction tx(c);
  tx.exec(sql.str());
  tx.exec(
      "INSERT INTO pggit.webhooks (name, url, secret) VALUES"
      " ('ops', 'https://example.com/a', 's'),"
      " ('audit', 'https://example.com/b', 's'),"
      " ('pager', 'https://example.com/c', 's')");
  tx.exec(
      "INSERT INTO pggit.alerts (operation_type, severity, message) VALUES"
      " ('commit', 'WARNING', 'first'), ('merge', 'CRITICAL', 'second')");
  return dsn;
}

const std::string kWebhooksKey =
    CacheKey(CacheFamily::kWebhooks, {"list", "limit=20", "offset=0"});
const std::string kAlertsKey =
    CacheKey(CacheFamily::kAlerts, {"list", "limit=20", "offset=0"});
const std::string kDashboardKey =
    CacheKey(CacheFamily::kDashboard, {"summary"});

// Rows of `sql` as a JSON array of objects (all values as text).
json Rows(ConnectionPool* pool, const std::string& sql,
          const std::vector<std::optional<std::string>>& params = {}) {
  absl::StatusOr<PooledConnection> lease = pool->Acquire();
  if (!lease.ok()) throw FromStatus(lease.status());
  absl::StatusOr<QueryResult> r = lease->Query(sql, params);
  if (!r.ok()) throw FromStatus(r.status());
  json items = json::array();
  for (const auto& row : r->rows) {
    json item = json::object();
    for (size_t i = 0; i < row.size(); ++i) {
      item[r->columns[i]] = row[i] ? json(*row[i]) : json(nullptr);
    }
    items.push_back(item);
  }
  return items;
}

// The daemon's shape in miniature, in this process (not the real daemon of
// harness::Daemon): a cache, warm sets and read endpoints that own them, the
// cache routes, an HTTP server on a free port.
struct MiniDaemon {
  server::ServerConfig config;
  MetricsRegistry metrics;
  LatencyWindow latency;
  std::unique_ptr<ConnectionPool> pool;
  std::unique_ptr<Cache> cache;
  std::unique_ptr<CachedRead> reads;
  Router router;
  std::unique_ptr<HttpServer> server;
  std::thread thread;

  explicit MiniDaemon(const std::string& dsn) {
    PoolOptions po;
    po.dsn = dsn;
    po.size = 4;
    pool = *ConnectionPool::Create(po);
    CacheOptions co = CacheOptionsFromConfig(config);
    co.metrics = &metrics;
    cache = *Cache::Create(co);
    reads = std::make_unique<CachedRead>(cache.get(), &config);
  }
  json Webhooks() {
    return {
        {"items",
         Rows(
             pool.get(),
             "SELECT id, name, is_active::text AS is_active FROM pggit.webhooks"
             " ORDER BY id LIMIT 20")}};
  }
  json Alerts() {
    return {{"items", Rows(pool.get(),
                           "SELECT id, severity, message FROM pggit.alerts"
                           " ORDER BY created_at DESC, id DESC LIMIT 20")}};
  }
  json Dashboard() {
    return Rows(pool.get(),
                "SELECT (SELECT count(*) FROM pggit.webhooks WHERE is_active)"
                " AS active_webhooks, (SELECT count(*) FROM pggit.alerts)"
                " AS alerts")[0];
  }
  void RegisterWarmSets() {
    REQUIRE(cache
                ->RegisterWarmer("webhooks first page",
                                 [this](Cache&) {
                                   return reads->Warm(
                                       CacheFamily::kWebhooks, kWebhooksKey,
                                       [this] { return Webhooks(); });
                                 })
                .ok());
    REQUIRE(cache
                ->RegisterWarmer("alerts first page",
                                 [this](Cache&) {
                                   return reads->Warm(
                                       CacheFamily::kAlerts, kAlertsKey,
                                       [this] { return Alerts(); });
                                 })
                .ok());
    REQUIRE(cache
                ->RegisterWarmer("dashboard summary",
                                 [this](Cache&) {
                                   return reads->Warm(
                                       CacheFamily::kDashboard, kDashboardKey,
                                       [this] { return Dashboard(); });
                                 })
                .ok());
  }
  void AddReadRoutes() {
    router.Add({"GET", "/api/v1/webhooks", BodyPolicy::kNone, Scope::kRead,
                [this](RequestContext& ctx) {
                  reads->Serve(ctx, CacheFamily::kWebhooks, kWebhooksKey,
                               [this] { return Webhooks(); });
                }});
    router.Add({"GET", "/api/v1/webhooks/{id}", BodyPolicy::kNone, Scope::kRead,
                [this](RequestContext& ctx) {
                  std::string id = ctx.params["id"];
                  reads->Serve(ctx, CacheFamily::kWebhooks,
                               CacheKey(CacheFamily::kWebhooks, {"item", id}),
                               [this, id] {
                                 json rows = Rows(pool.get(),
                                                  "SELECT id, name FROM "
                                                  "pggit.webhooks WHERE id = "
                                                  "$1::bigint",
                                                  {id});
                                 if (rows.empty()) {
                                   throw NotFound("webhook " + id);
                                 }
                                 return rows[0];
                               });
                }});
    router.Add({"POST", "/api/v1/webhooks/{id}/deactivate", BodyPolicy::kNone,
                Scope::kWrite, [this](RequestContext& ctx) {
                  Rows(pool.get(),
                       "UPDATE pggit.webhooks SET is_active = false WHERE id "
                       "= $1::bigint RETURNING id",
                       {ctx.params["id"]});
                  reads->InvalidateAfterWrite(
                      {CacheFamily::kWebhooks, CacheFamily::kDashboard});
                  ctx.Json(200, {{"id", ctx.params["id"]}});
                }});
  }
  void Start() {
    AddCacheRoutes(&router, cache.get(), &latency);
    AddReadRoutes();
    HttpServerOptions o;
    o.port = 0;
    o.workers = 8;
    server = std::make_unique<HttpServer>(o, &router, &metrics, &latency);
    REQUIRE(server->Bind().ok());
    thread = std::thread([this] { server->Serve(); });
  }
  ~MiniDaemon() {
    if (server) {
      server->Shutdown();
      thread.join();
    }
  }
  httplib::Client Client() {
    httplib::Client c("127.0.0.1", server->port());
    c.set_read_timeout(30, 0);
    return c;
  }
};

json Body(const httplib::Result& r, int status) {
  REQUIRE(r);
  CHECK_MESSAGE(r->status == status, r->body);
  return json::parse(r->body);
}

json PostJson(httplib::Client& c, const std::string& path,
              const std::string& body, int status) {
  return Body(c.Post(path.c_str(), body, "application/json"), status);
}

TEST_CASE("cache warm loads the warm sets from PostgreSQL for real") {
  MiniDaemon d(CacheDatabase("cache_http_warm"));
  d.RegisterWarmSets();
  d.Start();
  auto c = d.Client();
  // As the guide sends it: POST, no body, no Content-Type.
  json w = Body(c.Post("/api/v1/cache/warm"), 200);
  CHECK(w["status"] == "success");
  CHECK(w["warmed_entries"] == 3);
  CHECK(w["duration_ms"].is_number());
  CHECK(w["duration_ms"].get<double>() >= 0);
  CHECK(absl::EndsWith(w["timestamp"].get<std::string>(), "Z"));
  REQUIRE(w["warmers"].size() == 3);
  for (const json& one : w["warmers"]) {
    CHECK(one["status"] == "ok");
    CHECK(one["entries"] == 1);
  }
  CHECK(d.cache->Stats().entries == 3);
  // The warmed page is served from the cache, with the database's rows.
  auto r = c.Get("/api/v1/webhooks");
  json page = Body(r, 200);
  CHECK(r->get_header_value("X-Cache") == "HIT");
  REQUIRE(page["items"].size() == 3);
  CHECK(page["items"][0]["name"] == "ops");
  CHECK(page["items"][2]["name"] == "pager");
  CacheValue dash = d.cache->Get(kDashboardKey);
  REQUIRE(dash != nullptr);
  CHECK(json::parse(*dash)["active_webhooks"] == "3");
  CHECK(json::parse(*dash)["alerts"] == "2");
  // An empty JSON object is fine; anything in it is not.
  CHECK(PostJson(c, "/api/v1/cache/warm", "{}", 200)["warmed_entries"] == 3);
  json bad =
      PostJson(c, "/api/v1/cache/warm", "{\"sets\": [\"webhooks\"]}", 422);
  CHECK(bad["error_code"] == "VALIDATION_ERROR");
  CHECK(absl::StrContains(bad["detail"].get<std::string>(), "sets"));
  CHECK(PostJson(c, "/api/v1/cache/warm", "[1]", 400)["error_code"] ==
        "MALFORMED_JSON");
}

TEST_CASE("cache warm: partial failure is reported, total failure is 503") {
  MiniDaemon d(CacheDatabase("cache_http_warm_fail"));
  REQUIRE(d.cache
              ->RegisterWarmer("webhooks first page",
                               [&d](Cache&) {
                                 return d.reads->Warm(
                                     CacheFamily::kWebhooks, kWebhooksKey,
                                     [&d] { return d.Webhooks(); });
                               })
              .ok());
  REQUIRE(
      d.cache
          ->RegisterWarmer(
              "broken",
              [&d](Cache&) {
                return d.reads->Warm(CacheFamily::kAlerts, kAlertsKey, [&d] {
                  return json{{"items", Rows(d.pool.get(),
                                             "SELECT * FROM no_such_table")}};
                });
              })
          .ok());
  d.Start();
  auto c = d.Client();
  json w = Body(c.Post("/api/v1/cache/warm"), 200);
  CHECK(w["status"] == "partial");
  CHECK(w["warmed_entries"] == 1);
  CHECK(w["warmers"][1]["status"] == "error");
  CHECK(w["warmers"][1]["name"] == "broken");
  // The producer threw FromStatus(kInternal), whose text is deliberately
  // generic (the SQL error is logged, not shown to clients).
  CHECK(w["warmers"][1]["error"] == "internal error");
  CHECK(d.cache->Get(kAlertsKey) == nullptr);  // nothing cached on error
  REQUIRE(d.cache
              ->RegisterWarmer("webhooks first page",
                               [](Cache&) {
                                 return absl::StatusOr<int64_t>(
                                     absl::UnavailableError("database down"));
                               })
              .ok());
  json e = Body(c.Post("/api/v1/cache/warm"), 503);
  CHECK(e["error_code"] == "SERVICE_UNAVAILABLE");
  CHECK(absl::StrContains(e["detail"].get<std::string>(), "database down"));
}

TEST_CASE("cache stats: the contract's fields, consistent with the requests") {
  MiniDaemon d(CacheDatabase("cache_http_stats"));
  d.Start();
  auto c = d.Client();
  for (int i = 0; i < 3; ++i) Body(c.Get("/api/v1/webhooks"), 200);  // 1 miss
  json s = Body(c.Get("/api/v1/cache/stats"), 200);
  for (const char* k :
       {"hit_rate", "total_requests", "cache_hits", "cache_misses",
        "evicted_entries", "expired_entries", "current_size_bytes",
        "max_size_bytes", "entries", "l2", "cache_stats"}) {
    CHECK_MESSAGE(s.contains(k), k);
  }
  CHECK(s["total_requests"] == 3);
  CHECK(s["cache_hits"] == 2);
  CHECK(s["cache_misses"] == 1);
  CHECK(s["hit_rate"].get<double>() == doctest::Approx(2.0 / 3));
  CHECK(s["entries"] == 1);
  CHECK(s["max_size_bytes"] == 104857600);
  CHECK(s["current_size_bytes"].get<int64_t>() > 0);
  CHECK(s["l2"]["enabled"] == false);
  CHECK(s["l2"]["status"] == "disabled");
  const json& p = s["cache_stats"];
  CHECK(p["p50_ms"].get<double>() > 0);  // the 3 requests above
  CHECK(p["p95_ms"].get<double>() >= p["p50_ms"].get<double>());
  CHECK(p["p99_ms"].get<double>() >= p["p95_ms"].get<double>());
  CHECK(p["requests"].get<int>() >= 3);
  // Metrics agree.
  std::string text = d.metrics.Serialize();
  CHECK(absl::StrContains(text, "\ncache_hits_total 2\n"));
  CHECK(absl::StrContains(text, "\ncache_misses_total 1\n"));
}

TEST_CASE("cache invalidate: keys, pattern, both; counts and entries left") {
  MiniDaemon d(CacheDatabase("cache_http_invalidate"));
  d.RegisterWarmSets();
  d.Start();
  auto c = d.Client();
  REQUIRE(Body(c.Post("/api/v1/cache/warm"), 200)["warmed_entries"] == 3);
  json r = PostJson(c, "/api/v1/cache/invalidate",
                    "{\"pattern\": \"webhooks:*\"}", 200);
  CHECK(r["invalidated"] == 1);
  CHECK(r["total_entries"] == 2);
  CHECK(d.cache->Get(kWebhooksKey) == nullptr);
  r = PostJson(c, "/api/v1/cache/invalidate",
               "{\"keys\": [\"" + kAlertsKey + "\", \"alerts:absent\"]}", 200);
  CHECK(r["invalidated"] == 1);
  CHECK(r["total_entries"] == 1);
  REQUIRE(Body(c.Post("/api/v1/cache/warm"), 200)["warmed_entries"] == 3);
  r = PostJson(
      c, "/api/v1/cache/invalidate",
      "{\"keys\": [\"" + kDashboardKey + "\"], \"pattern\": \"alerts:*\"}",
      200);
  CHECK(r["invalidated"] == 2);
  CHECK(r["total_entries"] == 1);
}

TEST_CASE("cache invalidate: bad input is refused and changes nothing") {
  MiniDaemon d(CacheDatabase("cache_http_bad_input"));
  d.RegisterWarmSets();
  d.Start();
  auto c = d.Client();
  REQUIRE(Body(c.Post("/api/v1/cache/warm"), 200)["warmed_entries"] == 3);
  struct Case {
    std::string body;
    int status;
    std::string names;  // what the detail must mention
  };
  const std::vector<Case> cases = {
      {"{}", 422, "keys or pattern"},
      {"{\"keys\": []}", 422, "keys"},
      {"{\"keys\": \"webhooks:x\"}", 422, "keys"},
      {"{\"keys\": [1]}", 422, "keys[0]"},
      {"{\"keys\": [\"ok\", \"\"]}", 422, "keys[1]"},
      {"{\"pattern\": 7}", 422, "pattern"},
      {"{\"pattern\": null}", 422, "pattern"},
      {"{\"pattern\": \"\"}", 422, "pattern"},
      {"{\"pattern\": \"webhooks:[ab]\"}", 422, "pattern"},
      {"{\"pattern\": \"webhooks:*\", \"force\": true}", 422, "force"},
      {"{\"keys\": [\"" + kWebhooksKey + "\"], \"pattern\": \"al\\\\erts\"}",
       422, "pattern"},
      {"{\"pattern\": \"webhooks:*\"", 400, ""},
      {"[\"webhooks:*\"]", 400, ""},
      {"", 400, ""},
  };
  for (const Case& k : cases) {
    CAPTURE(k.body);
    json e = PostJson(c, "/api/v1/cache/invalidate", k.body, k.status);
    CHECK(e["error_code"] ==
          (k.status == 422 ? "VALIDATION_ERROR" : "MALFORMED_JSON"));
    CHECK(absl::StrContains(e["detail"].get<std::string>(), k.names));
    CHECK(d.cache->Stats().entries == 3);
  }
  auto r = c.Post("/api/v1/cache/invalidate", "pattern=webhooks:*",
                  "application/x-www-form-urlencoded");
  REQUIRE(r);
  CHECK(r->status == 415);
  CHECK(d.cache->Get(kWebhooksKey) != nullptr);
  CHECK(d.cache->Get(kAlertsKey) != nullptr);
  CHECK(d.cache->Get(kDashboardKey) != nullptr);
}

TEST_CASE("read helper: cached reads, read-your-writes, errors not cached") {
  MiniDaemon d(CacheDatabase("cache_http_reads"));
  d.Start();
  auto c = d.Client();
  auto r1 = c.Get("/api/v1/webhooks");
  json first = Body(r1, 200);
  CHECK(r1->get_header_value("X-Cache") == "MISS");
  CHECK(first["items"][0]["is_active"] == "true");
  auto r2 = c.Get("/api/v1/webhooks");
  CHECK(Body(r2, 200) == first);
  CHECK(r2->get_header_value("X-Cache") == "HIT");
  // A write through the API is visible to the very next read.
  std::string id = first["items"][0]["id"];
  Body(c.Post(("/api/v1/webhooks/" + id + "/deactivate").c_str()), 200);
  auto r3 = c.Get("/api/v1/webhooks");
  json after = Body(r3, 200);
  CHECK(r3->get_header_value("X-Cache") == "MISS");
  CHECK(after["items"][0]["is_active"] == "false");
  // A producer's 404 reaches the client and is not cached.
  const int64_t entries = d.cache->Stats().entries;
  for (int i = 0; i < 2; ++i) {
    json e = Body(c.Get("/api/v1/webhooks/999999"), 404);
    CHECK(e["error_code"] == "RESOURCE_NOT_FOUND");
  }
  CHECK(d.cache->Stats().entries == entries);
  auto one = c.Get(("/api/v1/webhooks/" + id).c_str());
  CHECK(Body(one, 200)["name"] == "ops");
  CHECK(d.cache->Stats().entries == entries + 1);
}

}  // namespace
}  // namespace pggitops::server
