// The pool's Prometheus series (CONTRACT section 7).
#ifndef PGGITOPS_LIBPGGITOPS_POOL_POOL_METRICS_H_
#define PGGITOPS_LIBPGGITOPS_POOL_POOL_METRICS_H_

#include "pggitops/metrics.h"

namespace pggitops::internal {

// References into a registry, which must outlive this object. The series
// are thread-safe (lock-free) like every metric.
struct PoolMetrics {
  explicit PoolMetrics(MetricsRegistry* registry);

  Gauge& size;         // db_connection_pool_size
  Gauge& available;    // db_connection_pool_available
  Gauge& checked_out;  // db_connection_pool_checked_out
  Gauge& overflow;     // db_connection_pool_overflow
  Gauge& waiting;      // db_connection_pool_waiting
  Counter& timeouts;   // db_connection_pool_timeouts_total
  Histogram& wait;     // db_connection_pool_wait_seconds
  Histogram& query;    // db_query_duration_seconds
  Counter& slow;       // db_slow_queries_total
};

}  // namespace pggitops::internal

#endif  // PGGITOPS_LIBPGGITOPS_POOL_POOL_METRICS_H_
