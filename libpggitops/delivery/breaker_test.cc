// Circuit breaker transitions and auto-disable, on a manual clock.
#include "libpggitops/delivery/breaker.h"

#include "doctest/doctest.h"
#include "testing/fake_env.h"

namespace pggitops::internal {
namespace {

TEST_CASE("Breaker: opens after the threshold of consecutive failures") {
  testing::FakeEnv env;
  BreakerParams p;  // 5 failures, 30 s, max 10 min
  WebhookHealth w;
  for (int i = 1; i <= 4; ++i) {
    RecordFailure(&w, p, env.Now(), false);
    CHECK(w.breaker == BreakerState::kClosed);
    CHECK(w.consecutive_failures == i);
  }
  CHECK_FALSE(w.opened);
  RecordFailure(&w, p, env.Now(), false);
  CHECK(w.breaker == BreakerState::kOpen);
  CHECK(w.opened);
  CHECK(w.open_until == env.Now() + absl::Seconds(30));
  CHECK(w.open_period == absl::Seconds(30));
  CHECK(w.attempts == 5);
  CHECK(w.failures == 5);
  CHECK(w.failing_since == env.Now());
}

TEST_CASE("Breaker: a success resets the count and closes") {
  testing::FakeEnv env;
  BreakerParams p;
  WebhookHealth w;
  for (int i = 0; i < 4; ++i) RecordFailure(&w, p, env.Now(), false);
  RecordSuccess(&w, env.Now());
  CHECK(w.consecutive_failures == 0);
  CHECK_FALSE(w.failing_since.has_value());
  CHECK(w.last_success == env.Now());
  CHECK_FALSE(w.closed);  // it never opened
  for (int i = 0; i < 4; ++i) RecordFailure(&w, p, env.Now(), false);
  CHECK(w.breaker == BreakerState::kClosed);
}

TEST_CASE("Breaker: failed probes double the open period up to the max") {
  testing::FakeEnv env;
  BreakerParams p;
  WebhookHealth w;
  for (int i = 0; i < 5; ++i) RecordFailure(&w, p, env.Now(), false);
  const absl::Duration expected[] = {absl::Seconds(60),  absl::Seconds(120),
                                     absl::Seconds(240), absl::Seconds(480),
                                     absl::Seconds(600), absl::Seconds(600)};
  for (absl::Duration e : expected) {
    env.AdvanceBy(*w.open_period);
    w.breaker = BreakerState::kHalfOpen;  // the dispatcher granted a probe
    RecordFailure(&w, p, env.Now(), false);
    CHECK(w.breaker == BreakerState::kOpen);
    CHECK(w.open_period == e);
    CHECK(w.open_until == env.Now() + e);
  }
}

TEST_CASE("Breaker: a successful probe closes and forgets the period") {
  testing::FakeEnv env;
  BreakerParams p;
  WebhookHealth w;
  for (int i = 0; i < 5; ++i) RecordFailure(&w, p, env.Now(), false);
  w.opened = false;
  w.breaker = BreakerState::kHalfOpen;
  RecordSuccess(&w, env.Now());
  CHECK(w.breaker == BreakerState::kClosed);
  CHECK(w.closed);
  CHECK_FALSE(w.open_until.has_value());
  CHECK_FALSE(w.open_period.has_value());
  // Next opening starts again at 30 s.
  for (int i = 0; i < 5; ++i) RecordFailure(&w, p, env.Now(), false);
  CHECK(w.open_period == absl::Seconds(30));
}

TEST_CASE("Breaker: late failures while open do not extend it") {
  testing::FakeEnv env;
  BreakerParams p;
  WebhookHealth w;
  for (int i = 0; i < 5; ++i) RecordFailure(&w, p, env.Now(), false);
  const absl::Time until = *w.open_until;
  env.AdvanceBy(absl::Seconds(5));
  RecordFailure(&w, p, env.Now(), false);
  CHECK(w.open_until == until);
  CHECK(w.consecutive_failures == 6);
}

TEST_CASE("Disable: after disable_after without a success") {
  testing::FakeEnv env;
  BreakerParams p;
  p.disable_after = absl::Hours(24);
  WebhookHealth w;
  RecordFailure(&w, p, env.Now(), false);
  env.AdvanceBy(absl::Hours(23));
  RecordFailure(&w, p, env.Now(), false);
  CHECK_FALSE(w.disable);
  CHECK(w.status == "active");
  env.AdvanceBy(absl::Hours(1));
  RecordFailure(&w, p, env.Now(), false);
  CHECK(w.disable);
  CHECK(w.status == "disabled");
  CHECK(w.disabled_reason.find("no successful delivery since") == 0);
  CHECK(w.disabled_reason.find("3 consecutive failures") != std::string::npos);
}

TEST_CASE("Disable: a 410 disables at once; only active webhooks") {
  testing::FakeEnv env;
  BreakerParams p;
  WebhookHealth w;
  RecordFailure(&w, p, env.Now(), /*gone=*/true);
  CHECK(w.disable);
  CHECK(w.disabled_reason == "the receiver answered 410 Gone");

  WebhookHealth inactive;
  inactive.status = "inactive";
  RecordFailure(&inactive, p, env.Now(), true);
  CHECK_FALSE(inactive.disable);
  CHECK(inactive.status == "inactive");
}

TEST_CASE("Breaker: state names round-trip; open seconds column") {
  for (BreakerState s :
       {BreakerState::kClosed, BreakerState::kOpen, BreakerState::kHalfOpen}) {
    CHECK(ParseBreakerState(BreakerStateName(s)) == s);
  }
  CHECK_FALSE(ParseBreakerState("ajar").has_value());
  CHECK(OpenSecondsColumn(absl::Milliseconds(10)) == 1);
  CHECK(OpenSecondsColumn(absl::Seconds(30)) == 30);
  CHECK(OpenSecondsColumn(absl::Seconds(30.2)) == 31);
}

}  // namespace
}  // namespace pggitops::internal
