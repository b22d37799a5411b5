// The PgListener's parts that need no server: options and their checks, the
// session's connection string, subscription rules, the lifecycle and the
// health check of a listener whose server cannot be reached (a socket
// folder that does not exist fails at once), and its metrics. Notification
// delivery and reconnection against a real PostgreSQL are integration
// tests (tests/integration/delivery/listener_test.cc).
#include "pggitops/pg_listener.h"

#include <string>

#include "absl/strings/match.h"
#include "doctest/doctest.h"
#include "libpggitops/notify/listener_session.h"
#include "nlohmann/json.hpp"
#include "pggitops/metrics.h"

namespace pggitops {
namespace {

constexpr char kNoServer[] =
    "host=/nonexistent/pggitops-test-socket dbname=pggit user=pggit";

PgListenerOptions Valid() {
  PgListenerOptions o;
  o.dsn = kNoServer;
  return o;
}

void CheckInvalid(const PgListenerOptions& o, const std::string& field) {
  absl::Status s = o.Validate();
  CHECK_MESSAGE(absl::IsInvalidArgument(s), field);
  CHECK_MESSAGE(absl::StartsWith(s.message(), "PgListenerOptions." + field),
                s.message());
  // Create refuses the same options with the same reason.
  absl::StatusOr<std::unique_ptr<PgListener>> l = PgListener::Create(o);
  REQUIRE_FALSE(l.ok());
  CHECK(l.status() == s);
}

TEST_CASE("PgListenerOptions: defaults are valid with a dsn") {
  PgListenerOptions o;
  CHECK(o.connect_timeout == absl::Seconds(5));
  CHECK(o.reconnect_min == absl::Milliseconds(100));
  CHECK(o.reconnect_max == absl::Seconds(5));
  CHECK(o.ping_interval == absl::Seconds(30));
  CHECK(o.application_name == "pggitops-listener");
  CHECK(o.metrics == nullptr);
  CHECK(o.env == nullptr);
  CheckInvalid(o, "dsn");  // required
  CHECK(Valid().Validate().ok());
  o.dsn = "postgresql://pggit:pggit@127.0.0.1:5432/pggit";
  CHECK(o.Validate().ok());
}

// `base` with `member` at `lo` and at `hi` is valid; a `step` beyond
// either end is refused, naming `field`.
void CheckRange(PgListenerOptions base, const std::string& field,
                absl::Duration PgListenerOptions::*member, absl::Duration lo,
                absl::Duration hi, absl::Duration step) {
  for (absl::Duration ok : {lo, hi}) {
    base.*member = ok;
    CHECK_MESSAGE(base.Validate().ok(), field, " = ", ok);
  }
  for (absl::Duration bad : {lo - step, hi + step}) {
    base.*member = bad;
    CheckInvalid(base, field);
  }
}

TEST_CASE("PgListenerOptions: each range, at and beyond its ends") {
  const absl::Duration ms = absl::Milliseconds(1);
  const absl::Duration hour = absl::Hours(1);
  using O = PgListenerOptions;
  CheckRange(Valid(), "connect_timeout", &O::connect_timeout, absl::Seconds(1),
             hour, ms);
  PgListenerOptions wide = Valid();
  wide.reconnect_max = hour;
  CheckRange(wide, "reconnect_min", &O::reconnect_min, ms, hour, ms);
  // reconnect_max starts at reconnect_min.
  PgListenerOptions from_2s = Valid();
  from_2s.reconnect_min = absl::Seconds(2);
  CheckRange(from_2s, "reconnect_max", &O::reconnect_max, absl::Seconds(2),
             hour, ms);
  CheckRange(Valid(), "ping_interval", &O::ping_interval,
             absl::Milliseconds(100), hour, ms);

  PgListenerOptions o = Valid();
  o.application_name = std::string(63, 'a');
  CHECK(o.Validate().ok());
  o.application_name = std::string(64, 'a');
  CheckInvalid(o, "application_name");
}

TEST_CASE("PgListenerOptions: a dsn libpq cannot parse names the field") {
  PgListenerOptions o = Valid();
  o.dsn = "host=h password='s3cret";  // unterminated quote
  CheckInvalid(o, "dsn");
  CHECK_FALSE(absl::StrContains(o.Validate().message(), "PoolOptions"));
  CHECK_FALSE(absl::StrContains(o.Validate().message(), "s3cret"));
}

TEST_CASE("ListenerConninfo: the dsn, no statement timeout, the name") {
  PgListenerOptions o;
  o.dsn = "postgresql://pggit:pw@127.0.0.1:5433/pggit";
  o.connect_timeout = absl::Milliseconds(2500);
  o.application_name = "pggit-api-listener";
  absl::StatusOr<std::string> c = internal::ListenerConninfo(o);
  REQUIRE(c.ok());
  CHECK(absl::StrContains(*c, "host='127.0.0.1'"));
  CHECK(absl::StrContains(*c, "port='5433'"));
  CHECK(absl::StrContains(*c, "dbname='pggit'"));
  CHECK(absl::StrContains(*c, "user='pggit'"));
  CHECK(absl::StrContains(*c, "password='pw'"));
  CHECK(absl::StrContains(*c, "connect_timeout='3'"));  // whole seconds, up
  CHECK(
      absl::StrContains(*c, "fallback_application_name='pggit-api-listener'"));
  // A LISTEN session waits for ever: no statement_timeout.
  CHECK_FALSE(absl::StrContains(*c, "statement_timeout"));

  // The dsn's own options are kept as they are.
  o.dsn = "host=h options='-c search_path=pggit'";
  c = internal::ListenerConninfo(o);
  REQUIRE(c.ok());
  CHECK(absl::StrContains(*c, "options='-c search_path=pggit'"));
  CHECK_FALSE(absl::StrContains(*c, "statement_timeout"));

  o.dsn = "";
  CHECK(absl::StartsWith(internal::ListenerConninfo(o).status().message(),
                         "PgListenerOptions.dsn: "));
}

std::unique_ptr<PgListener> Make(PgListenerOptions o = Valid()) {
  absl::StatusOr<std::unique_ptr<PgListener>> l =
      PgListener::Create(std::move(o));
  REQUIRE_MESSAGE(l.ok(), l.status().ToString());
  return *std::move(l);
}

TEST_CASE("PgListener: channel names and callbacks are checked") {
  std::unique_ptr<PgListener> l = Make();
  auto noop = [](const std::string&) {};
  for (const std::string& bad :
       {std::string(), std::string(64, 'c'), std::string("1abc"),
        std::string("has-dash"), std::string("sp ace"), std::string("quote\""),
        std::string("semi;colon")}) {
    absl::StatusOr<int> id = l->Subscribe(bad, noop);
    CHECK_MESSAGE(absl::IsInvalidArgument(id.status()), bad);
    CHECK(absl::StrContains(id.status().message(), "channel"));
  }
  for (const std::string& good :
       {std::string(63, 'c'), std::string("_x"), std::string("pggit_alerts"),
        std::string("A1")}) {
    CHECK_MESSAGE(l->Subscribe(good, noop).ok(), good);
  }
  absl::StatusOr<int> none = l->Subscribe("pggit_cache", nullptr);
  CHECK(absl::IsInvalidArgument(none.status()));
  CHECK(absl::StrContains(none.status().message(), "callback"));

  // Ids are distinct; unknown ids are ignored.
  absl::StatusOr<int> a = l->Subscribe("pggit_cache", noop);
  absl::StatusOr<int> b = l->Subscribe("pggit_cache", noop);
  REQUIRE(a.ok());
  REQUIRE(b.ok());
  CHECK(*a != *b);
  const int r = l->AddReconnectCallback([] {});
  CHECK(r != *a);
  CHECK(r != *b);
  l->Unsubscribe(*a);
  l->Unsubscribe(*a);
  l->Unsubscribe(123456);
  l->RemoveReconnectCallback(r);
  l->RemoveReconnectCallback(123456);
}

std::string ListenerStatus(PgListener* l, int* channels = nullptr,
                           bool* ok = nullptr) {
  CheckResult r = l->ListenerHealthCheck().run();
  nlohmann::json details = nlohmann::json::parse(r.details_json);
  if (channels != nullptr) *channels = details["channels"].get<int>();
  if (ok != nullptr) *ok = r.ok;
  CHECK(details["reconnects"] == 0);
  return r.status;
}

TEST_CASE("PgListener: start, stop and the health check, no server") {
  std::unique_ptr<PgListener> l = Make();
  bool reconnected = false;
  l->AddReconnectCallback([&reconnected] { reconnected = true; });
  REQUIRE(l->Subscribe("pggit_cache", [](const std::string&) {}).ok());
  REQUIRE(l->Subscribe("pggit_cache", [](const std::string&) {}).ok());
  REQUIRE(l->Subscribe("pggit_alerts", [](const std::string&) {}).ok());

  HealthCheck check = l->ListenerHealthCheck();
  CHECK(check.name == "listener");
  CHECK(check.criticality == Criticality::kNonCritical);
  int channels = 0;
  bool ok = true;
  CHECK(ListenerStatus(l.get(), &channels, &ok) == "stopped");  // not started
  CHECK(channels == 2);
  CHECK_FALSE(ok);
  CHECK_FALSE(l->Stats().running);

  REQUIRE(l->Start().ok());
  CHECK(l->Stats().running);
  CHECK_FALSE(l->Stats().connected);
  CHECK(ListenerStatus(l.get(), nullptr, &ok) == "connecting");
  CHECK_FALSE(ok);
  CHECK_FALSE(l->WaitUntilListening(absl::ZeroDuration()));
  CHECK(absl::IsFailedPrecondition(l->Start()));

  l->Shutdown();
  PgListenerStats s = l->Stats();
  CHECK_FALSE(s.running);
  CHECK_FALSE(s.connected);
  CHECK(s.connects_total == 0);
  CHECK(s.notifications_total == 0);
  CHECK(ListenerStatus(l.get()) == "stopped");
  CHECK_FALSE(reconnected);  // never connected
  l->Shutdown();             // idempotent
  CHECK(absl::IsFailedPrecondition(l->Start()));
}

TEST_CASE("PgListener: stopped before it started, it cannot start") {
  std::unique_ptr<PgListener> l = Make();
  l->Shutdown();
  CHECK(absl::IsFailedPrecondition(l->Start()));
  CHECK_FALSE(l->Stats().running);
}

TEST_CASE("PgListener: its series are registered, down until connected") {
  MetricsRegistry metrics;
  PgListenerOptions o = Valid();
  o.metrics = &metrics;
  std::unique_ptr<PgListener> l = Make(o);
  const std::string text = metrics.Serialize();
  CHECK(absl::StrContains(text, "pg_listener_connected 0\n"));
  CHECK(absl::StrContains(text, "pg_listener_reconnects_total 0\n"));
  CHECK(absl::StrContains(text, "pg_listener_notifications_total 0\n"));
}

TEST_CASE("PgListenerOptionsFromConfig: DATABASE_URL and the connect timeout") {
  Config c;
  c.database_url = "postgresql://u@db.example/x";
  c.database_connect_timeout = absl::Seconds(9);
  PgListenerOptions o = PgListenerOptionsFromConfig(c);
  CHECK(o.dsn == c.database_url);
  CHECK(o.connect_timeout == absl::Seconds(9));
  CHECK(o.Validate().ok());
}

}  // namespace
}  // namespace pggitops
