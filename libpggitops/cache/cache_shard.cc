#include "libpggitops/cache/cache_shard.h"

#include <algorithm>
#include <utility>
#include <vector>

namespace pggitops::internal {

struct CacheShard::Entry {
  std::string key;
  SharedBytes value;
  absl::Time expires_at;
  int64_t charge = 0;
  uint64_t hash = 0;
  // Accesses since insertion (or since the last pass over it), capped at 3.
  // Written under the reader lock by concurrent hits, hence atomic.
  std::atomic<uint8_t> freq{0};
  Queue queue = Queue::kSmall;
  Entry* newer = nullptr;
  Entry* older = nullptr;
};

namespace {
constexpr uint8_t kMaxFreq = 3;
constexpr size_t kMinGhost = 64;
}  // namespace

CacheShard::CacheShard(int64_t capacity_bytes)
    : capacity_(std::max<int64_t>(0, capacity_bytes)),
      small_capacity_(capacity_ / 10) {}

CacheShard::~CacheShard() = default;

SharedBytes CacheShard::Lookup(absl::string_view key, uint64_t hash,
                               absl::Time now) {
  const HashedKey hk{key, hash};
  {
    absl::ReaderMutexLock lock(&mu_);
    auto it = map_.find(hk);
    if (it == map_.end()) return nullptr;
    Entry* e = it->second.get();
    if (e->expires_at > now) {
      uint8_t f = e->freq.load(std::memory_order_relaxed);
      if (f < kMaxFreq) e->freq.store(f + 1, std::memory_order_relaxed);
      return e->value;
    }
  }
  absl::MutexLock lock(&mu_);
  auto it = map_.find(hk);
  if (it == map_.end()) return nullptr;
  Entry* e = it->second.get();
  if (e->expires_at > now) return e->value;  // replaced meanwhile
  ++expirations_;
  Remove(e);
  return nullptr;
}

bool CacheShard::Insert(absl::string_view key, uint64_t hash, SharedBytes value,
                        absl::Time expires_at, absl::Time now,
                        const std::atomic<uint64_t>* epoch,
                        uint64_t expected_epoch) {
  absl::MutexLock lock(&mu_);
  if (epoch != nullptr &&
      epoch->load(std::memory_order_acquire) != expected_epoch) {
    return false;
  }
  Queue queue = Queue::kSmall;
  uint8_t freq = 0;
  auto it = map_.find(HashedKey{key, hash});
  const bool replacing = it != map_.end();
  if (replacing) {
    queue = it->second->queue;
    freq = it->second->freq.load(std::memory_order_relaxed);
    Remove(it->second.get());
  }
  const int64_t charge = EntryCharge(key.size(), value->size());
  if (charge > capacity_) return false;
  if (!replacing && GhostTake(hash)) queue = Queue::kMain;
  MakeRoom(charge, now);
  auto entry = std::make_unique<Entry>();
  entry->key = std::string(key);
  entry->value = std::move(value);
  entry->expires_at = expires_at;
  entry->charge = charge;
  entry->hash = hash;
  entry->freq.store(freq, std::memory_order_relaxed);
  Entry* e = entry.get();
  map_.emplace(absl::string_view(e->key), std::move(entry));
  Link(e, queue);
  bytes_ += charge;
  earliest_expiry_ = std::min(earliest_expiry_, expires_at);
  return true;
}

bool CacheShard::Erase(absl::string_view key, uint64_t hash) {
  absl::MutexLock lock(&mu_);
  auto it = map_.find(HashedKey{key, hash});
  if (it == map_.end()) return false;
  Remove(it->second.get());
  return true;
}

int64_t CacheShard::EraseIf(
    const std::function<bool(absl::string_view)>& pred) {
  absl::MutexLock lock(&mu_);
  std::vector<Entry*> doomed;
  for (const auto& [key, entry] : map_) {
    if (pred(key)) doomed.push_back(entry.get());
  }
  for (Entry* e : doomed) Remove(e);
  return static_cast<int64_t>(doomed.size());
}

int64_t CacheShard::Clear() {
  absl::MutexLock lock(&mu_);
  const int64_t n = static_cast<int64_t>(map_.size());
  small_ = List();
  main_ = List();
  map_.clear();
  bytes_ = 0;
  small_bytes_ = 0;
  earliest_expiry_ = absl::InfiniteFuture();
  return n;
}

int64_t CacheShard::PurgeExpired(absl::Time now) {
  absl::MutexLock lock(&mu_);
  if (now < earliest_expiry_) return 0;
  std::vector<Entry*> doomed;
  absl::Time earliest = absl::InfiniteFuture();
  for (const auto& [key, entry] : map_) {
    if (entry->expires_at <= now) {
      doomed.push_back(entry.get());
    } else {
      earliest = std::min(earliest, entry->expires_at);
    }
  }
  for (Entry* e : doomed) Remove(e);
  expirations_ += static_cast<int64_t>(doomed.size());
  earliest_expiry_ = earliest;
  return static_cast<int64_t>(doomed.size());
}

CacheShard::Snapshot CacheShard::Stats() const {
  absl::ReaderMutexLock lock(&mu_);
  Snapshot s;
  s.entries = static_cast<int64_t>(map_.size());
  s.bytes = bytes_;
  s.evictions = evictions_;
  s.expirations = expirations_;
  s.small_bytes = small_bytes_;
  s.ghost_size = static_cast<int64_t>(ghost_fifo_.size());
  return s;
}

void CacheShard::Link(Entry* e, Queue q) {
  List& list = q == Queue::kSmall ? small_ : main_;
  e->queue = q;
  e->older = list.head;
  e->newer = nullptr;
  if (list.head != nullptr) list.head->newer = e;
  list.head = e;
  if (list.tail == nullptr) list.tail = e;
  if (q == Queue::kSmall) small_bytes_ += e->charge;
}

void CacheShard::Unlink(Entry* e) {
  List& list = e->queue == Queue::kSmall ? small_ : main_;
  if (e->newer != nullptr) {
    e->newer->older = e->older;
  } else {
    list.head = e->older;
  }
  if (e->older != nullptr) {
    e->older->newer = e->newer;
  } else {
    list.tail = e->newer;
  }
  e->newer = e->older = nullptr;
  if (e->queue == Queue::kSmall) small_bytes_ -= e->charge;
}

void CacheShard::Remove(Entry* e) {
  Unlink(e);
  bytes_ -= e->charge;
  map_.erase(HashedKey{e->key, e->hash});  // frees e
}

void CacheShard::MakeRoom(int64_t incoming, absl::Time now) {
  while (bytes_ + incoming > capacity_ &&
         (small_.tail != nullptr || main_.tail != nullptr)) {
    if (main_.tail == nullptr ||
        (small_.tail != nullptr && small_bytes_ > small_capacity_)) {
      EvictFromSmall(now);
    } else {
      EvictFromMain(now);
    }
  }
}

void CacheShard::EvictFromSmall(absl::Time now) {
  Entry* e = small_.tail;
  if (e->expires_at <= now) {
    ++expirations_;
    Remove(e);
  } else if (e->freq.load(std::memory_order_relaxed) > 0) {
    Unlink(e);
    e->freq.store(0, std::memory_order_relaxed);
    Link(e, Queue::kMain);
  } else {
    GhostAdd(e->hash);
    ++evictions_;
    Remove(e);
  }
}

void CacheShard::EvictFromMain(absl::Time now) {
  Entry* e = main_.tail;
  uint8_t f = e->freq.load(std::memory_order_relaxed);
  if (e->expires_at <= now) {
    ++expirations_;
    Remove(e);
  } else if (f > 0) {
    Unlink(e);
    e->freq.store(f - 1, std::memory_order_relaxed);
    Link(e, Queue::kMain);
  } else {
    ++evictions_;
    Remove(e);
  }
}

void CacheShard::GhostAdd(uint64_t hash) {
  ghost_fifo_.push_back(hash);
  ++ghost_counts_[hash];
  const size_t limit = std::max(kMinGhost, map_.size());
  while (ghost_fifo_.size() > limit) {
    uint64_t old = ghost_fifo_.front();
    ghost_fifo_.pop_front();
    auto it = ghost_counts_.find(old);
    if (it != ghost_counts_.end() && --it->second == 0) ghost_counts_.erase(it);
  }
}

bool CacheShard::GhostTake(uint64_t hash) {
  // The hash stays in the FIFO; dropping its count makes it invisible (the
  // FIFO pop then finds no count and skips it).
  return ghost_counts_.erase(hash) > 0;
}

}  // namespace pggitops::internal
