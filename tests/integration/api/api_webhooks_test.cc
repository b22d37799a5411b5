// The webhooks endpoints end to end: the real pggit-api binary against a
// migrated database of the harness's PostgreSQL, with its Redis and real
// webhook receivers on loopback. Success paths, every error code, bad input
// that changes nothing, read-your-writes through the cache, fan-out after
// PATCH, retry-pending, test sends and soft delete.
#include <signal.h>

#include <atomic>
#include <chrono>
#include <functional>
#include <future>
#include <map>
#include <memory>
#include <mutex>
#include <pqxx/pqxx>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "doctest/doctest.h"
#include "httplib.h"
#include "nlohmann/json.hpp"
#include "tests/harness/daemon.h"
#include "tests/harness/harness.h"
#include "tests/integration/delivery/delivery_test_util.h"

namespace pggitops {
namespace {

using nlohmann::json;

// The delivery tests' receiver, answering each path with the status set
// for it (200 by default).
class Receiver {
 public:
  std::string Url(const std::string& path) const { return rx_.url(path); }
  void SetStatus(const std::string& path, int status) {
    std::lock_guard<std::mutex> l(mu_);
    status_[path] = status;
  }
  std::vector<delivery_test::Received> Hits(const std::string& path) {
    std::vector<delivery_test::Received> out;
    for (const delivery_test::Received& r : rx_.requests()) {
      if (r.path == path) out.push_back(r);
    }
    return out;
  }

 private:
  delivery_test::Receiver::Reply Answer(const delivery_test::Received& r) {
    std::lock_guard<std::mutex> l(mu_);
    delivery_test::Receiver::Reply reply;
    auto it = status_.find(r.path);
    if (it != status_.end()) reply.status = it->second;
    return reply;
  }

  std::mutex mu_;
  std::map<std::string, int> status_;
  // 32 threads: each keep-alive connection the daemon holds open keeps one.
  delivery_test::Receiver rx_{
      [this](const delivery_test::Received& r, int) { return Answer(r); }, 32};
};

// Bound of the waits for deliveries and cache states.
constexpr std::chrono::seconds kWait(10);

// A daemon of this file's database (`dsn`, migrated; empty: migrate a
// fresh one) with `extra` settings on top of the file's own.
harness::Daemon::Options WebhooksDaemon(const std::string& dsn,
                                        const harness::EnvMap& extra = {}) {
  harness::Daemon::Options o;
  o.db = "api_webhooks";
  o.dsn = dsn;
  o.env = {// A Redis database of its own: the L2 keys (webhooks:list:...)
           // carry no database name, so daemons of other tests must not
           // share them.
           {"REDIS_URL", harness::Get().redis_url + "/5"},
           {"WEBHOOK_ALLOW_PRIVATE_TARGETS", "true"},
           {"WEBHOOK_POLL_INTERVAL", "0.2"},
           {"RATE_LIMIT_PER_MINUTE", "0"},
           {"API_LOG_LEVEL", "WARNING"}};
  for (const auto& [k, v] : extra) o.env[k] = v;
  return o;
}

// One daemon and one receiver for the whole file (start-up is the slow
// part); every test case works on webhooks of its own.
struct Env {
  Receiver receiver;
  harness::Daemon daemon{WebhooksDaemon("")};
  const std::string& dsn = daemon.dsn();

  httplib::Client Client() const { return daemon.Client(); }
  // The first column of the first row of `sql` ("" for NULL or no row).
  std::string Sql(const std::string& sql) const {
    return delivery_test::Scalar(dsn, sql);
  }
};

std::unique_ptr<Env> g_env;

Env& E() {
  if (!g_env) g_env = std::make_unique<Env>();
  return *g_env;
}

// Stops the daemon and the receiver when the run ends, before static
// destructors run: a receiver thread still answering the daemon's retries
// then would use cpp-httplib's statics after their destruction.
struct TearDown : doctest::IReporter {
  explicit TearDown(const doctest::ContextOptions&) {}
  void test_run_end(const doctest::TestRunStats&) override { g_env.reset(); }
  void report_query(const doctest::QueryData&) override {}
  void test_run_start() override {}
  void test_case_start(const doctest::TestCaseData&) override {}
  void test_case_reenter(const doctest::TestCaseData&) override {}
  void test_case_end(const doctest::CurrentTestCaseStats&) override {}
  void test_case_exception(const doctest::TestCaseException&) override {}
  void subcase_start(const doctest::SubcaseSignature&) override {}
  void subcase_end() override {}
  void log_assert(const doctest::AssertData&) override {}
  void log_message(const doctest::MessageData&) override {}
  void test_case_skipped(const doctest::TestCaseData&) override {}
};
REGISTER_LISTENER("api_webhooks_teardown", 1, TearDown);

struct Answer {
  int status = -1;
  json body;
  httplib::Headers headers;
  std::string header(const std::string& k) const {
    auto it = headers.find(k);
    return it == headers.end() ? "" : it->second;
  }
};

Answer Got(const httplib::Result& r) {
  Answer a;
  REQUIRE(r);
  a.status = r->status;
  a.headers = r->headers;
  if (!r->body.empty()) a.body = json::parse(r->body, nullptr, false);
  return a;
}

Answer Get(const std::string& path) { return Got(E().Client().Get(path)); }
Answer Send(const std::string& method, const std::string& path,
            const std::string& body) {
  auto c = E().Client();
  if (method == "POST") return Got(c.Post(path, body, "application/json"));
  if (method == "PUT") return Got(c.Put(path, body, "application/json"));
  if (method == "PATCH") return Got(c.Patch(path, body, "application/json"));
  return Got(c.Delete(path));
}

// Creates a webhook (201 expected) and returns the answer's body.
json Create(const json& body) {
  Answer a = Send("POST", "/api/v1/webhooks", body.dump());
  REQUIRE_MESSAGE(a.status == 201, a.body.dump());
  CHECK(a.header("Location") == "/api/v1/webhooks/" + a.body["id"].dump());
  return a.body;
}

std::string Path(const json& webhook, const std::string& suffix = "") {
  return "/api/v1/webhooks/" + webhook["id"].dump() + suffix;
}

// What the API writes: the webhooks' configuration (not the engine's
// statistics) and, with `queue`, breaker states and the delivery queue
// (which the engine changes too while earlier tests' retries run).
std::string Snapshot(bool queue = true) {
  std::string config = E().Sql(
      "SELECT coalesce(json_agg(t ORDER BY id), '[]')::text FROM"
      " (SELECT id, name, url, description, is_active, status, secret,"
      " filter_severities, filter_operation_types, max_retries,"
      " backoff_base, max_backoff, timeout_seconds, ssl_verify, updated_at,"
      " deleted_at FROM pggit.webhooks) t");
  if (!queue) return config;
  return config +
         E().Sql(
             "SELECT json_agg(breaker_state ORDER BY id)::text FROM"
             " pggit.webhooks") +
         E().Sql(
             "SELECT coalesce(json_agg(t ORDER BY id), '[]')::text FROM"
             " (SELECT id, delivery_status, attempt_count, next_attempt_at"
             " FROM pggit.alert_delivery_queue) t");
}

std::string InsertAlert(const std::string& severity = "WARNING") {
  return E().Sql(
      "INSERT INTO pggit.alerts (operation_type, severity, message) VALUES"
      " ('commit', '" +
      severity + "', 'api test') RETURNING id");
}

std::string DeliveryStatus(const std::string& alert_id, const json& webhook) {
  return E().Sql(
      "SELECT delivery_status FROM pggit.alert_delivery_queue WHERE alert_id "
      "= " +
      alert_id + " AND webhook_id = " + webhook["id"].dump());
}

void CheckError(const Answer& a, int status, const std::string& code,
                const std::string& names = "") {
  CHECK_MESSAGE(a.status == status, a.body.dump());
  CHECK(a.body["error_code"] == code);
  CHECK(a.body["request_id"].is_string());
  if (!names.empty()) {
    CHECK_MESSAGE(
        a.body["detail"].get<std::string>().find(names) != std::string::npos,
        a.body["detail"]);
  }
}

const std::set<std::string> kItemFields = {
    "id",         "name",       "url",          "description",     "is_active",
    "status",     "filters",    "retry_policy", "timeout_seconds", "ssl_verify",
    "created_at", "updated_at", "last_used_at", "health"};

// "" when `hit` carries a valid Standard Webhooks signature by the secret
// the create of `webhook` returned.
std::string Verify(const json& webhook, delivery_test::Received& hit) {
  return delivery_test::VerifyStandardWebhook(
      webhook["secret"], hit.headers["webhook-id"],
      hit.headers["webhook-timestamp"], hit.headers["webhook-signature"],
      hit.body, hit.unix_at);
}

std::set<std::string> Keys(const json& j) {
  std::set<std::string> out;
  for (const auto& [k, v] : j.items()) out.insert(k);
  return out;
}

TEST_CASE("create, read, list, update and delete") {
  const std::string hook = E().receiver.Url("/crud");
  Answer before = Get("/api/v1/webhooks");
  REQUIRE(before.status == 200);
  CHECK(before.body["limit"] == 20);
  CHECK(before.body["offset"] == 0);
  const int64_t total = before.body["total"];

  json made = Create({{"name", "crud"},
                      {"url", hook},
                      {"description", "ops channel"},
                      {"filters", {{"severities", {"CRITICAL", "WARNING"}}}},
                      {"retry_policy", {{"max_retries", 5}}},
                      {"timeout_seconds", 10}});
  // The secret is returned once, here, and is what the database holds.
  const std::string secret = made["secret"];
  CHECK(secret.rfind("whsec_", 0) == 0);
  CHECK(secret.size() == 6 + 32);  // base64 of 24 bytes
  CHECK(E().Sql("SELECT secret FROM pggit.webhooks WHERE id = " +
                made["id"].dump()) == secret);
  std::set<std::string> with_secret = kItemFields;
  with_secret.insert("secret");
  CHECK(Keys(made) == with_secret);
  CHECK(made["status"] == "active");
  CHECK(made["is_active"] == true);
  CHECK(made["ssl_verify"] == true);
  CHECK(made["filters"]["severities"] == json({"CRITICAL", "WARNING"}));
  CHECK(made["filters"]["operation_types"] == json::array());
  CHECK(made["retry_policy"] ==
        json({{"max_retries", 5}, {"backoff_base", 2}, {"max_backoff", 3600}}));
  CHECK(made["health"]["consecutive_failures"] == 0);
  CHECK(made["health"]["success_rate"].is_null());
  CHECK(made["last_used_at"].is_null());
  CHECK(made["created_at"].get<std::string>().back() == 'Z');

  // The Location names the new webhook; reading it gives the same item
  // without the secret.
  Answer one = Get(Path(made));
  CHECK(one.status == 200);
  json expected = made;
  expected.erase("secret");
  CHECK(one.body == expected);

  // Read-your-writes: the list cached before the create shows it at once.
  Answer after = Get("/api/v1/webhooks?limit=100");
  REQUIRE(after.status == 200);
  CHECK(after.body["total"] == total + 1);
  bool listed = false;
  for (const json& item : after.body["items"]) {
    CHECK(Keys(item) == kItemFields);
    if (item["id"] == made["id"]) listed = true;
  }
  CHECK(listed);
  // Cached from now on (the database's own invalidation notice for the
  // insert may still arrive once, hence the bounded retry).
  CHECK(harness::WaitFor(
      [] {
        return Get("/api/v1/webhooks?limit=100").header("X-Cache") == "HIT";
      },
      std::chrono::seconds(5)));

  // PATCH changes only what it names: a disabled webhook stays disabled
  // when its description changes (is_active is not SET) ...
  E().Sql("UPDATE pggit.webhooks SET status = 'disabled' WHERE id = " +
          made["id"].dump());
  Answer patched = Send("PATCH", Path(made),
                        R"({"description": null, "ssl_verify": false})");
  REQUIRE(patched.status == 200);
  CHECK(patched.body["status"] == "disabled");
  CHECK(patched.body["description"].is_null());
  CHECK(patched.body["ssl_verify"] == false);
  CHECK(patched.body["name"] == "crud");
  // ... and sending is_active re-enables it.
  patched = Send("PATCH", Path(made), R"({"is_active": true})");
  CHECK(patched.body["status"] == "active");
  // PUT takes a subset too (CONTRACT 10); nested objects change only the
  // fields they name.
  Answer put = Send("PUT", Path(made),
                    R"({"retry_policy": {"backoff_base": 1.5},
                        "filters": {"operation_types": ["merge"]}})");
  REQUIRE(put.status == 200);
  CHECK(
      put.body["retry_policy"] ==
      json({{"max_retries", 5}, {"backoff_base", 1.5}, {"max_backoff", 3600}}));
  CHECK(put.body["filters"]["severities"] == json({"CRITICAL", "WARNING"}));
  CHECK(put.body["filters"]["operation_types"] == json({"merge"}));
  CHECK(Get(Path(made)).body == put.body);  // the item cache was invalidated
  // An empty body changes nothing and answers the webhook.
  CHECK(Send("PATCH", Path(made), "{}").body == put.body);

  // Paging and the is_active filter.
  json other =
      Create({{"name", "crud-off"}, {"url", hook}, {"is_active", false}});
  CHECK(other["status"] == "inactive");
  Answer inactive = Get("/api/v1/webhooks?is_active=false&limit=100");
  std::set<int64_t> ids;
  for (const json& item : inactive.body["items"]) {
    CHECK(item["is_active"] == false);
    ids.insert(item["id"].get<int64_t>());
  }
  CHECK(ids.count(other["id"].get<int64_t>()) == 1);
  CHECK(ids.count(made["id"].get<int64_t>()) == 0);
  Answer page = Get("/api/v1/webhooks?limit=1&offset=1");
  CHECK(page.body["limit"] == 1);
  CHECK(page.body["offset"] == 1);
  CHECK(page.body["items"].size() == 1);
  CHECK(page.body["total"] == total + 2);
  Answer beyond = Get("/api/v1/webhooks?offset=100000");
  CHECK(beyond.body["items"] == json::array());
  CHECK(beyond.body["total"] == total + 2);

  // Delete: 204, then gone everywhere; the row stays, soft-deleted.
  Answer del = Send("DELETE", Path(other), "");
  CHECK(del.status == 204);
  CheckError(Get(Path(other)), 404, "RESOURCE_NOT_FOUND");
  CheckError(Send("DELETE", Path(other), ""), 404, "RESOURCE_NOT_FOUND");
  CheckError(Send("PATCH", Path(other), R"({"name": "x"})"), 404,
             "RESOURCE_NOT_FOUND");
  CHECK(Get("/api/v1/webhooks?limit=100").body["total"] == total + 1);
  CHECK(
      E().Sql("SELECT deleted_at IS NOT NULL FROM pggit.webhooks WHERE id = " +
              other["id"].dump()) == "t");
  // Its name is free again.
  json again = Create({{"name", "crud-off"}, {"url", hook}});
  CHECK(again["id"] != other["id"]);
}

TEST_CASE("bad input: a clear 4xx and the database unchanged") {
  const std::string hook = E().receiver.Url("/bad");
  json a = Create({{"name", "bad-a"}, {"url", hook}});
  json b = Create({{"name", "bad-b"}, {"url", hook}});
  struct Case {
    std::string method, path, body;
    int status;
    std::string names;
  };
  const std::string pa = Path(a);
  // A valid create body with `fields` added.
  auto Valid = [](const std::string& fields) {
    return R"({"name": "n", "url": "http://x.example", )" + fields + "}";
  };
  std::vector<Case> cases = {
      // create
      {"POST", "/api/v1/webhooks", "{}", 422, "name"},
      {"POST", "/api/v1/webhooks", R"({"name": "n"})", 422, "url"},
      {"POST", "/api/v1/webhooks", R"({"url": "http://x.example"})", 422,
       "name"},
      {"POST", "/api/v1/webhooks", R"({"name": "", "url": "http://x.example"})",
       422, "name"},
      {"POST", "/api/v1/webhooks",
       R"({"name": ")" + std::string(256, 'n') +
           R"(", "url": "http://x.example"})",
       422, "name"},
      {"POST", "/api/v1/webhooks", R"({"name": 7, "url": "http://x.example"})",
       422, "name"},
      {"POST", "/api/v1/webhooks",
       R"({"name": "a\u0000b", "url": "http://x.example"})", 422, "name"},
      {"POST", "/api/v1/webhooks", R"({"name": "n", "url": "ftp://x.example"})",
       422, "url"},
      {"POST", "/api/v1/webhooks", R"({"name": "n", "url": "http://"})", 422,
       "url"},
      {"POST", "/api/v1/webhooks",
       R"({"name": "n", "url": "http://x.example/a b"})", 422, "url"},
      {"POST", "/api/v1/webhooks",
       R"({"name": "n", "url": "http://x.example/)" + std::string(2048, 'p') +
           R"("})",
       422, "url"},
      {"POST", "/api/v1/webhooks",
       R"({"name": "bad-a", "url": ")" + hook + R"("})", 409, "name"},
      {"POST", "/api/v1/webhooks", Valid(R"("active": true)"), 422, "active"},
      {"POST", "/api/v1/webhooks", Valid(R"("secret": "whsec_x")"), 422,
       "secret"},
      {"POST", "/api/v1/webhooks", Valid(R"("is_active": "yes")"), 422,
       "is_active"},
      {"POST", "/api/v1/webhooks",
       Valid(R"("description": ")" + std::string(1001, 'd') + R"(")"), 422,
       "description"},
      {"POST", "/api/v1/webhooks", Valid(R"("timeout_seconds": 0)"), 422,
       "timeout_seconds"},
      {"POST", "/api/v1/webhooks", Valid(R"("timeout_seconds": 61)"), 422,
       "timeout_seconds"},
      {"POST", "/api/v1/webhooks", Valid(R"("timeout_seconds": 1.5)"), 422,
       "timeout_seconds"},
      {"POST", "/api/v1/webhooks",
       Valid(R"("retry_policy": {"max_retries": 21})"), 422,
       "retry_policy.max_retries"},
      {"POST", "/api/v1/webhooks",
       Valid(R"("retry_policy": {"max_retries": -1})"), 422,
       "retry_policy.max_retries"},
      {"POST", "/api/v1/webhooks",
       Valid(R"("retry_policy": {"backoff_base": 0.5})"), 422,
       "retry_policy.backoff_base"},
      {"POST", "/api/v1/webhooks",
       Valid(R"("retry_policy": {"max_backoff": 86401})"), 422,
       "retry_policy.max_backoff"},
      {"POST", "/api/v1/webhooks", Valid(R"("retry_policy": {"retries": 1})"),
       422, "retry_policy.retries"},
      {"POST", "/api/v1/webhooks", Valid(R"("retry_policy": 3)"), 422,
       "retry_policy"},
      {"POST", "/api/v1/webhooks",
       Valid(R"("filters": {"severities": ["LOW"]})"), 422,
       "filters.severities[0]"},
      {"POST", "/api/v1/webhooks",
       Valid(R"("filters": {"severities": "INFO"})"), 422,
       "filters.severities"},
      {"POST", "/api/v1/webhooks",
       Valid(R"("filters": {"operation_types": ["ok", 1]})"), 422,
       "filters.operation_types[1]"},
      {"POST", "/api/v1/webhooks", Valid(R"("filters": {"kinds": []})"), 422,
       "filters.kinds"},
      {"POST", "/api/v1/webhooks", R"({"name": "n", "url": )", 400, ""},
      {"POST", "/api/v1/webhooks", R"(["name"])", 400, ""},
      // PATCH and PUT
      {"PATCH", pa, R"({"name": "bad-b"})", 409, "name"},
      {"PUT", pa, R"({"name": "bad-b"})", 409, "name"},
      {"PATCH", pa, R"({"url": "javascript:void"})", 422, "url"},
      {"PATCH", pa, R"({"name": null})", 422, "name"},
      {"PATCH", pa, R"({"is_active": false, "status": "inactive"})", 422,
       "status"},
      {"PATCH", pa, R"({"is_active": false, "enabled": false})", 422,
       "enabled"},
      {"PUT", pa, R"({"retry_policy": {"max_retries": 3, "backoff_base": 11}})",
       422, "retry_policy.backoff_base"},
      {"PUT", pa, R"({"ssl_verify": 1})", 422, "ssl_verify"},
      {"PATCH", pa, "", 400, ""},
      {"PATCH", "/api/v1/webhooks/999999999", R"({"name": "z"})", 404, ""},
      // Malformed ids are 422 naming "id"; well-formed unknown ones 404.
      {"PUT", "/api/v1/webhooks/abc", R"({"name": "z"})", 422, "id"},
      {"PATCH", "/api/v1/webhooks/-1", R"({"name": "z"})", 422, "id"},
      {"PATCH", "/api/v1/webhooks/0", R"({"name": "z"})", 404, ""},
      {"PATCH", "/api/v1/webhooks/99999999999999999999", R"({"name": "z"})",
       422, "id"},
      // DELETE, test, retry-pending
      {"DELETE", "/api/v1/webhooks/999999999", "", 404, ""},
      {"DELETE", "/api/v1/webhooks/1x", "", 422, "id"},
      {"POST", "/api/v1/webhooks/999999999/test", "", 404, ""},
      {"POST", "/api/v1/webhooks/retry-pending", R"({"webhook_id": 999999999})",
       404, ""},
      {"POST", "/api/v1/webhooks/retry-pending", R"({"webhook_id": "1"})", 422,
       "webhook_id"},
      {"POST", "/api/v1/webhooks/retry-pending", R"({"webhook_id": 0})", 422,
       "webhook_id"},
      {"POST", "/api/v1/webhooks/retry-pending", R"({"id": 1})", 422, "id"},
      {"POST", "/api/v1/webhooks/retry-pending", R"([1])", 400, ""},
  };
  const std::string before = Snapshot();
  for (const Case& k : cases) {
    CAPTURE(k.method);
    CAPTURE(k.path);
    CAPTURE(k.body);
    Answer r = Send(k.method, k.path, k.body);
    const char* code = k.status == 400   ? "MALFORMED_JSON"
                       : k.status == 404 ? "RESOURCE_NOT_FOUND"
                       : k.status == 409 ? "CONFLICT"
                                         : "VALIDATION_ERROR";
    CheckError(r, k.status, code, k.names);
    CHECK(Snapshot() == before);
  }
  // A form body is refused by content type.
  auto r = E().Client().Post("/api/v1/webhooks", "name=n&url=http://x",
                             "application/x-www-form-urlencoded");
  REQUIRE(r);
  CHECK(r->status == 415);
  CHECK(Snapshot() == before);

  // Query parameters of the reads.
  for (const char* path :
       {"/api/v1/webhooks?limit=0", "/api/v1/webhooks?limit=101",
        "/api/v1/webhooks?limit=ten", "/api/v1/webhooks?offset=-1",
        "/api/v1/webhooks?is_active=yes",
        "/api/v1/webhooks?limit=", "/api/v1/webhooks/1/deliveries?status=lost",
        "/api/v1/webhooks/1/deliveries?limit=500"}) {
    CAPTURE(path);
    CheckError(Get(path), 422, "VALIDATION_ERROR");
  }
  for (const char* path : {"/api/v1/webhooks/999999999",
                           "/api/v1/webhooks/999999999/deliveries"}) {
    CAPTURE(path);
    CheckError(Get(path), 404, "RESOURCE_NOT_FOUND");
  }
  for (const char* path : {"/api/v1/webhooks/abc", "/api/v1/webhooks/1.5"}) {
    CAPTURE(path);
    CheckError(Get(path), 422, "VALIDATION_ERROR");
  }
  // A method the path does not have.
  auto m = E().Client().Post(Path(a).c_str(), "{}", "application/json");
  REQUIRE(m);
  CHECK(m->status == 405);
  CHECK(Send("DELETE", Path(b), "").status == 204);
}

TEST_CASE("PATCH is_active=false stops fan-out; retry-pending redelivers") {
  Receiver& rx = E().receiver;
  rx.SetStatus("/flaky", 500);
  json w = Create({{"name", "flaky"},
                   {"url", rx.Url("/flaky")},
                   {"retry_policy", {{"max_retries", 0}}},
                   {"timeout_seconds", 5}});
  const std::string alert = InsertAlert();
  // One attempt (max_retries 0), answered 500: failed.
  REQUIRE(harness::WaitFor([&] { return DeliveryStatus(alert, w) == "failed"; },
                           kWait));
  Answer hist = Get(Path(w, "/deliveries"));
  REQUIRE(hist.status == 200);
  REQUIRE(hist.body["total"] == 1);
  const json& d = hist.body["items"][0];
  CHECK(Keys(d) == std::set<std::string>{
                       "id", "alert_id", "webhook_id", "delivery_status",
                       "attempt_count", "next_attempt_at", "last_http_status",
                       "last_error", "created_at", "delivered_at", "attempts"});
  CHECK(d["alert_id"].dump() == alert);
  CHECK(d["delivery_status"] == "failed");
  CHECK(d["last_http_status"] == 500);
  REQUIRE(d["attempts"].size() == 1);
  CHECK(Keys(d["attempts"][0]) ==
        std::set<std::string>{"attempt", "started_at", "duration_ms",
                              "http_status", "error"});
  CHECK(d["attempts"][0]["attempt"] == 1);
  CHECK(d["attempts"][0]["http_status"] == 500);
  CHECK(Get(Path(w, "/deliveries?status=delivered")).body["total"] == 0);
  CHECK(Get(Path(w, "/deliveries?status=failed")).body["total"] == 1);

  // The receiver is fixed; retry-pending makes the failed delivery due.
  rx.SetStatus("/flaky", 200);
  Answer retried = Send("POST", "/api/v1/webhooks/retry-pending",
                        json({{"webhook_id", w["id"]}}).dump());
  REQUIRE(retried.status == 200);
  CHECK(retried.body == json({{"retried", 1}}));
  REQUIRE(harness::WaitFor(
      [&] { return DeliveryStatus(alert, w) == "delivered"; }, kWait));
  auto hits = rx.Hits("/flaky");
  REQUIRE(hits.size() == 2);
  CHECK(json::parse(hits[1].body)["type"] == "alert.created");
  // Signed with the secret the create returned (an independent verifier).
  CHECK(Verify(w, hits[1]) == "");
  CHECK(hits[0].headers["webhook-id"] == hits[1].headers["webhook-id"]);
  hist = Get(Path(w, "/deliveries?status=delivered"));
  REQUIRE(hist.body["total"] == 1);
  // Every attempt, oldest first, also those before the retry-pending.
  REQUIRE(hist.body["items"][0]["attempts"].size() == 2);
  CHECK(hist.body["items"][0]["attempts"][0]["http_status"] == 500);
  CHECK(hist.body["items"][0]["attempts"][1]["http_status"] == 200);
  CHECK(hist.body["items"][0]["delivered_at"].is_string());
  // As the guide sends it: no body, no Content-Type.
  auto plain = E().Client().Post("/api/v1/webhooks/retry-pending");
  REQUIRE(plain);
  CHECK(plain->status == 200);
  CHECK(json::parse(plain->body) == json({{"retried", 0}}));
  // The webhook's health shows the failure and the success.
  // (The engine records it in the webhook row; the row's change notice
  // invalidates the cached item.)
  json item;
  CHECK(harness::WaitFor(
      [&] {
        item = Get(Path(w)).body;
        return item["health"]["success_rate"] == 0.5;
      },
      std::chrono::seconds(5)));
  CHECK(item["health"]["last_failure_at"].is_string());
  CHECK(item["health"]["last_success_at"].is_string());
  CHECK(item["health"]["consecutive_failures"] == 0);
  CHECK(item["last_used_at"].is_string());

  // Switched off: an alert inserted afterwards queues nothing for it.
  Answer off = Send("PATCH", Path(w), R"({"is_active": false})");
  REQUIRE(off.status == 200);
  CHECK(off.body["status"] == "inactive");
  CHECK(off.body["is_active"] == false);
  const std::string later = InsertAlert();
  CHECK(DeliveryStatus(later, w) == "");
  // Switched on again: the next alert is delivered.
  REQUIRE(Send("PATCH", Path(w), R"({"is_active": true})").status == 200);
  const std::string third = InsertAlert();
  CHECK(harness::WaitFor(
      [&] { return DeliveryStatus(third, w) == "delivered"; }, kWait));
}

TEST_CASE("test send reports the receiver's status and time") {
  Receiver& rx = E().receiver;
  rx.SetStatus("/teapot", 418);
  json ok = Create({{"name", "test-ok"}, {"url", rx.Url("/fine")}});
  json teapot = Create({{"name", "test-teapot"}, {"url", rx.Url("/teapot")}});
  Answer r = Send("POST", Path(ok, "/test"), "");
  REQUIRE(r.status == 200);
  CHECK(Keys(r.body) == std::set<std::string>{"success", "http_status",
                                              "duration_ms", "error"});
  CHECK(r.body["success"] == true);
  CHECK(r.body["http_status"] == 200);
  CHECK(r.body["duration_ms"].get<double>() >= 0);
  CHECK(r.body["error"].is_null());
  auto hits = rx.Hits("/fine");
  REQUIRE(hits.size() == 1);
  CHECK(json::parse(hits[0].body)["type"] == "webhook.test");
  CHECK(Verify(ok, hits[0]) == "");

  r = Send("POST", Path(teapot, "/test"), "");
  REQUIRE(r.status == 200);
  CHECK(r.body["success"] == false);
  CHECK(r.body["http_status"] == 418);

  // Nothing listens: no status, an error.
  json dead = Create({{"name", "test-dead"},
                      {"url", "http://127.0.0.1:" +
                                  std::to_string(harness::FreePort()) + "/x"}});
  r = Send("POST", Path(dead, "/test"), "");
  REQUIRE(r.status == 200);
  CHECK(r.body["success"] == false);
  CHECK(r.body["http_status"].is_null());
  CHECK(r.body["error"].is_string());
  // Nothing was queued by the test sends.
  CHECK(E().Sql("SELECT count(*) FROM pggit.alert_delivery_queue WHERE "
                "webhook_id IN (" +
                ok["id"].dump() + ", " + teapot["id"].dump() + ")") == "0");
}

TEST_CASE("delete cancels pending deliveries and keeps the history") {
  Receiver& rx = E().receiver;
  json w = Create({{"name", "doomed"},
                   {"url", rx.Url("/doomed")},
                   {"filters", {{"severities", {"CRITICAL"}}}}});
  const std::string first = InsertAlert("CRITICAL");
  REQUIRE(harness::WaitFor(
      [&] { return DeliveryStatus(first, w) == "delivered"; }, kWait));
  // A delivery waiting for its retry in an hour, queued by hand for an INFO
  // alert (which the CRITICAL filter kept from queueing one), so no attempt
  // races the delete.
  const std::string second = InsertAlert("INFO");
  E().Sql(
      "INSERT INTO pggit.alert_delivery_queue (alert_id, webhook_id,"
      " attempt_count, next_attempt_at, last_http_status) VALUES (" +
      second + ", " + w["id"].dump() + ", 1, now() + interval '1 hour', 500)");
  REQUIRE(DeliveryStatus(second, w) == "pending");
  CHECK(Send("DELETE", Path(w), "").status == 204);
  CHECK(DeliveryStatus(second, w) == "cancelled");
  CHECK(DeliveryStatus(first, w) == "delivered");
  // The history stays readable.
  Answer hist = Get(Path(w, "/deliveries"));
  REQUIRE(hist.status == 200);
  CHECK(hist.body["total"] == 2);
  CHECK(hist.body["items"][0]["delivery_status"] == "cancelled");  // newest
  CHECK(hist.body["items"][1]["delivery_status"] == "delivered");
  // retry-pending does not revive deliveries of a deleted webhook.
  CheckError(Send("POST", "/api/v1/webhooks/retry-pending",
                  json({{"webhook_id", w["id"]}}).dump()),
             404, "RESOURCE_NOT_FOUND");
  CHECK(DeliveryStatus(second, w) == "cancelled");
}

TEST_CASE("cache warm loads the first page for real") {
  json w = Create({{"name", "warmed"}, {"url", E().receiver.Url("/warm")}});
  // The database's invalidation notice for the insert may land after a
  // warm; warm until the first page is served from the cache (bounded).
  Answer warm;
  Answer first;
  CHECK(harness::WaitFor(
      [&] {
        warm = Got(E().Client().Post("/api/v1/cache/warm"));
        first = Get("/api/v1/webhooks");
        return warm.status == 200 && first.header("X-Cache") == "HIT";
      },
      std::chrono::seconds(5)));
  REQUIRE(warm.status == 200);
  bool found = false;
  for (const json& one : warm.body["warmers"]) {
    if (one["name"] == "webhooks first page") {
      found = true;
      CHECK(one["status"] == "ok");
      CHECK(one["entries"] == 1);
    }
  }
  CHECK(found);
  bool listed = false;
  for (const json& item : first.body["items"]) listed |= item["id"] == w["id"];
  CHECK(listed);
  CHECK(first.body == Get("/api/v1/webhooks?limit=20&offset=0").body);
}

TEST_CASE("no connection within DATABASE_POOL_TIMEOUT: 503 POOL_TIMEOUT") {
  json w = Create({{"name", "pool"}, {"url", E().receiver.Url("/pool")}});
  const std::string before = Snapshot(/*queue=*/false);
  // A second daemon with a single connection, which a table lock will hold.
  harness::Daemon small(
      WebhooksDaemon(E().dsn, {{"DATABASE_POOL_SIZE", "1"},
                               {"DATABASE_POOL_MAX_OVERFLOW", "0"},
                               {"DATABASE_POOL_TIMEOUT", "0.3"}}));
  pqxx::connection locker(E().dsn);
  auto lock = std::make_unique<pqxx::work>(locker);
  lock->exec("LOCK TABLE pggit.webhooks IN ACCESS EXCLUSIVE MODE");
  auto client = [&small] { return small.Client(); };
  // This read takes the one connection (unless the engine took it first)
  // and waits for the lock.
  auto blocked = std::async(std::launch::async, [&] {
    return client().Get(Path(w).c_str())->status;
  });
  REQUIRE(harness::WaitFor(
      [&] {
        return E().Sql(
                   "SELECT count(*) FROM pg_stat_activity WHERE datname ="
                   " current_database() AND wait_event_type = 'Lock'") != "0";
      },
      kWait));
  Answer read = Got(client().Get(Path(w, "/deliveries").c_str()));
  CheckError(read, 503, "POOL_TIMEOUT");
  CHECK(read.header("Retry-After") == "1");
  Answer made = Got(client().Post(
      "/api/v1/webhooks", R"({"name": "pool-2", "url": "http://x.example"})",
      "application/json"));
  CheckError(made, 503, "POOL_TIMEOUT");
  lock->abort();
  lock.reset();
  const int first = blocked.get();  // 503 if the engine held the connection
  CHECK((first == 200 || first == 503));
  CHECK(Snapshot(false) == before);  // the refused create wrote nothing
  small.Signal(SIGTERM);
  CHECK(small.Wait(30000) == 0);
}

}  // namespace
}  // namespace pggitops
