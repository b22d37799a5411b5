// pool_bench: what the connection pool costs.
//
//   1. Acquire + release with 1, 2 and 8 threads (pool size 8): wall and
//      thread-CPU ns per operation, on a pool of real libpqxx connections
//      (checkout polls the socket for a server-side close, return asks
//      libpq for the transaction status) and on a pool of no-op
//      connections (the pool's own bookkeeping only).
//   2. SELECT 1 on one thread, in the same run, through a pool of size 1:
//      libpqxx on the pool's session with the lease held (the raw
//      baseline: same backend process), a lease taken and returned around
//      every statement (RunPqxx, also timed into the query histogram), the
//      same with the std-only Query() helper, and a separate plain
//      pqxx::connection with the same settings (another backend: how far
//      two identical sessions drift apart on this machine). Variants
//      alternate in short rounds; medians of the rounds are shown, rates
//      also relative to the baseline of the same round, and the client
//      CPU per statement, which other processes on the machine cannot
//      inflate.
//
// PostgreSQL: PGGITOPS_TEST_DSN if set, else the test harness starts a
// throw-away server (tests/harness). Run with
//   meson test -C <build> --benchmark pool_bench --verbose
// or <build>/bench/pool_bench directly.
#include <time.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <functional>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "libpggitops/pool/conninfo.h"
#include "pggitops/connection_pool.h"
#include "pggitops/pqxx.h"
#include "tests/harness/harness.h"

namespace {

using Clock = std::chrono::steady_clock;
using pggitops::ConnectionPool;
using pggitops::PooledConnection;
using pggitops::PoolOptions;

constexpr auto kAcquireRunTime = std::chrono::milliseconds(500);
constexpr auto kQueryRoundTime = std::chrono::milliseconds(150);
constexpr int kQueryRounds = 31;

// A session that does nothing: isolates the pool's own cost.
class NullConnection final : public pggitops::PgConnection {
 public:
  bool CheckAlive() override { return true; }
  absl::Status Ping() override { return absl::OkStatus(); }
  pggitops::TransactionState GetTransactionState() override {
    return pggitops::TransactionState::kIdle;
  }
  absl::StatusOr<pggitops::QueryResult> Execute(
      absl::string_view,
      const std::vector<std::optional<std::string>>&) override {
    return pggitops::QueryResult();
  }
};

class NullConnector final : public pggitops::PgConnector {
 public:
  absl::StatusOr<std::unique_ptr<pggitops::PgConnection>> Connect(
      absl::Duration) override {
    return std::make_unique<NullConnection>();
  }
};

std::unique_ptr<ConnectionPool> MustCreate(
    absl::StatusOr<std::unique_ptr<ConnectionPool>> pool) {
  if (!pool.ok()) {
    std::fprintf(stderr, "pool_bench: %s\n", pool.status().ToString().c_str());
    std::exit(1);
  }
  return *std::move(pool);
}

// CPU time of the calling thread: unlike wall time, other processes
// taking the CPU do not inflate it.
double ThreadCpuSeconds() {
  timespec ts;
  clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
  return ts.tv_sec + ts.tv_nsec * 1e-9;
}

struct Cost {
  double wall_ns;  // per operation, mean over threads
  double cpu_ns;   // per operation, mean over threads
};

// Acquire + release in a loop on `threads` threads.
Cost AcquireRelease(ConnectionPool* pool, int threads) {
  std::atomic<bool> go{false};
  std::atomic<bool> failed{false};
  std::vector<Cost> costs(threads);
  std::vector<std::thread> workers;
  for (int t = 0; t < threads; ++t) {
    workers.emplace_back([&, t] {
      while (!go.load()) std::this_thread::yield();
      const Clock::time_point start = Clock::now();
      const double cpu_start = ThreadCpuSeconds();
      Clock::time_point now = start;
      long n = 0;
      while (now - start < kAcquireRunTime) {
        for (int i = 0; i < 1000; ++i) {
          if (!pool->Acquire().ok()) failed = true;
        }
        n += 1000;
        now = Clock::now();
      }
      costs[t].wall_ns =
          std::chrono::duration<double, std::nano>(now - start).count() / n;
      costs[t].cpu_ns = (ThreadCpuSeconds() - cpu_start) * 1e9 / n;
    });
  }
  go = true;
  for (auto& w : workers) w.join();
  if (failed) std::fprintf(stderr, "pool_bench: an Acquire failed\n");
  Cost mean{0, 0};
  for (const Cost& c : costs) {
    mean.wall_ns += c.wall_ns / threads;
    mean.cpu_ns += c.cpu_ns / threads;
  }
  return mean;
}

struct Round {
  double per_second;  // statements per second (wall clock)
  double cpu_us;      // client CPU per statement
};

// Runs `one` repeatedly for kQueryRoundTime.
Round Rate(const std::function<void()>& one) {
  const Clock::time_point start = Clock::now();
  const double cpu_start = ThreadCpuSeconds();
  Clock::time_point now = start;
  long n = 0;
  while (now - start < kQueryRoundTime) {
    for (int i = 0; i < 50; ++i) one();
    n += 50;
    now = Clock::now();
  }
  return {n / std::chrono::duration<double>(now - start).count(),
          (ThreadCpuSeconds() - cpu_start) * 1e6 / n};
}

double Median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  return v[v.size() / 2];
}

void BenchAcquire(const std::string& dsn) {
  PoolOptions o;
  o.dsn = dsn;
  o.size = 8;
  o.max_overflow = 0;
  o.application_name = "pool_bench";
  auto real = MustCreate(ConnectionPool::Create(o));
  auto null =
      MustCreate(ConnectionPool::Create(o, std::make_unique<NullConnector>()));
  {  // open the 8 connections first
    std::vector<PooledConnection> warm;
    for (int i = 0; i < 8; ++i) warm.push_back(*real->Acquire());
  }
  std::printf("%-34s %7s %10s %10s\n", "acquire + release", "threads",
              "wall ns/op", "cpu ns/op");
  for (auto [name, pool] :
       {std::pair{"pool of libpqxx connections", real.get()},
        std::pair{"pool of no-op connections", null.get()}}) {
    for (int threads : {1, 2, 8}) {
      const Cost c = AcquireRelease(pool, threads);
      std::printf("%-34s %7d %10.0f %10.0f\n", name, threads, c.wall_ns,
                  c.cpu_ns);
    }
  }
}

// One variant of the SELECT 1 loop; Setup/Teardown run outside the timing.
struct Variant {
  const char* name;
  std::function<void()> one;
  std::function<void()> setup = [] {};
  std::function<void()> teardown = [] {};
};

// Runs every variant kQueryRounds times in rotating order and prints each
// one's median rate and its median rate relative to variant 0 in the same
// round (which cancels load drifting between rounds).
void CompareRates(const std::vector<Variant>& variants) {
  std::vector<std::vector<Round>> rounds(variants.size());
  for (int round = 0; round < kQueryRounds; ++round) {
    for (size_t k = 0; k < variants.size(); ++k) {
      const size_t v = (round + k) % variants.size();
      variants[v].setup();
      rounds[v].push_back(Rate(variants[v].one));
      variants[v].teardown();
    }
  }
  std::printf("\n%-42s %9s %9s %9s %10s\n", "SELECT 1, one thread (medians)",
              "per s", "us/stmt", "vs first", "cpu us/st");
  for (size_t v = 0; v < variants.size(); ++v) {
    std::vector<double> rate, ratio, cpu;
    for (size_t i = 0; i < rounds[v].size(); ++i) {
      rate.push_back(rounds[v][i].per_second);
      ratio.push_back(rounds[v][i].per_second / rounds[0][i].per_second);
      cpu.push_back(rounds[v][i].cpu_us);
    }
    std::printf("%-42s %9.0f %9.1f %8.1f%% %10.2f\n", variants[v].name,
                Median(rate), 1e6 / Median(rate), 100.0 * Median(ratio),
                Median(cpu));
  }
}

void BenchSelect(const std::string& dsn) {
  PoolOptions o;
  o.dsn = dsn;
  o.size = 1;  // every lease is the same session (same backend process)
  o.max_overflow = 0;
  o.application_name = "pool_bench";
  auto pool = MustCreate(ConnectionPool::Create(o));
  // A separate connection with the pool's connection string (statement
  // timeout, application name): an identical session on another backend.
  pqxx::connection raw(pggitops::internal::RenderConninfo(
      *pggitops::internal::ParseDsn(dsn), o, o.connect_timeout));
  auto exec = [](pqxx::connection& c) {
    pqxx::nontransaction txn(c);
    txn.exec("SELECT 1");
  };
  absl::StatusOr<PooledConnection> held;
  std::vector<Variant> variants = {
      {"libpqxx on the pool's session, lease held",
       [&] { exec(pggitops::Connection(*held)); },
       [&] { held = pool->Acquire(); }, [&] { held = PooledConnection(); }},
      {"pool: Acquire + RunPqxx + release each",
       [&] {
         absl::StatusOr<PooledConnection> lease = pool->Acquire();
         absl::Status s = RunPqxx(*lease, "SELECT 1", exec);
         if (!s.ok())
           std::fprintf(stderr, "pool_bench: %s\n", s.ToString().c_str());
       }},
      {"pool: Acquire + Query() + release each",
       [&] {
         absl::StatusOr<PooledConnection> lease = pool->Acquire();
         if (!lease->Query("SELECT 1").ok()) {
           std::fprintf(stderr, "pool_bench: Query failed\n");
         }
       }},
      {"separate raw pqxx::connection", [&] { exec(raw); }},
  };
  CompareRates(variants);
  std::printf(
      "(rows 1-3 share one backend, so their difference is the pool's cost; "
      "row 4 is another backend: its distance from row 1 shows the noise)\n");
}

}  // namespace

int main() {
  const char* env_dsn = std::getenv("PGGITOPS_TEST_DSN");
  const std::string dsn =
      env_dsn != nullptr ? env_dsn : pggitops::harness::Get().dsn;
  BenchAcquire(dsn);
  BenchSelect(dsn);
  return 0;
}
