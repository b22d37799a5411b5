// The delivery engine end to end on a real PostgreSQL with receivers on
// 127.0.0.1: signatures checked by an independent Standard Webhooks
// verifier, webhook-id stable across retries, filters, inactive and disabled
// webhooks, retries and their limits, 410, Retry-After, the enqueue APIs,
// and the SSRF policy through the engine.
#include <map>
#include <set>
#include <string>

#include "doctest/doctest.h"
#include "nlohmann/json.hpp"
#include "pggitops/delivery_pqxx.h"
#include "tests/integration/delivery/delivery_test_util.h"

namespace pggitops {
namespace {

using namespace delivery_test;  // NOLINT: test helpers
using std::chrono::milliseconds;
using std::chrono::seconds;

// Fails the first request of every webhook-id with 500, then answers 200.
Receiver::Respond FailFirstPerId() {
  auto seen = std::make_shared<std::map<std::string, int>>();
  auto mu = std::make_shared<std::mutex>();
  return [seen, mu](const Received& r, int) {
    std::lock_guard<std::mutex> lock(*mu);
    Receiver::Reply reply;
    if ((*seen)[r.headers.at("webhook-id")]++ == 0) reply.status = 500;
    return reply;
  };
}

TEST_CASE("engine: signed, stable ids, filters, inactive and disabled") {
  const std::string dsn = MigratedDatabase("engine_signed");
  Receiver rx(FailFirstPerId());
  const std::vector<std::pair<std::string, std::string>> fast_retry = {
      {"backoff_base", "1"}};
  const std::string secret_all = TestSecret('a');
  const int64_t all =
      AddWebhook(dsn, "all", rx.url("/all"), fast_retry, secret_all);
  auto with = [&](std::pair<std::string, std::string> extra) {
    auto v = fast_retry;
    v.push_back(std::move(extra));
    return v;
  };
  AddWebhook(dsn, "crit", rx.url("/crit"),
             with({"filter_severities", "'{CRITICAL}'"}));
  AddWebhook(dsn, "commits", rx.url("/commits"),
             with({"filter_operation_types", "'{commit}'"}));
  AddWebhook(dsn, "off", rx.url("/off"), with({"is_active", "false"}));
  AddWebhook(dsn, "dead", rx.url("/dead"), with({"status", "'disabled'"}));
  const int64_t a1 = AddAlert(dsn, "WARNING", "commit");
  const int64_t a2 = AddAlert(dsn, "CRITICAL", "merge");

  auto pool = MakePool(dsn);
  auto engine = StartEngine(pool.get(), TestOptions(dsn));
  // 4 deliveries, each failing once: 8 requests.
  REQUIRE(WaitFor(
      [&] {
        return Count(dsn,
                     "SELECT count(*) FROM alert_delivery_queue "
                     "WHERE delivery_status = 'delivered'") == 4;
      },
      seconds(30)));
  engine->Shutdown(absl::Now() + absl::Seconds(5));

  std::map<std::string, std::set<int64_t>> alerts_by_path;
  std::map<std::string, std::vector<std::string>> ids_by_pair;
  for (const Received& r : rx.requests()) {
    const nlohmann::json body = nlohmann::json::parse(r.body);
    CHECK(body["type"] == "alert.created");
    const int64_t alert = body["data"]["id"].get<int64_t>();
    alerts_by_path[r.path].insert(alert);
    ids_by_pair[r.path + "#" + std::to_string(alert)].push_back(
        r.headers.at("webhook-id"));
    CHECK(r.headers.at("content-type") == "application/json");
    CHECK(r.headers.at("user-agent").rfind("pggitops-webhooks/", 0) == 0);
    if (r.path == "/all") {
      CHECK(VerifyStandardWebhook(secret_all, r.headers.at("webhook-id"),
                                  r.headers.at("webhook-timestamp"),
                                  r.headers.at("webhook-signature"), r.body,
                                  r.unix_at) == "");
      // Tampering is caught: the verifier is not a rubber stamp.
      CHECK(VerifyStandardWebhook(secret_all, r.headers.at("webhook-id"),
                                  r.headers.at("webhook-timestamp"),
                                  r.headers.at("webhook-signature"),
                                  r.body + " ", r.unix_at) != "");
      CHECK(VerifyStandardWebhook(TestSecret('b'), r.headers.at("webhook-id"),
                                  r.headers.at("webhook-timestamp"),
                                  r.headers.at("webhook-signature"), r.body,
                                  r.unix_at) != "");
    }
  }
  CHECK(alerts_by_path["/all"] == std::set<int64_t>{a1, a2});
  CHECK(alerts_by_path["/crit"] == std::set<int64_t>{a2});
  CHECK(alerts_by_path["/commits"] == std::set<int64_t>{a1});
  CHECK(alerts_by_path.count("/off") == 0);
  CHECK(alerts_by_path.count("/dead") == 0);
  // Each (alert, webhook): two attempts with one id; ids distinct per pair.
  std::set<std::string> distinct;
  for (const auto& entry : ids_by_pair) {
    const auto& pair = entry.first;  // CAPTURE: not a structured binding
    const auto& ids = entry.second;
    CAPTURE(pair);
    REQUIRE(ids.size() == 2);
    CHECK(ids[0] == ids[1]);
    distinct.insert(ids[0]);
  }
  CHECK(distinct.size() == 4);
  CHECK(ids_by_pair["/all#" + std::to_string(a1)][0] ==
        "msg_" + std::to_string(a1) + "_" + std::to_string(all));
  // History: attempt_count 2, two attempts (500 then 200) per row.
  CHECK(Count(dsn,
              "SELECT count(*) FROM alert_delivery_queue "
              "WHERE attempt_count = 2 AND last_http_status = 200 "
              "AND last_error IS NULL AND delivered_at IS NOT NULL") == 4);
  CHECK(Scalar(dsn,
               "SELECT string_agg(http_status::text, ',' ORDER BY attempt) "
               "FROM delivery_attempts a JOIN alert_delivery_queue q "
               "ON q.id = a.delivery_id WHERE q.webhook_id = " +
                   std::to_string(all) +
                   " AND q.alert_id = " + std::to_string(a1)) == "500,200");
  CHECK(Count(dsn, "SELECT total_deliveries FROM webhooks WHERE id = " +
                       std::to_string(all)) == 4);
  CHECK(Count(dsn, "SELECT total_failures FROM webhooks WHERE id = " +
                       std::to_string(all)) == 2);
  CHECK(Scalar(dsn,
               "SELECT last_success_at IS NOT NULL AND last_used_at IS "
               "NOT NULL FROM webhooks WHERE id = " +
                   std::to_string(all)) == "t");
}

TEST_CASE("engine: rows of a webhook switched off wait, then go when on") {
  const std::string dsn = MigratedDatabase("engine_parked");
  Receiver rx;
  const int64_t w = AddWebhook(dsn, "later_off", rx.url());
  AddAlert(dsn);
  AddAlert(dsn);
  Exec(dsn,
       "UPDATE webhooks SET is_active = false WHERE id = " + std::to_string(w));
  auto pool = MakePool(dsn);
  auto engine = StartEngine(pool.get(), TestOptions(dsn));
  REQUIRE(WaitFor(
      [&] {
        return Count(dsn,
                     "SELECT count(*) FROM alert_delivery_queue WHERE "
                     "last_error = 'waiting: webhook is inactive' AND "
                     "delivery_status = 'pending' AND next_attempt_at > "
                     "now() + interval '30 minutes'") == 2;
      },
      seconds(15)));
  CHECK(rx.count() == 0);
  Exec(dsn,
       "UPDATE webhooks SET is_active = true WHERE id = " + std::to_string(w));
  CHECK(WaitFor([&] { return rx.count() == 2; }, seconds(15)));
  engine->Shutdown(absl::Now() + absl::Seconds(5));
}

TEST_CASE("engine: retries until success, and up to 1 + max_retries") {
  const std::string dsn = MigratedDatabase("engine_retries");
  // /flaky fails twice then succeeds; /down always fails; /gone is 410;
  // /deploying is 404 once (a receiver mid-deploy), then 200; /lost is
  // always 404; /busy is 429 with Retry-After: 2 once. CONTRACT section 6:
  // every non-2xx but 410 is retried.
  Receiver rx([](const Received& r, int) {
    static std::mutex mu;
    static std::map<std::string, int> n;
    std::lock_guard<std::mutex> lock(mu);
    const int k = ++n[r.path];
    Receiver::Reply reply;
    if (r.path == "/flaky" && k <= 2) reply.status = 503;
    if (r.path == "/down") reply.status = 500;
    if (r.path == "/gone") reply.status = 410;
    if (r.path == "/deploying" && k == 1) reply.status = 404;
    if (r.path == "/lost") reply.status = 404;
    if (r.path == "/busy" && k == 1) {
      reply.status = 429;
      reply.headers = {{"Retry-After", "2"}};
    }
    return reply;
  });
  const std::vector<std::pair<std::string, std::string>> policy = {
      {"backoff_base", "1"}, {"max_retries", "3"}};
  const int64_t flaky = AddWebhook(dsn, "flaky", rx.url("/flaky"), policy);
  const int64_t down = AddWebhook(dsn, "down", rx.url("/down"), policy);
  const int64_t gone = AddWebhook(dsn, "gone", rx.url("/gone"), policy);
  const int64_t deploying =
      AddWebhook(dsn, "deploying", rx.url("/deploying"), policy);
  const int64_t lost = AddWebhook(dsn, "lost", rx.url("/lost"), policy);
  const int64_t busy = AddWebhook(dsn, "busy", rx.url("/busy"), policy);
  AddAlert(dsn);
  auto pool = MakePool(dsn);
  DeliveryOptions o = TestOptions(dsn);
  o.breaker_threshold = 100;  // breakers are tested elsewhere
  auto engine = StartEngine(pool.get(), o);
  auto status_of = [&](int64_t w) {
    return Scalar(dsn,
                  "SELECT delivery_status || ':' || attempt_count FROM "
                  "alert_delivery_queue WHERE webhook_id = " +
                      std::to_string(w));
  };
  REQUIRE(WaitFor(
      [&] {
        return status_of(flaky) == "delivered:3" &&
               status_of(down) == "failed:4" && status_of(gone) == "failed:1" &&
               status_of(deploying) == "delivered:2" &&
               status_of(lost) == "failed:4" &&
               status_of(busy) == "delivered:2";
      },
      seconds(40)));
  engine->Shutdown(absl::Now() + absl::Seconds(5));
  CHECK(Scalar(dsn,
               "SELECT string_agg(coalesce(http_status::text, '-'), ',' "
               "ORDER BY attempt) FROM delivery_attempts a JOIN "
               "alert_delivery_queue q ON q.id = a.delivery_id WHERE "
               "q.webhook_id = " +
                   std::to_string(flaky)) == "503,503,200");
  CHECK(Scalar(dsn,
               "SELECT last_error FROM alert_delivery_queue WHERE "
               "webhook_id = " +
                   std::to_string(down)) == "HTTP 500");
  // 410 disables the webhook with the reason; 404 does not.
  CHECK(Scalar(dsn,
               "SELECT status || '|' || disabled_reason FROM webhooks "
               "WHERE id = " +
                   std::to_string(gone)) ==
        "disabled|the receiver answered 410 Gone");
  CHECK(Scalar(dsn, "SELECT status FROM webhooks WHERE id = " +
                        std::to_string(lost)) == "active");
  CHECK(Scalar(dsn,
               "SELECT string_agg(coalesce(http_status::text, '-'), ',' "
               "ORDER BY attempt) FROM delivery_attempts a JOIN "
               "alert_delivery_queue q ON q.id = a.delivery_id WHERE "
               "q.webhook_id = " +
                   std::to_string(deploying)) == "404,200");
  // Retry-After: 2 was honoured (the backoff alone is at most 1 s).
  std::vector<Clock::time_point> busy_at;
  for (const Received& r : rx.requests()) {
    if (r.path == "/busy") busy_at.push_back(r.at);
  }
  REQUIRE(busy_at.size() == 2);
  CHECK(busy_at[1] - busy_at[0] >= milliseconds(1900));
  // Metrics counted every outcome.
  const DeliveryStats s = engine->Stats();
  CHECK(s.delivered_total == 3);  // flaky, deploying, busy
  CHECK(s.failed_total == 3);     // down, gone, lost
  CHECK(s.retried_total ==
        2 + 3 + 1 + 1 + 3);  // flaky down deploying busy lost
}

TEST_CASE("engine: EnqueueAlert validates, inserts, and joins a transaction") {
  const std::string dsn = MigratedDatabase("engine_enqueue");
  Receiver rx;
  AddWebhook(dsn, "hook", rx.url());
  auto pool = MakePool(dsn);

  AlertInput bad;
  bad.operation_type = "commit";
  bad.severity = "LOW";
  CHECK(absl::IsInvalidArgument(EnqueueAlert(pool.get(), bad).status()));
  bad.severity = "INFO";
  bad.context_json = "[1, 2]";
  CHECK(absl::IsInvalidArgument(EnqueueAlert(pool.get(), bad).status()));
  bad.context_json = "";
  bad.operation_type = "";
  CHECK(absl::IsInvalidArgument(EnqueueAlert(pool.get(), bad).status()));
  // Characters, as the database's constraint counts them, not bytes.
  std::string accented;
  for (int i = 0; i < 256; ++i) accented += "\xc3\xa9";  // U+00E9
  bad.operation_type = accented;
  CHECK(absl::IsInvalidArgument(EnqueueAlert(pool.get(), bad).status()));
  CHECK(Count(dsn, "SELECT count(*) FROM alerts") == 0);
  AlertInput wide;
  wide.operation_type = accented.substr(2);  // 255 characters, 510 bytes
  wide.severity = "INFO";
  wide.message = "m";
  CHECK(EnqueueAlert(pool.get(), wide).ok());
  CHECK(Count(dsn, "SELECT count(*) FROM alerts") == 1);
  Exec(dsn, "DELETE FROM alerts");

  AlertInput good;
  good.operation_type = "schema_change";
  good.severity = "CRITICAL";
  good.message = "dropped column";
  good.context_json = R"({"table": "users"})";
  absl::StatusOr<int64_t> id = EnqueueAlert(pool.get(), good);
  REQUIRE(id.ok());
  {
    pqxx::connection c(dsn);
    pqxx::work rolled_back(c);
    REQUIRE(EnqueueAlert(rolled_back, good).ok());
    rolled_back.abort();
    pqxx::work committed(c);
    absl::StatusOr<int64_t> in_txn = EnqueueAlert(committed, good);
    REQUIRE(in_txn.ok());
    CHECK(*in_txn > *id);
    committed.commit();
    pqxx::work refused(c);
    CHECK(absl::IsInvalidArgument(EnqueueAlert(refused, bad).status()));
  }
  CHECK(Count(dsn, "SELECT count(*) FROM alerts") == 2);
  {
    // The std/Abseil way into the caller's transaction: a pooled lease.
    absl::StatusOr<PooledConnection> lease = pool->Acquire();
    REQUIRE(lease.ok());
    REQUIRE(lease->Query("BEGIN").ok());
    REQUIRE(EnqueueAlert(*lease, good).ok());
    REQUIRE(lease->Query("ROLLBACK").ok());
    CHECK(Count(dsn, "SELECT count(*) FROM alerts") == 2);
    CHECK(Count(dsn, "SELECT count(*) FROM alert_delivery_queue") == 2);
    REQUIRE(lease->Query("BEGIN").ok());
    absl::StatusOr<int64_t> on_lease = EnqueueAlert(*lease, good);
    REQUIRE(on_lease.ok());
    CHECK(absl::IsInvalidArgument(EnqueueAlert(*lease, bad).status()));
    REQUIRE(lease->Query("COMMIT").ok());
  }
  CHECK(Count(dsn, "SELECT count(*) FROM alerts") == 3);
  auto engine = StartEngine(pool.get(), TestOptions(dsn));
  REQUIRE(WaitFor([&] { return rx.count() == 3; }, seconds(15)));
  const nlohmann::json body = nlohmann::json::parse(rx.requests()[0].body);
  CHECK(body["data"]["context"]["table"] == "users");
  CHECK(body["data"]["severity"] == "CRITICAL");
  engine->Shutdown(absl::Now() + absl::Seconds(5));
}

TEST_CASE("engine: private targets are refused at connect time") {
  const std::string dsn = MigratedDatabase("engine_ssrf");
  Receiver rx;
  Receiver target;
  Receiver redirector([&target](const Received&, int) {
    Receiver::Reply r;
    r.status = 302;
    r.headers = {{"Location", target.url("/after-redirect")}};
    return r;
  });
  const std::string port = std::to_string(rx.port());
  const std::vector<std::pair<std::string, std::string>> no_retry = {
      {"max_retries", "0"}, {"timeout_seconds", "3"}};
  for (const auto& [name, url] :
       std::vector<std::pair<std::string, std::string>>{
           {"private", "http://10.0.0.1/hook"},
           {"metadata", "http://169.254.169.254/latest/meta-data/"},
           {"v6loop", "http://[::1]:" + port + "/hook"},
           {"name", "http://localhost:" + port + "/hook"},
           {"loop", rx.url()}}) {
    AddWebhook(dsn, name, url, no_retry);
  }
  AddAlert(dsn);
  auto pool = MakePool(dsn);
  DeliveryOptions o = TestOptions(dsn);
  o.allow_private_targets = false;
  auto engine = StartEngine(pool.get(), o);
  REQUIRE(WaitFor(
      [&] {
        return Count(dsn,
                     "SELECT count(*) FROM alert_delivery_queue "
                     "WHERE delivery_status = 'failed'") == 5;
      },
      seconds(20)));
  engine->Shutdown(absl::Now() + absl::Seconds(5));
  CHECK(rx.count() == 0);
  CHECK(Count(dsn,
              "SELECT count(*) FROM alert_delivery_queue WHERE "
              "last_error LIKE 'refused_target: target address "
              "refused:%' AND last_http_status IS NULL") == 5);
  CHECK(Scalar(dsn,
               "SELECT last_error FROM alert_delivery_queue q JOIN "
               "webhooks w ON w.id = q.webhook_id WHERE w.name = "
               "'metadata'")
            .find("169.254.169.254 is link-local") != std::string::npos);

  // With private targets allowed, a redirect is still not followed.
  const std::string dsn2 = MigratedDatabase("engine_redirect");
  AddWebhook(dsn2, "redirecting", redirector.url(), no_retry);
  AddAlert(dsn2);
  auto pool2 = MakePool(dsn2);
  auto engine2 = StartEngine(pool2.get(), TestOptions(dsn2));
  REQUIRE(WaitFor(
      [&] {
        return Scalar(dsn2,
                      "SELECT delivery_status FROM alert_delivery_queue") ==
               "failed";
      },
      seconds(20)));
  engine2->Shutdown(absl::Now() + absl::Seconds(5));
  CHECK(redirector.count() == 1);
  CHECK(target.count() == 0);
  CHECK(Scalar(dsn2, "SELECT last_error FROM alert_delivery_queue") ==
        "HTTP 302");
}

}  // namespace
}  // namespace pggitops
