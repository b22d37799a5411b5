// State shared through the database: two engines on one queue deliver each
// row exactly once; the circuit breaker opens, probes, closes, and an open
// breaker set by one engine holds the other back; retry-pending.
#include <map>
#include <string>

#include "doctest/doctest.h"
#include "tests/integration/delivery/delivery_test_util.h"

namespace pggitops {
namespace {

using namespace delivery_test;  // NOLINT: test helpers
using std::chrono::milliseconds;
using std::chrono::seconds;

// The witness that nothing is sent: wakes `engine` until it has looked at
// the queue `cycles` more times and holds no row (an attempt it started has
// then been recorded, after the receiver got it). True when that happened
// within the bound.
bool LookedAgain(DeliveryEngine* engine, int cycles = 2) {
  const int64_t from = engine->Stats().claim_cycles_total;
  return WaitFor(
      [&] {
        engine->Wake();
        const DeliveryStats s = engine->Stats();
        return s.claim_cycles_total >= from + cycles && s.held == 0;
      },
      seconds(10));
}

// The breaker and the queue rows, for a failure message.
std::string BreakerState(const std::string& dsn, int64_t w) {
  return Scalar(
      dsn,
      "SELECT breaker_state || ' ' || coalesce(breaker_open_until - "
      "now(), '0')::text || ' ' || (SELECT string_agg(delivery_status "
      "|| ':' || (next_attempt_at - now())::text || ':' || "
      "coalesce(last_error, ''), ', ') FROM alert_delivery_queue) FROM "
      "webhooks WHERE id = " +
          std::to_string(w));
}

TEST_CASE("engine: two engines on one database deliver exactly once") {
  const std::string dsn = MigratedDatabase("engine_two_exactly_once");
  Receiver rx;
  AddWebhook(dsn, "one", rx.url("/one"));
  AddWebhook(dsn, "two", rx.url("/two"));
  auto pool_a = MakePool(dsn);
  auto pool_b = MakePool(dsn);
  DeliveryOptions oa = TestOptions(dsn);
  oa.instance_id = "engine-a";
  oa.batch_size = 20;
  DeliveryOptions ob = oa;
  ob.instance_id = "engine-b";
  auto a = StartEngine(pool_a.get(), oa);
  auto b = StartEngine(pool_b.get(), ob);
  constexpr int kAlerts = 150;
  for (int i = 0; i < kAlerts; ++i) AddAlert(dsn);
  REQUIRE(WaitFor([&] { return rx.count() >= 2 * kAlerts; }, seconds(60)));
  REQUIRE(WaitFor(
      [&] {
        return Count(dsn,
                     "SELECT count(*) FROM alert_delivery_queue WHERE "
                     "delivery_status = 'delivered'") == 2 * kAlerts;
      },
      seconds(30)));
  a->Shutdown(absl::Now() + absl::Seconds(5));
  b->Shutdown(absl::Now() + absl::Seconds(5));
  std::map<std::string, int> per_id;
  for (const Received& r : rx.requests()) ++per_id[r.headers.at("webhook-id")];
  CHECK(per_id.size() == 2 * kAlerts);
  int duplicates = 0;
  for (const auto& [id, n] : per_id) duplicates += n - 1;
  CHECK(duplicates == 0);
  CHECK(rx.count() == 2 * kAlerts);
  CHECK(a->Stats().claimed_total + b->Stats().claimed_total == 2 * kAlerts);
  CHECK(Count(dsn, "SELECT count(*) FROM delivery_attempts") == 2 * kAlerts);
}

TEST_CASE("engine: the breaker opens, holds, probes, and closes") {
  const std::string dsn = MigratedDatabase("engine_breaker");
  std::atomic<bool> healthy{false};
  Receiver rx([&healthy](const Received&, int) {
    Receiver::Reply r;
    if (!healthy) r.status = 503;
    return r;
  });
  const int64_t w = AddWebhook(dsn, "flappy", rx.url(),
                               {{"backoff_base", "1"}, {"max_retries", "20"}});
  auto pool = MakePool(dsn);
  DeliveryOptions o = TestOptions(dsn);
  o.breaker_threshold = 3;
  o.breaker_open = absl::Seconds(2);
  o.breaker_max_open = absl::Seconds(3);
  o.max_in_flight_per_endpoint = 1;
  auto engine = StartEngine(pool.get(), o);
  for (int i = 0; i < 6; ++i) AddAlert(dsn);
  const std::string state_sql =
      "SELECT breaker_state FROM webhooks WHERE id = " + std::to_string(w);
  REQUIRE(
      WaitFor([&] { return Scalar(dsn, state_sql) == "open"; }, seconds(20)));
  CHECK(Count(dsn, "SELECT consecutive_failures FROM webhooks WHERE id = " +
                       std::to_string(w)) >= 3);
  CHECK(Count(dsn, "SELECT breaker_open_seconds FROM webhooks WHERE id = " +
                       std::to_string(w)) == 2);
  // While open, nothing is attempted: rows due now are put off to the end
  // of the open period, however often the engine claims.
  const int during = rx.count();
  const std::string pending =
      "delivery_status = 'pending' AND webhook_id = " + std::to_string(w);
  Exec(dsn, "UPDATE alert_delivery_queue SET next_attempt_at = now() WHERE " +
                pending);
  REQUIRE(LookedAgain(engine.get()));
  CHECK(rx.count() <= during + 1);  // one attempt may have been in flight
  // ... and that one, failed, is pending again at its own backoff (it was
  // not due when the rows were made due; a claim defers it when it is).
  CHECK(Count(dsn, "SELECT count(*) FROM alert_delivery_queue WHERE " +
                       pending +
                       " AND next_attempt_at < (SELECT breaker_open_until - "
                       "interval '1 second' FROM webhooks WHERE id = " +
                       std::to_string(w) + ")") <= 1);
  // Still the first open period: the probe (below) has not gone yet.
  CHECK(Count(dsn, "SELECT breaker_open_seconds FROM webhooks WHERE id = " +
                       std::to_string(w)) == 2);
  // After the open period one probe goes; it fails: open again, longer.
  const bool reopened = WaitFor(
      [&] {
        return Count(dsn,
                     "SELECT breaker_open_seconds FROM webhooks WHERE id = " +
                         std::to_string(w)) == 3;
      },
      seconds(20));
  REQUIRE_MESSAGE(reopened, BreakerState(dsn, w));
  const int after_probe = rx.count();
  healthy = true;
  // The next probe succeeds: closed, and the waiting rows go at once.
  const bool delivered = WaitFor(
      [&] {
        return Count(dsn,
                     "SELECT count(*) FROM alert_delivery_queue WHERE "
                     "delivery_status = 'delivered'") == 6;
      },
      seconds(20));
  REQUIRE_MESSAGE(delivered, BreakerState(dsn, w));
  CHECK(Scalar(dsn, state_sql) == "closed");
  CHECK(rx.count() >= after_probe + 6);
  CHECK(Scalar(dsn,
               "SELECT consecutive_failures || '|' || "
               "(breaker_open_until IS NULL) || '|' || "
               "(failing_since IS NULL) FROM webhooks WHERE id = " +
                   std::to_string(w)) == "0|true|true");
  engine->Shutdown(absl::Now() + absl::Seconds(5));
}

TEST_CASE("engine: a breaker opened by one engine holds the other back") {
  const std::string dsn = MigratedDatabase("engine_shared_breaker");
  Receiver rx([](const Received&, int) {
    Receiver::Reply r;
    r.status = 500;
    return r;
  });
  const int64_t w = AddWebhook(dsn, "down", rx.url(),
                               {{"backoff_base", "1"}, {"max_retries", "20"}});
  auto pool_a = MakePool(dsn);
  DeliveryOptions oa = TestOptions(dsn);
  oa.instance_id = "engine-a";
  oa.breaker_threshold = 3;
  oa.breaker_open = absl::Seconds(30);
  oa.max_in_flight_per_endpoint = 1;
  auto a = StartEngine(pool_a.get(), oa);
  for (int i = 0; i < 3; ++i) AddAlert(dsn);
  REQUIRE(WaitFor(
      [&] {
        return Scalar(dsn, "SELECT breaker_state FROM webhooks WHERE id = " +
                               std::to_string(w)) == "open";
      },
      seconds(20)));
  a->Shutdown(absl::Now() + absl::Seconds(5));
  const int before = rx.count();

  auto pool_b = MakePool(dsn);
  DeliveryOptions ob = oa;
  ob.instance_id = "engine-b";
  auto b = StartEngine(pool_b.get(), ob);
  const int64_t fresh = AddAlert(dsn);
  // Engine b sees the open breaker: the new row is rescheduled to the end
  // of the open period, not attempted.
  REQUIRE(WaitFor(
      [&] {
        return Scalar(dsn,
                      "SELECT q.next_attempt_at >= w.breaker_open_until - "
                      "interval '1 second' FROM alert_delivery_queue q JOIN "
                      "webhooks w ON w.id = q.webhook_id WHERE q.alert_id = " +
                          std::to_string(fresh)) == "t";
      },
      seconds(10)));
  REQUIRE(LookedAgain(b.get()));
  CHECK(rx.count() == before);
  CHECK(b->Stats().claimed_total == 0);
  b->Shutdown(absl::Now() + absl::Seconds(5));
}

TEST_CASE("engine: retry-pending makes failed and waiting rows due again") {
  const std::string dsn = MigratedDatabase("engine_retry_pending");
  std::atomic<bool> healthy{false};
  Receiver rx([&healthy](const Received&, int) {
    Receiver::Reply r;
    if (!healthy) r.status = 500;
    return r;
  });
  const int64_t w = AddWebhook(dsn, "fixme", rx.url(), {{"max_retries", "0"}});
  const int64_t off =
      AddWebhook(dsn, "off", rx.url("/off"), {{"max_retries", "0"}});
  for (int i = 0; i < 4; ++i) AddAlert(dsn);
  auto pool = MakePool(dsn);
  DeliveryOptions o = TestOptions(dsn);
  o.breaker_threshold = 2;
  o.breaker_open = absl::Seconds(600);
  auto engine = StartEngine(pool.get(), o);
  // Both breakers open after two failures; every row is failed or waiting.
  const auto settled = [&](int64_t id) {
    const std::string w_id = std::to_string(id);
    return Scalar(dsn, "SELECT breaker_state FROM webhooks WHERE id = " +
                           w_id) == "open" &&
           Count(dsn,
                 "SELECT count(*) FROM alert_delivery_queue WHERE "
                 "webhook_id = " +
                     w_id + " AND delivery_status = 'failed'") >= 2 &&
           Count(dsn,
                 "SELECT count(*) FROM alert_delivery_queue WHERE "
                 "webhook_id = " +
                     w_id + " AND delivery_status IN ('failed', 'pending')") ==
               4;
  };
  REQUIRE(WaitFor([&] { return settled(w) && settled(off); }, seconds(20)));
  Exec(dsn, "UPDATE webhooks SET is_active = false WHERE id = " +
                std::to_string(off));
  REQUIRE(Scalar(dsn, "SELECT status FROM webhooks WHERE id = " +
                          std::to_string(off)) == "inactive");
  CHECK(absl::IsNotFound(RetryPending(pool.get(), 999999).status()));
  absl::StatusOr<int> none = RetryPending(pool.get(), off);
  REQUIRE(none.ok());
  CHECK(*none == 0);  // inactive: left alone
  healthy = true;
  absl::StatusOr<int> n = RetryPending(pool.get(), w);
  REQUIRE(n.ok());
  CHECK(*n == 4);
  CHECK(Scalar(dsn, "SELECT breaker_state FROM webhooks WHERE id = " +
                        std::to_string(w)) == "closed");
  REQUIRE(WaitFor(
      [&] {
        return Count(dsn,
                     "SELECT count(*) FROM alert_delivery_queue WHERE "
                     "webhook_id = " +
                         std::to_string(w) +
                         " AND delivery_status = 'delivered'") == 4;
      },
      seconds(20)));
  // History is kept: the new attempts continue the numbering.
  CHECK(Count(dsn,
              "SELECT count(*) FROM delivery_attempts a JOIN "
              "alert_delivery_queue q ON q.id = a.delivery_id WHERE "
              "q.webhook_id = " +
                  std::to_string(w) +
                  " AND a.http_status = 200 AND a.attempt = (SELECT "
                  "max(attempt) FROM delivery_attempts d WHERE "
                  "d.delivery_id = q.id) AND a.attempt >= 2") >= 2);
  CHECK(Count(dsn,
              "SELECT count(*) FROM alert_delivery_queue WHERE "
              "webhook_id = " +
                  std::to_string(w) + " AND attempt_count = 1") == 4);
  CHECK(Count(dsn,
              "SELECT count(*) FROM alert_delivery_queue WHERE "
              "webhook_id = " +
                  std::to_string(off) + " AND delivery_status = 'delivered'") ==
        0);
  engine->Shutdown(absl::Now() + absl::Seconds(5));
}

}  // namespace
}  // namespace pggitops

namespace pggitops {
namespace {

using namespace delivery_test;  // NOLINT: test helpers

TEST_CASE("engine: a webhook failing for disable_after is disabled") {
  const std::string dsn = MigratedDatabase("engine_auto_disable");
  Receiver rx([](const Received&, int) {
    Receiver::Reply r;
    r.status = 503;
    return r;
  });
  const int64_t w = AddWebhook(dsn, "dying", rx.url(),
                               {{"backoff_base", "1"}, {"max_retries", "20"}});
  for (int i = 0; i < 3; ++i) AddAlert(dsn);
  auto pool = MakePool(dsn);
  DeliveryOptions o = TestOptions(dsn);
  o.breaker_threshold = 1000;
  o.disable_after = absl::Milliseconds(1500);
  auto engine = StartEngine(pool.get(), o);
  const std::string ws = std::to_string(w);
  REQUIRE(WaitFor(
      [&] {
        return Scalar(dsn, "SELECT status FROM webhooks WHERE id = " + ws) ==
               "disabled";
      },
      std::chrono::seconds(20)));
  CHECK(Scalar(dsn, "SELECT disabled_reason FROM webhooks WHERE id = " + ws)
            .rfind("no successful delivery since", 0) == 0);
  CHECK(Scalar(dsn,
               "SELECT is_active::text || '|' || (disabled_at IS NOT "
               "NULL)::text FROM webhooks WHERE id = " +
                   ws) == "true|true");
  // Its remaining rows wait (parked), nothing more is sent.
  REQUIRE(WaitFor(
      [&] {
        return Count(dsn,
                     "SELECT count(*) FROM alert_delivery_queue WHERE "
                     "delivery_status = 'in_progress'") == 0;
      },
      std::chrono::seconds(10)));
  // Even due now, they are parked (for park_interval, an hour), not sent,
  // however often the engine claims.
  const int sent = rx.count();
  Exec(dsn,
       "UPDATE alert_delivery_queue SET next_attempt_at = now() WHERE "
       "delivery_status = 'pending' AND webhook_id = " +
           ws);
  REQUIRE(LookedAgain(engine.get()));
  CHECK(rx.count() == sent);
  CHECK(Count(dsn,
              "SELECT count(*) FROM alert_delivery_queue WHERE "
              "delivery_status = 'pending' AND webhook_id = " +
                  ws +
                  " AND next_attempt_at < now() + interval '30 minutes'") == 0);
  CHECK(Count(dsn,
              "SELECT count(*) FROM alert_delivery_queue WHERE "
              "delivery_status = 'delivered'") == 0);
  engine->Shutdown(absl::Now() + absl::Seconds(5));
}

}  // namespace
}  // namespace pggitops
