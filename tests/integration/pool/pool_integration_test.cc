// The pool against a real PostgreSQL 15: capacity and overflow as the
// server counts them, recycling, backends killed with the guide's incident
// command, dirty sessions, the libpqxx adapter and many threads. These tests
// leave the server running (see pool_outage_test.cc for stop/restart).
#include <atomic>
#include <chrono>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/match.h"
#include "doctest/doctest.h"
#include "pggitops/connection_pool.h"
#include "pggitops/pqxx.h"
#include "testing/fake_env.h"
#include "tests/integration/pool/pool_it_util.h"

namespace pggitops::pool_it {
namespace {

using Clock = std::chrono::steady_clock;

TEST_CASE("pool: size 2 + overflow 1, the fourth waits or times out") {
  PoolOptions o = OptionsFor("pool_it_capacity");
  o.size = 2;
  o.max_overflow = 1;
  o.timeout = absl::Milliseconds(300);
  auto pool = MakePool(o);
  std::vector<PooledConnection> leases;
  for (int i = 0; i < 3; ++i) {
    absl::StatusOr<PooledConnection> lease = pool->Acquire();
    REQUIRE(lease.ok());
    CHECK(lease->Query("SELECT 1").ok());
    leases.push_back(*std::move(lease));
  }
  CHECK(Backends(o.application_name) == 3);

  const auto start = Clock::now();
  absl::StatusOr<PooledConnection> fourth = pool->Acquire();
  const double waited = MsSince(start);
  REQUIRE_FALSE(fourth.ok());
  CHECK(absl::IsDeadlineExceeded(fourth.status()));
  CHECK(absl::StartsWith(fourth.status().message(), "pool timeout"));
  CHECK(waited >= 290);
  CHECK(waited < 3000);
  CHECK(pool->Stats().timeouts_total == 1);

  // A fourth caller waiting gets the first connection returned.
  std::atomic<bool> served{false};
  std::thread waiter([&] {
    absl::StatusOr<PooledConnection> lease = pool->Acquire(absl::Seconds(30));
    served = lease.ok() && lease->Query("SELECT 1").ok();
  });
  while (pool->Stats().waiting != 1) std::this_thread::yield();
  leases[0].Release();
  waiter.join();
  CHECK(served);
  CHECK(pool->Stats().connects_total == 3);  // handed over, not reopened

  leases.clear();  // one of the three is overflow: closed on return
  WaitForBackends(o.application_name, 2);
  PoolStats s = pool->Stats();
  CHECK(s.open == 2);
  CHECK(s.idle == 2);
  CHECK(s.overflow == 0);
  CHECK(s.available == 3);
}

TEST_CASE("pool: connections older than recycle are replaced (fake clock)") {
  testing::FakeEnv env;
  PoolOptions o = OptionsFor("pool_it_recycle");
  o.size = 1;
  o.recycle = absl::Minutes(60);
  o.env = &env;
  auto pool = MakePool(o);
  std::string first_pid;
  {
    absl::StatusOr<PooledConnection> lease = pool->Acquire();
    REQUIRE(lease.ok());
    first_pid = BackendPid(*lease);
  }
  env.AdvanceBy(absl::Minutes(30));
  {
    absl::StatusOr<PooledConnection> lease = pool->Acquire();
    REQUIRE(lease.ok());
    CHECK(BackendPid(*lease) == first_pid);
  }
  env.AdvanceBy(absl::Minutes(30));
  absl::StatusOr<PooledConnection> lease = pool->Acquire();
  REQUIRE(lease.ok());
  CHECK(BackendPid(*lease) != first_pid);
  CHECK(pool->Stats().recycled_total == 1);
  WaitForBackends(o.application_name, 1);
}

TEST_CASE("pool: the guide's pg_terminate_backend is invisible to callers") {
  PoolOptions o = OptionsFor("pool_it_terminate");
  o.size = 3;
  o.max_overflow = 0;
  o.pre_ping = false;  // found without a round trip
  auto pool = MakePool(o);
  std::set<std::string> old_pids;
  {
    std::vector<PooledConnection> leases;
    for (int i = 0; i < 3; ++i) {
      absl::StatusOr<PooledConnection> lease = pool->Acquire();
      REQUIRE(lease.ok());
      old_pids.insert(BackendPid(*lease));
      leases.push_back(*std::move(lease));
    }
  }
  // The guide's "kill idle connections", narrowed to this pool.
  const std::string killed = harness::AdminQuery(
      "pggit",
      "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
      "WHERE state = 'idle' AND application_name = 'pool_it_terminate'");
  CHECK(killed == "t\nt\nt");
  WaitForBackends(o.application_name, 0);

  std::vector<PooledConnection> leases;
  for (int i = 0; i < 3; ++i) {
    absl::StatusOr<PooledConnection> lease = pool->Acquire();
    REQUIRE(lease.ok());
    absl::StatusOr<QueryResult> r = lease->Query("SELECT pg_backend_pid()");
    INFO(r.status().ToString());
    REQUIRE(r.ok());
    CHECK(old_pids.count(r->rows[0][0].value()) == 0);
    leases.push_back(*std::move(lease));
  }
  CHECK(pool->Stats().dead_replaced_total == 3);
  CHECK(pool->Stats().pings_total == 0);
}

TEST_CASE("pool: open and failed transactions are rolled back on return") {
  PoolOptions o = OptionsFor("pool_it_dirty");
  o.size = 1;
  o.max_overflow = 0;
  o.statement_timeout = absl::Milliseconds(1500);
  auto pool = MakePool(o);
  std::string pid;
  {
    absl::StatusOr<PooledConnection> lease = pool->Acquire();
    REQUIRE(lease.ok());
    pid = BackendPid(*lease);
    CHECK(lease->Query("BEGIN").ok());
    CHECK(lease->Query("SET LOCAL statement_timeout = '1234ms'").ok());
  }
  {
    absl::StatusOr<PooledConnection> lease = pool->Acquire();
    REQUIRE(lease.ok());
    CHECK(BackendPid(*lease) == pid);
    absl::StatusOr<QueryResult> r = lease->Query("SHOW statement_timeout");
    REQUIRE(r.ok());
    CHECK(r->rows[0][0].value() == "1500ms");  // the pool's setting
    CHECK(lease->Query("BEGIN").ok());
    absl::StatusOr<QueryResult> bad = lease->Query("SELECT 1/0");
    CHECK(absl::IsInvalidArgument(bad.status()));
    CHECK(SqlStateOf(bad.status()) == "22012");
  }
  absl::StatusOr<PooledConnection> lease = pool->Acquire();
  REQUIRE(lease.ok());
  CHECK(BackendPid(*lease) == pid);
  absl::StatusOr<QueryResult> r =
      lease->Query("SELECT $1::int + 1, $2", {"41", std::nullopt});
  REQUIRE(r.ok());
  CHECK(r->rows[0][0].value() == "42");
  CHECK_FALSE(r->rows[0][1].has_value());
  CHECK(pool->Stats().discarded_total == 0);
}

TEST_CASE("pool: libpqxx adapter, and no silent reconnection") {
  PoolOptions o = OptionsFor("pool_it_pqxx");
  o.size = 1;
  o.max_overflow = 0;
  auto pool = MakePool(o);
  absl::StatusOr<PooledConnection> lease = pool->Acquire();
  REQUIRE(lease.ok());
  int pid = 0;
  absl::Status s = RunPqxx(*lease, "pqxx work", [&](pqxx::connection& c) {
    pqxx::work txn(c);
    pid = txn.exec1("SELECT pg_backend_pid()")[0].as<int>();
    CHECK(txn.exec1("SHOW application_name")[0].as<std::string>() ==
          "pool_it_pqxx");
    txn.commit();
  });
  REQUIRE(s.ok());
  CHECK(pid == Connection(*lease).backendpid());

  absl::Status dup = RunPqxx(*lease, "dup", [](pqxx::connection& c) {
    pqxx::work txn(c);
    txn.exec("CREATE TEMP TABLE t (id int PRIMARY KEY)");
    txn.exec("INSERT INTO t VALUES (1), (1)");
  });
  CHECK(absl::IsAlreadyExists(dup));
  CHECK(SqlStateOf(dup) == "23505");

  harness::AdminQuery(
      "postgres", "SELECT pg_terminate_backend(" + std::to_string(pid) + ")");
  WaitForBackends(o.application_name, 0);
  absl::Status broken = RunPqxx(*lease, "after kill", [](pqxx::connection& c) {
    pqxx::nontransaction txn(c);
    txn.exec("SELECT 1");
  });
  CHECK(absl::IsUnavailable(broken));
  CHECK(Backends(o.application_name) == 0);  // libpqxx did not reconnect
  lease->Release();
  CHECK(pool->Stats().discarded_total == 1);
  absl::StatusOr<PooledConnection> next = pool->Acquire();
  REQUIRE(next.ok());
  CHECK(next->Query("SELECT 1").ok());
}

TEST_CASE("pool: many threads holding and returning leases") {
  PoolOptions o = OptionsFor("pool_it_threads");
  o.size = 4;
  o.max_overflow = 2;
  o.timeout = absl::Seconds(30);
  auto pool = MakePool(o);
  constexpr int kThreads = 8;
  constexpr int kRounds = 100;
  std::atomic<int> failures{0};
  std::atomic<int> max_open{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&] {
      for (int i = 0; i < kRounds; ++i) {
        absl::StatusOr<PooledConnection> lease = pool->Acquire();
        if (!lease.ok() || !lease->Query("SELECT pg_backend_pid()").ok()) {
          ++failures;
          continue;
        }
        int open = pool->Stats().open;
        int seen = max_open.load();
        while (open > seen && !max_open.compare_exchange_weak(seen, open)) {
        }
      }
    });
  }
  for (auto& t : threads) t.join();
  CHECK(failures == 0);
  CHECK(max_open <= 6);
  PoolStats s = pool->Stats();
  CHECK(s.checked_out == 0);
  CHECK(s.waiting == 0);
  CHECK(s.open <= 4);
  WaitForBackends(o.application_name, s.open);
}

TEST_CASE("pool: the database health check through a real pool") {
  PoolOptions o = OptionsFor("pool_it_health");
  o.size = 2;
  auto pool = MakePool(o);
  HealthCheck check = DatabaseHealthCheck(pool.get());
  CheckResult r = check.run();
  CHECK(r.ok);
  CHECK(r.status == "connected");
  CHECK(absl::StrContains(r.details_json, "\"pool\":{"));
  CHECK(absl::StrContains(r.details_json, "\"available\":12"));
}

}  // namespace
}  // namespace pggitops::pool_it
