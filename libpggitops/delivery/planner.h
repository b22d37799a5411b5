// The dispatcher's decisions, as pure functions of what it read from the
// database: which claimed candidates to attempt, defer, park or cancel, and
// what a batch of finished attempts does to its rows and webhooks. The SQL
// around them lives in delivery_store.cc; keeping the decisions here lets
// unit tests check them on a manual clock without a database.
#ifndef PGGITOPS_LIBPGGITOPS_DELIVERY_PLANNER_H_
#define PGGITOPS_LIBPGGITOPS_DELIVERY_PLANNER_H_

#include <cstdint>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/random/bit_gen_ref.h"
#include "absl/time/time.h"
#include "libpggitops/delivery/breaker.h"
#include "libpggitops/delivery/retry_policy.h"
#include "pggitops/delivery_queue.h"

namespace pggitops::internal {

// A claimed row, ready to be attempted.
struct Job {
  int64_t delivery_id = 0;
  int64_t alert_id = 0;
  int64_t webhook_id = 0;
  int attempt_count = 0;  // attempts already made in this retry budget
  std::string url;
  std::string secret;
  absl::Duration timeout = absl::Seconds(30);
  bool ssl_verify = true;
  RetryPolicy policy;
  std::string body;  // the signed payload (stable across attempts)
};

// A finished attempt, waiting to be recorded.
struct Completed {
  Job job;
  WebhookResponse response;
  absl::Time started_at;  // wall clock
};

// A due row seen by the claim query, with its webhook's state.
struct Candidate {
  int64_t delivery_id = 0;
  int64_t webhook_id = 0;
  std::string webhook_status;  // active, inactive, disabled
  bool webhook_deleted = false;
  BreakerState breaker = BreakerState::kClosed;
  std::optional<absl::Time> open_until;
};

struct ClaimPlan {
  std::vector<int64_t> claim;  // attempt now
  // Breaker open (or a probe in flight): due again at this time.
  std::vector<std::pair<int64_t, absl::Time>> defer;
  // Webhook not active: rescheduled by park_interval, last_error noting why.
  std::vector<int64_t> park;
  std::vector<int64_t> cancel;  // webhook deleted
  // Webhooks with due rows left untouched because of per_webhook_limit.
  std::vector<int64_t> capped;
};

// Decides for each candidate, in order. A webhook gets at most
// `per_webhook_limit` rows held by this engine (`held` counts those it
// already holds); candidates beyond that are left untouched (pending).
ClaimPlan PlanClaim(const std::vector<Candidate>& candidates,
                    const absl::flat_hash_map<int64_t, int>& held,
                    int per_webhook_limit, absl::Time now);

// What happens to one row after its attempt.
struct RowOutcome {
  int64_t delivery_id = 0;
  std::string status;    // delivered, pending (retry), failed
  absl::Duration delay;  // for pending: wait before the next attempt
  std::optional<int> http_status;
  std::string error;  // last_error ("" clears it)
};

// One delivery_attempts row.
struct AttemptRecord {
  int64_t delivery_id = 0;
  absl::Time started_at;
  double duration_ms = 0;
  std::optional<int> http_status;
  std::string error;
  std::string excerpt;
};

struct CompletionPlan {
  std::vector<RowOutcome> rows;
  std::vector<AttemptRecord> attempts;
  std::vector<int64_t> hand_back;  // aborted by shutdown: pending, due now
  absl::flat_hash_map<int64_t, WebhookHealth> webhooks;  // updated states
  int delivered = 0;
  int retried = 0;
  int failed = 0;
  int retry_attempts = 0;  // attempts that were not a row's first
  std::vector<double> durations_seconds;
};

// Applies a batch of finished attempts, in order, to the rows and to the
// webhooks' states in `webhooks` (loaded under lock; attempts of webhooks
// missing there leave no webhook change). `now` is the database's clock.
CompletionPlan PlanCompletions(
    const std::vector<Completed>& batch,
    absl::flat_hash_map<int64_t, WebhookHealth> webhooks,
    const BreakerParams& params, absl::Time now, absl::BitGenRef gen);

}  // namespace pggitops::internal

#endif  // PGGITOPS_LIBPGGITOPS_DELIVERY_PLANNER_H_
