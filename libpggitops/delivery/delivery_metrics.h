// The delivery engine's Prometheus series (CONTRACT section 7). Label sets
// are bounded: results and breaker states only, never webhook ids.
#ifndef PGGITOPS_LIBPGGITOPS_DELIVERY_DELIVERY_METRICS_H_
#define PGGITOPS_LIBPGGITOPS_DELIVERY_DELIVERY_METRICS_H_

#include "pggitops/metrics.h"

namespace pggitops::internal {

struct DeliveryMetrics {
  Gauge* queue_depth = nullptr;  // webhook_queue_depth
  Counter* delivered = nullptr;  // webhook_deliveries_total{result=...}
  Counter* retry = nullptr;
  Counter* failed = nullptr;
  Histogram* duration = nullptr;    // webhook_delivery_duration_seconds
  Counter* retries = nullptr;       // webhook_retries_total
  Gauge* in_flight = nullptr;       // webhook_in_flight
  Gauge* breaker_closed = nullptr;  // webhook_breaker_state{state=...}
  Gauge* breaker_open = nullptr;
  Gauge* breaker_half_open = nullptr;

  // Registers (or finds) the families in `registry`. REQUIRES: registry
  // outlives the returned pointers' users.
  static DeliveryMetrics Register(MetricsRegistry* registry);
};

}  // namespace pggitops::internal

#endif  // PGGITOPS_LIBPGGITOPS_DELIVERY_DELIVERY_METRICS_H_
