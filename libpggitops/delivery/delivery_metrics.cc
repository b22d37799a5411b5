#include "libpggitops/delivery/delivery_metrics.h"

namespace pggitops::internal {

DeliveryMetrics DeliveryMetrics::Register(MetricsRegistry* r) {
  DeliveryMetrics m;
  m.queue_depth = &r->AddGauge("webhook_queue_depth",
                               "Deliveries pending or in progress (all "
                               "instances, read from the database)")
                       .WithLabels({});
  Family<Counter>& results = r->AddCounter(
      "webhook_deliveries_total",
      "Delivery attempts by result: delivered, retry (will be retried) or "
      "failed (no more retries)",
      {"result"});
  m.delivered = &results.WithLabels({"delivered"});
  m.retry = &results.WithLabels({"retry"});
  m.failed = &results.WithLabels({"failed"});
  m.duration = &r->AddHistogram("webhook_delivery_duration_seconds",
                                "Duration of webhook delivery attempts", {},
                                {0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1,
                                 2.5, 5, 10, 30, 60})
                    .WithLabels({});
  m.retries = &r->AddCounter("webhook_retries_total",
                             "Delivery attempts that were retries")
                   .WithLabels({});
  m.in_flight = &r->AddGauge("webhook_in_flight",
                             "Delivery attempts running in this process")
                     .WithLabels({});
  Family<Gauge>& breakers = r->AddGauge(
      "webhook_breaker_state", "Webhooks per circuit breaker state", {"state"});
  m.breaker_closed = &breakers.WithLabels({"closed"});
  m.breaker_open = &breakers.WithLabels({"open"});
  m.breaker_half_open = &breakers.WithLabels({"half_open"});
  return m;
}

}  // namespace pggitops::internal
