#include "libpggitops/delivery/planner.h"

#include <algorithm>

namespace pggitops::internal {

ClaimPlan PlanClaim(const std::vector<Candidate>& candidates,
                    const absl::flat_hash_map<int64_t, int>& held,
                    int per_webhook_limit, absl::Time now) {
  ClaimPlan plan;
  absl::flat_hash_map<int64_t, int> taken;
  for (const Candidate& c : candidates) {
    if (c.webhook_deleted) {
      plan.cancel.push_back(c.delivery_id);
    } else if (c.webhook_status != "active") {
      plan.park.push_back(c.delivery_id);
    } else if (c.breaker != BreakerState::kClosed) {
      // Open: wait for the end of the open period. Half-open (a probe in
      // flight) or open with the period over (another engine holds the
      // probe grant): look again in a second.
      absl::Time until = now + absl::Seconds(1);
      if (c.open_until.has_value()) until = std::max(until, *c.open_until);
      plan.defer.emplace_back(c.delivery_id, until);
    } else {
      auto it = held.find(c.webhook_id);
      const int already = it == held.end() ? 0 : it->second;
      int& mine = taken[c.webhook_id];
      if (already + mine >= per_webhook_limit) {
        if (std::find(plan.capped.begin(), plan.capped.end(), c.webhook_id) ==
            plan.capped.end()) {
          plan.capped.push_back(c.webhook_id);
        }
        continue;
      }
      ++mine;
      plan.claim.push_back(c.delivery_id);
    }
  }
  return plan;
}

namespace {

double Ms(absl::Duration d) { return absl::ToDoubleMilliseconds(d); }

}  // namespace

CompletionPlan PlanCompletions(
    const std::vector<Completed>& batch,
    absl::flat_hash_map<int64_t, WebhookHealth> webhooks,
    const BreakerParams& params, absl::Time now, absl::BitGenRef gen) {
  CompletionPlan plan;
  for (const Completed& c : batch) {
    const int attempt = c.job.attempt_count + 1;
    const RetryDecision d =
        DecideAfterAttempt(c.job.policy, attempt, c.response, now, gen);
    if (d.kind == RetryDecision::kAborted) {
      plan.hand_back.push_back(c.job.delivery_id);
      continue;
    }
    const std::string error = DescribeFailure(c.response);
    std::optional<int> status;
    if (c.response.http_status != 0) status = c.response.http_status;
    plan.attempts.push_back({c.job.delivery_id, c.started_at,
                             Ms(c.response.duration), status, error,
                             c.response.body_excerpt});
    plan.durations_seconds.push_back(
        absl::ToDoubleSeconds(c.response.duration));
    if (attempt > 1) ++plan.retry_attempts;

    RowOutcome row;
    row.delivery_id = c.job.delivery_id;
    row.http_status = status;
    row.error = error;
    switch (d.kind) {
      case RetryDecision::kDelivered:
        row.status = "delivered";
        ++plan.delivered;
        break;
      case RetryDecision::kRetry:
        row.status = "pending";
        row.delay = d.delay;
        ++plan.retried;
        break;
      default:
        row.status = "failed";
        ++plan.failed;
        break;
    }
    plan.rows.push_back(std::move(row));

    auto it = webhooks.find(c.job.webhook_id);
    if (it == webhooks.end()) continue;
    if (d.kind == RetryDecision::kDelivered) {
      RecordSuccess(&it->second, now);
    } else {
      RecordFailure(&it->second, params, now, d.disable_webhook);
    }
  }
  plan.webhooks = std::move(webhooks);
  return plan;
}

}  // namespace pggitops::internal
