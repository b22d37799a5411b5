// The dispatcher's decisions without a database: which claimed rows are
// attempted, deferred, parked or cancelled, and what a batch of finished
// attempts does to rows and webhooks (retries, failure after the budget,
// breaker opening and closing, 410 disabling, shutdown hand-back).
#include "libpggitops/delivery/planner.h"

#include <random>

#include "doctest/doctest.h"
#include "testing/fake_env.h"

namespace pggitops::internal {
namespace {

Candidate Due(int64_t id, int64_t webhook) {
  Candidate c;
  c.delivery_id = id;
  c.webhook_id = webhook;
  c.webhook_status = "active";
  return c;
}

Completed Done(int64_t id, int64_t webhook, int attempts_before, int status,
               TransportError error = TransportError::kNone) {
  Completed c;
  c.job.delivery_id = id;
  c.job.webhook_id = webhook;
  c.job.attempt_count = attempts_before;
  c.job.policy.max_retries = 2;
  c.response.http_status = status;
  c.response.error = error;
  c.response.duration = absl::Milliseconds(12);
  c.response.body_excerpt = "ok";
  return c;
}

TEST_CASE("PlanClaim: active closed webhooks are claimed up to the limit") {
  testing::FakeEnv env;
  std::vector<Candidate> c = {Due(1, 10), Due(2, 10), Due(3, 10), Due(4, 20)};
  absl::flat_hash_map<int64_t, int> held = {{10, 1}};
  ClaimPlan p = PlanClaim(c, held, /*per_webhook_limit=*/3, env.Now());
  CHECK(p.claim == std::vector<int64_t>{1, 2, 4});  // 10 holds 1 already
  CHECK(p.capped == std::vector<int64_t>{10});
  CHECK(p.defer.empty());
  CHECK(p.park.empty());
}

TEST_CASE("PlanClaim: open breakers defer, inactive park, deleted cancel") {
  testing::FakeEnv env;
  Candidate open = Due(1, 10);
  open.breaker = BreakerState::kOpen;
  open.open_until = env.Now() + absl::Seconds(30);
  Candidate half = Due(2, 11);
  half.breaker = BreakerState::kHalfOpen;
  half.open_until = env.Now() - absl::Seconds(1);  // probe window over
  Candidate disabled = Due(3, 12);
  disabled.webhook_status = "disabled";
  Candidate inactive = Due(4, 13);
  inactive.webhook_status = "inactive";
  Candidate deleted = Due(5, 14);
  deleted.webhook_deleted = true;
  ClaimPlan p =
      PlanClaim({open, half, disabled, inactive, deleted}, {}, 8, env.Now());
  CHECK(p.claim.empty());
  REQUIRE(p.defer.size() == 2);
  CHECK(p.defer[0] ==
        std::make_pair(int64_t{1}, env.Now() + absl::Seconds(30)));
  CHECK(p.defer[1] == std::make_pair(int64_t{2}, env.Now() + absl::Seconds(1)));
  CHECK(p.park == std::vector<int64_t>{3, 4});
  CHECK(p.cancel == std::vector<int64_t>{5});
  CHECK(p.capped.empty());
}

TEST_CASE("PlanCompletions: delivered, retried, failed after the budget") {
  testing::FakeEnv env;
  std::mt19937_64 gen(1);
  absl::flat_hash_map<int64_t, WebhookHealth> w = {{10, {}}};
  CompletionPlan p = PlanCompletions({Done(1, 10, 0, 200), Done(2, 10, 0, 503),
                                      Done(3, 10, 2, 503), Done(4, 10, 2, 404)},
                                     w, BreakerParams{}, env.Now(), gen);
  REQUIRE(p.rows.size() == 4);
  CHECK(p.rows[0].status == "delivered");
  CHECK(p.rows[0].error.empty());
  CHECK(p.rows[1].status == "pending");
  CHECK(p.rows[1].delay >= absl::Seconds(1));
  CHECK(p.rows[1].delay <= absl::Seconds(2));
  CHECK(p.rows[1].error == "HTTP 503");
  CHECK(p.rows[2].status == "failed");  // third attempt of 1 + 2 retries
  CHECK(p.rows[3].status == "failed");  // a 4xx too, once the budget is spent
  CHECK(p.delivered == 1);
  CHECK(p.retried == 1);
  CHECK(p.failed == 2);
  CHECK(p.retry_attempts == 2);
  CHECK(p.attempts.size() == 4);
  CHECK(p.attempts[1].http_status == 503);
  CHECK(p.attempts[0].excerpt == "ok");
  CHECK(p.attempts[0].duration_ms == doctest::Approx(12));
  const WebhookHealth& h = p.webhooks.at(10);
  CHECK(h.attempts == 4);
  CHECK(h.failures == 3);
  CHECK(h.consecutive_failures == 3);  // the success came first
  CHECK(h.breaker == BreakerState::kClosed);
}

TEST_CASE("PlanCompletions: the fifth consecutive failure opens the breaker") {
  testing::FakeEnv env;
  std::mt19937_64 gen(1);
  absl::flat_hash_map<int64_t, WebhookHealth> w = {{10, {}}};
  w[10].consecutive_failures = 3;
  CompletionPlan p = PlanCompletions(
      {Done(1, 10, 0, 500), Done(2, 10, 0, 0, TransportError::kTimeout)}, w,
      BreakerParams{}, env.Now(), gen);
  const WebhookHealth& h = p.webhooks.at(10);
  CHECK(h.breaker == BreakerState::kOpen);
  CHECK(h.opened);
  CHECK(h.open_until == env.Now() + absl::Seconds(30));
  CHECK_FALSE(p.attempts[1].http_status.has_value());
  CHECK(p.attempts[1].error.rfind("timeout", 0) == 0);
}

TEST_CASE("PlanCompletions: a successful probe closes; a 410 disables") {
  testing::FakeEnv env;
  std::mt19937_64 gen(1);
  absl::flat_hash_map<int64_t, WebhookHealth> w = {{10, {}}, {20, {}}};
  w[10].breaker = BreakerState::kHalfOpen;
  w[10].consecutive_failures = 5;
  CompletionPlan p = PlanCompletions({Done(1, 10, 3, 204), Done(2, 20, 0, 410)},
                                     w, BreakerParams{}, env.Now(), gen);
  CHECK(p.webhooks.at(10).closed);
  CHECK(p.webhooks.at(10).breaker == BreakerState::kClosed);
  CHECK(p.webhooks.at(20).disable);
  CHECK(p.webhooks.at(20).disabled_reason == "the receiver answered 410 Gone");
  CHECK(p.rows[1].status == "failed");
}

TEST_CASE("PlanCompletions: shutdown aborts are handed back, not recorded") {
  testing::FakeEnv env;
  std::mt19937_64 gen(1);
  CompletionPlan p = PlanCompletions(
      {Done(1, 10, 0, 0, TransportError::kShutdown), Done(2, 10, 0, 200)},
      {{10, {}}}, BreakerParams{}, env.Now(), gen);
  CHECK(p.hand_back == std::vector<int64_t>{1});
  CHECK(p.rows.size() == 1);
  CHECK(p.attempts.size() == 1);
  CHECK(p.webhooks.at(10).attempts == 1);
}

TEST_CASE("PlanCompletions: a webhook missing from the map is left alone") {
  testing::FakeEnv env;
  std::mt19937_64 gen(1);
  CompletionPlan p = PlanCompletions({Done(1, 99, 0, 500)}, {}, BreakerParams{},
                                     env.Now(), gen);
  CHECK(p.rows.size() == 1);
  CHECK(p.webhooks.empty());
}

}  // namespace
}  // namespace pggitops::internal
