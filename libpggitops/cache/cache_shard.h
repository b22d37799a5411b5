// Private: one shard of the L1 cache. A byte-bounded map with per-entry
// expiry and S3-FIFO eviction (Yang et al., "FIFO queues are all you need
// for cache eviction", SOSP 2023):
//
//   * a new key enters the small FIFO S (about 10 % of the bytes), or the
//     main FIFO M directly when its hash is in the ghost FIFO G (it was
//     evicted from S recently, so it is worth keeping);
//   * a hit only sets a 2-bit access counter (an atomic store under the
//     reader lock: hits never move entries, so lookups share the lock);
//   * eviction takes S's tail when S holds more than its share: an entry
//     hit since it entered moves to M, the others leave (their hash goes to
//     G); otherwise M's tail: an entry with a non-zero counter is
//     reinserted at M's head with the counter decremented, else it leaves.
//
// One-hit wonders thus leave through S without disturbing the hot set in M,
// which is why S3-FIFO beats LRU on skewed (Zipf) workloads; bench/
// cache_bench.cc measures it against a plain LRU.
//
// Byte accounting: an entry is charged EntryCharge(key, value) bytes, and
// bytes() is always the sum of the charges of the entries present (tests
// check it after many replacements); bytes() never exceeds capacity().
//
// Thread-safe: Lookup takes the reader lock (the writer lock only to drop an
// expired entry); every other method takes the writer lock.
#ifndef PGGITOPS_LIBPGGITOPS_CACHE_CACHE_SHARD_H_
#define PGGITOPS_LIBPGGITOPS_CACHE_CACHE_SHARD_H_

#include <atomic>
#include <cstdint>
#include <deque>
#include <functional>
#include <memory>
#include <string>
#include <string_view>

#include "absl/base/thread_annotations.h"
#include "absl/container/flat_hash_map.h"
#include "absl/strings/string_view.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"

namespace pggitops::internal {

using SharedBytes = std::shared_ptr<const std::string>;

// Fixed bookkeeping charged per entry on top of its key and value bytes:
// the entry record, the hash-table slot, the shared value's control block
// and allocator headers, rounded up. A constant, so the accounting is exact
// and the same on every platform.
constexpr int64_t kEntryOverheadBytes = 160;

inline int64_t EntryCharge(size_t key_bytes, size_t value_bytes) {
  return static_cast<int64_t>(key_bytes + value_bytes) + kEntryOverheadBytes;
}

// The one hash of a key: the cache picks the shard from its high bits, the
// shard's table uses it whole (its low bits pick slots), so a lookup hashes
// the key once.
inline uint64_t HashKey(absl::string_view key) {
  return std::hash<std::string_view>{}(
      std::string_view(key.data(), key.size()));
}

// A key with its hash already computed, for heterogeneous lookups.
struct HashedKey {
  absl::string_view key;
  uint64_t hash;
};
struct KeyHash {
  using is_transparent = void;
  size_t operator()(absl::string_view k) const { return HashKey(k); }
  size_t operator()(const HashedKey& k) const { return k.hash; }
};
struct KeyEq {
  using is_transparent = void;
  static absl::string_view View(absl::string_view k) { return k; }
  static absl::string_view View(const HashedKey& k) { return k.key; }
  template <typename A, typename B>
  bool operator()(const A& a, const B& b) const {
    return View(a) == View(b);
  }
};

// Counters a shard keeps; hits and misses are counted by the cache, which
// knows about L2, in per-shard atomics here so a hit touches only its shard.
struct alignas(64) ShardCounters {
  std::atomic<int64_t> l1_hits{0};
  std::atomic<int64_t> l2_hits{0};
  std::atomic<int64_t> misses{0};
};

class CacheShard {
 public:
  // REQUIRES: capacity_bytes >= 0.
  explicit CacheShard(int64_t capacity_bytes);
  ~CacheShard();
  CacheShard(const CacheShard&) = delete;
  CacheShard& operator=(const CacheShard&) = delete;

  // Returns the value of a live entry and marks it accessed, or nullptr. An
  // entry whose expiry is <= now is removed (counted as an expiration).
  // `hash` is HashKey(key).
  SharedBytes Lookup(absl::string_view key, uint64_t hash, absl::Time now);

  // Inserts or replaces `key`; `hash` is HashKey(key) (also kept in the
  // ghost FIFO after an eviction from S). A replaced entry keeps its queue
  // and access counter. Returns false, and leaves no entry for `key` (an older
  // value is removed), when the charge exceeds the shard's capacity. When
  // `epoch` is given, nothing changes and false is returned unless *epoch still
  // equals `expected_epoch` (checked under the lock: see Cache's invalidation
  // epoch). Evicts as needed; expired entries met at a queue's tail are
  // dropped as expirations.
  bool Insert(absl::string_view key, uint64_t hash, SharedBytes value,
              absl::Time expires_at, absl::Time now,
              const std::atomic<uint64_t>* epoch = nullptr,
              uint64_t expected_epoch = 0);

  // Removes `key`; returns whether it was present.
  bool Erase(absl::string_view key, uint64_t hash);
  // Removes every entry whose key satisfies `pred`; returns how many.
  int64_t EraseIf(const std::function<bool(absl::string_view)>& pred);
  // Removes everything; returns how many entries were removed.
  int64_t Clear();
  // Removes entries whose expiry is <= now (expirations); returns how many.
  // Cheap when nothing can have expired (the earliest expiry is tracked).
  int64_t PurgeExpired(absl::Time now);

  struct Snapshot {
    int64_t entries = 0;
    int64_t bytes = 0;
    int64_t evictions = 0;
    int64_t expirations = 0;
    int64_t small_bytes = 0;
    int64_t ghost_size = 0;
  };
  Snapshot Stats() const;
  int64_t capacity() const { return capacity_; }

  ShardCounters counters;

 private:
  enum class Queue : uint8_t { kSmall, kMain };
  struct Entry;
  struct List {
    Entry* head = nullptr;  // newest
    Entry* tail = nullptr;  // oldest
  };

  void Link(Entry* e, Queue q) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void Unlink(Entry* e) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // Unlinks, unmaps and frees `e`, adjusting bytes.
  void Remove(Entry* e) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // Evicts until `incoming` more bytes fit.
  void MakeRoom(int64_t incoming, absl::Time now)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void EvictFromSmall(absl::Time now) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void EvictFromMain(absl::Time now) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void GhostAdd(uint64_t hash) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  bool GhostTake(uint64_t hash) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);

  const int64_t capacity_;
  const int64_t small_capacity_;  // S's share: 10 % of capacity_
  mutable absl::Mutex mu_;
  absl::flat_hash_map<absl::string_view, std::unique_ptr<Entry>, KeyHash,
                      KeyEq>
      map_ ABSL_GUARDED_BY(mu_);  // keys view Entry::key
  List small_ ABSL_GUARDED_BY(mu_);
  List main_ ABSL_GUARDED_BY(mu_);
  int64_t bytes_ ABSL_GUARDED_BY(mu_) = 0;
  int64_t small_bytes_ ABSL_GUARDED_BY(mu_) = 0;
  int64_t evictions_ ABSL_GUARDED_BY(mu_) = 0;
  int64_t expirations_ ABSL_GUARDED_BY(mu_) = 0;
  // No entry expires before this (may be earlier than the true minimum).
  absl::Time earliest_expiry_ ABSL_GUARDED_BY(mu_) = absl::InfiniteFuture();
  // Ghost FIFO: hashes of keys recently evicted from S, at most as many as
  // there are entries (and at least 64). `ghost_counts_` counts each hash's
  // occurrences in `ghost_fifo_`.
  std::deque<uint64_t> ghost_fifo_ ABSL_GUARDED_BY(mu_);
  absl::flat_hash_map<uint64_t, uint32_t> ghost_counts_ ABSL_GUARDED_BY(mu_);
};

}  // namespace pggitops::internal

#endif  // PGGITOPS_LIBPGGITOPS_CACHE_CACHE_SHARD_H_
