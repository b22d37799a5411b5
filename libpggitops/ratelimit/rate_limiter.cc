// RateLimiter: per-client GCRA timestamps in mutex-guarded hash map shards.
//
// A client's bucket is one number, `full_at`: the monotonic time at which
// its bucket is full again (GCRA's "theoretical arrival time"). With
// interval T = 1 min / per_minute and capacity C = burst * T, a request at
// `now` would move full_at to max(full_at, now) + T; it is allowed when that
// is at most now + C, i.e. when the bucket holds a token. A client whose
// full_at has passed is the same as an absent one.
#include "pggitops/rate_limiter.h"

#include <algorithm>
#include <cstdint>
#include <string>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/container/flat_hash_map.h"
#include "absl/hash/hash.h"
#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"

namespace pggitops {
namespace {

constexpr int kMaxRate = 1000000;  // per_minute and burst
constexpr int64_t kNanosPerMinute = int64_t{60} * 1000 * 1000 * 1000;
constexpr size_t kMaxShards = 16;
// Fewer clients than this per shard use fewer shards, so that dropping an
// eighth of a full shard frees a useful number of slots.
constexpr size_t kMinClientsPerShard = 64;

absl::Status OutOfRange(absl::string_view field, absl::string_view range,
                        absl::string_view got) {
  return absl::InvalidArgumentError(absl::StrCat(
      "RateLimiterOptions.", field, ": must be ", range, " (got ", got, ")"));
}

// The bucket arithmetic, in nanoseconds of the limiter's monotonic clock.
struct Pace {
  int64_t interval;  // T: time to refill one token
  int64_t capacity;  // C = burst * T: time to refill an empty bucket
};

// The outcome of one request under the shard lock.
struct Take {
  bool allowed;
  int64_t full_at;  // the client's full_at after the request
};

// One shard of the clients: at most `capacity` buckets.
class alignas(64) Shard {
 public:
  explicit Shard(size_t capacity) : capacity_(capacity) {}

  Take Apply(absl::string_view client, int64_t now, const Pace& pace) {
    absl::MutexLock lock(&mu_);
    auto it = buckets_.find(client);
    if (it == buckets_.end()) {
      if (buckets_.size() >= capacity_) MakeRoom(now);
      it = buckets_.emplace(std::string(client), Bucket{now, 0}).first;
    }
    Bucket& b = it->second;
    b.last_seen = ++tick_;
    int64_t start = std::max(b.full_at, now);
    if (start + pace.interval - now > pace.capacity) return {false, start};
    b.full_at = start + pace.interval;
    return {true, b.full_at};
  }

  size_t size() const {
    absl::MutexLock lock(&mu_);
    return buckets_.size();
  }

 private:
  struct Bucket {
    int64_t full_at;     // ns; the bucket is full again from then on
    uint64_t last_seen;  // tick_ of the client's latest request
  };

  // Frees at least an eighth of the shard: first the buckets that are full
  // again (forgetting them loses nothing), then, if those are fewer, the
  // least recently seen clients. Freeing a fixed share keeps the scan's
  // cost amortized O(1) per new client.
  void MakeRoom(int64_t now) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    const size_t target = std::max<size_t>(1, capacity_ / 8);
    size_t dropped = absl::erase_if(
        buckets_, [now](const auto& kv) { return kv.second.full_at <= now; });
    if (dropped >= target) return;
    const size_t more = target - dropped;  // <= buckets_.size()
    std::vector<uint64_t> seen;
    seen.reserve(buckets_.size());
    for (const auto& kv : buckets_) seen.push_back(kv.second.last_seen);
    std::nth_element(seen.begin(), seen.begin() + (more - 1), seen.end());
    const uint64_t cutoff = seen[more - 1];  // ticks are unique
    absl::erase_if(buckets_, [cutoff](const auto& kv) {
      return kv.second.last_seen <= cutoff;
    });
  }

  const size_t capacity_;
  mutable absl::Mutex mu_;
  absl::flat_hash_map<std::string, Bucket> buckets_ ABSL_GUARDED_BY(mu_);
  uint64_t tick_ ABSL_GUARDED_BY(mu_) = 0;
};

}  // namespace

absl::Status RateLimiterOptions::Validate() const {
  if (per_minute < 0 || per_minute > kMaxRate) {
    return OutOfRange("per_minute", "from 0 to 1000000",
                      absl::StrCat(per_minute));
  }
  if (burst < 1 || burst > kMaxRate) {
    return OutOfRange("burst", "from 1 to 1000000", absl::StrCat(burst));
  }
  if (max_clients < 1) {
    return OutOfRange("max_clients", "at least 1", absl::StrCat(max_clients));
  }
  return absl::OkStatus();
}

struct RateLimiter::Impl {
  Impl(const RateLimiterOptions& options, Env* env)
      : env(env),
        origin(env->MonotonicNow()),
        per_minute(options.per_minute),
        burst(options.burst) {
    if (per_minute > 0) {
      pace.interval = (kNanosPerMinute + per_minute / 2) / per_minute;
      pace.capacity = burst * pace.interval;
    }
    size_t n = std::clamp<size_t>(options.max_clients / kMinClientsPerShard, 1,
                                  kMaxShards);
    for (size_t i = 0; i < n; ++i) {
      shards.push_back(std::make_unique<Shard>(options.max_clients / n));
    }
  }

  // From the hash's high 32 bits (the maps use the low bits).
  Shard& ShardFor(absl::string_view client) {
    uint64_t hash = absl::Hash<absl::string_view>{}(client);
    return *shards[((hash >> 32) * shards.size()) >> 32];
  }

  // Constant after construction.
  Env* const env;
  const absl::Time origin;
  const int per_minute;
  const int burst;
  Pace pace{0, 0};
  std::vector<std::unique_ptr<Shard>> shards;
};

absl::StatusOr<std::unique_ptr<RateLimiter>> RateLimiter::Create(
    const RateLimiterOptions& options) {
  absl::Status valid = options.Validate();
  if (!valid.ok()) return valid;
  Env* env = options.env != nullptr ? options.env : Env::Default();
  return std::unique_ptr<RateLimiter>(
      new RateLimiter(std::make_unique<Impl>(options, env)));
}

RateLimiter::RateLimiter(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}

RateLimiter::~RateLimiter() = default;

RateLimitDecision RateLimiter::Check(absl::string_view client) {
  Impl& s = *impl_;
  RateLimitDecision d;
  if (s.per_minute == 0) {
    d.remaining = s.burst;
    d.reset = s.env->Now();
    return d;
  }
  const int64_t now =
      absl::ToInt64Nanoseconds(s.env->MonotonicNow() - s.origin);
  const Take take = s.ShardFor(client).Apply(client, now, s.pace);
  const int64_t until_full = take.full_at - now;  // >= 0
  d.allowed = take.allowed;
  d.limit = s.per_minute;
  d.reset = s.env->Now() + absl::Nanoseconds(until_full);
  if (take.allowed) {
    d.remaining =
        static_cast<int>((s.pace.capacity - until_full) / s.pace.interval);
  } else {
    // The next request fits once until_full has shrunk to C - T.
    d.retry_after =
        absl::Nanoseconds(until_full - (s.pace.capacity - s.pace.interval));
  }
  return d;
}

size_t RateLimiter::tracked_clients() const {
  size_t n = 0;
  for (const std::unique_ptr<Shard>& shard : impl_->shards) n += shard->size();
  return n;
}

RateLimiterOptions RateLimiterOptionsFromConfig(const Config& config) {
  RateLimiterOptions options;
  options.per_minute = config.rate_limit_per_minute;
  options.burst = config.rate_limit_burst;
  return options;
}

}  // namespace pggitops
