// Pool capacity, waiting, overflow and concurrency, with a fake connector.
// Only the tests whose caller must block use a (tiny) real timeout.
#include <atomic>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/match.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/clock.h"
#include "doctest/doctest.h"
#include "libpggitops/pool/fake_connector_for_test.h"
#include "pggitops/connection_pool.h"
#include "testing/fake_env.h"

namespace pggitops::internal {
namespace {

// Tests where several threads use the pool pass the real Env (only read,
// never slept on): FakeEnv's absl::Mutex is invisible to ThreadSanitizer
// (Debian's Abseil is not instrumented), so it would report false races.
struct Fixture {
  explicit Fixture(int size = 2, int max_overflow = 1,
                   absl::Duration timeout = absl::Seconds(30),
                   Env* real_env = nullptr) {
    options.size = size;
    options.max_overflow = max_overflow;
    options.timeout = timeout;
    options.env = real_env != nullptr ? real_env : &env;
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

  testing::FakeEnv env;
  MetricsRegistry metrics;
  std::shared_ptr<FakeServer> server = std::make_shared<FakeServer>(&env);
  PoolOptions options;
  std::unique_ptr<ConnectionPool> pool;
};

// Spins (yielding, never sleeping) until `pred` holds; fails after 10 s.
template <typename Pred>
void WaitFor(Pred pred) {
  const absl::Time give_up = absl::Now() + absl::Seconds(10);
  while (!pred()) {
    REQUIRE(absl::Now() < give_up);
    std::this_thread::yield();
  }
}

TEST_CASE("Pool: opens nothing until the first checkout, then reuses") {
  Fixture f;
  CHECK(f.server->connect_attempts() == 0);
  uint64_t first_id;
  {
    PooledConnection lease = f.Get();
    first_id = lease.connection_id();
    CHECK(f.pool->Stats().checked_out == 1);
  }
  CHECK(f.pool->Stats().idle == 1);
  PooledConnection again = f.Get();
  CHECK(again.connection_id() == first_id);
  CHECK(f.server->connect_attempts() == 1);
  CHECK(f.server->connect_timeouts()[0] == absl::Seconds(5));
}

TEST_CASE("Pool: size 2 + overflow 1 gives three leases, then times out") {
  Fixture f(2, 1, absl::Milliseconds(20));
  PooledConnection a = f.Get(), b = f.Get(), c = f.Get();
  PoolStats s = f.pool->Stats();
  CHECK(s.checked_out == 3);
  CHECK(s.overflow == 1);
  CHECK(s.available == 0);
  absl::StatusOr<PooledConnection> d = f.pool->Acquire();
  REQUIRE_FALSE(d.ok());
  CHECK(absl::IsDeadlineExceeded(d.status()));
  CHECK(absl::StartsWith(d.status().message(), "pool timeout"));
  CHECK(f.pool->Stats().timeouts_total == 1);
  CHECK(f.server->connect_attempts() == 3);  // no fourth connection

  c.Release();  // overflow: closed on return
  CHECK(f.server->open() == 2);
  CHECK(f.pool->Stats().overflow == 0);
  absl::StatusOr<PooledConnection> e = f.pool->Acquire();
  REQUIRE(e.ok());
  CHECK(f.pool->Stats().checked_out == 3);
}

TEST_CASE("Pool: returns above size close the surplus, keep size open") {
  Fixture f(2, 3);
  std::vector<PooledConnection> leases;
  for (int i = 0; i < 5; ++i) leases.push_back(f.Get());
  CHECK(f.server->open() == 5);
  leases.clear();
  CHECK(f.server->open() == 2);
  PoolStats s = f.pool->Stats();
  CHECK(s.idle == 2);
  CHECK(s.open == 2);
  CHECK(s.checked_out == 0);
  CHECK(s.available == 5);
}

TEST_CASE("Pool: waiters are served first come, first served") {
  Fixture f(1, 0, absl::Seconds(30), Env::Default());
  PooledConnection held = f.Get();
  absl::Mutex mu;
  std::vector<int> order;
  auto waiter = [&](int n) {
    PooledConnection lease = f.Get();
    PoolLock lock(&mu);
    order.push_back(n);
  };
  std::thread t1(waiter, 1);
  WaitFor([&] { return f.pool->Stats().waiting == 1; });
  std::thread t2(waiter, 2);
  WaitFor([&] { return f.pool->Stats().waiting == 2; });
  std::thread t3(waiter, 3);
  WaitFor([&] { return f.pool->Stats().waiting == 3; });
  held.Release();
  t1.join();
  t2.join();
  t3.join();
  CHECK(order == std::vector<int>{1, 2, 3});
  CHECK(f.server->connect_attempts() == 1);  // the one connection, handed on
}

TEST_CASE("Pool: a discarded lease lets a waiter open a new connection") {
  Fixture f(1, 0, absl::Seconds(30), Env::Default());
  PooledConnection held = f.Get();
  const uint64_t old_id = held.connection_id();
  std::atomic<uint64_t> got{0};
  std::thread t([&] { got = f.Get().connection_id(); });
  WaitFor([&] { return f.pool->Stats().waiting == 1; });
  held.Discard();
  t.join();
  CHECK(got != 0);
  CHECK(got != old_id);
  CHECK(f.server->connect_attempts() == 2);
  CHECK(f.server->open() == 1);
  CHECK(f.pool->Stats().discarded_total == 1);
}

TEST_CASE("Pool: gauges follow the leases") {
  Fixture f(2, 1);
  PooledConnection a = f.Get(), b = f.Get(), c = f.Get();
  const std::string text = f.metrics.Serialize();
  CHECK(text.find("db_connection_pool_size 2") != std::string::npos);
  CHECK(text.find("db_connection_pool_checked_out 3") != std::string::npos);
  CHECK(text.find("db_connection_pool_available 0") != std::string::npos);
  CHECK(text.find("db_connection_pool_overflow 1") != std::string::npos);
  CHECK(text.find("db_connection_pool_waiting 0") != std::string::npos);
  CHECK(text.find("db_connection_pool_wait_seconds_count 3") !=
        std::string::npos);
  a.Release();
  b.Release();
  c.Release();
  const std::string after = f.metrics.Serialize();
  CHECK(after.find("db_connection_pool_checked_out 0") != std::string::npos);
  CHECK(after.find("db_connection_pool_available 3") != std::string::npos);
  CHECK(after.find("db_connection_pool_overflow 0") != std::string::npos);
}

TEST_CASE("Pool: a timed-out wait counts in the timeout metric") {
  Fixture f(1, 0, absl::Milliseconds(20));
  PooledConnection held = f.Get();
  CHECK_FALSE(f.pool->Acquire().ok());
  CHECK(f.metrics.Serialize().find("db_connection_pool_timeouts_total 1") !=
        std::string::npos);
  CHECK(f.pool->Stats().waiting == 0);
}

TEST_CASE("Pool: Acquire(timeout) overrides the pool timeout") {
  Fixture f(1, 0, absl::Hours(1));
  PooledConnection held = f.Get();
  absl::StatusOr<PooledConnection> r = f.pool->Acquire(absl::Milliseconds(20));
  CHECK(absl::IsDeadlineExceeded(r.status()));
}

TEST_CASE("Pool: Close fails waiters and later checkouts, closes idle") {
  Fixture f(2, 0, absl::Seconds(30), Env::Default());
  PooledConnection a = f.Get();
  { PooledConnection b = f.Get(); }
  CHECK(f.server->open() == 2);
  PooledConnection c = f.Get();  // both out now
  absl::Status waiter_status;
  std::thread t([&] { waiter_status = f.pool->Acquire().status(); });
  WaitFor([&] { return f.pool->Stats().waiting == 1; });
  c.Release();  // handed to the waiter... which then returns it
  t.join();
  CHECK(waiter_status.ok());
  f.pool->Shutdown();
  CHECK(f.server->open() == 1);  // only `a` is left
  CHECK(absl::IsFailedPrecondition(f.pool->Acquire().status()));
  a.Release();
  CHECK(f.server->open() == 0);
}

TEST_CASE("Pool: a waiter blocked at Close is released with an error") {
  Fixture f(1, 0, absl::Seconds(30), Env::Default());
  PooledConnection held = f.Get();
  absl::Status status;
  std::thread t([&] { status = f.pool->Acquire().status(); });
  WaitFor([&] { return f.pool->Stats().waiting == 1; });
  f.pool->Shutdown();
  t.join();
  CHECK(absl::IsFailedPrecondition(status));
}

TEST_CASE("Pool: a lease may outlive the pool object") {
  Fixture f(1, 0);
  PooledConnection lease = f.Get();
  f.pool.reset();
  CHECK(f.server->open() == 1);
  CHECK(lease.Query("SELECT 1").ok());
  lease.Release();
  CHECK(f.server->open() == 0);
}

TEST_CASE("Pool: moved leases return exactly once") {
  Fixture f(1, 0);
  PooledConnection a = f.Get();
  PooledConnection b = std::move(a);
  CHECK_FALSE(a.valid());
  CHECK(b.valid());
  PooledConnection c;
  c = std::move(b);
  CHECK(f.pool->Stats().checked_out == 1);
  c = PooledConnection();
  CHECK(f.pool->Stats().checked_out == 0);
  CHECK(f.pool->Stats().idle == 1);
  a.Release();  // empty: no-op
  CHECK(f.pool->Stats().idle == 1);
}

TEST_CASE("Pool: many threads never exceed size + overflow") {
  Fixture f(3, 2, absl::Seconds(30), Env::Default());
  constexpr int kThreads = 8;
  constexpr int kRounds = 500;
  std::atomic<int> failures{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&] {
      for (int i = 0; i < kRounds; ++i) {
        absl::StatusOr<PooledConnection> lease = f.pool->Acquire();
        if (!lease.ok() || !lease->Query("SELECT 1").ok()) ++failures;
      }
    });
  }
  for (auto& t : threads) t.join();
  CHECK(failures == 0);
  CHECK(f.server->max_open() <= 5);
  PoolStats s = f.pool->Stats();
  CHECK(s.checked_out == 0);
  CHECK(s.waiting == 0);
  CHECK(s.open <= 3);
  CHECK(f.server->open() == s.open);
}

}  // namespace
}  // namespace pggitops::internal
