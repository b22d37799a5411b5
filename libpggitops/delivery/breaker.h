// The per-webhook circuit breaker and auto-disable rules (CONTRACT section
// 10) as pure state transitions. The state lives in the webhooks row; the
// dispatcher loads it under a row lock, applies the attempts of a batch
// here, and writes it back, so every engine sees the same breaker.
#ifndef PGGITOPS_LIBPGGITOPS_DELIVERY_BREAKER_H_
#define PGGITOPS_LIBPGGITOPS_DELIVERY_BREAKER_H_

#include <cstdint>
#include <optional>
#include <string>

#include "absl/strings/string_view.h"
#include "absl/time/time.h"

namespace pggitops::internal {

struct BreakerParams {
  int threshold = 5;                            // failures that open it
  absl::Duration open = absl::Seconds(30);      // first open period
  absl::Duration max_open = absl::Minutes(10);  // longest open period
  absl::Duration disable_after = absl::Hours(24);
};

// NOTE: the names are stored in webhooks.breaker_state.
enum class BreakerState { kClosed, kOpen, kHalfOpen };
const char* BreakerStateName(BreakerState s);  // "closed", "open", "half_open"
std::optional<BreakerState> ParseBreakerState(absl::string_view name);

// The engine's columns of one webhooks row, plus what a batch changed.
struct WebhookHealth {
  std::string status = "active";  // active, inactive, disabled
  BreakerState breaker = BreakerState::kClosed;
  int consecutive_failures = 0;
  std::optional<absl::Time> open_until;       // breaker_open_until
  std::optional<absl::Duration> open_period;  // breaker_open_seconds
  std::optional<absl::Time> failing_since;
  std::optional<absl::Time> last_success;
  std::optional<absl::Time> last_failure;

  // Changes made by the batch.
  int64_t attempts = 0;  // added to total_deliveries
  int64_t failures = 0;  // added to total_failures
  bool disable = false;  // set status = 'disabled'
  std::string disabled_reason;
  bool opened = false;  // the breaker opened (or reopened)
  bool closed = false;  // the breaker closed from open/half-open
};

// A 2xx: closes the breaker and ends the failure run.
void RecordSuccess(WebhookHealth* w, absl::Time now);

// A failed attempt at `now` (`gone`: the receiver answered 410). Opens the
// breaker at the threshold, reopens it for twice as long when a half-open
// probe fails, and marks an active webhook disabled on 410 or when it has
// been failing for disable_after.
void RecordFailure(WebhookHealth* w, const BreakerParams& params,
                   absl::Time now, bool gone);

// Whether a delivery of this webhook may be attempted at `now` without a
// probe (closed breaker).
inline bool BreakerAllows(const WebhookHealth& w) {
  return w.breaker == BreakerState::kClosed;
}

// The breaker_open_seconds value for an open period: whole seconds, at
// least 1 (the column is a positive integer).
int OpenSecondsColumn(absl::Duration period);

}  // namespace pggitops::internal

#endif  // PGGITOPS_LIBPGGITOPS_DELIVERY_BREAKER_H_
