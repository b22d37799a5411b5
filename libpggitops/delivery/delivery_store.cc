#include "libpggitops/delivery/delivery_store.h"

#include <algorithm>
#include <utility>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_replace.h"
#include "libpggitops/delivery/signing.h"
#include "libpggitops/delivery/store_util.h"
#include "nlohmann/json.hpp"

namespace pggitops::internal {
namespace {

using store::Double;
using store::Dump;
using store::Epoch;
using store::EpochJson;
using store::Int;
using store::Row;
using store::Seconds;
using store::Txn;

// --- claim ------------------------------------------------------------------

// Grants one probe to each active webhook whose open period is over, and
// returns the rows chosen as probes (locked, still pending).
absl::StatusOr<std::vector<int64_t>> GrantProbes(PooledConnection& lease,
                                                 absl::Duration lease_len) {
  absl::StatusOr<QueryResult> r = lease.Query(
      R"sql(
WITH p AS (
  SELECT w.id FROM pggit.webhooks w
   WHERE w.breaker_state <> 'closed' AND w.breaker_open_until <= now()
     AND w.status = 'active' AND w.deleted_at IS NULL
   ORDER BY w.id
   FOR UPDATE SKIP LOCKED),
pick AS (
  SELECT p.id AS webhook_id,
         (SELECT q.id FROM pggit.alert_delivery_queue q
           WHERE q.webhook_id = p.id AND q.delivery_status = 'pending'
             AND q.next_attempt_at <= now()
           ORDER BY q.next_attempt_at
           LIMIT 1
           FOR UPDATE SKIP LOCKED) AS delivery_id
    FROM p),
granted AS (
  UPDATE pggit.webhooks w
     SET breaker_state = 'half_open',
         breaker_open_until = now() + make_interval(
             secs => $1::float8 + w.timeout_seconds)
    FROM pick
   WHERE w.id = pick.webhook_id AND pick.delivery_id IS NOT NULL
  RETURNING w.id)
SELECT pick.delivery_id FROM pick
 WHERE pick.delivery_id IS NOT NULL
   AND pick.webhook_id IN (SELECT id FROM granted))sql",
      {Seconds(lease_len)});
  if (!r.ok()) return r.status();
  std::vector<int64_t> out;
  for (const Row& row : r->rows) out.push_back(Int(row[0]));
  return out;
}

// In-progress rows are few (those the engines hold): idx_delivery_status
// finds them, and no index on lease_expires_at has to be kept up to date
// by every claim and renewal.
absl::StatusOr<int> ReclaimExpired(PooledConnection& lease) {
  absl::StatusOr<QueryResult> r = lease.Query(R"sql(
UPDATE pggit.alert_delivery_queue
   SET delivery_status = 'pending', lease_owner = NULL,
       lease_expires_at = NULL
 WHERE id IN (SELECT id FROM pggit.alert_delivery_queue
               WHERE delivery_status = 'in_progress'
                 AND lease_expires_at <= now()
               LIMIT 1000
               FOR UPDATE SKIP LOCKED))sql");
  if (!r.ok()) return r.status();
  return static_cast<int>(r->affected_rows);
}

absl::StatusOr<std::pair<std::vector<Candidate>, absl::Time>> LockCandidates(
    PooledConnection& lease, const ClaimRequest& req) {
  absl::StatusOr<QueryResult> r = lease.Query(
      R"sql(
SELECT q.id, w.id, w.status, w.deleted_at IS NOT NULL, w.breaker_state,
       extract(epoch FROM w.breaker_open_until),
       extract(epoch FROM now())
  FROM pggit.alert_delivery_queue q
  JOIN pggit.webhooks w ON w.id = q.webhook_id
 WHERE q.delivery_status = 'pending' AND q.next_attempt_at <= now()
   AND q.webhook_id <> ALL ($1::bigint[])
 ORDER BY q.next_attempt_at, q.id
 LIMIT $2
 FOR UPDATE OF q SKIP LOCKED)sql",
      {IntArray(req.skip_webhooks), absl::StrCat(req.limit)});
  if (!r.ok()) return r.status();
  std::vector<Candidate> out;
  absl::Time now = absl::UnixEpoch();
  for (const Row& row : r->rows) {
    Candidate c;
    c.delivery_id = Int(row[0]);
    c.webhook_id = Int(row[1]);
    c.webhook_status = row[2].value_or("");
    c.webhook_deleted = row[3].value_or("f") == "t";
    c.breaker = ParseBreakerState(row[4].value_or("closed"))
                    .value_or(BreakerState::kClosed);
    c.open_until = Epoch(row[5]);
    now = Epoch(row[6]).value_or(now);
    out.push_back(std::move(c));
  }
  return std::make_pair(std::move(out), now);
}

absl::Status ApplyNonClaims(PooledConnection& lease, const ClaimPlan& plan,
                            absl::Duration park) {
  if (!plan.defer.empty()) {
    nlohmann::json rows = nlohmann::json::array();
    for (const auto& [id, until] : plan.defer) {
      rows.push_back({{"id", id}, {"until", EpochJson(until)}});
    }
    absl::Status s = lease
                         .Query(R"sql(
UPDATE pggit.alert_delivery_queue q
   SET next_attempt_at = to_timestamp(x.until)
  FROM jsonb_to_recordset($1::jsonb) AS x(id bigint, until float8)
 WHERE q.id = x.id)sql",
                                {Dump(rows)})
                         .status();
    if (!s.ok()) return s;
  }
  if (!plan.park.empty()) {
    absl::Status s = lease
                         .Query(R"sql(
UPDATE pggit.alert_delivery_queue q
   SET next_attempt_at = now() + make_interval(secs => $2::float8),
       last_error = $3 || w.status
  FROM pggit.webhooks w
 WHERE q.id = ANY ($1::bigint[]) AND w.id = q.webhook_id)sql",
                                {IntArray(plan.park), Seconds(park),
                                 std::string(kParkedPrefix)})
                         .status();
    if (!s.ok()) return s;
  }
  if (!plan.cancel.empty()) {
    absl::Status s = lease
                         .Query(R"sql(
UPDATE pggit.alert_delivery_queue
   SET delivery_status = 'cancelled',
       last_error = coalesce(last_error, 'webhook deleted')
 WHERE id = ANY ($1::bigint[]))sql",
                                {IntArray(plan.cancel)})
                         .status();
    if (!s.ok()) return s;
  }
  return absl::OkStatus();
}

absl::StatusOr<std::vector<Job>> LeaseRows(PooledConnection& lease,
                                           const std::vector<int64_t>& ids,
                                           const ClaimRequest& req) {
  constexpr char kTs[] =
      R"(to_char(%s AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.MS"Z"'))";
  const std::string sql = absl::StrCat(
      R"sql(
UPDATE pggit.alert_delivery_queue q
   SET delivery_status = 'in_progress', lease_owner = $2,
       lease_expires_at = now() + make_interval(secs => $3::float8)
  FROM pggit.alerts a, pggit.webhooks w
 WHERE q.id = ANY ($1::bigint[]) AND a.id = q.alert_id AND w.id = q.webhook_id
RETURNING q.id, q.alert_id, q.webhook_id, q.attempt_count, w.url, w.secret,
          w.timeout_seconds, w.ssl_verify, w.max_retries, w.backoff_base,
          w.max_backoff, a.operation_type, a.severity, a.message, a.status,
          a.context::text, )sql",
      absl::StrReplaceAll(kTs, {{"%s", "a.created_at"}}), ", ",
      absl::StrReplaceAll(kTs, {{"%s", "a.acknowledged_at"}}), ", ",
      absl::StrReplaceAll(kTs, {{"%s", "a.resolved_at"}}));
  absl::StatusOr<QueryResult> r =
      lease.Query(sql, {IntArray(ids), req.owner, Seconds(req.lease)});
  if (!r.ok()) return r.status();
  std::vector<Job> jobs;
  for (const Row& row : r->rows) {
    Job j;
    j.delivery_id = Int(row[0]);
    j.alert_id = Int(row[1]);
    j.webhook_id = Int(row[2]);
    j.attempt_count = static_cast<int>(Int(row[3]));
    j.url = row[4].value_or("");
    j.secret = row[5].value_or("");
    j.timeout = absl::Seconds(Int(row[6], 30));
    j.ssl_verify = row[7].value_or("t") == "t";
    j.policy.max_retries = static_cast<int>(Int(row[8], 3));
    j.policy.backoff_base = Double(row[9], 2);
    j.policy.max_backoff = absl::Seconds(Int(row[10], 3600));
    AlertRecord a;
    a.id = j.alert_id;
    a.operation_type = row[11].value_or("");
    a.severity = row[12].value_or("");
    a.message = row[13].value_or("");
    a.status = row[14].value_or("");
    a.context_json = row[15].value_or("{}");
    a.created_at = row[16].value_or("");
    a.acknowledged_at = row[17];
    a.resolved_at = row[18];
    j.body = AlertEventBody(a);
    jobs.push_back(std::move(j));
  }
  // Keep the claim order (oldest due first).
  absl::flat_hash_map<int64_t, size_t> order;
  for (size_t i = 0; i < ids.size(); ++i) order[ids[i]] = i;
  std::sort(jobs.begin(), jobs.end(), [&](const Job& x, const Job& y) {
    return order[x.delivery_id] < order[y.delivery_id];
  });
  return jobs;
}

}  // namespace

std::string IntArray(const std::vector<int64_t>& ids) {
  return absl::StrCat("{", absl::StrJoin(ids, ","), "}");
}

absl::StatusOr<ClaimResult> ClaimDue(PooledConnection& lease,
                                     const ClaimRequest& req) {
  Txn txn(lease);
  if (absl::Status s = txn.Begin(); !s.ok()) return s;
  ClaimResult result;
  absl::StatusOr<std::vector<int64_t>> probes = GrantProbes(lease, req.lease);
  if (!probes.ok()) return probes.status();
  result.probes = static_cast<int>(probes->size());
  absl::StatusOr<int> reclaimed = ReclaimExpired(lease);
  if (!reclaimed.ok()) return reclaimed.status();
  result.reclaimed = *reclaimed;
  auto candidates = LockCandidates(lease, req);
  if (!candidates.ok()) return candidates.status();
  result.examined = static_cast<int>(candidates->first.size());
  ClaimPlan plan = PlanClaim(candidates->first, req.held, req.per_webhook_limit,
                             candidates->second);
  if (absl::Status s = ApplyNonClaims(lease, plan, req.park); !s.ok()) {
    return s;
  }
  result.deferred = static_cast<int>(plan.defer.size());
  result.parked = static_cast<int>(plan.park.size());
  result.cancelled = static_cast<int>(plan.cancel.size());
  result.capped_webhooks = plan.capped;
  std::vector<int64_t> ids = *probes;
  ids.insert(ids.end(), plan.claim.begin(), plan.claim.end());
  if (!ids.empty()) {
    absl::StatusOr<std::vector<Job>> jobs = LeaseRows(lease, ids, req);
    if (!jobs.ok()) return jobs.status();
    result.jobs = *std::move(jobs);
  }
  if (absl::Status s = txn.Commit(); !s.ok()) return s;
  return result;
}

}  // namespace pggitops::internal
