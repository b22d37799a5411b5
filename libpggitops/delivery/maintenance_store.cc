// Lease renewal and hand-back, unparking, retention purge and gauges.
#include <utility>

#include "absl/strings/str_cat.h"
#include "libpggitops/delivery/delivery_store.h"
#include "libpggitops/delivery/store_util.h"

namespace pggitops::internal {
namespace {

using store::Dump;
using store::Epoch;
using store::EpochJson;
using store::Int;
using store::Row;
using store::Seconds;
using store::Txn;

// The advisory lock key of the retention purge ("pggitops delivery purge").
constexpr char kPurgeLockKey[] = "7315112600420041";

}  // namespace

absl::StatusOr<std::vector<int64_t>> RenewLeases(
    PooledConnection& lease, const std::string& owner,
    const std::vector<int64_t>& ids, absl::Duration duration) {
  if (ids.empty()) return std::vector<int64_t>{};
  absl::StatusOr<QueryResult> r = lease.Query(
      R"sql(
WITH renewed AS (
  UPDATE pggit.alert_delivery_queue q
     SET lease_expires_at = now() + make_interval(secs => $3::float8)
   WHERE q.id IN (SELECT id FROM pggit.alert_delivery_queue
                   WHERE id = ANY ($1::bigint[]) AND lease_owner = $2
                     AND delivery_status = 'in_progress'
                     FOR UPDATE SKIP LOCKED))
SELECT x.id FROM unnest($1::bigint[]) AS x(id)
 WHERE NOT EXISTS (SELECT 1 FROM pggit.alert_delivery_queue q
                    WHERE q.id = x.id AND q.lease_owner = $2
                      AND q.delivery_status = 'in_progress'))sql",
      {IntArray(ids), owner, Seconds(duration)});
  if (!r.ok()) return r.status();
  std::vector<int64_t> out;
  for (const Row& row : r->rows) out.push_back(Int(row[0]));
  return out;
}

absl::StatusOr<int> HandBack(
    PooledConnection& lease, const std::string& owner,
    const std::vector<std::pair<int64_t, std::optional<absl::Time>>>& rows) {
  if (rows.empty()) return 0;
  nlohmann::json j = nlohmann::json::array();
  for (const auto& [id, until] : rows) {
    j.push_back({{"id", id}, {"until", EpochJson(until)}});
  }
  absl::StatusOr<QueryResult> r = lease.Query(
      R"sql(
UPDATE pggit.alert_delivery_queue q
   SET delivery_status = 'pending', lease_owner = NULL,
       lease_expires_at = NULL,
       next_attempt_at = coalesce(to_timestamp(x.until), now())
  FROM jsonb_to_recordset($1::jsonb) AS x(id bigint, until float8)
 WHERE q.id = x.id AND q.lease_owner = $2
   AND q.delivery_status = 'in_progress')sql",
      {Dump(j), owner});
  if (!r.ok()) return r.status();
  return static_cast<int>(r->affected_rows);
}

absl::StatusOr<std::pair<int, absl::Time>> UnparkActivated(
    PooledConnection& lease, absl::Time since) {
  absl::StatusOr<QueryResult> now =
      lease.Query("SELECT extract(epoch FROM now())");
  if (!now.ok()) return now.status();
  const absl::Time checked = Epoch(now->rows[0][0]).value_or(since);
  absl::StatusOr<QueryResult> r = lease.Query(
      R"sql(
UPDATE pggit.alert_delivery_queue q
   SET next_attempt_at = now(), last_error = NULL
  FROM pggit.webhooks w
 WHERE w.status = 'active' AND w.deleted_at IS NULL
   AND w.updated_at >= to_timestamp($1::float8)
   AND q.webhook_id = w.id AND q.delivery_status = 'pending'
   AND q.next_attempt_at > now()
   AND starts_with(q.last_error, $2))sql",
      {Dump(EpochJson(since)), std::string(kParkedPrefix)});
  if (!r.ok()) return r.status();
  return std::make_pair(static_cast<int>(r->affected_rows), checked);
}

absl::StatusOr<int> PurgeBatch(PooledConnection& lease, int retention_days,
                               int batch) {
  Txn txn(lease);
  if (absl::Status s = txn.Begin(); !s.ok()) return s;
  absl::StatusOr<QueryResult> locked = lease.Query(
      absl::StrCat("SELECT pg_try_advisory_xact_lock(", kPurgeLockKey, ")"));
  if (!locked.ok()) return locked.status();
  if (locked->rows[0][0].value_or("f") != "t") return -1;
  // created_at (indexed with the status) bounds the scan; updated_at keeps
  // a row finished recently (e.g. retried after weeks) for a full period.
  absl::StatusOr<QueryResult> r = lease.Query(
      R"sql(
DELETE FROM pggit.alert_delivery_queue
 WHERE id IN (
   SELECT id FROM pggit.alert_delivery_queue
    WHERE delivery_status IN ('delivered', 'failed', 'cancelled')
      AND created_at < now() - make_interval(days => $1::int)
      AND updated_at < now() - make_interval(days => $1::int)
    LIMIT $2
    FOR UPDATE SKIP LOCKED))sql",
      {absl::StrCat(retention_days), absl::StrCat(batch)});
  if (!r.ok()) return r.status();
  if (absl::Status s = txn.Commit(); !s.ok()) return s;
  return static_cast<int>(r->affected_rows);
}

absl::StatusOr<QueueGauges> ReadGauges(PooledConnection& lease) {
  absl::StatusOr<QueryResult> r = lease.Query(R"sql(
SELECT (SELECT count(*) FROM pggit.alert_delivery_queue
         WHERE delivery_status = 'pending'),
       (SELECT count(*) FROM pggit.alert_delivery_queue
         WHERE delivery_status = 'in_progress'),
       count(*) FILTER (WHERE breaker_state = 'closed'),
       count(*) FILTER (WHERE breaker_state = 'open'),
       count(*) FILTER (WHERE breaker_state = 'half_open')
  FROM pggit.webhooks
 WHERE deleted_at IS NULL)sql");
  if (!r.ok()) return r.status();
  const Row& row = r->rows[0];
  QueueGauges g;
  g.pending = Int(row[0]);
  g.in_progress = Int(row[1]);
  g.closed = Int(row[2]);
  g.open = Int(row[3]);
  g.half_open = Int(row[4]);
  return g;
}

}  // namespace pggitops::internal
