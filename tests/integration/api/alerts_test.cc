// The alerts endpoints of CONTRACT sections 5 and 10 against the real
// pggit-api binary, a migrated database of the harness's PostgreSQL and its
// Redis: list (filters, paging, newest first, read-your-writes, the warm
// set), create, read one, acknowledge and resolve, a table of bad inputs
// that must answer 4xx and leave the database unchanged, and the event
// stream (HTTP- and SQL-inserted alerts, status and keep-alive lines, the
// cap, and SIGTERM with streams open).
#include <signal.h>

#include <atomic>
#include <chrono>
#include <future>
#include <mutex>
#include <pqxx/pqxx>
#include <string>
#include <thread>
#include <vector>

#include "doctest/doctest.h"
#include "httplib.h"
#include "nlohmann/json.hpp"
#include "tests/harness/harness.h"
#include "tests/integration/api/api_test_util.h"

namespace pggitops {
namespace {

using namespace api_test;  // NOLINT

json CreateAlert(httplib::Client& c, const json& body) {
  auto r = PostJson(c, "/api/v1/alerts", body);
  REQUIRE(r);
  REQUIRE_MESSAGE(r->status == 201, r->body);
  return json::parse(r->body);
}

// Everything a refused request must leave as it was.
std::string Snapshot(const Daemon& d) {
  return d.Sql(
      "SELECT (SELECT count(*) FROM pggit.alerts) || '|' || "
      "(SELECT coalesce(string_agg(id || status || operation_type || "
      "severity || message || context::text || "
      "coalesce(acknowledged_at::text, '-') || "
      "coalesce(resolved_at::text, '-'), ',' ORDER BY id), '') "
      "FROM pggit.alerts) || '|' || "
      "(SELECT count(*) FROM pggit.alert_delivery_queue)");
}

TEST_CASE(
    "alerts: create, read back, list with filters, acknowledge, resolve") {
  Daemon d("api_alerts_crud", ApiEnv());
  // One active webhook that takes CRITICAL alerts only, one inactive one.
  d.Sql(
      "INSERT INTO pggit.webhooks (name, url, secret, filter_severities, "
      "max_retries) VALUES ('crit', 'http://127.0.0.1:9/hook', 's', "
      "'{CRITICAL}', 0);"
      "INSERT INTO pggit.webhooks (name, url, secret, is_active) "
      "VALUES ('off', 'https://example.invalid/off', 's', false)");
  auto c = d.Client();

  // The first page, cached.
  auto r = c.Get("/api/v1/alerts");
  REQUIRE(r);
  CHECK(r->status == 200);
  json list = json::parse(r->body);
  CHECK(list["items"] == json::array());
  CHECK(list["total"] == 0);
  CHECK(list["limit"] == 20);
  CHECK(list["offset"] == 0);
  // A repeat read is a hit, once the invalidations in flight have passed
  // (the daemon's listener empties the cache when it first connects, which
  // may come after readiness).
  CHECK(harness::WaitFor(
      [&] {
        c.Get("/api/v1/alerts");
        auto again = c.Get("/api/v1/alerts");
        return again && again->get_header_value("X-Cache") == "HIT";
      },
      std::chrono::seconds(10)));

  // Create: 201, Location, the stored alert with its delivery counts.
  r = PostJson(c, "/api/v1/alerts",
               {{"operation_type", "commit"},
                {"severity", "CRITICAL"},
                {"message", "disk full on primary"},
                {"context", {{"host", "db1"}, {"pct", 97}}}});
  REQUIRE(r);
  REQUIRE_MESSAGE(r->status == 201, r->body);
  json a = json::parse(r->body);
  int64_t id = a["id"].get<int64_t>();
  CHECK(r->get_header_value("Location") ==
        "/api/v1/alerts/" + std::to_string(id));
  CHECK(a["operation_type"] == "commit");
  CHECK(a["severity"] == "CRITICAL");
  CHECK(a["message"] == "disk full on primary");
  CHECK(a["status"] == "pending");
  CHECK(a["context"] == json({{"host", "db1"}, {"pct", 97}}));
  CHECK(a["created_at"].get<std::string>().back() == 'Z');
  CHECK(a["acknowledged_at"].is_null());
  CHECK(a["resolved_at"].is_null());
  // The trigger queued one delivery (the active CRITICAL webhook).
  const json& dl = a["deliveries"];
  int64_t sum = 0;
  for (const char* k :
       {"pending", "in_progress", "delivered", "failed", "cancelled"}) {
    REQUIRE_MESSAGE(dl.contains(k), k);
    sum += dl[k].get<int64_t>();
  }
  CHECK(sum == 1);
  CHECK(d.Sql("SELECT count(*) FROM pggit.alert_delivery_queue WHERE "
              "alert_id = " +
              std::to_string(id)) == "1");

  // Read-your-writes: the cached first page shows it at once.
  r = c.Get("/api/v1/alerts");
  list = Body(r);
  CHECK(list["total"] == 1);
  REQUIRE(list["items"].size() == 1);
  CHECK(list["items"][0]["id"] == id);
  CHECK(list["items"][0]["context"]["host"] == "db1");

  // More alerts, one of them from SQL as a producer would insert it.
  json w = CreateAlert(c, {{"operation_type", "merge"},
                           {"severity", "WARNING"},
                           {"message", "slow merge"}});
  CHECK(w["context"] == json::object());
  CHECK(w["deliveries"]["pending"] == 0);  // no matching webhook
  d.Sql(
      "INSERT INTO pggit.alerts (operation_type, severity, message) "
      "VALUES ('schema_change', 'INFO', 'from psql')");
  json i = CreateAlert(c, {{"operation_type", "commit"},
                           {"severity", "INFO"},
                           {"message", "a:b*c? with spaces"}});

  list = Body(c.Get("/api/v1/alerts"));
  CHECK(list["total"] == 4);
  REQUIRE(list["items"].size() == 4);
  // Newest first.
  CHECK(list["items"][0]["id"] == i["id"]);
  CHECK(list["items"][1]["message"] == "from psql");
  CHECK(list["items"][2]["id"] == w["id"]);
  CHECK(list["items"][3]["id"] == id);

  // The guide's jq paths: .items[] | select(.severity == "CRITICAL"), .total
  int critical = 0;
  for (const json& item : list["items"])
    critical += item["severity"] == "CRITICAL";
  CHECK(critical == 1);

  // Filters.
  list = Body(c.Get("/api/v1/alerts?severity=CRITICAL"));
  CHECK(list["total"] == 1);
  CHECK(list["items"][0]["id"] == id);
  list = Body(c.Get("/api/v1/alerts?operation_type=commit"));
  CHECK(list["total"] == 2);
  list = Body(c.Get("/api/v1/alerts?operation_type=commit&severity=INFO"));
  CHECK(list["total"] == 1);
  CHECK(list["items"][0]["id"] == i["id"]);
  list = Body(c.Get("/api/v1/alerts?operation_type=nothing"));
  CHECK(list["total"] == 0);
  list = Body(c.Get("/api/v1/alerts?operation_type=sch%C3%A9ma"));
  CHECK(list["total"] == 0);
  CHECK(list["items"] == json::array());
  list = Body(c.Get("/api/v1/alerts?status=pending"));
  CHECK(list["total"] == 4);
  // Paging: total counts every match; items only the page.
  list = Body(c.Get("/api/v1/alerts?limit=2&offset=1"));
  CHECK(list["total"] == 4);
  CHECK(list["limit"] == 2);
  CHECK(list["offset"] == 1);
  REQUIRE(list["items"].size() == 2);
  CHECK(list["items"][0]["message"] == "from psql");
  CHECK(list["items"][1]["id"] == w["id"]);
  list = Body(c.Get("/api/v1/alerts?limit=100&offset=50"));
  CHECK(list["total"] == 4);
  CHECK(list["items"] == json::array());

  // One alert.
  r = c.Get(("/api/v1/alerts/" + std::to_string(id)).c_str());
  REQUIRE(r);
  CHECK(r->status == 200);
  json one = json::parse(r->body);
  CHECK(one["id"] == id);
  CHECK(one["context"]["pct"] == 97);
  CHECK(one["deliveries"].is_object());
  CheckErrorBody(c.Get("/api/v1/alerts/987654321"), 404, "987654321");

  // Acknowledge: pending → acknowledged; again counts as acknowledged;
  // unknown ids are failed.
  r = PostJson(c, "/api/v1/alerts/acknowledge",
               {{"alert_ids", {id, w["id"], 987654321}}});
  json ack = Body(r);
  CHECK(r->status == 200);
  CHECK(ack["acknowledged"] == 2);
  CHECK(ack["failed"] == 1);
  CHECK(ack["failed_ids"] == json::array({987654321}));
  one = Body(c.Get(("/api/v1/alerts/" + std::to_string(id)).c_str()));
  CHECK(one["status"] == "acknowledged");
  CHECK(one["acknowledged_at"].is_string());
  std::string acked_at = one["acknowledged_at"];
  ack = Body(PostJson(c, "/api/v1/alerts/acknowledge", {{"alert_ids", {id}}}));
  CHECK(ack["acknowledged"] == 1);
  CHECK(ack["failed"] == 0);
  CHECK(ack["changed"] == 0);
  one = Body(c.Get(("/api/v1/alerts/" + std::to_string(id)).c_str()));
  CHECK(one["acknowledged_at"] == acked_at);  // not moved by the repeat
  list = Body(c.Get("/api/v1/alerts?status=acknowledged"));
  CHECK(list["total"] == 2);

  // Resolve: from pending or acknowledged; resolved stays resolved.
  json res = Body(PostJson(c, "/api/v1/alerts/resolve",
                           {{"alert_ids", {id, i["id"], i["id"], -4}}}));
  CHECK(res["resolved"] == 2);  // distinct ids
  CHECK(res["failed"] == 1);
  one = Body(c.Get(("/api/v1/alerts/" + std::to_string(id)).c_str()));
  CHECK(one["status"] == "resolved");
  CHECK(one["resolved_at"].is_string());
  CHECK(one["acknowledged_at"] == acked_at);
  one = Body(c.Get(("/api/v1/alerts/" + i["id"].dump()).c_str()));
  CHECK(one["status"] == "resolved");
  CHECK(one["acknowledged_at"].is_null());
  // Acknowledging a resolved alert leaves it resolved.
  ack = Body(PostJson(c, "/api/v1/alerts/acknowledge", {{"alert_ids", {id}}}));
  CHECK(ack["acknowledged"] == 1);
  CHECK(d.Sql("SELECT status FROM pggit.alerts WHERE id = " +
              std::to_string(id)) == "resolved");
  list = Body(c.Get("/api/v1/alerts?status=resolved"));
  CHECK(list["total"] == 2);
  list = Body(c.Get("/api/v1/alerts?status=pending"));
  CHECK(list["total"] == 1);

  // A change made in SQL reaches the cached list (the 002 triggers).
  d.Sql("UPDATE pggit.alerts SET status = 'resolved' WHERE status = 'pending'");
  CHECK(harness::WaitFor(
      [&] {
        return Body(c.Get("/api/v1/alerts?status=pending"))["total"] == 0;
      },
      std::chrono::seconds(5)));

  // The warm set: POST /api/v1/cache/warm loads the first page for real.
  // (Once the delivery is final: its updates invalidate alerts:*.)
  REQUIRE(harness::WaitFor(
      [&] {
        return d.Sql(
                   "SELECT count(*) FROM pggit.alert_delivery_queue "
                   "WHERE delivery_status IN ('pending', 'in_progress')") ==
               "0";
      },
      std::chrono::seconds(10)));
  CHECK(c.Post("/api/v1/cache/invalidate", R"({"pattern": "alerts:*"})",
               "application/json")
            ->status == 200);
  json warmed = Body(c.Post("/api/v1/cache/warm"));
  bool found = false;
  for (const json& wr : warmed["warmers"]) {
    if (wr["name"] == "alerts first page") {
      found = true;
      CHECK(wr["status"] == "ok");
      CHECK(wr["entries"] == 1);
    }
  }
  CHECK(found);
  r = c.Get("/api/v1/alerts");
  CHECK(r->get_header_value("X-Cache") == "HIT");
  CHECK(json::parse(r->body)["total"] == 4);
}

struct BadRequest {
  const char* method;
  std::string path;
  std::string content_type;
  std::string body;
  int status;
  std::string needle;  // what the detail must name
};

TEST_CASE("alerts: bad input answers 4xx naming the problem, changes nothing") {
  Daemon d("api_alerts_bad", ApiEnv());
  auto c = d.Client();
  json a = CreateAlert(c, {{"operation_type", "commit"},
                           {"severity", "WARNING"},
                           {"message", "keep me"}});
  const std::string id = a["id"].dump();
  const std::string ok_fields =
      R"("operation_type": "commit", "severity": "INFO", "message": "m")";
  const std::string j = "application/json";
  std::string many_ids = "{\"alert_ids\": [";
  for (int k = 0; k < 1001; ++k) many_ids += (k ? ",1" : "1");
  many_ids += "]}";
  const std::vector<BadRequest> cases = {
      {"POST", "/api/v1/alerts", j, "not json", 400, "JSON"},
      {"POST", "/api/v1/alerts", j, "[1, 2]", 400, "object"},
      {"POST", "/api/v1/alerts", j, "", 400, "object"},
      {"POST", "/api/v1/alerts", "text/plain", "{" + ok_fields + "}", 415,
       "Content-Type"},
      {"POST", "/api/v1/alerts", j, "{}", 422, "operation_type"},
      {"POST", "/api/v1/alerts", j,
       R"({"operation_type": "commit", "message": "m"})", 422, "severity"},
      {"POST", "/api/v1/alerts", j,
       R"({"operation_type": "commit", "severity": "INFO"})", 422, "message"},
      {"POST", "/api/v1/alerts", j,
       R"({"operation_type": "commit", "severity": "LOW", "message": "m"})",
       422, "severity"},
      {"POST", "/api/v1/alerts", j,
       R"({"operation_type": "commit", "severity": "critical", "message": "m"})",
       422, "severity"},
      {"POST", "/api/v1/alerts", j,
       R"({"operation_type": "", "severity": "INFO", "message": "m"})", 422,
       "operation_type"},
      {"POST", "/api/v1/alerts", j,
       R"({"operation_type": ")" + std::string(256, 'x') +
           R"(", "severity": "INFO", "message": "m"})",
       422, "operation_type"},
      {"POST", "/api/v1/alerts", j,
       R"({"operation_type": 7, "severity": "INFO", "message": "m"})", 422,
       "operation_type"},
      {"POST", "/api/v1/alerts", j,
       R"({"operation_type": "commit", "severity": "INFO", "message": ""})",
       422, "message"},
      {"POST", "/api/v1/alerts", j,
       R"({"operation_type": "commit", "severity": "INFO", "message": ")" +
           std::string(10001, 'm') + R"("})",
       422, "message"},
      {"POST", "/api/v1/alerts", j,
       R"({"operation_type": "commit", "severity": "INFO", "message": null})",
       422, "message"},
      {"POST", "/api/v1/alerts", j,
       R"({"operation_type": "commit", "severity": "INFO", "message": "a\u0000b"})",
       422, "message"},
      {"POST", "/api/v1/alerts", j, "{" + ok_fields + R"(, "context": [1]})",
       422, "context"},
      {"POST", "/api/v1/alerts", j, "{" + ok_fields + R"(, "context": "x"})",
       422, "context"},
      {"POST", "/api/v1/alerts", j,
       "{" + ok_fields + R"(, "context": {"k": "a\u0000"}})", 422, "context"},
      {"POST", "/api/v1/alerts", j,
       "{" + ok_fields + R"(, "status": "resolved"})", 422, "status"},
      {"POST", "/api/v1/alerts", j, "{" + ok_fields + R"(, "sevrity": "INFO"})",
       422, "sevrity"},
      {"POST", "/api/v1/alerts/acknowledge", j, "", 400, "object"},
      {"POST", "/api/v1/alerts/acknowledge", j, "{}", 422, "alert_ids"},
      {"POST", "/api/v1/alerts/acknowledge", j, R"({"alert_ids": "1"})", 422,
       "alert_ids"},
      {"POST", "/api/v1/alerts/acknowledge", j, R"({"alert_ids": []})", 422,
       "alert_ids"},
      {"POST", "/api/v1/alerts/acknowledge", j,
       R"({"alert_ids": [)" + id + R"(, 1.5]})", 422, "alert_ids[1]"},
      {"POST", "/api/v1/alerts/acknowledge", j,
       R"({"alert_ids": [")" + id + R"("]})", 422, "alert_ids[0]"},
      {"POST", "/api/v1/alerts/acknowledge", j,
       R"({"alert_ids": [)" + id + R"(, 18446744073709551615]})", 422,
       "alert_ids[1]"},
      {"POST", "/api/v1/alerts/acknowledge", j,
       R"({"alert_ids": [)" + id + R"(], "ids": [1]})", 422, "ids"},
      {"POST", "/api/v1/alerts/acknowledge", j, many_ids, 422, "alert_ids"},
      {"POST", "/api/v1/alerts/resolve", j, R"({"alert_ids": null})", 422,
       "alert_ids"},
      {"POST", "/api/v1/alerts/resolve", j,
       R"({"alert_ids": [)" + id + R"(], "force": true})", 422, "force"},
      {"POST", "/api/v1/alerts/resolve", "text/plain",
       R"({"alert_ids": [)" + id + "]}", 415, "Content-Type"},
      {"GET", "/api/v1/alerts?limit=0", "", "", 422, "limit"},
      {"GET", "/api/v1/alerts?limit=101", "", "", 422, "limit"},
      {"GET", "/api/v1/alerts?limit=ten", "", "", 422, "limit"},
      {"GET", "/api/v1/alerts?offset=-1", "", "", 422, "offset"},
      {"GET", "/api/v1/alerts?offset=1.5", "", "", 422, "offset"},
      {"GET", "/api/v1/alerts?severity=LOW", "", "", 422, "severity"},
      {"GET", "/api/v1/alerts?status=open", "", "", 422, "status"},
      {"GET", "/api/v1/alerts?operation_type=", "", "", 422, "operation_type"},
      {"GET", "/api/v1/alerts?sevrity=CRITICAL", "", "", 422, "sevrity"},
      {"GET", "/api/v1/alerts?operation_type=%FF", "", "", 422,
       "operation_type"},
      {"GET", "/api/v1/alerts?operation_type=a%00b", "", "", 422,
       "operation_type"},
      {"GET", "/api/v1/alerts?limit=5&limit=6", "", "", 422, "limit"},
      {"GET", "/api/v1/alerts/abc", "", "", 422, "id"},
      {"GET", "/api/v1/alerts/acknowledge", "", "", 405, "POST"},
      {"GET", "/api/v1/alerts/99999999", "", "", 404, "99999999"},
      {"GET", "/api/v1/alerts/-3", "", "", 422, "id"},  // malformed
      {"DELETE", "/api/v1/alerts/" + id, "", "", 405, "DELETE"},
      {"PUT", "/api/v1/alerts", j, "{" + ok_fields + "}", 405, "PUT"},
  };
  const std::string before = Snapshot(d);
  for (const BadRequest& b : cases) {
    INFO(b.method, " ", b.path, " ", b.body.substr(0, 120));
    auto send = [&]() -> httplib::Result {
      const std::string m = b.method;
      if (m == "GET") return c.Get(b.path.c_str());
      if (m == "DELETE") return c.Delete(b.path.c_str());
      if (m == "PUT") {
        return c.Put(b.path.c_str(), b.body, b.content_type.c_str());
      }
      if (b.body.empty()) return c.Post(b.path.c_str());
      return c.Post(b.path.c_str(), b.body, b.content_type.c_str());
    };
    CheckErrorBody(send(), b.status, b.needle);
  }
  CHECK(Snapshot(d) == before);
  // The daemon is still well.
  CHECK(c.Get("/health")->status == 200);
  CHECK(Body(c.Get("/api/v1/alerts"))["total"] == 1);
}

TEST_CASE(
    "alerts: a database that does not answer is 503, and nothing is "
    "written") {
  // One connection; a statement waits at most 2 s, a checkout 0.5 s.
  Daemon d("api_alerts_503", ApiEnv({{"DATABASE_POOL_SIZE", "1"},
                                     {"DATABASE_POOL_MAX_OVERFLOW", "0"},
                                     {"DATABASE_POOL_TIMEOUT", "0.5"},
                                     {"DATABASE_STATEMENT_TIMEOUT", "2"},
                                     {"WEBHOOK_POLL_INTERVAL", "3600"}}));
  auto c = d.Client();
  CreateAlert(c, {{"operation_type", "commit"},
                  {"severity", "INFO"},
                  {"message", "before"}});
  const std::string before = Snapshot(d);
  const std::string admin = harness::Get().admin_dsn;
  Process locker({"psql", admin.substr(0, admin.rfind('/')) + "/" + d.db(),
                  "-c",
                  "BEGIN; LOCK TABLE pggit.alerts IN ACCESS EXCLUSIVE MODE; "
                  "SELECT pg_sleep(4); COMMIT;"});
  REQUIRE(harness::WaitFor(
      [&] {
        return d.Sql(
                   "SELECT count(*) FROM pg_locks l JOIN pg_class c ON "
                   "c.oid = l.relation WHERE c.relname = 'alerts' AND "
                   "l.mode = 'AccessExclusiveLock' AND l.granted") == "1";
      },
      std::chrono::seconds(5)));
  // The write holds the only connection until its statement times out.
  auto write = std::async(std::launch::async, [&d] {
    auto wc = d.Client();
    return PostJson(wc, "/api/v1/alerts",
                    {{"operation_type", "commit"},
                     {"severity", "INFO"},
                     {"message", "during"}});
  });
  // Its INSERT waits for the lock.
  REQUIRE(harness::WaitFor(
      [&] {
        return d.Sql(
                   "SELECT count(*) FROM pg_stat_activity WHERE datname = "
                   "current_database() AND wait_event_type = 'Lock'") != "0";
      },
      std::chrono::seconds(10)));
  auto read = c.Get("/api/v1/alerts?limit=7");
  CheckErrorBody(read, 503, "pool");
  CHECK(Body(read)["error_code"] == "POOL_TIMEOUT");
  CHECK(read->get_header_value("Retry-After") == "1");
  auto written = write.get();
  CheckErrorBody(written, 503, "");
  CHECK(Body(written)["error_code"] == "SERVICE_UNAVAILABLE");
  CHECK(locker.Wait(15000) == 0);
  CHECK(Snapshot(d) == before);
  // Served again once the database answers.
  CHECK(Body(c.Get("/api/v1/alerts?limit=7"))["total"] == 1);
}

// An open event stream, read on its own thread.
struct Stream {
  std::mutex mu;
  std::string text;
  std::atomic<bool> stop{false};
  std::atomic<bool> ended{false};
  std::atomic<int> status{0};
  std::thread thread;

  explicit Stream(int port, httplib::Headers headers = {}) {
    thread = std::thread([this, port, headers] {
      httplib::Client c("127.0.0.1", port);
      c.set_read_timeout(10, 0);
      auto r = c.Get(
          "/api/v1/alerts/stream", headers,
          [this](const httplib::Response& res) {
            status = res.status;
            return true;
          },
          [this](const char* data, size_t n) {
            std::lock_guard<std::mutex> l(mu);
            text.append(data, n);
            return !stop.load();
          });
      ended = true;
    });
  }
  ~Stream() {
    stop = true;
    thread.join();
  }
  // Waits (bounded) until the stream's text contains `needle`.
  bool WaitFor(const std::string& needle, int timeout_ms) {
    return harness::WaitFor(
        [&] { return Text().find(needle) != std::string::npos; },
        std::chrono::milliseconds(timeout_ms));
  }
  std::string Text() {
    std::lock_guard<std::mutex> l(mu);
    return text;
  }
};

size_t Count(const std::string& text, const std::string& needle) {
  size_t n = 0;
  for (size_t at = 0; (at = text.find(needle, at)) != std::string::npos;
       at += needle.size()) {
    ++n;
  }
  return n;
}

// The `data:` line of the `alert` event with id `id` ("" when absent).
std::string AlertData(const std::string& text, int64_t id) {
  std::string head = "event: alert\nid: " + std::to_string(id) + "\ndata: ";
  size_t at = text.find(head);
  if (at == std::string::npos) return "";
  at += head.size();
  return text.substr(at, text.find('\n', at) - at);
}

TEST_CASE("alerts stream: events from HTTP and SQL, status, cap, SIGTERM") {
  Daemon d("api_alerts_stream", ApiEnv({{"SSE_MAX_STREAMS", "2"},
                                        {"SSE_STATUS_INTERVAL", "0.3"},
                                        {"SSE_KEEPALIVE_INTERVAL", "0.5"},
                                        {"SHUTDOWN_GRACE_SECONDS", "1.5"}}));
  auto c = d.Client();
  auto s1 = std::make_unique<Stream>(d.port());
  auto s2 = std::make_unique<Stream>(d.port());
  REQUIRE(s1->WaitFor("event: system_status\ndata: {", 5000));
  REQUIRE(s2->WaitFor("event: system_status\ndata: {", 5000));
  CHECK(s1->status == 200);

  // The cap: a third stream is refused with the error body.
  auto r = c.Get("/api/v1/alerts/stream");
  REQUIRE(r);
  CHECK(r->status == 503);
  json err = json::parse(r->body);
  CHECK(err["error_code"] == "SERVICE_UNAVAILABLE");
  CHECK(err["detail"].get<std::string>().find("SSE_MAX_STREAMS") !=
        std::string::npos);
  // Other requests are served meanwhile.
  CHECK(c.Get("/health")->status == 200);

  // An alert created over HTTP and one inserted in SQL, as psql would.
  json a = CreateAlert(c, {{"operation_type", "commit"},
                           {"severity", "CRITICAL"},
                           {"message", "over http"},
                           {"context", {{"k", "v"}}}});
  int64_t sql_id = 0;
  {
    pqxx::connection conn(d.dsn());
    pqxx::work tx(conn);
    sql_id = tx.exec1(
                   "INSERT INTO alerts (operation_type, severity, message) "
                   "VALUES ('schema_change', 'WARNING', 'from sql') "
                   "RETURNING id")[0]
                 .as<int64_t>();
    tx.commit();
  }
  for (Stream* s : {s1.get(), s2.get()}) {
    REQUIRE_MESSAGE(s->WaitFor("id: " + std::to_string(sql_id) + "\n", 5000),
                    (s->Text() + d.Output()));
    std::string text = s->Text();
    json http_event = json::parse(AlertData(text, a["id"].get<int64_t>()));
    CHECK(http_event["message"] == "over http");
    CHECK(http_event["context"]["k"] == "v");
    CHECK(http_event["severity"] == "CRITICAL");
    CHECK(http_event["status"] == "pending");
    CHECK(http_event["deliveries"].is_object());
    CHECK(http_event["timestamp"].get<std::string>().back() == 'Z');
    json sql_event = json::parse(AlertData(text, sql_id));
    CHECK(sql_event["message"] == "from sql");
    CHECK(sql_event["id"] == sql_id);
    CHECK(sql_event["timestamp"].is_string());
  }

  // A burst from one statement arrives whole, in id order.
  std::string burst_last = d.Sql(
      "WITH b AS (INSERT INTO pggit.alerts (operation_type, severity, message)"
      " SELECT 'bulk', 'INFO', 'burst ' || g FROM generate_series(1, 600) g"
      " RETURNING id) SELECT max(id) FROM b");
  REQUIRE(s1->WaitFor("id: " + burst_last + "\n", 10000));
  CHECK(Count(s1->Text(), "event: alert\n") == 602);
  CHECK(s1->Text().find("dropped") == std::string::npos);

  // An alert committed while the daemon's LISTEN session is away (its
  // backend terminated, as the guide's "kill idle connections" step does,
  // and kept from reconnecting) reaches the streams once it is back.
  {
    pqxx::connection producer(d.dsn());  // opened while connections are allowed
    auto admin = [&](const std::string& sql) {
      return harness::AdminQuery("postgres", sql);
    };
    const std::string listener = "FROM pg_stat_activity WHERE datname = '" +
                                 d.db() +
                                 "' AND application_name = 'pggitops-listener'";
    admin("ALTER DATABASE " + d.db() + " WITH ALLOW_CONNECTIONS false");
    admin("SELECT pg_terminate_backend(pid) " + listener);
    const bool away = harness::WaitFor(
        [&] { return admin("SELECT count(*) " + listener) == "0"; },
        std::chrono::seconds(5));
    pqxx::work tx(producer);
    int64_t away_id =
        tx.exec1(
              "INSERT INTO alerts (operation_type, severity, message) "
              "VALUES ('commit', 'WARNING', 'while away') RETURNING id")[0]
            .as<int64_t>();
    tx.commit();
    // The daemon's listener knows it is away before it may come back.
    const bool noticed = harness::WaitFor(
        [&] {
          auto m = c.Get("/metrics");
          return m && m->body.find("\npg_listener_connected 0\n") !=
                          std::string::npos;
        },
        std::chrono::seconds(10));
    admin("ALTER DATABASE " + d.db() + " WITH ALLOW_CONNECTIONS true");
    REQUIRE(away);
    CHECK(noticed);
    REQUIRE(s1->WaitFor("id: " + std::to_string(away_id) + "\n", 10000));
    CHECK(s1->Text().find("while away") != std::string::npos);
  }

  // Status events repeat, carry the dashboard's figures; comments keep the
  // connection open.
  REQUIRE(s1->WaitFor(": keepalive\n", 3000));
  std::string text = s1->Text();
  size_t n_status = 0;
  for (size_t at = 0;
       (at = text.find("event: system_status\n", at)) != std::string::npos;
       ++at) {
    ++n_status;
  }
  CHECK(n_status >= 2);
  std::string last =
      text.substr(text.rfind("event: system_status\ndata: ") +
                  std::string("event: system_status\ndata: ").size());
  json status = json::parse(last.substr(0, last.find('\n')));
  CHECK(status["status"] == "serving");
  CHECK(status["open_streams"] == 2);
  CHECK(status["database"] == "connected");
  CHECK(status["queue"]["depth"].is_number_integer());
  CHECK(status["requests"]["p99_ms"].is_number());
  CHECK(status["cache"]["hit_rate"].is_number());
  CHECK(status["timestamp"].get<std::string>().back() == 'Z');
  // The seed's reference API names (CONTRACT 10).
  CHECK(status["cache_hit_rate"] == status["cache"]["hit_rate"]);
  CHECK(status["active_webhooks"] == 0);
  CHECK(status["pending_deliveries"].is_number_integer());

  // A closed stream frees its slot; a client reconnecting with
  // Last-Event-ID gets what it missed (at most 100), oldest first.
  s2.reset();
  bool reopened = false;
  std::unique_ptr<Stream> s3;
  for (int k = 0; k < 50 && !reopened; ++k) {
    s3 = std::make_unique<Stream>(
        d.port(), httplib::Headers{{"Last-Event-ID", a["id"].dump()}});
    reopened = s3->WaitFor("event: system_status", 1000) && s3->status == 200;
    if (!reopened) s3.reset();
  }
  REQUIRE(reopened);
  REQUIRE(s3->WaitFor("id: " + std::to_string(sql_id + 99) + "\n", 5000));
  std::string replayed = s3->Text();
  CHECK(Count(replayed, "event: alert\n") == 100);
  CHECK(replayed.find("id: " + a["id"].dump() + "\n") == std::string::npos);
  CHECK(replayed.find("id: " + std::to_string(sql_id) + "\n") <
        replayed.find("id: " + std::to_string(sql_id + 1) + "\n"));

  // SIGTERM with two streams open: they end at once (while the listener
  // stays open for the grace period, new streams are refused), and the
  // daemon exits 0 in time.
  auto start = Clock::now();
  d.Signal(SIGTERM);
  for (Stream* s : {s1.get(), s3.get()}) {
    CHECK(
        harness::WaitFor([&] { return s->ended.load(); },
                         std::chrono::duration_cast<std::chrono::milliseconds>(
                             start + std::chrono::seconds(5) - Clock::now())));
    CHECK(s->Text().find(": server shutting down") != std::string::npos);
  }
  CHECK(Clock::now() - start < std::chrono::milliseconds(1500));
  auto late = c.Get("/api/v1/alerts/stream");
  if (late) {  // still within the grace period
    CHECK(late->status == 503);
    CHECK(late->body.find("shutting down") != std::string::npos);
  }
  CHECK(d.Wait(10000) == 0);
  double secs = std::chrono::duration<double>(Clock::now() - start).count();
  CHECK(secs < 5.0);
  CHECK(d.Output().find("\"message\":\"stopped\"") != std::string::npos);
}

}  // namespace
}  // namespace pggitops
