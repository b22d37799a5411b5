#include "libpggitops/pool/pool_metrics.h"

#include <vector>

namespace pggitops::internal {
namespace {

// From 100 microseconds (a pooled checkout) to 60 s (past the default pool
// and statement timeouts).
std::vector<double> LatencyBuckets() {
  return {0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05,
          0.1,    0.25,    0.5,    1,     2.5,    5,     10,   30,    60};
}

}  // namespace

PoolMetrics::PoolMetrics(MetricsRegistry* r)
    : size(r->AddGauge("db_connection_pool_size",
                       "Configured number of persistent database connections")
               .WithLabels({})),
      available(r->AddGauge("db_connection_pool_available",
                            "Connections that can still be checked out: size + "
                            "max_overflow - checked out")
                    .WithLabels({})),
      checked_out(r->AddGauge("db_connection_pool_checked_out",
                              "Database connections currently leased")
                      .WithLabels({})),
      overflow(r->AddGauge("db_connection_pool_overflow",
                           "Open database connections above the pool size")
                   .WithLabels({})),
      waiting(r->AddGauge("db_connection_pool_waiting",
                          "Callers waiting for a database connection")
                  .WithLabels({})),
      timeouts(r->AddCounter("db_connection_pool_timeouts_total",
                             "Checkouts that waited the whole pool timeout")
                   .WithLabels({})),
      wait(r->AddHistogram("db_connection_pool_wait_seconds",
                           "Time to obtain a ready database connection", {},
                           LatencyBuckets())
               .WithLabels({})),
      query(r->AddHistogram("db_query_duration_seconds",
                            "Duration of database queries", {},
                            LatencyBuckets())
                .WithLabels({})),
      slow(r->AddCounter("db_slow_queries_total",
                         "Queries slower than DATABASE_SLOW_QUERY_SECONDS")
               .WithLabels({})) {}

}  // namespace pggitops::internal
