// Crash safety: kill -9 the delivering process (examples/deliver_webhook)
// while hundreds of deliveries are in flight, start it again: every
// (alert, webhook) pair is received at least once, and nothing stays
// pending or in progress once the crashed process's leases have run out.
#include <csignal>
#include <cstdlib>
#include <set>
#include <string>

#include "doctest/doctest.h"
#include "tests/integration/delivery/delivery_test_util.h"

namespace pggitops {
namespace {

using namespace delivery_test;  // NOLINT: test helpers
using std::chrono::milliseconds;
using std::chrono::seconds;

std::string Program() {
  const char* path = std::getenv("PGGITOPS_DELIVER_WEBHOOK");
  return path != nullptr ? path
                         : harness::BuildPath("examples/deliver_webhook");
}

std::vector<std::string> Command(const std::string& dsn) {
  return {Program(),
          "--dsn",
          dsn,
          "--allow-private-targets",
          "--lease-seconds",
          "3",
          "--poll-ms",
          "500",
          "--max-in-flight",
          "300",
          "--per-endpoint",
          "40"};
}

TEST_CASE("crash: kill -9 with hundreds in flight loses nothing") {
  const std::string dsn = MigratedDatabase("delivery_crash");
  Receiver rx(
      [](const Received&, int) {
        Receiver::Reply r;
        r.delay = milliseconds(1500);
        return r;
      },
      /*threads=*/400);
  constexpr int kWebhooks = 10;
  constexpr int kAlerts = 60;
  for (int i = 0; i < kWebhooks; ++i) {
    AddWebhook(dsn, "hook" + std::to_string(i),
               rx.url("/h" + std::to_string(i)));
  }
  for (int i = 0; i < kAlerts; ++i) AddAlert(dsn);
  const int pairs = kWebhooks * kAlerts;

  {
    harness::Process first(Command(dsn));
    REQUIRE_MESSAGE(WaitFor([&] { return rx.count() >= 200; }, seconds(60)),
                    first.Output());
    CHECK(Count(dsn,
                "SELECT count(*) FROM alert_delivery_queue WHERE "
                "delivery_status = 'in_progress'") >= 200);
    first.Signal(SIGKILL);
    CHECK(first.Wait(10'000) == 128 + SIGKILL);
  }
  const int64_t delivered_before =
      Count(dsn,
            "SELECT count(*) FROM alert_delivery_queue WHERE "
            "delivery_status = 'delivered'");
  CHECK(delivered_before < pairs);

  harness::Process second(Command(dsn));
  REQUIRE_MESSAGE(
      WaitFor(
          [&] {
            return Count(dsn,
                         "SELECT count(*) FROM alert_delivery_queue WHERE "
                         "delivery_status = 'delivered'") == pairs;
          },
          seconds(90)),
      second.Output());
  second.Signal(SIGTERM);
  CHECK(second.Wait(30'000) == 0);

  std::set<std::string> ids;
  for (const Received& r : rx.requests())
    ids.insert(r.headers.at("webhook-id"));
  CHECK(ids.size() == static_cast<size_t>(pairs));
  CHECK(rx.count() >= pairs);  // duplicates allowed (same webhook-id)
  CHECK(Count(dsn,
              "SELECT count(*) FROM alert_delivery_queue WHERE "
              "delivery_status IN ('pending', 'in_progress')") == 0);
}

TEST_CASE("crash: SIGTERM hands leases back for the next process") {
  const std::string dsn = MigratedDatabase("delivery_sigterm");
  Receiver rx(
      [](const Received&, int) {
        Receiver::Reply r;
        r.delay = milliseconds(6000);  // longer than the shutdown budget
        return r;
      },
      /*threads=*/64);
  AddWebhook(dsn, "slow", rx.url(), {{"timeout_seconds", "30"}});
  for (int i = 0; i < 20; ++i) AddAlert(dsn);
  std::vector<std::string> cmd = Command(dsn);
  cmd[5] = "30";  // --lease-seconds: a crash would leave rows for 30 s
  cmd.insert(cmd.end(), {"--shutdown-seconds", "2"});
  harness::Process p(cmd);
  REQUIRE_MESSAGE(WaitFor([&] { return rx.count() >= 8; }, seconds(30)),
                  p.Output());
  const auto start = Clock::now();
  p.Signal(SIGTERM);
  CHECK(p.Wait(30'000) == 0);
  CHECK(Clock::now() - start < seconds(5));  // 2 s budget + margin
  CHECK(p.Output().find("stopped:") != std::string::npos);
  CHECK(Count(dsn,
              "SELECT count(*) FROM alert_delivery_queue WHERE "
              "delivery_status = 'in_progress'") == 0);
  CHECK(Count(dsn,
              "SELECT count(*) FROM alert_delivery_queue WHERE "
              "delivery_status = 'pending' AND lease_owner IS NULL") == 20);
}

}  // namespace
}  // namespace pggitops
