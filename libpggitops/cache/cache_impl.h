// Private: the state behind pggitops::Cache (include/pggitops/cache.h),
// shared by cache.cc (lookups, writes, invalidation) and cache_observe.cc
// (statistics, metrics, health checks, warming).
#ifndef PGGITOPS_LIBPGGITOPS_CACHE_CACHE_IMPL_H_
#define PGGITOPS_LIBPGGITOPS_CACHE_CACHE_IMPL_H_

#include <atomic>
#include <cstdint>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/container/flat_hash_map.h"
#include "absl/synchronization/mutex.h"
#include "absl/synchronization/notification.h"
#include "libpggitops/cache/cache_shard.h"
#include "libpggitops/cache/invalidation_message.h"
#include "libpggitops/cache/l2_store.h"
#include "libpggitops/cache/redis_subscriber.h"
#include "pggitops/cache.h"

namespace pggitops {

struct Cache::Impl {
  // One load in progress; its waiters block on `done`.
  struct Flight {
    absl::Notification done;
    absl::StatusOr<CacheValue> result = absl::UnknownError("load pending");
  };
  // Loads in progress for one shard's keys.
  struct FlightTable {
    absl::Mutex mu;
    absl::flat_hash_map<std::string, std::shared_ptr<Flight>> map
        ABSL_GUARDED_BY(mu);
  };
  // What the metrics hook last added to the cumulative counters.
  struct Reported {
    int64_t hits = 0, misses = 0, evictions = 0, expirations = 0;
    int64_t l2_hits = 0, l2_errors = 0;
  };

  Impl(const CacheOptions& o, Env* e, std::string id);

  // Constant after construction.
  const CacheOptions options;
  Env* const env;
  const std::string instance_id;
  Cache* self = nullptr;
  std::vector<std::unique_ptr<internal::CacheShard>> shards;
  std::vector<std::unique_ptr<FlightTable>> flights;  // parallel to shards
  std::unique_ptr<internal::L2Store> l2;              // null without Redis
  std::unique_ptr<internal::RedisSubscriber> subscriber;

  // Bumped before every invalidation and Put: a load that began at another
  // epoch does not cache its result (checked under the shard lock).
  std::atomic<uint64_t> epoch{0};
  // Messages of other instances applied (the subscriber's callback).
  std::atomic<int64_t> remote_applied{0};

  absl::Mutex warm_mu;
  std::vector<std::pair<std::string, CacheWarmer>> warmers
      ABSL_GUARDED_BY(warm_mu);

  MetricsRegistry* registry = nullptr;
  int hook_id = -1;
  absl::Mutex report_mu;
  Reported reported ABSL_GUARDED_BY(report_mu);

  // Helpers (cache.cc).
  static uint64_t Hash(absl::string_view key) { return internal::HashKey(key); }
  // From the hash's high 32 bits (the shard tables use the low bits).
  size_t ShardIndex(uint64_t hash) const {
    return static_cast<size_t>(((hash >> 32) * shards.size()) >> 32);
  }
  absl::Time Now() const { return env->MonotonicNow(); }
  absl::Time ExpiryAfter(absl::Duration ttl) const;
  static absl::StatusOr<CacheValue> RunLoader(const CacheLoader& loader);
  // L2 then loader, for the leader of a flight; caches the result.
  absl::StatusOr<CacheValue> Load(absl::string_view key, uint64_t hash,
                                  absl::Duration ttl,
                                  const CacheLoader& loader);
  bool Store(absl::string_view key, CacheValue value, absl::Duration ttl);
  // Removes from L1 only; returns how many entries went.
  int64_t EraseKeys(const std::vector<std::string>& keys);
  int64_t ErasePattern(absl::string_view pattern);
  int64_t EraseAll();
  // Applies a pattern to L2 (its family's token, or the global one).
  void InvalidateL2Pattern(absl::string_view pattern);
  void Publish(const internal::InvalidationMessage& m);
  // Applies another instance's message to L1 (the subscriber's callback).
  void ApplyRemote(const std::string& payload);
  void StartRedis();

  // Observation (cache_observe.cc).
  void RegisterMetrics();
  void RefreshMetrics();
};

}  // namespace pggitops

#endif  // PGGITOPS_LIBPGGITOPS_CACHE_CACHE_IMPL_H_
