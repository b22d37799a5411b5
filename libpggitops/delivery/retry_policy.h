// Retry maths and outcome classification for webhook attempts: pure
// functions (durations in, durations out), unit-tested without a clock.
#ifndef PGGITOPS_LIBPGGITOPS_DELIVERY_RETRY_POLICY_H_
#define PGGITOPS_LIBPGGITOPS_DELIVERY_RETRY_POLICY_H_

#include <optional>
#include <string>

#include "absl/random/bit_gen_ref.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "pggitops/delivery_queue.h"

namespace pggitops::internal {

// A webhook's retry_policy (CONTRACT section 10).
struct RetryPolicy {
  int max_retries = 3;        // retries after the first attempt, 0 to 20
  double backoff_base = 2.0;  // 1.0 to 10.0
  absl::Duration max_backoff = absl::Seconds(3600);
};

// The longest Retry-After honoured (the largest max_backoff allowed).
inline constexpr absl::Duration kMaxRetryAfter = absl::Hours(24);

// min(max_backoff, backoff_base^attempt) seconds, for the retry after
// attempt number `attempt` (1 for the first attempt). Attempts below 1 are
// treated as 1.
absl::Duration BackoffDelay(const RetryPolicy& policy, int attempt);

// BackoffDelay with "equal jitter": uniform in [d/2, d], so retries of many
// deliveries spread out but never wait longer than the cap.
absl::Duration JitteredBackoff(const RetryPolicy& policy, int attempt,
                               absl::BitGenRef gen);

// Parses a Retry-After value: delta-seconds ("120") or an HTTP date
// (IMF-fixdate "Sun, 06 Nov 1994 08:49:37 GMT", RFC 850 or asctime form).
// Returns the wait from `now` (zero for a date in the past), capped at
// kMaxRetryAfter; nullopt when the value is neither.
std::optional<absl::Duration> ParseRetryAfter(absl::string_view value,
                                              absl::Time now);

// What one attempt's response means for its delivery.
enum class AttemptClass {
  kDelivered,  // 2xx within the deadline
  kRetriable,  // every non-2xx but 410; timeout, connection, DNS, TLS errors
  kPermanent,  // refused target, invalid request: a retry cannot succeed
  kGone,       // 410: fails and disables the webhook
  kAborted,    // the transport stopped: not an attempt, hand the row back
};
AttemptClass ClassifyResponse(const WebhookResponse& response);

// A short description of why an attempt failed, for last_error and
// delivery_attempts.error ("" for a delivered attempt), e.g. "HTTP 503",
// "timeout: ...", "refused_target: ...".
std::string DescribeFailure(const WebhookResponse& response);

// What happens to a delivery after an attempt.
struct RetryDecision {
  enum Kind { kDelivered, kRetry, kFailed, kAborted } kind = kFailed;
  absl::Duration delay;          // for kRetry: wait before the next attempt
  bool disable_webhook = false;  // 410
};

// `attempts_made` counts the attempt just finished (1 after the first).
// Retriable outcomes are retried while attempts_made < 1 + max_retries,
// after JitteredBackoff(attempts_made), or after Retry-After when a 429 or
// 503 carries a later one (CONTRACT section 6).
RetryDecision DecideAfterAttempt(const RetryPolicy& policy, int attempts_made,
                                 const WebhookResponse& response,
                                 absl::Time now, absl::BitGenRef gen);

}  // namespace pggitops::internal

#endif  // PGGITOPS_LIBPGGITOPS_DELIVERY_RETRY_POLICY_H_
