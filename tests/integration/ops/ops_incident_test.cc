// pggit-ops incident KIND against the real daemon, PostgreSQL and webhook
// receivers: each incident's condition is created for real (a slow
// statement holding a lock, a pool held to exhaustion, a backlog of pending
// deliveries, a burst of 5xx while PostgreSQL is down), the diagnosis must
// name it, and --apply must fix it. Stops the shared PostgreSQL, so it runs
// alone (is_parallel: false).
#include <atomic>
#include <memory>
#include <pqxx/pqxx>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/match.h"
#include "tests/integration/delivery/delivery_test_util.h"
#include "tests/integration/ops/ops_test_util.h"

namespace pggitops::ops_test {
namespace {

using absl::StrContains;

// GETs `path` from `n` threads at once (e.g. cache misses that wait on a
// lock); the statuses once all have answered.
class Burst {
 public:
  Burst(int port, int n, const std::string& path) {
    for (int i = 0; i < n; ++i) {
      threads_.emplace_back([this, port, i, path] {
        httplib::Client c("127.0.0.1", port);
        c.set_read_timeout(120, 0);
        auto r = c.Get((path + std::to_string(i + 1)).c_str());
        statuses_[i] = r ? r->status : -1;
      });
    }
  }
  ~Burst() { Join(); }
  std::vector<int> Join() {
    for (std::thread& t : threads_) {
      if (t.joinable()) t.join();
    }
    return std::vector<int>(statuses_, statuses_ + threads_.size());
  }

 private:
  int statuses_[16] = {};
  std::vector<std::thread> threads_;
};

// A series of /metrics without labels; -1 when missing.
double Metric(const Ops& ops, const std::string& name) {
  auto r = ops.Client().Get("/metrics");
  if (!r) return -1;
  size_t at = r->body.find("\n" + name + " ");
  if (at == std::string::npos) return -1;
  return std::stod(r->body.substr(at + name.size() + 2));
}

bool LockHeld(const Ops& ops, const std::string& table) {
  return PollUntil(10000, [&] {
    return ops.Sql(
               "SELECT count(*) FROM pg_locks WHERE granted AND mode ="
               " 'AccessExclusiveLock' AND relation = '" +
               table + "'::regclass") == "1";
  });
}

TEST_CASE("incident high-latency: a slow statement holding a lock") {
  Ops ops("ops_latency", {{"DATABASE_STATEMENT_TIMEOUT", "2"}});
  ops.StartDaemon();
  OpsResult r = ops.Run({"incident", "high-latency"});
  CHECK_MESSAGE(r.code == 0, r.Dump());
  CHECK(r.Level("latency") == "ok");

  // A statement that runs long while it holds an exclusive lock on alerts:
  // the daemon's reads of alerts wait until their statement timeout.
  harness::Process holder({"psql", "-X", "-q", ops.dsn, "-c",
                           "BEGIN; LOCK TABLE pggit.alerts IN ACCESS "
                           "EXCLUSIVE MODE; SELECT pg_sleep(300)"});
  REQUIRE(LockHeld(ops, "pggit.alerts"));
  std::vector<int> statuses =
      Burst(ops.port, 6, "/api/v1/alerts?offset=").Join();
  for (int s : statuses) CHECK(s >= 500);

  r = ops.Run({"incident", "high-latency", "--cancel-after", "1"});
  CHECK_MESSAGE(r.code == 1, r.Dump());
  CHECK(r.Level("latency") == "warn");
  CHECK(StrContains(r.Causes(), "AccessExclusiveLock on alerts"));
  CHECK(StrContains(r.Causes(), "pg_sleep(300)"));

  // --apply without --yes and without a terminal changes nothing.
  r = ops.Run({"incident", "high-latency", "--apply", "--cancel-after", "1"});
  CHECK(StrContains(r.Messages("apply"), "not applied"));
  CHECK(r.Actions().empty());
  CHECK(holder.Running());

  r = ops.Run(
      {"incident", "high-latency", "--apply", "--yes", "--cancel-after", "1"});
  CHECK_MESSAGE(r.code <= 1, r.Dump());
  CHECK(StrContains(r.Actions(), "warmed the cache"));
  CHECK(StrContains(r.Actions(), "cancelled the statement of pid"));
  CHECK(holder.Wait(10000) != 0);  // its statement was cancelled
  auto start = Clock::now();
  auto read = ops.Client().Get("/api/v1/alerts?offset=100");
  REQUIRE(read);
  CHECK(read->status == 200);
  CHECK(Clock::now() - start < std::chrono::seconds(1));
  r = ops.Run({"incident", "high-latency", "--cancel-after", "1"});
  CHECK(r.Level("locks") == "ok");
  CHECK(!StrContains(r.Causes(), "pg_sleep(300)"));
}

TEST_CASE("incident pool-exhausted: ends idle sessions of this database only") {
  Ops ops("ops_pool", {{"DATABASE_POOL_SIZE", "2"},
                       {"DATABASE_POOL_MAX_OVERFLOW", "0"},
                       {"DATABASE_POOL_TIMEOUT", "60"},
                       {"DATABASE_STATEMENT_TIMEOUT", "60"}});
  ops.StartDaemon();
  OpsResult r = ops.Run({"incident", "pool-exhausted"});
  CHECK_MESSAGE(r.code == 0, r.Dump());

  // An idle session in another database, which the remedy must not touch.
  pqxx::connection other(harness::FreshDatabase("ops_pool_other"));
  // A transaction left open with a lock: every read of webhooks waits, and
  // each waiting request holds one of the daemon's two connections.
  auto blocker = std::make_unique<pqxx::connection>(ops.dsn);
  const std::string blocker_pid = std::to_string(blocker->backendpid());
  auto tx = std::make_unique<pqxx::work>(*blocker);
  tx->exec("LOCK TABLE pggit.webhooks IN ACCESS EXCLUSIVE MODE");
  Burst burst(ops.port, 4, "/api/v1/webhooks?offset=");
  REQUIRE(PollUntil(20000, [&] {
    // Two requests hold the connections, the others (and the daemon's
    // own background reads) wait.
    return Metric(ops, "db_connection_pool_available") == 0 &&
           Metric(ops, "db_connection_pool_waiting") >= 2;
  }));
  REQUIRE(PollUntil(10000, [&] {
    return ops.Sql("SELECT count(*) FROM pg_stat_activity WHERE pid = " +
                   blocker_pid +
                   " AND state = 'idle in transaction' AND state_change <"
                   " now() - interval '1 second'") == "1";
  }));

  r = ops.Run({"incident", "pool-exhausted"});
  CHECK_MESSAGE(r.code == 2, r.Dump());
  CHECK(r.Level("pool") == "crit");
  CHECK(StrContains(r.Messages("pool"), "0 available"));
  CHECK(StrContains(r.Causes(), "pid " + blocker_pid));
  CHECK(StrContains(r.Causes(), "idle in transaction"));

  r = ops.Run({"incident", "pool-exhausted", "--apply", "--yes",
               "--idle-seconds", "1"});
  CHECK_MESSAGE(r.code <= 1, r.Dump());
  CHECK(StrContains(r.Actions(), "ended pid " + blocker_pid));
  CHECK(r.Level("recovery") == "ok");
  for (int s : burst.Join()) CHECK(s == 200);
  CHECK(ops.Sql("SELECT count(*) FROM pg_stat_activity WHERE pid = " +
                blocker_pid) == "0");
  // The session in the other database is still there.
  pqxx::work w(other);
  CHECK(w.exec1("SELECT 1")[0].as<int>() == 1);
  w.commit();
  tx.reset();
  blocker.reset();
}

TEST_CASE("incident queue-backlog: disables the failing webhook, retries") {
  std::atomic<bool> ok_up{false};
  delivery_test::Receiver rx([&](const delivery_test::Received& req, int) {
    delivery_test::Receiver::Reply reply;
    if (req.path == "/broken") {
      reply.status = 500;
    } else if (!ok_up) {
      reply.status = 503;
      reply.headers["Retry-After"] = "3600";
    }
    return reply;
  });
  Ops ops("ops_queue", {{"WEBHOOK_ALLOW_PRIVATE_TARGETS", "true"},
                        {"WEBHOOK_POLL_INTERVAL", "0.2"}});
  ops.StartDaemon();
  OpsResult r = ops.Run({"incident", "queue-backlog", "--threshold", "10"});
  CHECK_MESSAGE(r.code == 0, r.Dump());

  auto c = ops.Client();
  std::map<std::string, std::string> ids;
  for (const std::string name : {"broken", "ok"}) {
    json body = {
        {"name", name},
        {"url", rx.url("/" + name)},
        {"retry_policy",
         {{"max_retries", 10}, {"backoff_base", 10}, {"max_backoff", 3600}}}};
    auto made = c.Post("/api/v1/webhooks", body.dump(), "application/json");
    REQUIRE(made);
    REQUIRE_MESSAGE(made->status == 201, made->body);
    ids[name] = json::parse(made->body)["id"].dump();
  }
  ops.Sql(
      "INSERT INTO pggit.alerts (operation_type, severity, message)"
      " SELECT 'push', 'WARNING', 'backlog ' || g FROM generate_series(1, 20)"
      " g");
  // Both receivers fail until their breakers open; the rows wait.
  REQUIRE_MESSAGE(PollUntil(60000,
                            [&] {
                              return ops.Sql(
                                         "SELECT count(*) FROM "
                                         "pggit.webhooks WHERE "
                                         "breaker_state = 'open'") == "2";
                            }),
                  ops.DaemonLog());
  ok_up = true;  // the "ok" receiver is back; "broken" is not

  r = ops.Run({"incident", "queue-backlog", "--threshold", "10"});
  CHECK_MESSAGE(r.code == 2, r.Dump());
  CHECK(r.Level("queue") == "crit");
  CHECK(StrContains(r.Causes(),
                    "webhook 'broken' (id " + ids["broken"] + ") is failing"));
  CHECK(StrContains(r.Causes(), "last HTTP 500"));

  r = ops.Run({"incident", "queue-backlog", "--threshold", "10", "--apply",
               "--yes", "--timeout", "60"});
  CHECK_MESSAGE(r.code <= 1, r.Dump());
  CHECK(StrContains(r.Actions(), "disabled webhook " + ids["broken"]));
  CHECK(!StrContains(r.Actions(), "disabled webhook " + ids["ok"]));
  CHECK(StrContains(r.Actions(), "retry-pending"));
  CHECK(r.Level("recovery") == "ok");
  CHECK(ops.Sql("SELECT is_active FROM pggit.webhooks WHERE id = " +
                ids["broken"]) == "f");
  CHECK(ops.Sql("SELECT count(*) FROM pggit.alert_delivery_queue WHERE"
                " webhook_id = " +
                ids["ok"] + " AND delivery_status = 'delivered'") == "20");
  // The broken webhook's deliveries wait, parked, for a person.
  r = ops.Run({"incident", "queue-backlog", "--threshold", "10"});
  CHECK(r.code == 0);
  CHECK(r.j["data"]["queue"]["parked"] == 20);
}

TEST_CASE("incident error-rate: 5xx while PostgreSQL is down; restart") {
  Ops ops("ops_errors",
          {{"DATABASE_CONNECT_TIMEOUT", "1"}, {"DATABASE_POOL_TIMEOUT", "2"}});
  ops.StartDaemon();
  OpsResult r = ops.Run({"incident", "error-rate"});
  CHECK_MESSAGE(r.code <= 1, r.Dump());
  CHECK(r.Level("errors") == "ok");

  harness::StopPostgres();
  auto c = ops.Client();
  for (int i = 1; i <= 15; ++i) {
    auto got = c.Get(("/api/v1/alerts?offset=" + std::to_string(i)).c_str());
    REQUIRE(got);
    CHECK(got->status == 503);
  }
  r = ops.Run({"incident", "error-rate"});
  CHECK_MESSAGE(r.code == 2, r.Dump());
  CHECK(r.Level("errors") == "crit");
  CHECK(r.Level("database") == "crit");
  CHECK(StrContains(r.Messages("5xx"), "15 x 503 on /api/v1/alerts"));
  CHECK(StrContains(r.Causes(), "PostgreSQL is unreachable"));

  // A restart cannot help while the database is down: refused.
  r = ops.Run({"incident", "error-rate", "--apply", "--yes"});
  CHECK(r.code == 2);
  CHECK(StrContains(r.Messages("apply"), "not restarting"));
  CHECK(ops.Systemctl("show", "--property=NRestarts --value") == "0");

  harness::StartPostgres();
  r = ops.Run({"incident", "error-rate", "--apply", "--yes"});
  CHECK_MESSAGE(r.code <= 1, r.Dump() << ops.DaemonLog());
  CHECK(StrContains(r.Actions(), "systemctl restart pggit-api.service"));
  CHECK(r.Level("ready") == "ok");
  CHECK(r.Level("recovery") == "ok");
  CHECK(ops.Systemctl("show", "--property=NRestarts --value") == "1");
}

}  // namespace
}  // namespace pggitops::ops_test
