// A migrated database of its own and a pool on it, for the integration
// tests of the library's SQL stores (webhooks, alerts, dashboard).
#ifndef PGGITOPS_TESTS_INTEGRATION_STORE_TEST_UTIL_H_
#define PGGITOPS_TESTS_INTEGRATION_STORE_TEST_UTIL_H_

#include <memory>
#include <string>
#include <utility>

#include "doctest/doctest.h"
#include "pggitops/connection_pool.h"
#include "pggitops/schema.h"
#include "tests/harness/harness.h"

namespace pggitops::store_test {

struct Db {
  std::unique_ptr<ConnectionPool> pool;

  // `name`: unique in the run (the database is dropped first if it exists).
  explicit Db(const std::string& name) {
    const std::string dsn = harness::FreshDatabase(name);
    absl::StatusOr<MigrateResult> m = Migrate(dsn);
    REQUIRE_MESSAGE(m.ok(), m.status().ToString());
    PoolOptions o;
    o.dsn = dsn;
    o.size = 2;
    absl::StatusOr<std::unique_ptr<ConnectionPool>> p =
        ConnectionPool::Create(o);
    REQUIRE(p.ok());
    pool = *std::move(p);
  }

  // Runs `sql`; returns the first cell of the first row ("" for none or
  // NULL).
  std::string Scalar(const std::string& sql) {
    absl::StatusOr<PooledConnection> lease = pool->Acquire();
    REQUIRE(lease.ok());
    absl::StatusOr<QueryResult> r = lease->Query(sql);
    REQUIRE_MESSAGE(r.ok(), r.status().ToString());
    if (r->rows.empty() || !r->rows[0][0].has_value()) return "";
    return *r->rows[0][0];
  }
};

}  // namespace pggitops::store_test

#endif  // PGGITOPS_TESTS_INTEGRATION_STORE_TEST_UTIL_H_
