// Operator-facing parts of the engine: test sends, retention purge, the
// health checks and the metrics.
#include <string>

#include "doctest/doctest.h"
#include "nlohmann/json.hpp"
#include "tests/integration/delivery/delivery_test_util.h"

namespace pggitops {
namespace {

using namespace delivery_test;  // NOLINT: test helpers
using std::chrono::seconds;

TEST_CASE("engine: a test send goes through the real transport") {
  const std::string dsn = MigratedDatabase("engine_test_send");
  Receiver ok;
  Receiver failing([](const Received&, int) {
    Receiver::Reply r;
    r.status = 500;
    return r;
  });
  const std::string secret = TestSecret('t');
  const int64_t good = AddWebhook(dsn, "good", ok.url(), {}, secret);
  const int64_t bad =
      AddWebhook(dsn, "bad", failing.url(), {{"is_active", "false"}});
  auto pool = MakePool(dsn);
  // Works before Start().
  absl::StatusOr<std::unique_ptr<DeliveryEngine>> made =
      DeliveryEngine::Create(pool.get(), TestOptions(dsn));
  REQUIRE(made.ok());
  DeliveryEngine& engine = **made;

  absl::StatusOr<TestSendResult> r = engine.SendTest(good);
  REQUIRE(r.ok());
  CHECK(r->success);
  CHECK(r->http_status == 200);
  CHECK(r->duration_ms > 0);
  CHECK_FALSE(r->error.has_value());
  REQUIRE(ok.count() == 1);
  const Received got = ok.requests()[0];
  CHECK(nlohmann::json::parse(got.body)["type"] == "webhook.test");
  CHECK(VerifyStandardWebhook(secret, got.headers.at("webhook-id"),
                              got.headers.at("webhook-timestamp"),
                              got.headers.at("webhook-signature"), got.body,
                              got.unix_at) == "");

  // Inactive webhooks can be tested too; the failure is reported.
  r = engine.SendTest(bad);
  REQUIRE(r.ok());
  CHECK_FALSE(r->success);
  CHECK(r->http_status == 500);
  CHECK(r->error == "HTTP 500");
  CHECK(absl::IsNotFound(engine.SendTest(424242).status()));
  // Nothing was queued or recorded.
  CHECK(Count(dsn, "SELECT count(*) FROM alert_delivery_queue") == 0);
  CHECK(Count(dsn, "SELECT count(*) FROM delivery_attempts") == 0);

  // Private targets off: refused before connecting.
  DeliveryOptions strict = TestOptions(dsn);
  strict.allow_private_targets = false;
  absl::StatusOr<std::unique_ptr<DeliveryEngine>> strict_engine =
      DeliveryEngine::Create(pool.get(), strict);
  REQUIRE(strict_engine.ok());
  r = (*strict_engine)->SendTest(good);
  REQUIRE(r.ok());
  CHECK_FALSE(r->success);
  CHECK_FALSE(r->http_status.has_value());
  CHECK(r->error->rfind("refused_target", 0) == 0);
  CHECK(ok.count() == 1);

  engine.Shutdown(absl::Now());
  CHECK(absl::IsFailedPrecondition(engine.SendTest(good).status()));
}

TEST_CASE("engine: old finished rows and their attempts are purged") {
  const std::string dsn = MigratedDatabase("engine_purge");
  const int64_t w = AddWebhook(dsn, "quiet", "http://127.0.0.1:9/hook",
                               {{"is_active", "false"}});
  const int64_t alert = AddAlert(dsn);
  // 30 old finished rows (with attempts), 1 old pending row, 1 recent
  // delivered row. INSERT does not run the updated_at trigger.
  const std::string ws = std::to_string(w);
  Exec(dsn,
       "INSERT INTO alerts (operation_type, severity, message) "
       "SELECT 'op', 'INFO', 'm' FROM generate_series(1, 31)");
  Exec(dsn,
       "INSERT INTO alert_delivery_queue (alert_id, webhook_id, "
       "delivery_status, created_at, updated_at) "
       "SELECT a.id, " +
           ws +
           ", (ARRAY['delivered','failed','cancelled'])"
           "[1 + a.id % 3], now() - interval '20 days', now() - interval '20 "
           "days' "
           "FROM alerts a WHERE a.id <> " +
           std::to_string(alert) + " ORDER BY a.id LIMIT 30");
  Exec(dsn,
       "INSERT INTO delivery_attempts (delivery_id, attempt) "
       "SELECT id, 1 FROM alert_delivery_queue");
  Exec(
      dsn,
      "INSERT INTO alert_delivery_queue (alert_id, webhook_id, "
      "delivery_status, created_at, updated_at) SELECT max(id), " +
          ws +
          ", 'pending', now() - interval '20 days', now() - interval '20 days' "
          "FROM alerts");
  Exec(dsn,
       "INSERT INTO alert_delivery_queue (alert_id, webhook_id, "
       "delivery_status) VALUES (" +
           std::to_string(alert) + ", " + ws + ", 'delivered')");
  REQUIRE(Count(dsn, "SELECT count(*) FROM alert_delivery_queue") == 32);

  auto pool = MakePool(dsn);
  DeliveryOptions o = TestOptions(dsn);
  o.purge_interval = absl::Seconds(1);
  o.purge_batch = 7;  // several batches
  auto engine = StartEngine(pool.get(), o);
  REQUIRE(WaitFor(
      [&] {
        return Count(dsn, "SELECT count(*) FROM alert_delivery_queue") == 2;
      },
      seconds(30)));
  engine->Shutdown(absl::Now() + absl::Seconds(5));
  CHECK(Count(dsn, "SELECT count(*) FROM delivery_attempts") == 0);
  CHECK(Count(dsn,
              "SELECT count(*) FROM alert_delivery_queue WHERE "
              "delivery_status = 'pending'") == 1);
  // Alerts stay: only deliveries are purged.
  CHECK(Count(dsn, "SELECT count(*) FROM alerts") == 32);
}

TEST_CASE("engine: health checks and metrics report the real queue") {
  const std::string dsn = MigratedDatabase("engine_health");
  Receiver rx([](const Received&, int) {
    Receiver::Reply r;
    r.status = 500;
    return r;
  });
  AddWebhook(dsn, "failing", rx.url(), {{"max_retries", "0"}});
  AddWebhook(dsn, "off", rx.url(), {{"is_active", "false"}});
  AddWebhook(dsn, "dead", rx.url(), {{"status", "'disabled'"}});
  const int64_t parked = AddWebhook(dsn, "parked", "http://127.0.0.1:9/x");
  for (int i = 0; i < 3; ++i) AddAlert(dsn);
  Exec(dsn, "UPDATE webhooks SET is_active = false WHERE id = " +
                std::to_string(parked));
  auto pool = MakePool(dsn);

  CheckResult queue = QueueHealthCheck(pool.get()).run();
  CHECK(queue.ok);
  nlohmann::json q = nlohmann::json::parse(queue.details_json);
  CHECK(q["depth"] == 6);  // 3 alerts x (failing, parked)
  CHECK(q["oldest_pending_seconds"].get<double>() >= 0);

  MetricsRegistry metrics;
  DeliveryOptions o = TestOptions(dsn);
  o.metrics = &metrics;
  auto engine = StartEngine(pool.get(), o);
  HealthCheck dispatcher = engine->DispatcherHealthCheck();
  CHECK(dispatcher.criticality == Criticality::kNonCritical);
  REQUIRE(WaitFor(
      [&] {
        return Count(dsn,
                     "SELECT count(*) FROM alert_delivery_queue WHERE "
                     "delivery_status = 'failed'") == 3;
      },
      seconds(20)));
  // The engine's own listener connects in the background, maybe after the
  // rows failed.
  REQUIRE(
      WaitFor([&] { return engine->Stats().listener_connected; }, seconds(10)));
  CheckResult d = dispatcher.run();
  CHECK(d.ok);
  CHECK(d.status == "running");
  CHECK(nlohmann::json::parse(d.details_json)["listener"] == "connected");

  CheckResult hooks = WebhooksHealthCheck(pool.get()).run();
  CHECK_FALSE(hooks.ok);  // one failing webhook: degraded
  CHECK(hooks.status == "degraded");
  nlohmann::json h = nlohmann::json::parse(hooks.details_json);
  CHECK(h["active_count"] == 1);
  CHECK(h["failing_count"] == 1);
  CHECK(h["disabled_count"] == 1);
  CHECK(h["inactive_count"] == 2);

  // webhook_queue_depth is the real depth: the 3 parked rows remain.
  REQUIRE(WaitFor(
      [&] {
        return metrics.Serialize().find("webhook_queue_depth 3\n") !=
               std::string::npos;
      },
      seconds(10)));
  const std::string text = metrics.Serialize();
  CHECK(text.find("webhook_deliveries_total{result=\"failed\"} 3") !=
        std::string::npos);
  CHECK(text.find("webhook_delivery_duration_seconds_count 3") !=
        std::string::npos);
  CHECK(text.find("webhook_breaker_state{state=\"closed\"} 4") !=
        std::string::npos);
  CHECK(text.find("webhook_in_flight 0") != std::string::npos);
  CHECK(text.find("webhook_retries_total 0") != std::string::npos);
  engine->Shutdown(absl::Now() + absl::Seconds(5));
  CHECK(dispatcher.run().status == "stopped");
  CHECK_FALSE(dispatcher.run().ok);
}

}  // namespace
}  // namespace pggitops
