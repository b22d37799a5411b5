// File: pggitops/cache.h
//
// A two-level cache for the daemon's read endpoints and for any service that
// embeds the library:
//
//   L1  in process: 16 shards, each a byte-bounded map with per-entry expiry
//       and S3-FIFO eviction (scan resistant; hits take a shared lock and
//       move nothing). Values are immutable shared byte strings, so a hit
//       copies nothing.
//   L2  optional, Redis (REDIS_URL): read-through on an L1 miss and
//       write-through on a load or Put, with the entry's TTL. Redis is never
//       critical: every call has a short timeout, and a circuit breaker
//       skips Redis entirely for `redis_retry_interval` after a failure, so
//       a dead or frozen Redis costs a request at most one timeout and then
//       nothing until the breaker lets one probe through again.
//
// Loads are single-flight: concurrent GetOrLoad calls for one missing key
// run the loader once and share its result (or its error; a failed load
// caches nothing). A load that overlaps an invalidation returns its value
// but does not cache it, so an invalidation is never undone by a load that
// read the data before the change.
//
// Invalidation: by keys, by glob pattern ("webhooks:*", with * and ?), or
// all. A local invalidation is published on a Redis channel and applied by
// every other instance sharing the Redis; in L2 it replaces the generation
// token of the keys' families (or the global one), which makes every L2
// entry of those families unreachable at once (they then expire by TTL).
// L2 therefore invalidates whole families even for single keys. Database
// changes arrive through ApplyDatabaseNotification (the daemon forwards the
// `pggit_cache` NOTIFY payloads sent by the triggers of
// sql/002_cache_invalidation.sql).
//
// Key families: the text before the first ':' of a key ("webhooks",
// "alerts", "dashboard"); patterns usually name one ("webhooks:*").
//
// Typical use:
//
//   CacheOptions options = CacheOptionsFromConfig(config);
//   options.metrics = &registry;
//   absl::StatusOr<std::unique_ptr<Cache>> cache = Cache::Create(options);
//   absl::StatusOr<CacheValue> page = (*cache)->GetOrLoad(
//       "webhooks:list:limit=20:offset=0", absl::Seconds(120),
//       [&]() -> absl::StatusOr<std::string> { return LoadFirstPage(); });
//   ...
//   (*cache)->InvalidatePattern("webhooks:*");  // after a write
//
// Thread-safe: every method may be called from any thread, except that the
// destructor must not race with other calls.
#ifndef PGGITOPS_INCLUDE_CACHE_H_
#define PGGITOPS_INCLUDE_CACHE_H_

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "pggitops/config.h"
#include "pggitops/env.h"
#include "pggitops/export.h"
#include "pggitops/health.h"
#include "pggitops/metrics.h"

namespace pggitops {

struct PGGITOPS_EXPORT CacheOptions {
  // Parameters that affect behavior

  // False: nothing is cached (every lookup is a miss, every GetOrLoad runs
  // its loader) and Redis is not used. Default: true (CACHE_ENABLED).
  bool enabled = true;

  // L1 byte budget: the sum over entries of key bytes + value bytes + a
  // fixed per-entry overhead (CacheStats::entry_overhead_bytes). Split evenly
  // over the shards; an entry larger than one shard's share is not cached.
  // Range: 0 (cache nothing) to 2^40. Default: 104857600 (CACHE_MAX_BYTES).
  int64_t max_bytes = 104857600;

  // L1 shards. Range: 1 to 256. Default: 16.
  int shards = 16;

  // "redis://[[user]:password@]host[:port][/db]" or
  // "unix:///path/to/redis.sock[?db=N]"; empty: no L2 and no cross-instance
  // invalidation. "rediss://" (TLS) is refused. Default: "" (REDIS_URL).
  std::string redis_url;

  // Time limit of one Redis connect and of one Redis command. Range: 1 ms to
  // 60 s. Default: 250 ms (REDIS_TIMEOUT).
  absl::Duration redis_timeout = absl::Milliseconds(250);

  // After a Redis failure the breaker skips Redis for this long, then lets
  // one call probe it (reconnecting); the subscriber retries as often.
  // Range: 10 ms to 10 min. Default: 2 s.
  absl::Duration redis_retry_interval = absl::Seconds(2);

  // Redis connections used by lookups and writes (the subscriber has its
  // own). A call that finds them all busy skips L2 rather than wait.
  // Range: 1 to 64. Default: 4.
  int redis_connections = 4;

  // Prefix of every Redis key the cache writes. Default: "pggit:cache:".
  std::string redis_key_prefix = "pggit:cache:";

  // Pub/sub channel of invalidations. Default: "pggit:cache:invalidate".
  std::string redis_channel = "pggit:cache:invalidate";

  // Identifies this instance in published invalidations so it ignores its
  // own. Empty: 16 random hex digits.
  std::string instance_id;

  // Environment

  // Registry for the cache_* series (cache_hits_total, cache_misses_total,
  // cache_evictions_total, cache_expirations_total, cache_size_bytes,
  // cache_entries, cache_l2_*). *metrics must outlive the cache. Default
  // (nullptr): no metrics.
  MetricsRegistry* metrics = nullptr;

  // Clock for expiry (MonotonicNow) and for the breaker. *env must outlive
  // the cache. Default (nullptr): Env::Default().
  Env* env = nullptr;

  // Returns InvalidArgument naming the first field out of range, or an
  // invalid redis_url (a "rediss://" URL: "TLS is not supported").
  absl::Status Validate() const;
};

// Cache options from CACHE_ENABLED, CACHE_MAX_BYTES, REDIS_URL and
// REDIS_TIMEOUT (metrics and env left null).
PGGITOPS_EXPORT CacheOptions CacheOptionsFromConfig(const Config& config);

// An immutable byte string shared between the cache and its readers. It
// stays valid for as long as the reader holds it, even after eviction.
using CacheValue = std::shared_ptr<const std::string>;

// Produces the bytes to cache for a key (e.g. a rendered JSON page). An
// error is returned to every caller waiting for the key and nothing is
// cached. An exception is caught and reported as kInternal.
using CacheLoader = std::function<absl::StatusOr<std::string>()>;

struct PGGITOPS_EXPORT L2Stats {
  bool enabled = false;
  // "connected", "unavailable" (breaker open) or "disabled".
  std::string status = "disabled";
  int64_t hits = 0;           // lookups answered by Redis
  int64_t misses = 0;         // lookups Redis did not have
  int64_t errors = 0;         // failed Redis calls (timeouts, resets, ...)
  int64_t skipped = 0;        // calls skipped (breaker open, all busy)
  int64_t writes = 0;         // values written
  int64_t invalidations = 0;  // generation tokens replaced
  int64_t published = 0;      // invalidation messages sent
  int64_t received = 0;       // messages from other instances applied
  int64_t reconnects = 0;     // successful connections after a failure
  bool subscribed = false;    // the invalidation subscriber is connected
  std::string last_error;     // the latest failure, "" if none
};

struct PGGITOPS_EXPORT CacheStats {
  int64_t hits = 0;  // l1_hits + l2_hits
  int64_t l1_hits = 0;
  int64_t l2_hits = 0;
  int64_t misses = 0;  // lookups answered by neither level
  // hits / (hits + misses); 0 when there were no lookups.
  double hit_rate = 0;
  int64_t evictions = 0;    // entries dropped to make room
  int64_t expirations = 0;  // entries dropped because their TTL passed
  int64_t entries = 0;      // live L1 entries
  int64_t bytes = 0;        // their charge (see CacheOptions::max_bytes)
  int64_t max_bytes = 0;
  int64_t entry_overhead_bytes = 0;  // the fixed per-entry charge
  L2Stats l2;
  int64_t total_requests() const { return hits + misses; }
};

// A key is 1 to 1024 bytes without control characters. Error:
// InvalidArgument saying why.
PGGITOPS_EXPORT absl::Status ValidateCacheKey(absl::string_view key);
// A pattern is a valid key that may use the wildcards * (any run of
// characters) and ? (one character); [ ] and \ are refused (they would be
// wildcards in Redis or shell globs). Error: InvalidArgument saying why.
PGGITOPS_EXPORT absl::Status ValidateCachePattern(absl::string_view pattern);

class Cache;

// Loads entries into the cache (typically with Cache::Refresh) and returns
// how many it really loaded. Errors are reported by Warm() and do not stop
// the other warmers.
using CacheWarmer = std::function<absl::StatusOr<int64_t>(Cache& cache)>;

struct PGGITOPS_EXPORT WarmerResult {
  std::string name;
  absl::Status status;
  int64_t entries = 0;  // 0 when status is not OK
  absl::Duration duration;
};

struct PGGITOPS_EXPORT WarmResult {
  int64_t warmed_entries = 0;         // sum of the successful warmers' entries
  std::vector<WarmerResult> warmers;  // in registration order
  absl::Duration duration;
  // Number of warmers that failed.
  int failed() const;
};

class PGGITOPS_EXPORT Cache {
 public:
  // Creates the cache. With a redis_url, connects to Redis and subscribes to
  // the invalidation channel, each bounded by redis_timeout; an unreachable
  // Redis does not fail Create (the cache runs on L1 and keeps retrying).
  // Error: InvalidArgument for invalid options (see CacheOptions::Validate).
  static absl::StatusOr<std::unique_ptr<Cache>> Create(
      const CacheOptions& options);

  // Stops the subscriber thread and closes Redis (see Shutdown()).
  ~Cache();
  Cache(const Cache&) = delete;
  Cache& operator=(const Cache&) = delete;

  // Lookups. Each counts once in the statistics: an L1 hit, an L2 hit or a
  // miss.

  // Returns the live value of `key` from L1, else from L2 (copied into L1
  // with Redis's remaining TTL), else nullptr.
  CacheValue Get(absl::string_view key);

  // Returns the value of `key`, loading it on a miss (L1, then L2, then
  // `loader`) and caching it for `ttl` in both levels. Concurrent calls for
  // the same key share one load; those that waited count as misses. A `ttl`
  // that is zero or negative caches nothing; InfiniteDuration() never
  // expires. Errors: the loader's; InvalidArgument for an invalid key (1 to
  // 1024 bytes without control characters).
  absl::StatusOr<CacheValue> GetOrLoad(absl::string_view key,
                                       absl::Duration ttl,
                                       const CacheLoader& loader);

  // Writes (counted in no hit or miss statistic).

  // Stores `value` under `key` for `ttl` in L1 and L2, replacing any older
  // value; loads in flight for any key when Put starts will not cache
  // their result. Returns false when nothing was stored in L1 (cache
  // disabled, invalid key, ttl <= 0, or the entry is larger than a shard).
  bool Put(absl::string_view key, std::string value, absl::Duration ttl);

  // Runs `loader` now (even if `key` is cached) and Puts its result. For
  // warmers. Errors: the loader's; InvalidArgument for an invalid key.
  absl::StatusOr<CacheValue> Refresh(absl::string_view key, absl::Duration ttl,
                                     const CacheLoader& loader);

  // Invalidation. Each applies to L1 at once, then to L2 (replacing the
  // generation tokens of the families concerned) and is published to the
  // other instances. Loads in flight when it starts do not cache their
  // result. The return value counts the L1 entries removed here.

  // Removes `keys`. Error: InvalidArgument naming the first invalid key
  // (nothing is removed then).
  absl::StatusOr<int64_t> Invalidate(const std::vector<std::string>& keys);
  // Removes every key matching `pattern` (* any run of characters, ? one
  // character). Error: InvalidArgument for an invalid pattern (empty, over
  // 1024 bytes, control characters, or [ ] \), and nothing is removed.
  absl::StatusOr<int64_t> InvalidatePattern(absl::string_view pattern);
  // Removes everything.
  int64_t InvalidateAll();

  // Database invalidation, for the daemon's PostgreSQL listener.

  // Applies the payload of a NOTIFY on channel `pggit_cache` (a pattern such
  // as "webhooks:*", sent by the triggers of sql/002_cache_invalidation.sql)
  // to L1 and L2. It is not published: every instance receives the NOTIFY
  // itself. Error: InvalidArgument for a payload that is not a valid
  // pattern (nothing is removed).
  absl::Status ApplyDatabaseNotification(absl::string_view payload);
  // Call when the listener (re)connects: notifications sent while it was
  // disconnected are lost, so everything is invalidated (L1 and L2).
  void OnDatabaseListenerReconnected();

  // Warming.

  // Registers (or replaces, keeping its position) the warmer `name`.
  // Error: InvalidArgument for an empty name or an empty function.
  absl::Status RegisterWarmer(const std::string& name, CacheWarmer warmer);
  // Runs every registered warmer, in registration order, on this thread.
  // Does nothing when the cache is disabled.
  WarmResult Warm();

  // Statistics. Drops the entries that have expired first, so `entries`
  // and `bytes` count live entries only.
  CacheStats Stats();

  // Health checks for /health/deep (both non-critical):
  //   "cache": {"status": "operational" (or "disabled"), "hit_rate",
  //             "entries", "bytes", "max_bytes"}
  //   "redis": {"status": "connected" | "disabled" | "unavailable"}; a
  //            PING through the breaker, so a dead Redis costs at most one
  //            timeout per retry interval. "unavailable" fails the check,
  //            which makes the report degraded (HTTP 200).
  // The cache must outlive every run of the checks.
  HealthCheck CacheHealthCheck();
  HealthCheck RedisHealthCheck();

  // Stops the subscriber thread and closes the Redis connections; the cache
  // keeps working on L1 alone. Idempotent.
  void Shutdown();

  const std::string& instance_id() const;

 private:
  struct Impl;
  explicit Cache(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace pggitops

#endif  // PGGITOPS_INCLUDE_CACHE_H_
