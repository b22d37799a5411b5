// What happens to a connection between leases: recycling, pre-ping, dead
// connections, dirty returns, the down latch, query metrics and the health
// check. Time is a FakeEnv; nothing here waits.
#include <memory>
#include <string>

#include "absl/strings/match.h"
#include "doctest/doctest.h"
#include "libpggitops/pool/fake_connector_for_test.h"
#include "nlohmann/json.hpp"
#include "pggitops/connection_pool.h"
#include "testing/fake_env.h"

namespace pggitops::internal {
namespace {

struct Fixture {
  explicit Fixture(PoolOptions o = {}) : options(std::move(o)) {
    options.env = &env;
    options.metrics = &metrics;
    auto p = ConnectionPool::Create(options,
                                    std::make_unique<FakeConnector>(server));
    REQUIRE(p.ok());
    pool = *std::move(p);
  }
  PooledConnection Get() {
    absl::StatusOr<PooledConnection> lease = pool->Acquire();
    REQUIRE(lease.ok());
    return *std::move(lease);
  }
  // Opens `n` connections and returns them all to the pool.
  void Warm(int n) {
    std::vector<PooledConnection> leases;
    for (int i = 0; i < n; ++i) leases.push_back(Get());
  }

  testing::FakeEnv env;
  MetricsRegistry metrics;
  std::shared_ptr<FakeServer> server = std::make_shared<FakeServer>(&env);
  PoolOptions options;
  std::unique_ptr<ConnectionPool> pool;
};

int SessionId(PooledConnection& lease) {
  return dynamic_cast<FakeConnection&>(lease.connection()).session_id();
}

TEST_CASE("Checkout: a connection older than recycle is replaced") {
  PoolOptions o;
  o.recycle = absl::Minutes(60);
  Fixture f(o);
  { PooledConnection lease = f.Get(); }
  f.env.AdvanceBy(absl::Minutes(59));
  {
    PooledConnection lease = f.Get();
    CHECK(SessionId(lease) == 1);
  }
  f.env.AdvanceBy(absl::Minutes(1));
  PooledConnection lease = f.Get();
  CHECK(SessionId(lease) == 2);
  CHECK(f.server->session(1).client_closed);
  CHECK(f.pool->Stats().recycled_total == 1);
  CHECK(f.pool->Stats().open == 1);
}

TEST_CASE("Checkout: pre-ping only after pre_ping_idle") {
  PoolOptions o;
  o.pre_ping_idle = absl::Seconds(10);
  Fixture f(o);
  f.Warm(1);
  f.env.AdvanceBy(absl::Seconds(9));
  f.Warm(1);
  CHECK(f.server->total_pings() == 0);  // busy pool: no extra round trip
  f.env.AdvanceBy(absl::Seconds(10));
  f.Warm(1);
  CHECK(f.server->total_pings() == 1);
  f.Warm(1);
  CHECK(f.server->total_pings() == 1);  // idle time restarts at return
  CHECK(f.pool->Stats().pings_total == 1);
}

TEST_CASE("Checkout: pre_ping=false never pings") {
  PoolOptions o;
  o.pre_ping = false;
  Fixture f(o);
  f.Warm(1);
  f.env.AdvanceBy(absl::Hours(1) - absl::Seconds(1));
  f.Warm(1);
  CHECK(f.server->total_pings() == 0);
}

TEST_CASE("Checkout: connections the server closed are replaced silently") {
  Fixture f;
  f.Warm(3);
  f.server->TerminateAll();
  std::vector<PooledConnection> leases;
  for (int i = 0; i < 3; ++i) {
    leases.push_back(f.Get());
    CHECK(leases.back().Query("SELECT 1").ok());
    CHECK(SessionId(leases.back()) > 3);
  }
  CHECK(f.server->total_pings() == 0);  // found without a round trip
  CHECK(f.pool->Stats().dead_replaced_total == 3);
  CHECK(f.server->open() == 3);
}

TEST_CASE("Checkout: a failed pre-ping is replaced silently") {
  Fixture f;
  f.Warm(1);
  f.server->PartitionAll();
  f.env.AdvanceBy(absl::Seconds(11));
  PooledConnection lease = f.Get();
  CHECK(SessionId(lease) == 2);
  CHECK(lease.Query("SELECT 1").ok());
  CHECK(f.pool->Stats().dead_replaced_total == 1);
}

TEST_CASE("Checkout: a dead connection makes the idle ones get pinged") {
  Fixture f;
  f.Warm(3);
  f.server->PartitionAll();  // socket checks cannot see this
  PooledConnection first = f.Get();
  CHECK_FALSE(first.Query("SELECT 1").ok());  // marks the lease broken
  first.Release();
  PooledConnection a = f.Get(), b = f.Get();
  CHECK(a.Query("SELECT 1").ok());
  CHECK(b.Query("SELECT 1").ok());
  CHECK(f.server->total_pings() == 2);
  CHECK(f.pool->Stats().dead_replaced_total == 2);
  CHECK(f.pool->Stats().discarded_total == 1);
}

TEST_CASE("Return: an open transaction is rolled back, the session kept") {
  Fixture f(PoolOptions{});
  {
    PooledConnection lease = f.Get();
    CHECK(lease.Query("BEGIN").ok());
  }
  CHECK(f.server->session(1).statements.back() == "ROLLBACK");
  PooledConnection lease = f.Get();
  CHECK(SessionId(lease) == 1);
  CHECK(lease.connection().GetTransactionState() == TransactionState::kIdle);
}

TEST_CASE("Return: a failed transaction is rolled back") {
  Fixture f;
  {
    PooledConnection lease = f.Get();
    CHECK(lease.Query("BEGIN").ok());
    absl::StatusOr<QueryResult> r = lease.Query("FAIL");
    CHECK(absl::IsInvalidArgument(r.status()));
    CHECK(SqlStateOf(r.status()) == "22012");
    CHECK(lease.Query("SELECT 1").status().code() !=
          absl::StatusCode::kOk);  // aborted transaction
  }
  PooledConnection lease = f.Get();
  CHECK(SessionId(lease) == 1);
  CHECK(lease.Query("SELECT 1").ok());
  CHECK(f.pool->Stats().discarded_total == 0);
}

TEST_CASE("Return: a session whose rollback fails is closed") {
  Fixture f;
  {
    PooledConnection lease = f.Get();
    CHECK(lease.Query("BEGIN").ok());
    f.server->Mutate(1, [](FakeSession& s) { s.rollback_fails = true; });
  }
  CHECK(f.server->session(1).client_closed);
  CHECK(f.pool->Stats().discarded_total == 1);
  PooledConnection lease = f.Get();
  CHECK(SessionId(lease) == 2);
}

TEST_CASE("Return: busy, broken and discarded sessions are closed") {
  Fixture f;
  {
    PooledConnection lease = f.Get();
    CHECK(lease.Query("ACTIVE").ok());  // a statement still running
  }
  CHECK(f.server->session(1).client_closed);
  {
    PooledConnection lease = f.Get();
    lease.MarkBroken();
  }
  CHECK(f.server->session(2).client_closed);
  {
    PooledConnection lease = f.Get();
    lease.Discard();
    CHECK_FALSE(lease.valid());
    CHECK(f.server->session(3).client_closed);
  }
  CHECK(f.pool->Stats().discarded_total == 3);
  CHECK(f.pool->Stats().open == 0);
  CHECK(f.pool->Stats().checked_out == 0);
}

TEST_CASE("Down latch: first failure after one attempt, then fast") {
  PoolOptions o;
  o.down_retry_interval = absl::Seconds(1);
  o.timeout = absl::Seconds(30);
  o.connect_timeout = absl::Seconds(5);
  Fixture f(o);
  f.server->SetConnectError(absl::UnavailableError("connection refused"));
  absl::Status first = f.pool->Acquire().status();
  CHECK(absl::IsUnavailable(first));
  CHECK(absl::StrContains(first.message(), "connection refused"));
  CHECK(f.server->connect_attempts() == 1);
  CHECK(f.pool->Stats().database_down);
  for (int i = 0; i < 5; ++i) {
    absl::Status s = f.pool->Acquire().status();
    CHECK(absl::IsUnavailable(s));
    CHECK(absl::StrContains(s.message(), "next attempt in"));
  }
  CHECK(f.server->connect_attempts() == 1);  // no attempt while latched
  CHECK(f.pool->Stats().checked_out == 0);
  f.env.AdvanceBy(absl::Seconds(1));
  CHECK(absl::IsUnavailable(f.pool->Acquire().status()));  // the probe
  CHECK(f.server->connect_attempts() == 2);
  // The probe's connect timeout is bounded by a tenth of the pool timeout.
  CHECK(f.server->connect_timeouts()[1] == absl::Seconds(3));
  f.server->SetConnectError(absl::OkStatus());
  CHECK(absl::IsUnavailable(f.pool->Acquire().status()));  // still latched
  f.env.AdvanceBy(absl::Seconds(1));
  absl::StatusOr<PooledConnection> a = f.pool->Acquire();  // probe succeeds
  CHECK(a.ok());
  CHECK_FALSE(f.pool->Stats().database_down);
  absl::StatusOr<PooledConnection> b = f.pool->Acquire();
  CHECK(b.ok());
  CHECK(f.server->connect_timeouts().back() == absl::Seconds(5));
  CHECK(f.pool->Stats().connect_failures_total == 2);
}

TEST_CASE("Down latch: dead idle connections fail fast too") {
  Fixture f;
  f.Warm(2);
  f.server->TerminateAll();
  f.server->SetConnectError(absl::UnavailableError("connection refused"));
  CHECK(absl::IsUnavailable(f.pool->Acquire().status()));
  CHECK(absl::IsUnavailable(f.pool->Acquire().status()));
  CHECK(f.server->connect_attempts() == 3);  // 2 warm + 1 replacement
  PoolStats s = f.pool->Stats();
  CHECK(s.open == 0);
  CHECK(s.checked_out == 0);
  CHECK(s.available == s.size + s.max_overflow);
}

TEST_CASE("Query: durations and slow queries are recorded") {
  PoolOptions o;
  o.slow_query = absl::Milliseconds(500);
  Fixture f(o);
  f.server->SetSlowQueryTime(absl::Milliseconds(600));
  PooledConnection lease = f.Get();
  absl::StatusOr<QueryResult> r = lease.Query("SELECT 1");
  REQUIRE(r.ok());
  CHECK(r->columns == std::vector<std::string>{"?column?"});
  REQUIRE(r->rows.size() == 1);
  CHECK(r->rows[0][0] == std::optional<std::string>("1"));
  CHECK(lease.Query("SLOW").ok());
  {
    ScopedQueryTimer timer(lease, "pqxx work");
    f.env.AdvanceBy(absl::Milliseconds(100));
  }
  const std::string text = f.metrics.Serialize();
  CHECK(text.find("db_query_duration_seconds_count 3") != std::string::npos);
  CHECK(text.find("db_slow_queries_total 1") != std::string::npos);
}

TEST_CASE("Health: connected with pool details, disconnected when down") {
  PoolOptions o;
  o.size = 3;
  o.max_overflow = 2;
  Fixture f(o);
  HealthCheck check = DatabaseHealthCheck(f.pool.get());
  CHECK(check.name == "database");
  CHECK(check.criticality == Criticality::kCritical);
  PooledConnection held = f.Get();
  CheckResult ok = check.run();
  CHECK(ok.ok);
  CHECK(ok.status == "connected");
  nlohmann::json d = nlohmann::json::parse(ok.details_json);
  CHECK(d["response_time_ms"].is_number());
  CHECK(d["pool"] == nlohmann::json{{"size", 3},
                                    {"checked_out", 1},
                                    {"overflow", 0},
                                    {"available", 4},
                                    {"waiting", 0}});
  held.Discard();
  f.server->TerminateAll();
  f.server->SetConnectError(absl::UnavailableError("connection refused"));
  CheckResult down = check.run();
  CHECK_FALSE(down.ok);
  CHECK(down.status == "disconnected");
  CHECK(absl::StrContains(down.message, "connection refused"));
}

}  // namespace
}  // namespace pggitops::internal
