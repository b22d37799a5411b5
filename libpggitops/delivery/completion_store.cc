// CompleteBatch: records a batch of finished attempts in one transaction.
#include <utility>

#include "absl/container/flat_hash_set.h"
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
using store::Txn;

struct Locked {
  absl::flat_hash_map<int64_t, WebhookHealth> webhooks;
  absl::Time now;
};

// Locks the batch's webhooks in id order (so two engines completing at
// once cannot deadlock) and reads their engine columns and the database
// clock.
absl::StatusOr<Locked> LockWebhooks(PooledConnection& lease,
                                    const std::vector<Completed>& batch) {
  absl::flat_hash_set<int64_t> ids;
  for (const Completed& c : batch) ids.insert(c.job.webhook_id);
  std::vector<int64_t> sorted(ids.begin(), ids.end());
  absl::StatusOr<QueryResult> r = lease.Query(
      R"sql(
SELECT id, status, breaker_state, consecutive_failures,
       extract(epoch FROM breaker_open_until), breaker_open_seconds,
       extract(epoch FROM failing_since), extract(epoch FROM now())
  FROM pggit.webhooks
 WHERE id = ANY ($1::bigint[])
 ORDER BY id
   FOR UPDATE)sql",
      {IntArray(sorted)});
  if (!r.ok()) return r.status();
  Locked out;
  out.now = absl::UnixEpoch();
  if (r->rows.empty()) {
    absl::StatusOr<QueryResult> now =
        lease.Query("SELECT extract(epoch FROM now())");
    if (!now.ok()) return now.status();
    out.now = Epoch(now->rows[0][0]).value_or(out.now);
  }
  for (const Row& row : r->rows) {
    WebhookHealth w;
    w.status = row[1].value_or("active");
    w.breaker = ParseBreakerState(row[2].value_or("closed"))
                    .value_or(BreakerState::kClosed);
    w.consecutive_failures = static_cast<int>(Int(row[3]));
    w.open_until = Epoch(row[4]);
    if (row[5].has_value()) w.open_period = absl::Seconds(Int(row[5]));
    w.failing_since = Epoch(row[6]);
    out.now = Epoch(row[7]).value_or(out.now);
    out.webhooks[Int(row[0])] = std::move(w);
  }
  return out;
}

absl::Status InsertAttempts(PooledConnection& lease,
                            const std::vector<AttemptRecord>& attempts) {
  if (attempts.empty()) return absl::OkStatus();
  nlohmann::json rows = nlohmann::json::array();
  for (const AttemptRecord& a : attempts) {
    rows.push_back({{"delivery_id", a.delivery_id},
                    {"started_at", EpochJson(a.started_at)},
                    {"duration_ms", a.duration_ms},
                    {"http_status", a.http_status.has_value()
                                        ? nlohmann::json(*a.http_status)
                                        : nlohmann::json(nullptr)},
                    {"error", a.error.empty() ? nlohmann::json(nullptr)
                                              : nlohmann::json(a.error)},
                    {"excerpt", a.excerpt}});
  }
  // Attempt numbers continue the row's history (RetryPending resets
  // attempt_count, not the history). A row deleted meanwhile (its alert
  // was deleted) gets no attempt.
  return lease
      .Query(R"sql(
INSERT INTO pggit.delivery_attempts
       (delivery_id, attempt, started_at, duration_ms, http_status, error,
        response_excerpt)
SELECT x.delivery_id,
       coalesce((SELECT max(d.attempt) FROM pggit.delivery_attempts d
                  WHERE d.delivery_id = x.delivery_id), 0) + 1,
       to_timestamp(x.started_at), greatest(x.duration_ms, 0), x.http_status,
       x.error, x.excerpt
  FROM jsonb_to_recordset($1::jsonb) AS x(delivery_id bigint,
       started_at float8, duration_ms float8, http_status int, error text,
       excerpt text)
 WHERE EXISTS (SELECT 1 FROM pggit.alert_delivery_queue q
                WHERE q.id = x.delivery_id))sql",
             {Dump(rows)})
      .status();
}

absl::StatusOr<int> UpdateRows(PooledConnection& lease,
                               const std::string& owner,
                               const std::vector<RowOutcome>& outcomes) {
  if (outcomes.empty()) return 0;
  nlohmann::json rows = nlohmann::json::array();
  for (const RowOutcome& o : outcomes) {
    rows.push_back({{"id", o.delivery_id},
                    {"status", o.status},
                    {"delay", absl::ToDoubleSeconds(o.delay)},
                    {"http_status", o.http_status.has_value()
                                        ? nlohmann::json(*o.http_status)
                                        : nlohmann::json(nullptr)},
                    {"error", o.error.empty() ? nlohmann::json(nullptr)
                                              : nlohmann::json(o.error)}});
  }
  absl::StatusOr<QueryResult> r = lease.Query(
      R"sql(
UPDATE pggit.alert_delivery_queue q
   SET delivery_status = x.status,
       attempt_count = q.attempt_count + 1,
       next_attempt_at = CASE WHEN x.status = 'pending'
                              THEN now() + make_interval(secs => x.delay)
                              ELSE q.next_attempt_at END,
       lease_owner = NULL, lease_expires_at = NULL,
       last_http_status = x.http_status, last_error = x.error
  FROM jsonb_to_recordset($1::jsonb) AS x(id bigint, status text,
       delay float8, http_status int, error text)
 WHERE q.id = x.id AND q.lease_owner = $2
   AND q.delivery_status = 'in_progress')sql",
      {Dump(rows), owner});
  if (!r.ok()) return r.status();
  return static_cast<int>(r->affected_rows);
}

absl::Status UpdateWebhooks(
    PooledConnection& lease,
    const absl::flat_hash_map<int64_t, WebhookHealth>& webhooks) {
  nlohmann::json rows = nlohmann::json::array();
  std::vector<int64_t> closed;
  for (const auto& [id, w] : webhooks) {
    if (w.attempts == 0) continue;
    rows.push_back({{"id", id},
                    {"breaker_state", BreakerStateName(w.breaker)},
                    {"consecutive_failures", w.consecutive_failures},
                    {"open_until", EpochJson(w.open_until)},
                    {"open_seconds",
                     w.open_period.has_value()
                         ? nlohmann::json(OpenSecondsColumn(*w.open_period))
                         : nlohmann::json(nullptr)},
                    {"failing_since", EpochJson(w.failing_since)},
                    {"last_success", EpochJson(w.last_success)},
                    {"last_failure", EpochJson(w.last_failure)},
                    {"attempts", w.attempts},
                    {"failures", w.failures},
                    {"disable", w.disable},
                    {"reason", w.disabled_reason}});
    if (w.closed) closed.push_back(id);
  }
  if (rows.empty()) return absl::OkStatus();
  absl::Status s = lease
                       .Query(R"sql(
UPDATE pggit.webhooks w
   SET breaker_state = x.breaker_state,
       consecutive_failures = x.consecutive_failures,
       breaker_open_until = to_timestamp(x.open_until),
       breaker_open_seconds = x.open_seconds,
       failing_since = to_timestamp(x.failing_since),
       last_success_at = coalesce(to_timestamp(x.last_success),
                                  w.last_success_at),
       last_failure_at = coalesce(to_timestamp(x.last_failure),
                                  w.last_failure_at),
       last_used_at = now(),
       total_deliveries = w.total_deliveries + x.attempts,
       total_failures = w.total_failures + x.failures,
       status = CASE WHEN x.disable AND w.status = 'active'
                     THEN 'disabled' ELSE w.status END,
       disabled_reason = CASE WHEN x.disable AND w.status = 'active'
                              THEN x.reason ELSE w.disabled_reason END
  FROM jsonb_to_recordset($1::jsonb) AS x(id bigint, breaker_state text,
       consecutive_failures int, open_until float8, open_seconds int,
       failing_since float8, last_success float8, last_failure float8,
       attempts bigint, failures bigint, disable boolean, reason text)
 WHERE w.id = x.id)sql",
                              {Dump(rows)})
                       .status();
  if (!s.ok() || closed.empty()) return s;
  // The endpoint recovered: its waiting rows need not sit out their
  // backoff or the rest of an open period.
  return lease
      .Query(R"sql(
UPDATE pggit.alert_delivery_queue
   SET next_attempt_at = now()
 WHERE webhook_id = ANY ($1::bigint[]) AND delivery_status = 'pending'
   AND next_attempt_at > now())sql",
             {IntArray(closed)})
      .status();
}

// The common case in one statement (its own transaction): every attempt of
// the batch delivered. Success sets a webhook's breaker and failure run the
// same way whatever they were (RecordSuccess), so the webhooks need not be
// read first: attempts inserted, rows still leased by `owner` set
// delivered, webhooks locked in id order (against other engines' batches)
// and updated,
// and the waiting rows of those whose breaker was not closed brought
// forward. Returns the rows updated.
absl::StatusOr<int> CompleteAllDelivered(PooledConnection& lease,
                                         const std::string& owner,
                                         const std::vector<Completed>& batch,
                                         const CompletionPlan& plan) {
  absl::flat_hash_map<int64_t, int64_t> webhook_of;
  for (const Completed& c : batch) {
    webhook_of[c.job.delivery_id] = c.job.webhook_id;
  }
  nlohmann::json rows = nlohmann::json::array();
  for (const AttemptRecord& a : plan.attempts) {
    rows.push_back({{"id", a.delivery_id},
                    {"webhook_id", webhook_of[a.delivery_id]},
                    {"started_at", EpochJson(a.started_at)},
                    {"duration_ms", a.duration_ms},
                    {"http_status", a.http_status.has_value()
                                        ? nlohmann::json(*a.http_status)
                                        : nlohmann::json(nullptr)},
                    {"excerpt", a.excerpt}});
  }
  absl::StatusOr<QueryResult> r = lease.Query(
      R"sql(
WITH x AS (
  SELECT * FROM jsonb_to_recordset($1::jsonb) AS x(id bigint,
         webhook_id bigint, started_at float8, duration_ms float8,
         http_status int, excerpt text)),
att AS (
  INSERT INTO pggit.delivery_attempts
         (delivery_id, attempt, started_at, duration_ms, http_status,
          response_excerpt)
  SELECT x.id,
         coalesce((SELECT max(d.attempt) FROM pggit.delivery_attempts d
                    WHERE d.delivery_id = x.id), 0) + 1,
         to_timestamp(x.started_at), greatest(x.duration_ms, 0),
         x.http_status, x.excerpt
    FROM x
   WHERE EXISTS (SELECT 1 FROM pggit.alert_delivery_queue q
                  WHERE q.id = x.id)),
upd AS (
  UPDATE pggit.alert_delivery_queue q
     SET delivery_status = 'delivered', attempt_count = q.attempt_count + 1,
         lease_owner = NULL, lease_expires_at = NULL,
         last_http_status = x.http_status, last_error = NULL
    FROM x
   WHERE q.id = x.id AND q.lease_owner = $2
     AND q.delivery_status = 'in_progress'
  RETURNING q.id),
per AS (
  SELECT webhook_id, count(*) AS attempts FROM x GROUP BY webhook_id),
wl AS (
  SELECT w.id, w.breaker_state FROM pggit.webhooks w
   WHERE w.id IN (SELECT webhook_id FROM per)
   ORDER BY w.id
     FOR UPDATE),
wu AS (
  UPDATE pggit.webhooks w
     SET breaker_state = 'closed', consecutive_failures = 0,
         breaker_open_until = NULL, breaker_open_seconds = NULL,
         failing_since = NULL, last_success_at = now(), last_used_at = now(),
         total_deliveries = w.total_deliveries + per.attempts
    FROM per, wl
   WHERE w.id = per.webhook_id AND wl.id = w.id
  RETURNING w.id),
unpark AS (
  UPDATE pggit.alert_delivery_queue q
     SET next_attempt_at = now()
   WHERE q.webhook_id IN (SELECT id FROM wl WHERE breaker_state <> 'closed')
     AND q.delivery_status = 'pending' AND q.next_attempt_at > now())
SELECT count(*) FROM upd)sql",
      {Dump(rows), owner});
  if (!r.ok()) return r.status();
  return static_cast<int>(Int(r->rows[0][0]));
}

}  // namespace

absl::StatusOr<CompletionResult> CompleteBatch(
    PooledConnection& lease, const std::string& owner,
    const std::vector<Completed>& batch, const BreakerParams& params,
    absl::BitGenRef gen) {
  {
    // Planned without the webhooks: enough to see whether every attempt
    // was delivered (the clock matters only to retries).
    CompletionResult result;
    result.plan = PlanCompletions(batch, {}, params, absl::UnixEpoch(), gen);
    if (result.plan.delivered == static_cast<int>(batch.size())) {
      absl::StatusOr<int> updated =
          CompleteAllDelivered(lease, owner, batch, result.plan);
      if (!updated.ok()) return updated.status();
      result.rows_updated = *updated;
      return result;
    }
  }
  Txn txn(lease);
  if (absl::Status s = txn.Begin(); !s.ok()) return s;
  absl::StatusOr<Locked> locked = LockWebhooks(lease, batch);
  if (!locked.ok()) return locked.status();
  CompletionResult result;
  result.plan = PlanCompletions(batch, std::move(locked->webhooks), params,
                                locked->now, gen);
  if (absl::Status s = InsertAttempts(lease, result.plan.attempts); !s.ok()) {
    return s;
  }
  absl::StatusOr<int> updated = UpdateRows(lease, owner, result.plan.rows);
  if (!updated.ok()) return updated.status();
  result.rows_updated = *updated;
  if (absl::Status s = UpdateWebhooks(lease, result.plan.webhooks); !s.ok()) {
    return s;
  }
  std::vector<std::pair<int64_t, std::optional<absl::Time>>> back;
  for (int64_t id : result.plan.hand_back) back.emplace_back(id, std::nullopt);
  if (!back.empty()) {
    absl::StatusOr<int> n = HandBack(lease, owner, back);
    if (!n.ok()) return n.status();
  }
  if (absl::Status s = txn.Commit(); !s.ok()) return s;
  return result;
}

}  // namespace pggitops::internal
