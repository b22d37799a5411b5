// pool: the pggitops PostgreSQL connection pool in a program of your own.
//
//   pool --dsn postgresql://user:pass@host:5432/db [--size N] [--help]
//
// Checks a connection out (a RAII lease), runs a parameterized query on it,
// gives it back, prints the pool's statistics, then shuts the pool down and
// shows that a checkout after that fails with FailedPrecondition. Exits 1,
// saying why, on any error (an unreachable database: Unavailable).
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <optional>
#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "pggitops/connection_pool.h"

namespace {

constexpr char kUsage[] =
    "usage: pool --dsn DSN [--size N]\n"
    "  DSN: postgresql://user:pass@host:port/db or a libpq key=value string\n"
    "  (default: $DATABASE_URL). N: persistent connections (default 2).\n";

int Fail(const std::string& what, const absl::Status& s) {
  std::fprintf(stderr, "pool: %s: %s\n", what.c_str(), s.ToString().c_str());
  return 1;
}

}  // namespace

int main(int argc, char** argv) {
  pggitops::PoolOptions options;
  if (const char* url = std::getenv("DATABASE_URL")) options.dsn = url;
  options.size = 2;
  for (int i = 1; i < argc; ++i) {
    if (std::strcmp(argv[i], "--help") == 0 ||
        std::strcmp(argv[i], "-h") == 0) {
      std::fputs(kUsage, stdout);
      return 0;
    } else if (std::strcmp(argv[i], "--dsn") == 0 && i + 1 < argc) {
      options.dsn = argv[++i];
    } else if (std::strcmp(argv[i], "--size") == 0 && i + 1 < argc) {
      options.size = std::atoi(argv[++i]);
    } else {
      std::fprintf(stderr, "pool: unknown or incomplete argument %s\n%s",
                   argv[i], kUsage);
      return 2;
    }
  }
  if (options.dsn.empty()) {
    std::fprintf(stderr, "pool: --dsn is required\n%s", kUsage);
    return 2;
  }
  options.max_overflow = 1;
  options.timeout = absl::Seconds(5);  // longest wait for a free connection

  // Create validates the options (InvalidArgument naming the field) and
  // opens nothing yet: connections are opened on demand.
  absl::StatusOr<std::unique_ptr<pggitops::ConnectionPool>> pool =
      pggitops::ConnectionPool::Create(options);
  if (!pool.ok()) return Fail("create", pool.status());

  {
    // A lease: the connection goes back to the pool when it goes out of
    // scope (or at Release()). Acquire waits up to options.timeout.
    absl::StatusOr<pggitops::PooledConnection> lease = (*pool)->Acquire();
    if (!lease.ok()) return Fail("acquire", lease.status());
    // Parameters travel separately from the SQL text ($1, $2): no quoting.
    absl::StatusOr<pggitops::QueryResult> r = lease->Query(
        "SELECT $1::int + 1 AS answer, current_user AS who, version() AS v",
        {std::string("41")});
    if (!r.ok()) return Fail("query", r.status());
    for (size_t c = 0; c < r->columns.size(); ++c) {
      const std::optional<std::string>& value = r->rows.at(0).at(c);
      std::printf("%s = %s\n", r->columns[c].c_str(),
                  value ? value->c_str() : "NULL");
    }
    if (r->rows.at(0).at(0) != std::optional<std::string>("42")) {
      std::fprintf(stderr, "pool: 41 + 1 is not 42\n");
      return 1;
    }
    // An SQL error is a Status with the SQLSTATE attached.
    absl::StatusOr<pggitops::QueryResult> bad =
        lease->Query("SELECT * FROM no_such_table_here");
    std::printf("a failing query: %s (SQLSTATE %s)\n",
                bad.status().ToString().c_str(),
                pggitops::SqlStateOf(bad.status()).c_str());
  }

  pggitops::PoolStats stats = (*pool)->Stats();
  std::printf("pool: size %d, open %d, idle %d, checked out %d, opened %lld\n",
              stats.size, stats.open, stats.idle, stats.checked_out,
              static_cast<long long>(stats.connects_total));

  // Shutdown closes idle connections; leases still out close when returned.
  (*pool)->Shutdown();
  absl::StatusOr<pggitops::PooledConnection> late = (*pool)->Acquire();
  std::printf("after Shutdown: %s\n", late.status().ToString().c_str());
  if (late.status().code() != absl::StatusCode::kFailedPrecondition) {
    std::fprintf(stderr, "pool: expected FailedPrecondition after Shutdown\n");
    return 1;
  }
  std::printf("ok\n");
  return 0;
}
