// Helpers shared by the pool's integration tests (real PostgreSQL from
// tests/harness).
#ifndef PGGITOPS_TESTS_INTEGRATION_POOL_POOL_IT_UTIL_H_
#define PGGITOPS_TESTS_INTEGRATION_POOL_POOL_IT_UTIL_H_

#include <chrono>
#include <cstdlib>
#include <memory>
#include <string>

#include "doctest/doctest.h"
#include "pggitops/connection_pool.h"
#include "tests/harness/harness.h"

namespace pggitops::pool_it {

// Backends whose application_name is `app`, as the server sees them.
inline int Backends(const std::string& app) {
  return std::atoi(
      harness::AdminQuery("postgres",
                          "SELECT count(*) FROM pg_stat_activity WHERE "
                          "application_name = '" +
                              app + "'")
          .c_str());
}

// Polls until Backends(app) == n (a closed connection's backend exits
// asynchronously); fails after 10 s.
inline void WaitForBackends(const std::string& app, int n) {
  int seen = -1;
  harness::WaitFor([&] { return (seen = Backends(app)) == n; },
                   std::chrono::seconds(10));
  CHECK(seen == n);
}

// Options for the harness's database with a distinct application_name.
inline PoolOptions OptionsFor(const std::string& app) {
  PoolOptions o;
  o.dsn = harness::Get().dsn;
  o.application_name = app;
  return o;
}

inline std::unique_ptr<ConnectionPool> MakePool(const PoolOptions& o) {
  absl::StatusOr<std::unique_ptr<ConnectionPool>> pool =
      ConnectionPool::Create(o);
  REQUIRE(pool.ok());
  return *std::move(pool);
}

// The backend pid of the lease's session.
inline std::string BackendPid(PooledConnection& lease) {
  absl::StatusOr<QueryResult> r = lease.Query("SELECT pg_backend_pid()");
  REQUIRE(r.ok());
  return r->rows.at(0).at(0).value();
}

// Milliseconds since `start`.
inline double MsSince(std::chrono::steady_clock::time_point start) {
  return std::chrono::duration<double, std::milli>(
             std::chrono::steady_clock::now() - start)
      .count();
}

}  // namespace pggitops::pool_it

#endif  // PGGITOPS_TESTS_INTEGRATION_POOL_POOL_IT_UTIL_H_
