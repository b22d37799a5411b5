// ReadDashboardFigures and ReadQueueStatus: the dashboard's SQL.
#include "pggitops/dashboard.h"

#include <string>
#include <utility>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/string_view.h"
#include "libpggitops/alerts/alert_counts_sql.h"
#include "libpggitops/pool/query_cells.h"
#include "libpggitops/webhooks/failing.h"

namespace pggitops {
namespace {

using internal::Cell;
using internal::IntCell;
using internal::MicrosSql;
using internal::OptDoubleCell;
using internal::OptTimeCell;
using Row = std::vector<Cell>;

// delivered / (delivered + failed), 4 decimals; NULL when both are 0.
std::string RateSql(absl::string_view delivered, absl::string_view failed) {
  return absl::StrCat("CASE WHEN ", delivered, " + ", failed,
                      " > 0 THEN round(", delivered, "::numeric / (", delivered,
                      " + ", failed, "), 4)::float8 END");
}

// The figures as named subqueries: one pass over the queue (grouped by
// webhook, deleted ones included, so the overview counts their deliveries
// too), one over the webhooks and one over the alerts. A failed row counts
// in the last 24 h by updated_at (the moment it failed: a failed row is not
// updated again until retry-pending makes it pending). `listed`: the
// webhooks of the list, the first 100 by id.
const std::string& FiguresSql() {
  static const std::string* sql = new std::string(absl::StrCat(
      R"sql(
WITH per_webhook AS (
  SELECT q.webhook_id,
         count(*) AS total,
         count(*) FILTER (WHERE q.delivery_status = 'pending') AS pending,
         count(*) FILTER (WHERE q.delivery_status = 'in_progress')
           AS in_progress,
         count(*) FILTER (WHERE q.delivery_status = 'failed') AS failed,
         count(*) FILTER (WHERE q.delivery_status = 'delivered'
                            AND q.delivered_at >= now() - interval '24 hours')
           AS delivered_24h,
         count(*) FILTER (WHERE q.delivery_status = 'failed'
                            AND q.updated_at >= now() - interval '24 hours')
           AS failed_24h,
         min(q.created_at) FILTER (WHERE q.delivery_status
                                     IN ('pending', 'in_progress'))
           AS oldest_pending
    FROM pggit.alert_delivery_queue q
   GROUP BY q.webhook_id),
totals AS (
  SELECT coalesce(sum(total), 0)::bigint AS total,
         coalesce(sum(pending), 0)::bigint AS pending,
         coalesce(sum(in_progress), 0)::bigint AS in_progress,
         coalesce(sum(failed), 0)::bigint AS failed,
         coalesce(sum(delivered_24h), 0)::bigint AS delivered_24h,
         coalesce(sum(failed_24h), 0)::bigint AS failed_24h,
         min(oldest_pending) AS oldest_pending
    FROM per_webhook),
hooks AS (
  SELECT count(*) FILTER (WHERE status = 'active') AS active,
         count(*) FILTER (WHERE )sql",
      internal::FailingWebhookSql(),
      R"sql() AS degraded,
         count(*) FILTER (WHERE status = 'disabled') AS disabled,
         count(*) FILTER (WHERE status = 'inactive') AS inactive
    FROM pggit.webhooks
   WHERE deleted_at IS NULL),
alert_counts AS ()sql",
      internal::AlertCountsSql(),
      R"sql(),
listed AS (
  SELECT w.id, w.name, w.status, w.breaker_state, w.consecutive_failures,
         w.last_used_at, w.last_success_at, w.last_failure_at,
         p.delivered_24h, p.failed_24h
    FROM pggit.webhooks w
    LEFT JOIN per_webhook p ON p.webhook_id = w.id
   WHERE w.deleted_at IS NULL
   ORDER BY w.id
   LIMIT 100)
SELECT q.total, q.pending, q.in_progress, q.failed, q.delivered_24h,
       q.failed_24h, )sql",
      RateSql("q.delivered_24h", "q.failed_24h"),
      R"sql(,
       h.active, h.degraded, h.disabled, h.inactive,
       coalesce(round(greatest(extract(epoch FROM now() - q.oldest_pending)
                               ::numeric, 0), 3)::float8, 0),
       a.total, a.info, a.warning, a.critical, a.pending, a.acknowledged,
       a.resolved,
       l.id, l.name, l.status, l.breaker_state, )sql",
      RateSql("l.delivered_24h", "l.failed_24h"),
      R"sql(,
       coalesce(l.delivered_24h + l.failed_24h, 0), )sql",
      MicrosSql("l.last_used_at"), ", ", MicrosSql("l.last_success_at"), ", ",
      MicrosSql("l.last_failure_at"), R"sql(,
       l.consecutive_failures
  FROM totals q CROSS JOIN hooks h CROSS JOIN alert_counts a
  LEFT JOIN listed l ON true
 ORDER BY l.id)sql"));
  return *sql;
}

// Where the alert counts and the listed webhook start in a row of
// FiguresSql().
constexpr size_t kFirstAlertColumn = 12;
constexpr size_t kFirstWebhookColumn = 19;

DeliveryOverview ReadOverview(const Row& r) {
  DeliveryOverview o;
  o.deliveries_total = IntCell(r[0]);
  o.pending = IntCell(r[1]);
  o.in_progress = IntCell(r[2]);
  o.failed = IntCell(r[3]);
  o.delivered_24h = IntCell(r[4]);
  o.failed_24h = IntCell(r[5]);
  o.success_rate_24h = OptDoubleCell(r[6]);
  o.active_webhooks = IntCell(r[7]);
  o.degraded_webhooks = IntCell(r[8]);
  o.disabled_webhooks = IntCell(r[9]);
  o.inactive_webhooks = IntCell(r[10]);
  o.oldest_pending_seconds = OptDoubleCell(r[11]).value_or(0);
  o.queue_depth = o.pending + o.in_progress;
  return o;
}

WebhookFigures ReadWebhookFigures(const Row& r) {
  auto c = [&](size_t i) -> const Cell& {
    return r.at(kFirstWebhookColumn + i);
  };
  WebhookFigures w;
  w.id = IntCell(c(0));
  w.name = c(1).value_or("");
  w.status = c(2).value_or("");
  w.breaker_state = c(3).value_or("");
  w.success_rate_24h = OptDoubleCell(c(4));
  w.deliveries_24h = IntCell(c(5));
  w.last_delivery_at = OptTimeCell(c(6));
  w.last_success_at = OptTimeCell(c(7));
  w.last_failure_at = OptTimeCell(c(8));
  w.consecutive_failures = IntCell(c(9));
  return w;
}

constexpr char kQueueStatusSql[] =
    "SELECT (SELECT count(*) FROM pggit.alert_delivery_queue"
    " WHERE delivery_status IN ('pending', 'in_progress')),"
    " (SELECT count(*) FROM pggit.alert_delivery_queue"
    " WHERE delivery_status = 'failed'),"
    " (SELECT count(*) FROM pggit.alert_delivery_queue"
    " WHERE delivery_status = 'pending'),"
    " (SELECT count(*) FROM pggit.alerts WHERE status = 'pending'),"
    " (SELECT count(*) FROM pggit.webhooks"
    " WHERE status = 'active' AND deleted_at IS NULL)";

}  // namespace

absl::StatusOr<DashboardFigures> ReadDashboardFigures(ConnectionPool* pool) {
  absl::StatusOr<PooledConnection> lease = pool->Acquire();
  if (!lease.ok()) return lease.status();
  absl::StatusOr<QueryResult> r = lease->Query(FiguresSql());
  if (!r.ok()) return r.status();
  if (r->rows.empty()) {
    return absl::InternalError("dashboard query returned no row");
  }
  DashboardFigures f;
  f.overview = ReadOverview(r->rows[0]);
  f.alerts = internal::ReadAlertCounts(r->rows[0], kFirstAlertColumn);
  for (const Row& row : r->rows) {
    if (row.at(kFirstWebhookColumn).has_value()) {
      f.webhooks.push_back(ReadWebhookFigures(row));
    }
  }
  return f;
}

absl::StatusOr<QueueStatus> ReadQueueStatus(ConnectionPool* pool,
                                            absl::Duration acquire_timeout) {
  absl::StatusOr<PooledConnection> lease = pool->Acquire(acquire_timeout);
  if (!lease.ok()) return lease.status();
  absl::StatusOr<QueryResult> r = lease->Query(kQueueStatusSql);
  if (!r.ok()) return r.status();
  if (r->rows.empty())
    return absl::InternalError("status query returned no row");
  const Row& row = r->rows[0];
  QueueStatus s;
  s.queue_depth = IntCell(row.at(0));
  s.failed_deliveries = IntCell(row.at(1));
  s.pending_deliveries = IntCell(row.at(2));
  s.pending_alerts = IntCell(row.at(3));
  s.active_webhooks = IntCell(row.at(4));
  return s;
}

}  // namespace pggitops
