#include "libpggitops/delivery/retry_policy.h"

#include <algorithm>
#include <cmath>
#include <cstdint>

#include "absl/random/distributions.h"
#include "absl/strings/ascii.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"

namespace pggitops::internal {

absl::Duration BackoffDelay(const RetryPolicy& policy, int attempt) {
  attempt = std::max(attempt, 1);
  const double cap = absl::ToDoubleSeconds(policy.max_backoff);
  const double base = std::max(policy.backoff_base, 1.0);
  // pow overflows to +inf for large attempts; min() then picks the cap.
  const double seconds = std::min(cap, std::pow(base, attempt));
  return absl::Seconds(std::max(seconds, 0.0));
}

absl::Duration JitteredBackoff(const RetryPolicy& policy, int attempt,
                               absl::BitGenRef gen) {
  const absl::Duration d = BackoffDelay(policy, attempt);
  const double factor =
      absl::Uniform(absl::IntervalClosedClosed, gen, 0.5, 1.0);
  return d * factor;
}

std::optional<absl::Duration> ParseRetryAfter(absl::string_view value,
                                              absl::Time now) {
  value = absl::StripAsciiWhitespace(value);
  if (value.empty()) return std::nullopt;
  if (std::all_of(value.begin(), value.end(), absl::ascii_isdigit)) {
    uint64_t seconds = 0;
    if (!absl::SimpleAtoi(value, &seconds)) return kMaxRetryAfter;  // huge
    return std::min(absl::Seconds(static_cast<double>(seconds)),
                    kMaxRetryAfter);
  }
  // RFC 9110 section 5.6.7: IMF-fixdate, then the two obsolete forms.
  static const char* const kFormats[] = {
      "%a, %d %b %Y %H:%M:%S GMT",
      "%A, %d-%b-%y %H:%M:%S GMT",
      "%a %b %e %H:%M:%S %Y",
  };
  const std::string text(value);
  for (const char* format : kFormats) {
    absl::Time when;
    std::string err;
    if (absl::ParseTime(format, text, absl::UTCTimeZone(), &when, &err)) {
      return std::clamp(when - now, absl::ZeroDuration(), kMaxRetryAfter);
    }
  }
  return std::nullopt;
}

AttemptClass ClassifyResponse(const WebhookResponse& r) {
  switch (r.error) {
    case TransportError::kNone:
      break;
    case TransportError::kShutdown:
      return AttemptClass::kAborted;
    case TransportError::kRefusedTarget:
    case TransportError::kInvalidRequest:
      return AttemptClass::kPermanent;
    case TransportError::kTimeout:
    case TransportError::kConnect:
    case TransportError::kDns:
    case TransportError::kTls:
    case TransportError::kOther:
      return AttemptClass::kRetriable;
  }
  const int s = r.http_status;
  if (s >= 200 && s <= 299) return AttemptClass::kDelivered;
  if (s == 410) return AttemptClass::kGone;
  // Every other status is retried (CONTRACT section 6): a receiver's 404
  // during its own deploy must not lose an alert.
  return AttemptClass::kRetriable;
}

std::string DescribeFailure(const WebhookResponse& r) {
  if (r.error != TransportError::kNone) {
    std::string out = TransportErrorName(r.error);
    if (!r.error_message.empty()) absl::StrAppend(&out, ": ", r.error_message);
    return out;
  }
  if (r.http_status >= 200 && r.http_status <= 299) return "";
  return absl::StrCat("HTTP ", r.http_status);
}

RetryDecision DecideAfterAttempt(const RetryPolicy& policy, int attempts_made,
                                 const WebhookResponse& response,
                                 absl::Time now, absl::BitGenRef gen) {
  RetryDecision d;
  switch (ClassifyResponse(response)) {
    case AttemptClass::kDelivered:
      d.kind = RetryDecision::kDelivered;
      return d;
    case AttemptClass::kAborted:
      d.kind = RetryDecision::kAborted;
      return d;
    case AttemptClass::kGone:
      d.kind = RetryDecision::kFailed;
      d.disable_webhook = true;
      return d;
    case AttemptClass::kPermanent:
      d.kind = RetryDecision::kFailed;
      return d;
    case AttemptClass::kRetriable:
      break;
  }
  if (attempts_made >= 1 + policy.max_retries) {
    d.kind = RetryDecision::kFailed;
    return d;
  }
  d.kind = RetryDecision::kRetry;
  d.delay = JitteredBackoff(policy, attempts_made, gen);
  const bool honours_retry_after =
      response.http_status == 429 || response.http_status == 503;
  if (honours_retry_after && !response.retry_after.empty()) {
    std::optional<absl::Duration> after =
        ParseRetryAfter(response.retry_after, now);
    if (after.has_value()) d.delay = std::max(d.delay, *after);
  }
  return d;
}

}  // namespace pggitops::internal
