// PgListener on a real PostgreSQL: several channels and subscribers on one
// session, subscribing and unsubscribing while running, reconnection after
// pg_terminate_backend (with the reconnect callbacks), and a clean Shutdown().
// PostgreSQL restarts are in restart_test.cc (not parallel-safe).
#include <atomic>
#include <mutex>
#include <string>
#include <vector>

#include "doctest/doctest.h"
#include "pggitops/pg_listener.h"
#include "tests/integration/delivery/delivery_test_util.h"

namespace pggitops {
namespace {

using delivery_test::Exec;
using delivery_test::WaitFor;
using std::chrono::seconds;

// Collects payloads per subscriber.
struct Log {
  std::mutex mu;
  std::vector<std::string> got;
  void Add(const std::string& s) {
    std::lock_guard<std::mutex> lock(mu);
    got.push_back(s);
  }
  std::vector<std::string> Get() {
    std::lock_guard<std::mutex> lock(mu);
    return got;
  }
  size_t Size() { return Get().size(); }
};

std::unique_ptr<PgListener> MakeListener(const std::string& dsn,
                                         const std::string& app) {
  PgListenerOptions o;
  o.dsn = dsn;
  o.application_name = app;
  o.reconnect_min = absl::Milliseconds(50);
  o.reconnect_max = absl::Milliseconds(500);
  absl::StatusOr<std::unique_ptr<PgListener>> l = PgListener::Create(o);
  REQUIRE_MESSAGE(l.ok(), l.status().ToString());
  return *std::move(l);
}

TEST_CASE("listener: channels and subscribers share one session") {
  const std::string dsn = harness::FreshDatabase("listener_fanout");
  auto l = MakeListener(dsn, "listener-fanout");
  Log a1, a2, b;
  std::atomic<int> reconnects{0};
  REQUIRE(
      l->Subscribe("chan_a", [&](const std::string& p) { a1.Add(p); }).ok());
  REQUIRE(
      l->Subscribe("chan_a", [&](const std::string& p) { a2.Add(p); }).ok());
  REQUIRE(l->Subscribe("chan_b", [&](const std::string& p) { b.Add(p); }).ok());
  l->AddReconnectCallback([&] { ++reconnects; });
  REQUIRE(l->Start().ok());
  REQUIRE(l->WaitUntilListening(absl::Seconds(10)));
  CHECK(WaitFor([&] { return reconnects.load() == 1; }, seconds(5)));

  Exec(dsn, "NOTIFY chan_a, 'x'");
  Exec(dsn, "SELECT pg_notify('chan_b', 'y')");
  REQUIRE(
      WaitFor([&] { return a1.Size() == 1 && a2.Size() == 1 && b.Size() == 1; },
              seconds(10)));
  CHECK(a1.Get()[0] == "x");
  CHECK(a2.Get()[0] == "x");
  CHECK(b.Get()[0] == "y");
  // One session for all channels.
  CHECK(delivery_test::Count(dsn,
                             "SELECT count(*) FROM pg_stat_activity "
                             "WHERE application_name = 'listener-fanout'") ==
        1);
  PgListenerStats s = l->Stats();
  CHECK(s.connected);
  CHECK(s.connects_total == 1);
  CHECK(s.notifications_total == 2);
  l->Shutdown();
  CHECK_FALSE(l->Stats().running);
}

TEST_CASE("listener: subscribe and unsubscribe while running") {
  const std::string dsn = harness::FreshDatabase("listener_dynamic");
  auto l = MakeListener(dsn, "listener-dynamic");
  REQUIRE(l->Start().ok());
  REQUIRE(l->WaitUntilListening(absl::Seconds(10)));
  Log late;
  absl::StatusOr<int> id =
      l->Subscribe("late_chan", [&](const std::string& p) { late.Add(p); });
  REQUIRE(id.ok());
  REQUIRE(l->WaitUntilListening(absl::Seconds(10)));
  Exec(dsn, "NOTIFY late_chan, 'one'");
  REQUIRE(WaitFor([&] { return late.Size() == 1; }, seconds(10)));

  l->Unsubscribe(*id);
  REQUIRE(l->WaitUntilListening(absl::Seconds(10)));
  Exec(dsn, "NOTIFY late_chan, 'two'");
  // A control channel proves notifications still flow.
  Log control;
  REQUIRE(l->Subscribe("control", [&](const std::string& p) {
             control.Add(p);
           }).ok());
  REQUIRE(l->WaitUntilListening(absl::Seconds(10)));
  Exec(dsn, "NOTIFY late_chan, 'three'; NOTIFY control, 'c'");
  REQUIRE(WaitFor([&] { return control.Size() == 1; }, seconds(10)));
  CHECK(late.Get() == std::vector<std::string>{"one"});
  l->Shutdown();
}

TEST_CASE("listener: a callback may unsubscribe itself") {
  const std::string dsn = harness::FreshDatabase("listener_self");
  auto l = MakeListener(dsn, "listener-self");
  std::atomic<int> calls{0};
  int id = -1;
  absl::StatusOr<int> made = l->Subscribe("self_chan", [&](const std::string&) {
    ++calls;
    l->Unsubscribe(id);
  });
  REQUIRE(made.ok());
  id = *made;
  // Notifications are handed out in order: once `control` has its own,
  // both of self_chan's have been dispatched.
  Log control;
  REQUIRE(l->Subscribe("control", [&](const std::string& p) {
             control.Add(p);
           }).ok());
  REQUIRE(l->Start().ok());
  REQUIRE(l->WaitUntilListening(absl::Seconds(10)));
  Exec(dsn, "NOTIFY self_chan; NOTIFY self_chan, 'again'; NOTIFY control");
  REQUIRE(WaitFor([&] { return control.Size() == 1; }, seconds(10)));
  CHECK(calls.load() == 1);
  l->Shutdown();
}

TEST_CASE("listener: reconnects and listens again after pg_terminate_backend") {
  const std::string dsn = harness::FreshDatabase("listener_terminate");
  auto l = MakeListener(dsn, "listener-terminate");
  Log got;
  std::atomic<int> reconnects{0};
  REQUIRE(
      l->Subscribe("t_chan", [&](const std::string& p) { got.Add(p); }).ok());
  l->AddReconnectCallback([&] { ++reconnects; });
  REQUIRE(l->Start().ok());
  REQUIRE(l->WaitUntilListening(absl::Seconds(10)));
  REQUIRE(WaitFor([&] { return reconnects.load() == 1; }, seconds(5)));

  Exec(dsn,
       "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
       "WHERE application_name = 'listener-terminate'");
  REQUIRE(WaitFor([&] { return reconnects.load() == 2; }, seconds(15)));
  REQUIRE(l->WaitUntilListening(absl::Seconds(10)));
  Exec(dsn, "NOTIFY t_chan, 'after'");
  REQUIRE(WaitFor([&] { return got.Size() == 1; }, seconds(10)));
  CHECK(got.Get()[0] == "after");
  const PgListenerStats s = l->Stats();
  CHECK(s.connects_total == 2);
  CHECK(s.disconnects_total >= 1);
  CHECK_FALSE(s.last_error.empty());
  l->Shutdown();
}

TEST_CASE("listener: bad input is refused and changes nothing") {
  PgListenerOptions o;
  o.dsn = "postgresql://[broken";
  absl::StatusOr<std::unique_ptr<PgListener>> bad = PgListener::Create(o);
  CHECK(absl::IsInvalidArgument(bad.status()));
  CHECK(std::string(bad.status().message()).find("PgListenerOptions.dsn") == 0);
  o.dsn = "host=127.0.0.1";
  o.reconnect_min = absl::Seconds(10);
  o.reconnect_max = absl::Seconds(1);
  CHECK(absl::IsInvalidArgument(PgListener::Create(o).status()));

  const std::string dsn = harness::FreshDatabase("listener_bad_input");
  auto l = MakeListener(dsn, "listener-bad");
  for (const char* name :
       {"", "1abc", "has space", "semi;colon",
        "a-very-long-channel-name-that-goes-on-and-on-beyond-63-characters"}) {
    CAPTURE(name);
    CHECK(absl::IsInvalidArgument(
        l->Subscribe(name, [](const std::string&) {}).status()));
  }
  CHECK(absl::IsInvalidArgument(l->Subscribe("ok_name", nullptr).status()));
  REQUIRE(l->Start().ok());
  CHECK(absl::IsFailedPrecondition(l->Start()));
  REQUIRE(l->WaitUntilListening(absl::Seconds(10)));
  l->Shutdown();
  l->Shutdown();  // idempotent
  CHECK(absl::IsFailedPrecondition(l->Start()));
}

TEST_CASE("listener: a database that is down is retried until it answers") {
  // Nothing listens on this port; the listener keeps trying, Shutdown() ends
  // it.
  PgListenerOptions o;
  o.dsn = "postgresql://pggit:pggit@127.0.0.1:" +
          std::to_string(harness::FreePort()) + "/pggit";
  o.reconnect_min = absl::Milliseconds(20);
  o.reconnect_max = absl::Milliseconds(100);
  absl::StatusOr<std::unique_ptr<PgListener>> l = PgListener::Create(o);
  REQUIRE(l.ok());
  REQUIRE((*l)->Start().ok());
  CHECK(WaitFor([&] { return (*l)->Stats().connect_failures_total >= 3; },
                seconds(10)));
  CHECK_FALSE((*l)->WaitUntilListening(absl::Milliseconds(100)));
  HealthCheck check = (*l)->ListenerHealthCheck();
  CheckResult r = check.run();
  CHECK_FALSE(r.ok);
  CHECK(r.status == "connecting");
  const auto start = delivery_test::Clock::now();
  (*l)->Shutdown();
  CHECK(delivery_test::Clock::now() - start < std::chrono::seconds(2));
  CHECK(check.run().status == "stopped");
}

}  // namespace
}  // namespace pggitops
