// The delivery queue's SQL: every statement the dispatcher runs against
// pggit.alert_delivery_queue, pggit.delivery_attempts and pggit.webhooks,
// through a pool lease. Multi-instance safety comes from here: claims use
// FOR UPDATE SKIP LOCKED and leases, breaker state is read and written
// under the webhooks row lock, purges take an advisory lock. Not
// thread-safe per lease; the functions themselves keep no state.
#ifndef PGGITOPS_LIBPGGITOPS_DELIVERY_DELIVERY_STORE_H_
#define PGGITOPS_LIBPGGITOPS_DELIVERY_DELIVERY_STORE_H_

#include <cstdint>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/random/bit_gen_ref.h"
#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "libpggitops/delivery/planner.h"
#include "pggitops/connection_pool.h"

namespace pggitops::internal {

// The prefix of last_error on rows parked because their webhook is not
// active; the activation check brings such rows forward.
inline constexpr char kParkedPrefix[] = "waiting: webhook is ";

struct ClaimRequest {
  std::string owner;  // lease_owner
  absl::Duration lease;
  int limit = 100;  // rows to lock and look at
  // Rows of one webhook this engine may have claimed and not yet attempted
  // to the end (queued or in flight).
  int per_webhook_limit = 16;
  // How many more rows of a webhook may be leased, for webhooks this engine
  // has rows of (per_webhook_limit for the others).
  absl::flat_hash_map<int64_t, int> room;
  std::vector<int64_t> skip_webhooks;  // no room: not even looked at
  absl::Duration park;
};

struct ClaimResult {
  std::vector<Job> jobs;
  int examined = 0;   // candidates locked and looked at
  int deferred = 0;   // breaker open
  int parked = 0;     // webhook not active
  int cancelled = 0;  // webhook deleted
  int reclaimed = 0;  // expired leases made pending again
  int probes = 0;     // half-open probes granted
  // Webhooks that had more due rows than this engine may hold.
  std::vector<int64_t> capped_webhooks;
};

// A claim: one statement locks up to `limit` due rows (SKIP LOCKED) and
// leases those PlanClaim would attempt, returning them with their webhook
// and alert; the others are deferred, parked or cancelled as PlanClaim says
// (autocommit statements, only while still pending).
absl::StatusOr<ClaimResult> ClaimDue(PooledConnection& lease,
                                     const ClaimRequest& request);

// The claims' housekeeping, one transaction, which the engine runs about
// once a second: grants half-open probes (one due row of each active
// webhook whose open period is over, leased to `request.owner` and
// returned in `jobs`) and makes rows whose lease expired pending again
// (counted in `reclaimed`).
absl::StatusOr<ClaimResult> GrantProbesAndReclaim(PooledConnection& lease,
                                                  const ClaimRequest& request);

struct CompletionResult {
  CompletionPlan plan;
  int rows_updated = 0;  // rows whose lease we still held
};

// One completion transaction for `batch`: locks the webhooks involved (in
// id order), plans with PlanCompletions on the database clock, inserts the
// attempts, updates the rows still leased by `owner`, writes the webhooks'
// breaker and statistics, and brings forward the waiting rows of webhooks
// whose breaker closed.
absl::StatusOr<CompletionResult> CompleteBatch(
    PooledConnection& lease, const std::string& owner,
    const std::vector<Completed>& batch, const BreakerParams& params,
    absl::BitGenRef gen);

// Extends the leases of `ids` still held by `owner` and returns the ids
// that are no longer held by `owner` (another engine took them after the
// lease ran out, or they ended). Rows locked at that moment (a batch of
// completions recording them) are skipped, not waited for, so renewal and
// completion never deadlock; they are renewed next time if still held.
absl::StatusOr<std::vector<int64_t>> RenewLeases(
    PooledConnection& lease, const std::string& owner,
    const std::vector<int64_t>& ids, absl::Duration duration);

// Makes rows held by `owner` pending again, due at the given time (now
// when nullopt). Returns how many rows changed.
absl::StatusOr<int> HandBack(
    PooledConnection& lease, const std::string& owner,
    const std::vector<std::pair<int64_t, std::optional<absl::Time>>>& rows);

// Brings parked rows of webhooks active again (updated at or after
// `since`) forward to now. Returns the rows moved and the database time the
// check ran at (the next `since`).
absl::StatusOr<std::pair<int, absl::Time>> UnparkActivated(
    PooledConnection& lease, absl::Time since);

// Deletes up to `batch` delivered, failed or cancelled rows (and their
// attempts) older than `retention_days`. Returns the rows deleted, or -1
// when another engine holds the purge lock.
absl::StatusOr<int> PurgeBatch(PooledConnection& lease, int retention_days,
                               int batch);

struct QueueGauges {
  int64_t pending = 0;
  int64_t in_progress = 0;
  int64_t closed = 0;  // webhooks per breaker state (not deleted)
  int64_t open = 0;
  int64_t half_open = 0;
};
absl::StatusOr<QueueGauges> ReadGauges(PooledConnection& lease);

// Postgres array literal of integers: "{1,2,3}".
std::string IntArray(const std::vector<int64_t>& ids);

}  // namespace pggitops::internal

#endif  // PGGITOPS_LIBPGGITOPS_DELIVERY_DELIVERY_STORE_H_
