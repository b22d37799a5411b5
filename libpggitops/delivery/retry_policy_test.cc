// Backoff maths (cap, jitter bounds), Retry-After parsing and the outcome
// of an attempt for its delivery. Pure functions: no clock, no sleep.
#include "libpggitops/delivery/retry_policy.h"

#include <cstdint>
#include <limits>
#include <random>

#include "doctest/doctest.h"

namespace pggitops::internal {
namespace {

// A generator that always returns the same word, to pin jitter to its
// bounds.
struct FixedBits {
  using result_type = uint64_t;
  static constexpr result_type min() { return 0; }
  static constexpr result_type max() {
    return std::numeric_limits<uint64_t>::max();
  }
  result_type operator()() { return value; }
  uint64_t value;
};

const absl::Time kNow = absl::FromUnixSeconds(1'700'000'000);

WebhookResponse Status(int code) {
  WebhookResponse r;
  r.http_status = code;
  return r;
}

WebhookResponse Error(TransportError e) {
  WebhookResponse r;
  r.error = e;
  r.error_message = "boom";
  return r;
}

TEST_CASE("Backoff: base^attempt seconds, capped at max_backoff") {
  RetryPolicy p;  // base 2, cap 3600 s
  CHECK(BackoffDelay(p, 1) == absl::Seconds(2));
  CHECK(BackoffDelay(p, 2) == absl::Seconds(4));
  CHECK(BackoffDelay(p, 3) == absl::Seconds(8));
  CHECK(BackoffDelay(p, 11) == absl::Seconds(2048));
  CHECK(BackoffDelay(p, 12) == absl::Seconds(3600));    // 4096 capped
  CHECK(BackoffDelay(p, 2000) == absl::Seconds(3600));  // pow overflows
  CHECK(BackoffDelay(p, 0) == absl::Seconds(2));        // treated as 1
  p.backoff_base = 1.5;
  CHECK(BackoffDelay(p, 2) == absl::Seconds(2.25));
  p.backoff_base = 1.0;
  CHECK(BackoffDelay(p, 15) == absl::Seconds(1));
  p.backoff_base = 10;
  p.max_backoff = absl::Seconds(50);
  CHECK(BackoffDelay(p, 1) == absl::Seconds(10));
  CHECK(BackoffDelay(p, 2) == absl::Seconds(50));
}

TEST_CASE("Backoff: jitter stays within [d/2, d] and reaches both ends") {
  RetryPolicy p;
  FixedBits low{0};
  FixedBits high{std::numeric_limits<uint64_t>::max()};
  const absl::Duration lo = JitteredBackoff(p, 3, low);
  const absl::Duration hi = JitteredBackoff(p, 3, high);
  CHECK(lo >= absl::Seconds(4));
  CHECK(lo < absl::Seconds(4.01));
  CHECK(hi <= absl::Seconds(8));
  CHECK(hi > absl::Seconds(7.99));

  std::mt19937_64 gen(42);
  absl::Duration min = absl::InfiniteDuration(), max = absl::ZeroDuration();
  for (int i = 0; i < 2000; ++i) {
    const absl::Duration d = JitteredBackoff(p, 12, gen);  // capped at 3600
    CHECK(d >= absl::Seconds(1800));
    CHECK(d <= absl::Seconds(3600));
    min = std::min(min, d);
    max = std::max(max, d);
  }
  // The spread is real, not a constant.
  CHECK(max - min > absl::Seconds(1500));
}

TEST_CASE("RetryAfter: delta-seconds and the three HTTP date forms") {
  CHECK(ParseRetryAfter("120", kNow) == absl::Seconds(120));
  CHECK(ParseRetryAfter(" 0 ", kNow) == absl::ZeroDuration());
  CHECK(ParseRetryAfter("99999999999999999999999", kNow) == kMaxRetryAfter);
  CHECK(ParseRetryAfter("172800", kNow) == kMaxRetryAfter);  // 48 h capped

  // kNow is Tue, 14 Nov 2023 22:13:20 GMT.
  CHECK(ParseRetryAfter("Tue, 14 Nov 2023 22:14:20 GMT", kNow) ==
        absl::Seconds(60));
  CHECK(ParseRetryAfter("Tuesday, 14-Nov-23 22:15:20 GMT", kNow) ==
        absl::Seconds(120));
  CHECK(ParseRetryAfter("Tue Nov 14 22:13:50 2023", kNow) == absl::Seconds(30));
  // A date in the past means "now".
  CHECK(ParseRetryAfter("Sun, 06 Nov 1994 08:49:37 GMT", kNow) ==
        absl::ZeroDuration());
}

TEST_CASE("RetryAfter: garbage is ignored") {
  CHECK_FALSE(ParseRetryAfter("", kNow).has_value());
  CHECK_FALSE(ParseRetryAfter("-5", kNow).has_value());
  CHECK_FALSE(ParseRetryAfter("1.5", kNow).has_value());
  CHECK_FALSE(ParseRetryAfter("soon", kNow).has_value());
  CHECK_FALSE(ParseRetryAfter("Tue, 14 Nov 2023", kNow).has_value());
}

TEST_CASE("Classify: 2xx delivered, 410 gone, every other status retried") {
  CHECK(ClassifyResponse(Status(200)) == AttemptClass::kDelivered);
  CHECK(ClassifyResponse(Status(204)) == AttemptClass::kDelivered);
  CHECK(ClassifyResponse(Status(299)) == AttemptClass::kDelivered);
  CHECK(ClassifyResponse(Status(410)) == AttemptClass::kGone);
  CHECK(ClassifyResponse(Status(429)) == AttemptClass::kRetriable);
  CHECK(ClassifyResponse(Status(500)) == AttemptClass::kRetriable);
  CHECK(ClassifyResponse(Status(503)) == AttemptClass::kRetriable);
  CHECK(ClassifyResponse(Status(302)) == AttemptClass::kRetriable);
  CHECK(ClassifyResponse(Status(400)) == AttemptClass::kRetriable);
  CHECK(ClassifyResponse(Status(401)) == AttemptClass::kRetriable);
  CHECK(ClassifyResponse(Status(404)) == AttemptClass::kRetriable);
  CHECK(ClassifyResponse(Status(408)) == AttemptClass::kRetriable);
  CHECK(ClassifyResponse(Status(422)) == AttemptClass::kRetriable);
  CHECK(ClassifyResponse(Status(499)) == AttemptClass::kRetriable);
  CHECK(ClassifyResponse(Status(100)) == AttemptClass::kRetriable);
  CHECK(ClassifyResponse(Error(TransportError::kTimeout)) ==
        AttemptClass::kRetriable);
  CHECK(ClassifyResponse(Error(TransportError::kConnect)) ==
        AttemptClass::kRetriable);
  CHECK(ClassifyResponse(Error(TransportError::kDns)) ==
        AttemptClass::kRetriable);
  CHECK(ClassifyResponse(Error(TransportError::kRefusedTarget)) ==
        AttemptClass::kPermanent);
  CHECK(ClassifyResponse(Error(TransportError::kInvalidRequest)) ==
        AttemptClass::kPermanent);
  CHECK(ClassifyResponse(Error(TransportError::kShutdown)) ==
        AttemptClass::kAborted);
  // A 200 whose body was still arriving at the deadline is a timeout.
  WebhookResponse late = Error(TransportError::kTimeout);
  late.http_status = 200;
  CHECK(ClassifyResponse(late) == AttemptClass::kRetriable);
}

TEST_CASE("Classify: failure descriptions") {
  CHECK(DescribeFailure(Status(200)) == "");
  CHECK(DescribeFailure(Status(503)) == "HTTP 503");
  CHECK(DescribeFailure(Error(TransportError::kTimeout)) == "timeout: boom");
  CHECK(DescribeFailure(Error(TransportError::kRefusedTarget)) ==
        "refused_target: boom");
}

TEST_CASE("Decide: retries until 1 + max_retries attempts, then fails") {
  RetryPolicy p;
  p.max_retries = 2;
  std::mt19937_64 gen(7);
  const WebhookResponse e500 = Status(500);
  RetryDecision d = DecideAfterAttempt(p, 1, e500, kNow, gen);
  CHECK(d.kind == RetryDecision::kRetry);
  CHECK(d.delay >= absl::Seconds(1));
  CHECK(d.delay <= absl::Seconds(2));
  d = DecideAfterAttempt(p, 2, e500, kNow, gen);
  CHECK(d.kind == RetryDecision::kRetry);
  CHECK(d.delay >= absl::Seconds(2));
  CHECK(d.delay <= absl::Seconds(4));
  d = DecideAfterAttempt(p, 3, e500, kNow, gen);
  CHECK(d.kind == RetryDecision::kFailed);
  CHECK_FALSE(d.disable_webhook);

  p.max_retries = 0;
  CHECK(DecideAfterAttempt(p, 1, e500, kNow, gen).kind ==
        RetryDecision::kFailed);
}

TEST_CASE("Decide: success, 4xx retried, permanent failure, 410, shutdown") {
  RetryPolicy p;
  std::mt19937_64 gen(7);
  CHECK(DecideAfterAttempt(p, 1, Status(201), kNow, gen).kind ==
        RetryDecision::kDelivered);
  CHECK(DecideAfterAttempt(p, 1, Status(404), kNow, gen).kind ==
        RetryDecision::kRetry);
  CHECK(DecideAfterAttempt(p, 1 + p.max_retries, Status(404), kNow, gen).kind ==
        RetryDecision::kFailed);
  CHECK(
      DecideAfterAttempt(p, 1, Error(TransportError::kRefusedTarget), kNow, gen)
          .kind == RetryDecision::kFailed);
  const RetryDecision gone = DecideAfterAttempt(p, 1, Status(410), kNow, gen);
  CHECK(gone.kind == RetryDecision::kFailed);
  CHECK(gone.disable_webhook);
  CHECK(DecideAfterAttempt(p, 1, Error(TransportError::kShutdown), kNow, gen)
            .kind == RetryDecision::kAborted);
}

TEST_CASE("Decide: Retry-After is honoured when later than the backoff") {
  RetryPolicy p;  // first retry after 1-2 s
  std::mt19937_64 gen(7);
  WebhookResponse r = Status(429);
  r.retry_after = "30";
  CHECK(DecideAfterAttempt(p, 1, r, kNow, gen).delay == absl::Seconds(30));
  r.retry_after = "Tue, 14 Nov 2023 22:15:20 GMT";
  CHECK(DecideAfterAttempt(p, 1, r, kNow, gen).delay == absl::Seconds(120));
  // Shorter than the backoff: the backoff wins.
  r.retry_after = "0";
  const absl::Duration d = DecideAfterAttempt(p, 1, r, kNow, gen).delay;
  CHECK(d >= absl::Seconds(1));
  // Unparsable: ignored.
  r.retry_after = "later";
  CHECK(DecideAfterAttempt(p, 1, r, kNow, gen).delay <= absl::Seconds(2));
  // 503 honours it too; other statuses do not.
  WebhookResponse busy = Status(503);
  busy.retry_after = "30";
  CHECK(DecideAfterAttempt(p, 1, busy, kNow, gen).delay == absl::Seconds(30));
  WebhookResponse broken = Status(500);
  broken.retry_after = "30";
  CHECK(DecideAfterAttempt(p, 1, broken, kNow, gen).delay <= absl::Seconds(2));
}

}  // namespace
}  // namespace pggitops::internal
