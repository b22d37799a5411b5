// One slow or dead endpoint never delays the others; the per-attempt
// deadline holds against a receiver that drips; Shutdown hands back the
// leases of unfinished rows.
#include <map>
#include <mutex>
#include <string>
#include <utility>
#include <vector>

#include "doctest/doctest.h"
#include "tests/integration/delivery/delivery_test_util.h"

namespace pggitops {
namespace {

using namespace delivery_test;  // NOLINT: test helpers
using std::chrono::milliseconds;
using std::chrono::seconds;

TEST_CASE("engine: every fast delivery lands before the first slow one ends") {
  const std::string dsn = MigratedDatabase("engine_slow_fast");
  Receiver slow(
      [](const Received&, int) {
        Receiver::Reply r;
        r.delay = milliseconds(5000);
        return r;
      },
      /*threads=*/16);
  Receiver fast;
  AddWebhook(dsn, "slow", slow.url(), {{"timeout_seconds", "10"}});
  AddWebhook(dsn, "fast", fast.url());
  constexpr int kAlerts = 30;
  for (int i = 0; i < kAlerts; ++i) AddAlert(dsn);
  auto pool = MakePool(dsn);
  DeliveryOptions o = TestOptions(dsn);
  o.max_in_flight_per_endpoint = 4;
  o.batch_size = 10;  // several claims are needed
  auto engine = StartEngine(pool.get(), o);
  REQUIRE(WaitFor([&] { return fast.count() == kAlerts; }, seconds(20)));
  REQUIRE(slow.count() >= 1);
  const Clock::time_point first_slow_started = slow.requests()[0].at;
  Clock::time_point last_fast = fast.requests()[0].at;
  for (const Received& r : fast.requests())
    last_fast = std::max(last_fast, r.at);
  CHECK(last_fast < first_slow_started + milliseconds(5000));
  // The slow endpoint never had more than its cap at once.
  CHECK(slow.max_concurrent() <= 4);
  const auto start = Clock::now();
  engine->Shutdown(absl::Now() + absl::Milliseconds(500));
  CHECK(Clock::now() - start < seconds(5));
  // Unfinished slow rows went back: pending, unleased, due now. (On a very
  // slow machine some slow attempts may have finished: they are recorded.)
  CHECK(Count(dsn,
              "SELECT count(*) FROM alert_delivery_queue WHERE "
              "delivery_status = 'in_progress'") == 0);
  const int64_t slow_done =
      Count(dsn,
            "SELECT count(*) FROM alert_delivery_queue q JOIN webhooks w ON "
            "w.id = q.webhook_id WHERE w.name = 'slow' AND "
            "q.delivery_status = 'delivered'");
  CHECK(Count(dsn,
              "SELECT count(*) FROM alert_delivery_queue WHERE "
              "delivery_status = 'pending' AND lease_owner IS NULL AND "
              "next_attempt_at <= now()") == kAlerts - slow_done);
  // Aborted attempts are not recorded as attempts.
  CHECK(Count(dsn,
              "SELECT count(*) FROM delivery_attempts a JOIN "
              "alert_delivery_queue q ON q.id = a.delivery_id JOIN "
              "webhooks w ON w.id = q.webhook_id WHERE w.name = "
              "'slow'") == slow_done);
}

TEST_CASE("engine: one slow attempt does not hold its endpoint's other slot") {
  const std::string dsn = MigratedDatabase("engine_slot_refill");
  constexpr auto kHang = milliseconds(8000);
  Receiver rx([&](const Received&, int n) {
    Receiver::Reply r;
    if (n == 1) r.delay = kHang;  // the first attempt hangs
    return r;
  });
  const int64_t w =
      AddWebhook(dsn, "one", rx.url(), {{"timeout_seconds", "20"}});
  constexpr int kAlerts = 40;
  for (int i = 0; i < kAlerts; ++i) AddAlert(dsn);
  auto pool = MakePool(dsn);
  DeliveryOptions o = TestOptions(dsn);
  o.lease = absl::Seconds(30);
  o.max_in_flight_per_endpoint = 2;
  o.batch_size = 10;  // the webhook's rows take several claims
  auto engine = StartEngine(pool.get(), o);
  // Everything else flows through the second slot, and is recorded, while
  // the first attempt still hangs.
  REQUIRE(WaitFor([&] { return rx.count() == kAlerts; }, seconds(7)));
  REQUIRE(WaitFor(
      [&] {
        return Count(dsn,
                     "SELECT count(*) FROM alert_delivery_queue WHERE "
                     "delivery_status = 'delivered'") == kAlerts - 1;
      },
      seconds(7)));
  const std::vector<Received> got = rx.requests();
  CHECK(got.back().at < got.front().at + kHang);
  CHECK(Count(dsn,
              "SELECT count(*) FROM alert_delivery_queue WHERE "
              "delivery_status = 'in_progress' AND webhook_id = " +
                  std::to_string(w)) == 1);
  CHECK(rx.max_concurrent() == 2);  // a cap, still
  // The slow one lands too.
  REQUIRE(WaitFor(
      [&] {
        return Count(dsn,
                     "SELECT count(*) FROM alert_delivery_queue WHERE "
                     "delivery_status = 'delivered'") == kAlerts;
      },
      seconds(30)));
  CHECK(rx.count() == kAlerts);
  engine->Shutdown(absl::Now() + absl::Seconds(5));
}

TEST_CASE("engine: a receiver that drips is cut at its deadline") {
  const std::string dsn = MigratedDatabase("engine_drip");
  Dripper drip;
  AddWebhook(dsn, "drip", drip.url(),
             {{"timeout_seconds", "2"}, {"max_retries", "0"}});
  AddAlert(dsn);
  auto pool = MakePool(dsn);
  auto engine = StartEngine(pool.get(), TestOptions(dsn));
  REQUIRE(WaitFor(
      [&] {
        return Scalar(dsn,
                      "SELECT delivery_status FROM alert_delivery_queue") ==
               "failed";
      },
      seconds(20)));
  engine->Shutdown(absl::Now() + absl::Seconds(5));
  const double ms =
      std::stod(Scalar(dsn, "SELECT duration_ms FROM delivery_attempts"));
  CHECK(ms >= 1900);
  CHECK(ms < 4000);
  CHECK(
      Scalar(dsn, "SELECT error FROM delivery_attempts").rfind("timeout", 0) ==
      0);
  CHECK(Scalar(dsn, "SELECT http_status FROM delivery_attempts") == "200");
}

TEST_CASE("engine: shutdown with nothing running returns at once") {
  const std::string dsn = MigratedDatabase("engine_idle_stop");
  auto pool = MakePool(dsn);
  auto engine = StartEngine(pool.get(), TestOptions(dsn));
  CHECK(WaitFor(
      [&] { return engine->Stats().since_last_cycle < absl::Seconds(1); },
      seconds(5)));
  const auto start = Clock::now();
  engine->Shutdown(absl::Now() + absl::Seconds(10));
  CHECK(Clock::now() - start < seconds(3));
  CHECK_FALSE(engine->Stats().running);
  CHECK(absl::IsFailedPrecondition(engine->Start()));
  engine->Shutdown(absl::Now());  // idempotent
}

TEST_CASE("engine: options are validated") {
  DeliveryOptions o;
  CHECK(o.Validate().ok());
  o.batch_size = 0;
  absl::Status s = o.Validate();
  CHECK(absl::IsInvalidArgument(s));
  CHECK(std::string(s.message()) ==
        "DeliveryOptions.batch_size: must be from 1 to 10000 (got 0)");
  o = DeliveryOptions();
  o.breaker_max_open = absl::Seconds(1);  // below breaker_open
  CHECK(absl::IsInvalidArgument(o.Validate()));
  CHECK(absl::IsInvalidArgument(
      DeliveryEngine::Create(nullptr, DeliveryOptions()).status()));
  Config c;
  c.webhook_batch_size = 7;
  c.webhook_lease = absl::Seconds(9);
  c.webhook_purge_interval = absl::Minutes(5);
  c.database_url = "postgresql://x@127.0.0.1/y";
  DeliveryOptions from = DeliveryOptionsFromConfig(c);
  CHECK(from.batch_size == 7);
  CHECK(from.lease == absl::Seconds(9));
  CHECK(from.purge_interval == absl::Minutes(5));
  CHECK(from.dsn == c.database_url);
}

}  // namespace
}  // namespace pggitops

namespace pggitops {
namespace {

using namespace delivery_test;  // NOLINT: test helpers

// A transport that keeps every request until the test answers it.
class HeldTransport final : public WebhookTransport {
 public:
  void Send(WebhookRequest request, Callback done) override {
    std::lock_guard<std::mutex> lock(mu_);
    held_.emplace_back(std::move(request), std::move(done));
  }
  void Shutdown(absl::Time) override {}
  size_t size() {
    std::lock_guard<std::mutex> lock(mu_);
    return held_.size();
  }
  WebhookRequest request(size_t i) {
    std::lock_guard<std::mutex> lock(mu_);
    return held_[i].first;
  }
  void AnswerAll(int status) {
    std::vector<std::pair<WebhookRequest, Callback>> all;
    {
      std::lock_guard<std::mutex> lock(mu_);
      all.swap(held_);
    }
    for (auto& [request, done] : all) {
      WebhookResponse r;
      r.http_status = status;
      done(std::move(r));
    }
  }

 private:
  std::mutex mu_;
  std::vector<std::pair<WebhookRequest, Callback>> held_;
};

TEST_CASE("engine: a foreign transport's late answers are ignored") {
  const std::string dsn = MigratedDatabase("engine_foreign_transport");
  const std::string secret = TestSecret('f');
  const int64_t w =
      AddWebhook(dsn, "held", "https://hooks.example/x", {}, secret);
  const int64_t alert = AddAlert(dsn);
  auto pool = MakePool(dsn);
  HeldTransport transport;
  DeliveryOptions o = TestOptions(dsn);
  o.transport = &transport;
  auto engine = StartEngine(pool.get(), o);
  REQUIRE(
      WaitFor([&] { return transport.size() == 1; }, std::chrono::seconds(10)));
  const WebhookRequest r = transport.request(0);
  CHECK(r.url == "https://hooks.example/x");
  CHECK(r.verify_tls);
  CHECK(r.timeout == absl::Seconds(30));
  CHECK(r.endpoint_key == std::to_string(w));
  std::map<std::string, std::string> h(r.headers.begin(), r.headers.end());
  CHECK(h["webhook-id"] ==
        "msg_" + std::to_string(alert) + "_" + std::to_string(w));
  CHECK(VerifyStandardWebhook(secret, h["webhook-id"], h["webhook-timestamp"],
                              h["webhook-signature"], r.body,
                              std::stoll(h["webhook-timestamp"])) == "");

  // The engine stops at its deadline although the attempt never ends, and
  // hands the row back.
  const auto start = Clock::now();
  engine->Shutdown(absl::Now() + absl::Milliseconds(300));
  CHECK(Clock::now() - start < std::chrono::seconds(5));
  CHECK(Scalar(dsn,
               "SELECT delivery_status || '|' || (lease_owner IS NULL) "
               "FROM alert_delivery_queue") == "pending|true");
  // The answer arriving afterwards changes nothing (and does not crash).
  transport.AnswerAll(200);
  engine.reset();
  CHECK(Scalar(dsn, "SELECT delivery_status FROM alert_delivery_queue") ==
        "pending");
  CHECK(Count(dsn, "SELECT count(*) FROM delivery_attempts") == 0);
}

}  // namespace
}  // namespace pggitops
