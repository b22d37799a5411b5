// Private: the Redis L2 of the cache, behind a circuit breaker.
//
// Layout in Redis (prefix P, default "pggit:cache:"):
//   P gen            global generation token (absent means "0")
//   P gen:<family>   generation token of a key family
//   P d:<g>:<f>:<key>  a value, written with SET ... PX <ttl>, where <g> and
//                    <f> are the global and family tokens current when the
//                    value's load began
// A lookup reads both tokens and the value in one Lua script (one round
// trip). Invalidating a family (or everything) replaces its token with a
// fresh unique one, so every value of it becomes unreachable at once and
// expires by TTL; a value loaded before the invalidation is written under
// the old tokens and can never be read. Tokens are "<instance>-<counter>",
// never reused, so a Redis restart cannot resurrect old values.
//
// Breaker: a failed call (connection error, timeout, error reply) drops the
// connection and opens the breaker for `retry_interval`: calls skip Redis at
// once. After it, one call probes (reconnects) while the others keep
// skipping. An invalidation that could not reach Redis sets a pending flush
// that the next successful connection applies (replacing the global token)
// before anything else, so no stale L2 value survives an outage of which
// this instance knows.
//
// Thread-safe.
#ifndef PGGITOPS_LIBPGGITOPS_CACHE_L2_STORE_H_
#define PGGITOPS_LIBPGGITOPS_CACHE_L2_STORE_H_

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/status.h"
#include "absl/strings/string_view.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "libpggitops/cache/cache_shard.h"
#include "libpggitops/cache/redis_client.h"
#include "pggitops/cache.h"
#include "pggitops/env.h"

namespace pggitops::internal {

struct L2Options {
  std::string prefix = "pggit:cache:";
  std::string channel = "pggit:cache:invalidate";
  std::string instance_id;
  absl::Duration retry_interval = absl::Seconds(2);
  // Longest wait for a free connection by an invalidation (lookups and
  // writes never wait).
  absl::Duration busy_wait = absl::Milliseconds(250);
  int max_connections = 4;
};

class L2Store {
 public:
  // Tries one connection at once (so status() is known). *env must outlive
  // the store.
  L2Store(L2Options options, std::unique_ptr<RedisConnector> connector,
          Env* env);
  ~L2Store();
  L2Store(const L2Store&) = delete;
  L2Store& operator=(const L2Store&) = delete;

  struct Lookup {
    bool reached = false;                           // Redis answered
    SharedBytes value;                              // nullptr on a miss
    absl::Duration ttl = absl::InfiniteDuration();  // remaining, for a hit
    std::string data_key;  // where a value loaded now must be written
  };
  Lookup Get(absl::string_view key);
  // Writes `value` where `lookup` says (nothing if Redis was not reached).
  void WriteBack(const Lookup& lookup, const std::string& value,
                 absl::Duration ttl);
  // Writes `value` under the current tokens.
  void Put(absl::string_view key, const std::string& value, absl::Duration ttl);
  void InvalidateFamilies(const std::vector<std::string>& families);
  void InvalidateAll();
  // Publishes `message` on the channel (skipped while the breaker is open).
  void Publish(const std::string& message);
  // PINGs Redis through the breaker. OK when it answered PONG.
  absl::Status Ping();
  // Closes every connection; later calls skip Redis. Idempotent.
  void Close();

  // "connected" or "unavailable"; the counters of L2Stats it owns.
  L2Stats Stats() const;
  const L2Options& options() const { return options_; }

  // The data key of `key` under tokens g and f (exposed for tests).
  std::string DataKey(absl::string_view g, absl::string_view f,
                      absl::string_view key) const;

 private:
  enum class Wait { kNo, kYes };
  // Returns a connection ready for commands, or nullptr (skipped). May
  // connect (and then flush first when a flush is pending).
  std::unique_ptr<RedisConnection> Acquire(Wait wait);
  // Returns `conn` after a call; `result` says how the call went.
  void Release(std::unique_ptr<RedisConnection> conn,
               const absl::Status& result);
  // Runs one command on an acquired connection and releases it. Error
  // replies become kUnavailable.
  absl::StatusOr<RedisReply> Run(Wait wait,
                                 const std::vector<std::string>& argv);
  // Opens a connection; a probe also PINGs it before closing the breaker.
  std::unique_ptr<RedisConnection> Connect(bool probe);
  // Replaces the global token first when a flush is pending; returns `c`,
  // or nullptr (and releases it as failed) when that fails.
  std::unique_ptr<RedisConnection> FlushIfPending(
      std::unique_ptr<RedisConnection> c);
  void Fail(const absl::Status& s) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  std::string NewToken();
  std::string GenKey(absl::string_view family) const;
  std::string GlobalGenKey() const;
  void NoteFlushNeeded();

  const L2Options options_;
  const std::unique_ptr<RedisConnector> connector_;
  Env* const env_;
  const uint32_t nonce_;  // random, in tokens: unique across restarts

  mutable absl::Mutex mu_;
  absl::CondVar freed_;
  std::vector<std::unique_ptr<RedisConnection>> idle_ ABSL_GUARDED_BY(mu_);
  int open_connections_ ABSL_GUARDED_BY(mu_) = 0;
  bool closed_ ABSL_GUARDED_BY(mu_) = false;
  bool breaker_open_ ABSL_GUARDED_BY(mu_) = false;
  absl::Time retry_at_ ABSL_GUARDED_BY(mu_);
  bool probing_ ABSL_GUARDED_BY(mu_) = false;
  bool flush_pending_ ABSL_GUARDED_BY(mu_) = false;
  uint64_t token_counter_ ABSL_GUARDED_BY(mu_) = 0;
  L2Stats stats_ ABSL_GUARDED_BY(mu_);
};

}  // namespace pggitops::internal

#endif  // PGGITOPS_LIBPGGITOPS_CACHE_L2_STORE_H_
