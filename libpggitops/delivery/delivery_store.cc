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
// returns the rows chosen as probes (locked, still pending). The probe is
// the webhook's earliest pending row, due or not: claims keep putting a
// non-closed webhook's due rows off by a moment (PlanClaim) until its
// probe has gone, so waiting for one of them to be due could wait forever.
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

// The columns a leased row returns, in JobFromRow's order (19 columns):
// the row, its webhook's target and policy, and its alert.
std::string JobColumns() {
  constexpr char kTs[] =
      R"(to_char(%s AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.MS"Z"'))";
  return absl::StrCat(
      "q.id, q.alert_id, q.webhook_id, q.attempt_count, w.url, w.secret, "
      "w.timeout_seconds, w.ssl_verify, w.max_retries, w.backoff_base, "
      "w.max_backoff, a.operation_type, a.severity, a.message, a.status, "
      "a.context::text, ",
      absl::StrReplaceAll(kTs, {{"%s", "a.created_at"}}), ", ",
      absl::StrReplaceAll(kTs, {{"%s", "a.acknowledged_at"}}), ", ",
      absl::StrReplaceAll(kTs, {{"%s", "a.resolved_at"}}));
}

// A Job from JobColumns() starting at column `at` of `row`.
Job JobFromRow(const Row& row, size_t at) {
  Job j;
  j.delivery_id = Int(row[at]);
  j.alert_id = Int(row[at + 1]);
  j.webhook_id = Int(row[at + 2]);
  j.attempt_count = static_cast<int>(Int(row[at + 3]));
  j.url = row[at + 4].value_or("");
  j.secret = row[at + 5].value_or("");
  j.timeout = absl::Seconds(Int(row[at + 6], 30));
  j.ssl_verify = row[at + 7].value_or("t") == "t";
  j.policy.max_retries = static_cast<int>(Int(row[at + 8], 3));
  j.policy.backoff_base = Double(row[at + 9], 2);
  j.policy.max_backoff = absl::Seconds(Int(row[at + 10], 3600));
  AlertRecord a;
  a.id = j.alert_id;
  a.operation_type = row[at + 11].value_or("");
  a.severity = row[at + 12].value_or("");
  a.message = row[at + 13].value_or("");
  a.status = row[at + 14].value_or("");
  a.context_json = row[at + 15].value_or("{}");
  a.created_at = row[at + 16].value_or("");
  a.acknowledged_at = row[at + 17];
  a.resolved_at = row[at + 18];
  j.body = AlertEventBody(a);
  return j;
}

// Postgres array literal of ints: "{1,2,3}".
std::string SmallIntArray(const std::vector<int>& v) {
  return absl::StrCat("{", absl::StrJoin(v, ","), "}");
}

struct Claimed {
  std::vector<Job> jobs;        // leased, oldest due first
  std::vector<Candidate> rest;  // locked and looked at, not leased
  int examined = 0;
  absl::Time now;
};

// One statement (its own transaction): locks up to `limit` due rows, oldest
// first, with SKIP LOCKED; leases those whose webhook is active with a
// closed breaker, at most room[webhook] (default per_webhook_limit) per
// webhook, the rule of PlanClaim; and returns every row it locked, the
// leased ones with what the attempt needs.
absl::StatusOr<Claimed> ClaimAndLease(PooledConnection& lease,
                                      const ClaimRequest& req) {
  std::vector<int64_t> room_ids;
  std::vector<int> room;
  for (const auto& [id, n] : req.room) {
    room_ids.push_back(id);
    room.push_back(n);
  }
  const std::string sql = absl::StrCat(R"sql(
WITH c AS (
  SELECT q.id, q.webhook_id, q.next_attempt_at
    FROM pggit.alert_delivery_queue q
   WHERE q.delivery_status = 'pending' AND q.next_attempt_at <= now()
     AND q.webhook_id <> ALL ($1::bigint[])
   ORDER BY q.next_attempt_at, q.id
   LIMIT $2
   FOR UPDATE SKIP LOCKED),
cw AS (
  SELECT c.id, c.webhook_id, c.next_attempt_at, w.status,
         w.deleted_at IS NOT NULL AS deleted, w.breaker_state,
         w.breaker_open_until,
         row_number() OVER (PARTITION BY c.webhook_id
                            ORDER BY c.next_attempt_at, c.id) AS n
    FROM c JOIN pggit.webhooks w ON w.id = c.webhook_id),
pick AS (
  SELECT cw.id FROM cw
    LEFT JOIN unnest($3::bigint[], $4::int[]) AS room(webhook_id, n)
           ON room.webhook_id = cw.webhook_id
   WHERE cw.status = 'active' AND NOT cw.deleted
     AND cw.breaker_state = 'closed' AND cw.n <= coalesce(room.n, $5)),
leased AS (
  UPDATE pggit.alert_delivery_queue q
     SET delivery_status = 'in_progress', lease_owner = $6,
         lease_expires_at = now() + make_interval(secs => $7::float8)
    FROM pick, pggit.alerts a, pggit.webhooks w
   WHERE q.id = pick.id AND a.id = q.alert_id AND w.id = q.webhook_id
  RETURNING )sql",
                                       JobColumns(), R"sql()
SELECT cw.id, cw.webhook_id, cw.status, cw.deleted, cw.breaker_state,
       extract(epoch FROM cw.breaker_open_until), extract(epoch FROM now()),
       l.*
  FROM cw LEFT JOIN leased l ON l.id = cw.id
 ORDER BY cw.next_attempt_at, cw.id)sql");
  absl::StatusOr<QueryResult> r =
      lease.Query(sql, {IntArray(req.skip_webhooks), absl::StrCat(req.limit),
                        IntArray(room_ids), SmallIntArray(room),
                        absl::StrCat(req.per_webhook_limit), req.owner,
                        Seconds(req.lease)});
  if (!r.ok()) return r.status();
  Claimed out;
  out.now = absl::UnixEpoch();
  out.examined = static_cast<int>(r->rows.size());
  for (const Row& row : r->rows) {
    out.now = Epoch(row[6]).value_or(out.now);
    if (row[7].has_value()) {
      out.jobs.push_back(JobFromRow(row, 7));
      continue;
    }
    Candidate c;
    c.delivery_id = Int(row[0]);
    c.webhook_id = Int(row[1]);
    c.webhook_status = row[2].value_or("");
    c.webhook_deleted = row[3].value_or("f") == "t";
    c.breaker = ParseBreakerState(row[4].value_or("closed"))
                    .value_or(BreakerState::kClosed);
    c.open_until = Epoch(row[5]);
    out.rest.push_back(std::move(c));
  }
  return out;
}

// Defers, parks and cancels rows the claim did not lease. The rows are no
// longer locked (the claim committed), so each statement touches only rows
// still pending; another engine may have done the same meanwhile, which is
// harmless.
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
 WHERE q.id = x.id AND q.delivery_status = 'pending')sql",
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
 WHERE q.id = ANY ($1::bigint[]) AND w.id = q.webhook_id
   AND q.delivery_status = 'pending' AND w.status <> 'active')sql",
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
 WHERE id = ANY ($1::bigint[]) AND delivery_status = 'pending')sql",
                                {IntArray(plan.cancel)})
                         .status();
    if (!s.ok()) return s;
  }
  return absl::OkStatus();
}

// Leases `ids`, locked by the caller's transaction.
absl::StatusOr<std::vector<Job>> LeaseRows(PooledConnection& lease,
                                           const std::vector<int64_t>& ids,
                                           const ClaimRequest& req) {
  const std::string sql = absl::StrCat(R"sql(
UPDATE pggit.alert_delivery_queue q
   SET delivery_status = 'in_progress', lease_owner = $2,
       lease_expires_at = now() + make_interval(secs => $3::float8)
  FROM pggit.alerts a, pggit.webhooks w
 WHERE q.id = ANY ($1::bigint[]) AND a.id = q.alert_id AND w.id = q.webhook_id
RETURNING )sql",
                                       JobColumns());
  absl::StatusOr<QueryResult> r =
      lease.Query(sql, {IntArray(ids), req.owner, Seconds(req.lease)});
  if (!r.ok()) return r.status();
  std::vector<Job> jobs;
  for (const Row& row : r->rows) jobs.push_back(JobFromRow(row, 0));
  return jobs;
}

}  // namespace

absl::StatusOr<ClaimResult> GrantProbesAndReclaim(PooledConnection& lease,
                                                  const ClaimRequest& req) {
  ClaimResult out;
  Txn txn(lease);
  if (absl::Status s = txn.Begin(); !s.ok()) return s;
  absl::StatusOr<std::vector<int64_t>> probes = GrantProbes(lease, req.lease);
  if (!probes.ok()) return probes.status();
  out.probes = static_cast<int>(probes->size());
  absl::StatusOr<int> reclaimed = ReclaimExpired(lease);
  if (!reclaimed.ok()) return reclaimed.status();
  out.reclaimed = *reclaimed;
  if (!probes->empty()) {
    absl::StatusOr<std::vector<Job>> jobs = LeaseRows(lease, *probes, req);
    if (!jobs.ok()) return jobs.status();
    out.jobs = *std::move(jobs);
  }
  if (absl::Status s = txn.Commit(); !s.ok()) return s;
  return out;
}

std::string IntArray(const std::vector<int64_t>& ids) {
  return absl::StrCat("{", absl::StrJoin(ids, ","), "}");
}

absl::StatusOr<ClaimResult> ClaimDue(PooledConnection& lease,
                                     const ClaimRequest& req) {
  ClaimResult result;
  absl::StatusOr<Claimed> claimed = ClaimAndLease(lease, req);
  if (!claimed.ok()) return claimed.status();
  result.examined = claimed->examined;
  // The rows not leased: PlanClaim decides what becomes of them, counting
  // the rows just leased as held.
  absl::flat_hash_map<int64_t, int> held;
  for (const auto& [id, n] : req.room) held[id] = req.per_webhook_limit - n;
  for (const Job& j : claimed->jobs) ++held[j.webhook_id];
  ClaimPlan plan =
      PlanClaim(claimed->rest, held, req.per_webhook_limit, claimed->now);
  if (absl::Status s = ApplyNonClaims(lease, plan, req.park); !s.ok()) {
    return s;
  }
  result.deferred = static_cast<int>(plan.defer.size());
  result.parked = static_cast<int>(plan.park.size());
  result.cancelled = static_cast<int>(plan.cancel.size());
  result.capped_webhooks = plan.capped;
  result.jobs = std::move(claimed->jobs);
  return result;
}

}  // namespace pggitops::internal
