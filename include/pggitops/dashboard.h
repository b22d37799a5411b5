// File: pggitops/dashboard.h
//
// The figures of the operations dashboard (GET /api/v1/dashboard and the
// alert stream's system_status event), read from the database:
//
//   absl::StatusOr<DashboardFigures> f = ReadDashboardFigures(pool);
//   if (!f.ok()) return f.status();
//   std::cout << f->overview.queue_depth << " deliveries waiting, "
//             << f->overview.degraded_webhooks << " webhooks failing\n";
//
// "The last 24 hours": a delivered row counts by its delivered_at, a failed
// one by the time it failed. Errors: the pool's (kDeadlineExceeded,
// kUnavailable; see connection_pool.h) and the database's. Thread-safe.
#ifndef PGGITOPS_INCLUDE_DASHBOARD_H_
#define PGGITOPS_INCLUDE_DASHBOARD_H_

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "pggitops/alert_store.h"
#include "pggitops/connection_pool.h"
#include "pggitops/export.h"

namespace pggitops {

// The delivery queue and the webhooks, overall. Deliveries of deleted
// webhooks count too.
struct PGGITOPS_EXPORT DeliveryOverview {
  int64_t deliveries_total = 0;  // rows in the queue, any status
  int64_t pending = 0;
  int64_t in_progress = 0;
  int64_t failed = 0;
  int64_t delivered_24h = 0;
  int64_t failed_24h = 0;
  // delivered_24h / (delivered_24h + failed_24h), 4 decimals; nullopt
  // when both are 0.
  std::optional<double> success_rate_24h;
  // Webhooks that are not deleted, by status; degraded ones are the active
  // ones IsFailing() (webhook_store.h) holds for.
  int64_t active_webhooks = 0;
  int64_t degraded_webhooks = 0;
  int64_t disabled_webhooks = 0;
  int64_t inactive_webhooks = 0;
  int64_t queue_depth = 0;  // pending + in_progress
  // Age of the oldest pending or in-progress row, in seconds to the
  // millisecond; 0 when there is none.
  double oldest_pending_seconds = 0;
};

// One webhook's figures.
struct PGGITOPS_EXPORT WebhookFigures {
  int64_t id = 0;
  std::string name;
  std::string status;                      // active, inactive, disabled
  std::string breaker_state;               // closed, open, half_open
  std::optional<double> success_rate_24h;  // as DeliveryOverview's
  int64_t deliveries_24h = 0;              // delivered + failed
  std::optional<absl::Time> last_delivery_at;
  std::optional<absl::Time> last_success_at;
  std::optional<absl::Time> last_failure_at;
  int64_t consecutive_failures = 0;
};

struct PGGITOPS_EXPORT DashboardFigures {
  DeliveryOverview overview;
  // The first 100 webhooks by id (deleted ones excepted).
  std::vector<WebhookFigures> webhooks;
  AlertCounts alerts;
};

// Every figure above, read in one statement (one snapshot).
PGGITOPS_EXPORT absl::StatusOr<DashboardFigures> ReadDashboardFigures(
    ConnectionPool* pool);

// The few counts a status line shows, cheap enough to read every few
// seconds.
struct PGGITOPS_EXPORT QueueStatus {
  int64_t queue_depth = 0;  // pending + in_progress deliveries
  int64_t failed_deliveries = 0;
  int64_t pending_deliveries = 0;
  int64_t pending_alerts = 0;
  int64_t active_webhooks = 0;  // not deleted
};

// Reads QueueStatus in one statement, waiting at most `acquire_timeout` for
// a pooled connection.
PGGITOPS_EXPORT absl::StatusOr<QueueStatus> ReadQueueStatus(
    ConnectionPool* pool, absl::Duration acquire_timeout);

}  // namespace pggitops

#endif  // PGGITOPS_INCLUDE_DASHBOARD_H_
