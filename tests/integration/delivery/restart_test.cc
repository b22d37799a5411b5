// NOTIFY wakes the engine (a 30 s poll interval would otherwise show), and
// keeps waking it after `pg_ctl restart` and after the operations guide's
// "kill idle connections" step. Restarts the shared PostgreSQL: registered
// with is_parallel: false.
#include <string>

#include "doctest/doctest.h"
#include "pggitops/pg_listener.h"
#include "tests/integration/delivery/delivery_test_util.h"

namespace pggitops {
namespace {

using namespace delivery_test;  // NOLINT: test helpers
using std::chrono::milliseconds;
using std::chrono::seconds;

// Inserts an alert and returns how long until the receiver got it (or a
// large value on time-out).
milliseconds Latency(const std::string& dsn, Receiver* rx,
                     std::chrono::milliseconds limit) {
  const int before = rx->count();
  const auto start = Clock::now();
  AddAlert(dsn);
  if (!WaitFor([&] { return rx->count() > before; }, limit)) {
    return milliseconds(999999);
  }
  return std::chrono::duration_cast<milliseconds>(
      rx->requests()[static_cast<size_t>(before)].at - start);
}

// The guide's step 3 of "Database connection exhaustion", with the
// 5-minute idle bound shortened so the test need not wait for it.
void KillIdleConnections(const std::string& db) {
  harness::AdminQuery(db,
                      "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                      "WHERE state = 'idle' AND query_start < NOW() - "
                      "INTERVAL '0 seconds' AND pid <> pg_backend_pid()");
}

TEST_CASE("engine: NOTIFY wakes it, through restarts and killed sessions") {
  const std::string db = "engine_notify_restart";
  const std::string dsn = MigratedDatabase(db);
  Receiver rx;
  AddWebhook(dsn, "hook", rx.url());
  auto pool = MakePool(dsn);
  PgListenerOptions lo;
  lo.dsn = dsn;
  lo.reconnect_min = absl::Milliseconds(50);
  lo.reconnect_max = absl::Milliseconds(500);
  absl::StatusOr<std::unique_ptr<PgListener>> listener = PgListener::Create(lo);
  REQUIRE(listener.ok());
  std::atomic<int> reconnects{0};
  (*listener)->AddReconnectCallback([&] { ++reconnects; });
  // The listener is connected before the engine starts, so its first
  // connection wakes nobody: the engine's start-up claim is then its only
  // one until a NOTIFY.
  REQUIRE((*listener)->Start().ok());
  REQUIRE((*listener)->WaitUntilListening(absl::Seconds(10)));
  REQUIRE(WaitFor([&] { return reconnects.load() == 1; }, seconds(10)));
  DeliveryOptions o = TestOptions(dsn);
  o.poll_interval = absl::Seconds(30);  // polling alone would take 30 s
  o.listener = listener->get();
  auto engine = StartEngine(pool.get(), o);
  REQUIRE((*listener)->WaitUntilListening(absl::Seconds(10)));
  // Let the start-up claim pass so only NOTIFY can wake the engine.
  REQUIRE(WaitFor([&] { return engine->Stats().claim_cycles_total >= 1; },
                  seconds(10)));

  for (int i = 0; i < 3; ++i) {
    const milliseconds ms = Latency(dsn, &rx, seconds(10));
    CAPTURE(i);
    CHECK(ms < milliseconds(2000));
  }

  // pg_ctl restart: the listener reconnects, the engine polls once and
  // the next alert is delivered promptly again.
  const int before_restart = reconnects.load();
  harness::RestartPostgres();
  REQUIRE(
      WaitFor([&] { return reconnects.load() > before_restart; }, seconds(30)));
  REQUIRE((*listener)->WaitUntilListening(absl::Seconds(10)));
  CHECK(Latency(dsn, &rx, seconds(20)) < milliseconds(5000));

  // The guide's kill-idle-connections: the pool and the listener lose
  // their sessions; deliveries go on.
  const int before_kill = reconnects.load();
  KillIdleConnections(db);
  REQUIRE(
      WaitFor([&] { return reconnects.load() > before_kill; }, seconds(30)));
  REQUIRE((*listener)->WaitUntilListening(absl::Seconds(10)));
  CHECK(Latency(dsn, &rx, seconds(20)) < milliseconds(5000));

  // A notification lost while the listener was away: only the poll after
  // the reconnection can find the row (the poll interval is 30 s). New
  // sessions are refused while the alert is inserted, so the listener is
  // certainly away when its NOTIFY goes out.
  const int before_lost = reconnects.load();
  const int64_t refused_before = (*listener)->Stats().connect_failures_total;
  const int got = rx.count();
  pqxx::connection producer(dsn);
  const std::string listener_sessions =
      "FROM pg_stat_activity WHERE datname = '" + db +
      "' AND application_name = 'pggitops-listener'";
  harness::AdminQuery("postgres",
                      "ALTER DATABASE " + db + " WITH ALLOW_CONNECTIONS false");
  harness::AdminQuery("postgres",
                      "SELECT pg_terminate_backend(pid) " + listener_sessions);
  const bool away = WaitFor(
      [&] {
        return harness::AdminQuery(
                   "postgres", "SELECT count(*) " + listener_sessions) == "0";
      },
      seconds(5));
  {
    pqxx::work tx(producer);
    tx.exec(
        "INSERT INTO pggit.alerts (operation_type, severity, message) "
        "VALUES ('commit', 'WARNING', 'while away')");
    tx.commit();
  }
  // The listener tried to come back and was refused.
  const bool refused = WaitFor(
      [&] {
        return (*listener)->Stats().connect_failures_total > refused_before;
      },
      seconds(10));
  harness::AdminQuery("postgres",
                      "ALTER DATABASE " + db + " WITH ALLOW_CONNECTIONS true");
  REQUIRE(away);
  CHECK(refused);
  REQUIRE(
      WaitFor([&] { return reconnects.load() > before_lost; }, seconds(30)));
  CHECK(WaitFor([&] { return rx.count() > got; }, seconds(10)));

  engine->Shutdown(absl::Now() + absl::Seconds(5));
  (*listener)->Shutdown();
  CHECK(Count(dsn,
              "SELECT count(*) FROM alert_delivery_queue WHERE "
              "delivery_status <> 'delivered'") == 0);
}

}  // namespace
}  // namespace pggitops
