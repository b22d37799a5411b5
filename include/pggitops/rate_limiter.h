// File: pggitops/rate_limiter.h
//
// RateLimiter decides, per client key (the daemon uses the client address),
// whether a request may go ahead, and gives the figures of the
// X-RateLimit-Limit, X-RateLimit-Remaining, X-RateLimit-Reset and Retry-After
// headers.
//
// Each client has a token bucket of capacity `burst`, refilled continuously
// at `per_minute` tokens per minute; a client seen for the first time starts
// with a full bucket, and every allowed request takes one token. So a client
// may send `burst` requests at once and then `per_minute` per minute. (The
// bucket is kept as one timestamp per client, the generic cell rate
// algorithm: the time at which its bucket is full again.)
//
// Memory is bounded by `max_clients` however many keys appear. When a new
// client finds its shard full, the shard frees at least an eighth of its
// share at once: every client whose bucket is full again (the same as never
// seen, so nothing is lost), then, if those are fewer than an eighth, the
// least recently seen clients. A busy client dropped that way starts again with
// a full bucket when it next comes: under a flood of new keys, the limiter errs
// on the lenient side for the clients it had to forget. See docs/security.md.
//
// Typical use (the daemon's middleware):
//
//   RateLimiterOptions options = RateLimiterOptionsFromConfig(config);
//   absl::StatusOr<std::unique_ptr<RateLimiter>> limiter =
//       RateLimiter::Create(options);
//   RateLimitDecision d = (*limiter)->Check(client_address);
//   if (!d.allowed) { ... 429 with Retry-After: ceil(d.retry_after) ... }
//
// Counts are per RateLimiter, i.e. per process: instances behind a load
// balancer each keep their own.
#ifndef PGGITOPS_INCLUDE_RATE_LIMITER_H_
#define PGGITOPS_INCLUDE_RATE_LIMITER_H_

#include <cstddef>
#include <memory>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "pggitops/config.h"
#include "pggitops/env.h"
#include "pggitops/export.h"

namespace pggitops {

struct PGGITOPS_EXPORT RateLimiterOptions {
  // Sustained requests per minute per client; 0 disables the limiter (every
  // Check is allowed and nothing is tracked). Range: 0 to 1000000.
  // Default: 100 (RATE_LIMIT_PER_MINUTE).
  int per_minute = 100;

  // Requests a client may make at once above the pace: the bucket capacity.
  // Range: 1 to 1000000. Default: 20 (RATE_LIMIT_BURST).
  int burst = 20;

  // Most clients tracked at once. Memory: about 70 bytes per client with
  // IPv4 keys, 120 with IPv6 ones, so at most about 12 MB at the default.
  // Range: at least 1. Default: 100000.
  size_t max_clients = 100000;

  // Clock: MonotonicNow() for the buckets, Now() for the reset time. *env
  // must outlive the limiter. Default (nullptr): Env::Default().
  Env* env = nullptr;

  // Returns InvalidArgument naming the first field out of range.
  absl::Status Validate() const;
};

// The answer to one request.
struct PGGITOPS_EXPORT RateLimitDecision {
  // False: refuse the request (429); it took no token.
  bool allowed = true;
  // RateLimiterOptions::per_minute (X-RateLimit-Limit); 0 when disabled.
  int limit = 0;
  // Whole requests the client may make right now after this one
  // (X-RateLimit-Remaining); 0 when refused; `burst` when disabled.
  int remaining = 0;
  // Wall-clock time (Env::Now()) at which the client's bucket is full again
  // (X-RateLimit-Reset, in epoch seconds rounded up); now when disabled.
  absl::Time reset;
  // When refused: how long until the client's next request is allowed
  // (> 0; Retry-After in seconds rounded up). Zero when allowed.
  absl::Duration retry_after;
};

// Thread-safe: Check and tracked_clients may be called from any thread. The
// clients are spread over up to 16 shards, each with its own mutex, so
// concurrent Checks for different clients rarely wait for each other; a
// Check is O(1) amortized (dropping clients at the bound scans one shard,
// then frees an eighth of it at least).
class PGGITOPS_EXPORT RateLimiter {
 public:
  // Error: InvalidArgument for invalid options (see
  // RateLimiterOptions::Validate).
  static absl::StatusOr<std::unique_ptr<RateLimiter>> Create(
      const RateLimiterOptions& options);

  ~RateLimiter();
  RateLimiter(const RateLimiter&) = delete;
  RateLimiter& operator=(const RateLimiter&) = delete;

  // Counts a request of `client` (any bytes; compared exactly) and says
  // whether it is allowed. An allowed request takes one token from the
  // client's bucket; a refused one takes none.
  RateLimitDecision Check(absl::string_view client);

  // Clients currently tracked (at most max_clients).
  size_t tracked_clients() const;

 private:
  struct Impl;
  explicit RateLimiter(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

// Options from RATE_LIMIT_PER_MINUTE and RATE_LIMIT_BURST; the rest keep
// their defaults. RATE_LIMIT_EXEMPT_LOOPBACK and RATE_LIMIT_IPV6_PREFIX say
// how the caller derives the client key it passes to Check.
PGGITOPS_EXPORT RateLimiterOptions
RateLimiterOptionsFromConfig(const Config& config);

}  // namespace pggitops

#endif  // PGGITOPS_INCLUDE_RATE_LIMITER_H_
