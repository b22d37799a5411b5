#include "libpggitops/delivery/breaker.h"

#include <algorithm>
#include <cmath>

#include "absl/strings/str_cat.h"

namespace pggitops::internal {

const char* BreakerStateName(BreakerState s) {
  switch (s) {
    case BreakerState::kClosed:
      return "closed";
    case BreakerState::kOpen:
      return "open";
    case BreakerState::kHalfOpen:
      return "half_open";
  }
  return "closed";
}

std::optional<BreakerState> ParseBreakerState(absl::string_view name) {
  if (name == "closed") return BreakerState::kClosed;
  if (name == "open") return BreakerState::kOpen;
  if (name == "half_open") return BreakerState::kHalfOpen;
  return std::nullopt;
}

int OpenSecondsColumn(absl::Duration period) {
  const double s = std::ceil(absl::ToDoubleSeconds(period));
  return static_cast<int>(std::clamp(s, 1.0, 1e9));
}

void RecordSuccess(WebhookHealth* w, absl::Time now) {
  ++w->attempts;
  if (w->breaker != BreakerState::kClosed) w->closed = true;
  w->breaker = BreakerState::kClosed;
  w->consecutive_failures = 0;
  w->open_until.reset();
  w->open_period.reset();
  w->failing_since.reset();
  w->last_success = now;
}

namespace {

void Open(WebhookHealth* w, absl::Duration period, absl::Time now) {
  w->breaker = BreakerState::kOpen;
  w->open_period = period;
  w->open_until = now + period;
  w->opened = true;
  w->closed = false;
}

}  // namespace

void RecordFailure(WebhookHealth* w, const BreakerParams& params,
                   absl::Time now, bool gone) {
  ++w->attempts;
  ++w->failures;
  ++w->consecutive_failures;
  w->last_failure = now;
  if (!w->failing_since.has_value()) w->failing_since = now;

  switch (w->breaker) {
    case BreakerState::kHalfOpen: {
      // The probe failed: open again, twice as long (up to the maximum).
      const absl::Duration previous = w->open_period.value_or(params.open);
      Open(w, std::min(previous * 2, params.max_open), now);
      break;
    }
    case BreakerState::kClosed:
      if (w->consecutive_failures >= params.threshold) {
        Open(w, params.open, now);
      }
      break;
    case BreakerState::kOpen:
      break;  // a late result of an attempt started before it opened
  }

  if (w->status != "active" || w->disable) return;
  if (gone) {
    w->disable = true;
    w->disabled_reason = "the receiver answered 410 Gone";
  } else if (now - *w->failing_since >= params.disable_after) {
    w->disable = true;
    w->disabled_reason =
        absl::StrCat("no successful delivery since ",
                     absl::FormatTime("%Y-%m-%dT%H:%M:%SZ", *w->failing_since,
                                      absl::UTCTimeZone()),
                     " (", w->consecutive_failures, " consecutive failures)");
  }
  if (w->disable) w->status = "disabled";
}

}  // namespace pggitops::internal
