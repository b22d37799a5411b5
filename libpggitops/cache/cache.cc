// The Cache: L1 shards, single-flight loads, the L2 and invalidation.
#include "pggitops/cache.h"

#include <algorithm>
#include <exception>
#include <string_view>
#include <utility>

#include "absl/container/flat_hash_set.h"
#include "absl/random/random.h"
#include "absl/strings/str_format.h"
#include "libpggitops/cache/cache_impl.h"
#include "libpggitops/cache/glob.h"
#include "libpggitops/cache/redis_client.h"
#include "libpggitops/config/redis_url.h"
#include "pggitops/log.h"

namespace pggitops {

using internal::CacheShard;
using internal::InvalidationMessage;

Cache::Impl::Impl(const CacheOptions& o, Env* e, std::string id)
    : options(o), env(e), instance_id(std::move(id)) {
  const int64_t n = options.shards;
  for (int64_t i = 0; i < n; ++i) {
    // The shares add up to max_bytes exactly.
    int64_t share = options.max_bytes / n + (i < options.max_bytes % n ? 1 : 0);
    shards.push_back(std::make_unique<CacheShard>(share));
    flights.push_back(std::make_unique<FlightTable>());
  }
}

absl::Time Cache::Impl::ExpiryAfter(absl::Duration ttl) const {
  if (ttl == absl::InfiniteDuration()) return absl::InfiniteFuture();
  return Now() + ttl;
}

absl::StatusOr<CacheValue> Cache::Impl::RunLoader(const CacheLoader& loader) {
  try {
    absl::StatusOr<std::string> s = loader();
    if (!s.ok()) return s.status();
    return CacheValue(std::make_shared<const std::string>(*std::move(s)));
  } catch (const std::exception& e) {
    return absl::InternalError(absl::StrCat("cache loader threw: ", e.what()));
  } catch (...) {
    return absl::InternalError("cache loader threw");
  }
}

bool Cache::Impl::Store(absl::string_view key, CacheValue value,
                        absl::Duration ttl) {
  epoch.fetch_add(1, std::memory_order_acq_rel);
  const uint64_t h = Hash(key);
  bool stored =
      shards[ShardIndex(h)]->Insert(key, h, value, ExpiryAfter(ttl), Now());
  if (stored && l2 != nullptr) l2->Put(key, *value, ttl);
  return stored;
}

absl::StatusOr<CacheValue> Cache::Impl::Load(absl::string_view key,
                                             uint64_t hash, absl::Duration ttl,
                                             const CacheLoader& loader) {
  CacheShard& shard = *shards[ShardIndex(hash)];
  const uint64_t start_epoch = epoch.load(std::memory_order_acquire);
  internal::L2Store::Lookup lookup;
  if (l2 != nullptr) {
    lookup = l2->Get(key);
    if (lookup.value != nullptr) {
      shard.Insert(key, hash, lookup.value,
                   ExpiryAfter(std::min(ttl, lookup.ttl)), Now(), &epoch,
                   start_epoch);
      shard.counters.l2_hits.fetch_add(1, std::memory_order_relaxed);
      return lookup.value;
    }
  }
  shard.counters.misses.fetch_add(1, std::memory_order_relaxed);
  absl::StatusOr<CacheValue> value = RunLoader(loader);
  if (!value.ok()) return value;
  if (shard.Insert(key, hash, *value, ExpiryAfter(ttl), Now(), &epoch,
                   start_epoch) &&
      l2 != nullptr) {
    l2->WriteBack(lookup, **value, ttl);
  }
  return value;
}

int64_t Cache::Impl::EraseKeys(const std::vector<std::string>& keys) {
  epoch.fetch_add(1, std::memory_order_acq_rel);
  int64_t n = 0;
  for (const std::string& k : keys) {
    const uint64_t h = Hash(k);
    n += shards[ShardIndex(h)]->Erase(k, h) ? 1 : 0;
  }
  return n;
}

int64_t Cache::Impl::ErasePattern(absl::string_view pattern) {
  epoch.fetch_add(1, std::memory_order_acq_rel);
  int64_t n = 0;
  for (auto& shard : shards) {
    n += shard->EraseIf([pattern](absl::string_view k) {
      return internal::GlobMatch(pattern, k);
    });
  }
  return n;
}

int64_t Cache::Impl::EraseAll() {
  epoch.fetch_add(1, std::memory_order_acq_rel);
  int64_t n = 0;
  for (auto& shard : shards) n += shard->Clear();
  return n;
}

void Cache::Impl::InvalidateL2Pattern(absl::string_view pattern) {
  if (l2 == nullptr) return;
  absl::string_view family;
  if (internal::PatternFamily(pattern, &family)) {
    l2->InvalidateFamilies({std::string(family)});
  } else {
    l2->InvalidateAll();
  }
}

void Cache::Impl::Publish(const InvalidationMessage& m) {
  if (l2 != nullptr) l2->Publish(internal::EncodeInvalidation(m));
}

void Cache::Impl::ApplyRemote(const std::string& payload) {
  absl::StatusOr<InvalidationMessage> m = internal::DecodeInvalidation(payload);
  if (!m.ok()) {
    Log::Warning("ignored a malformed cache invalidation message",
                 {{"error", std::string(m.status().message())}});
    return;
  }
  if (m->instance == instance_id) return;
  remote_applied.fetch_add(1, std::memory_order_relaxed);
  switch (m->kind) {
    case InvalidationMessage::Kind::kKeys:
      EraseKeys(m->keys);
      break;
    case InvalidationMessage::Kind::kPattern:
      ErasePattern(m->pattern);
      break;
    case InvalidationMessage::Kind::kAll:
      EraseAll();
      break;
  }
}

void Cache::Impl::StartRedis() {
  internal::RedisUrl url = *internal::ParseRedisUrl(options.redis_url);
  internal::L2Options l2o;
  l2o.prefix = options.redis_key_prefix;
  l2o.channel = options.redis_channel;
  l2o.instance_id = instance_id;
  l2o.retry_interval = options.redis_retry_interval;
  l2o.busy_wait = options.redis_timeout;
  l2o.max_connections = options.redis_connections;
  l2 = std::make_unique<internal::L2Store>(
      l2o, internal::NewHiredisConnector(url, options.redis_timeout), env);
  internal::SubscriberOptions so;
  so.url = url;
  so.channel = options.redis_channel;
  so.timeout = options.redis_timeout;
  so.retry_interval = options.redis_retry_interval;
  so.ping_interval = std::max(options.redis_retry_interval, absl::Seconds(1));
  so.on_message = [this](const std::string& p) { ApplyRemote(p); };
  so.on_resubscribed = [this] { EraseAll(); };
  subscriber = std::make_unique<internal::RedisSubscriber>(std::move(so));
  absl::Status s = subscriber->Start();
  if (!s.ok()) {
    Log::Warning("cache invalidation channel not subscribed yet; retrying",
                 {{"error", std::string(s.message())}});
  }
}

absl::Status ValidateCacheKey(absl::string_view key) {
  return internal::ValidateKey(key);
}

absl::Status ValidateCachePattern(absl::string_view pattern) {
  return internal::ValidateGlob(pattern);
}

absl::StatusOr<std::unique_ptr<Cache>> Cache::Create(
    const CacheOptions& options) {
  absl::Status valid = options.Validate();
  if (!valid.ok()) return valid;
  std::string id = options.instance_id;
  if (id.empty()) {
    absl::BitGen gen;
    id = absl::StrFormat("%016x", absl::Uniform<uint64_t>(gen));
  }
  Env* env = options.env != nullptr ? options.env : Env::Default();
  auto impl = std::make_unique<Impl>(options, env, std::move(id));
  Impl* raw = impl.get();
  std::unique_ptr<Cache> cache(new Cache(std::move(impl)));
  raw->self = cache.get();
  if (options.enabled && !options.redis_url.empty()) raw->StartRedis();
  if (options.metrics != nullptr) raw->RegisterMetrics();
  return cache;
}

Cache::Cache(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}

Cache::~Cache() {
  if (impl_->registry != nullptr) {
    impl_->registry->RemoveCollectHook(impl_->hook_id);
  }
  Shutdown();
}

void Cache::Shutdown() {
  if (impl_->subscriber != nullptr) impl_->subscriber->Stop();
  if (impl_->l2 != nullptr) impl_->l2->Close();
}

const std::string& Cache::instance_id() const { return impl_->instance_id; }

CacheValue Cache::Get(absl::string_view key) {
  Impl& s = *impl_;
  const uint64_t h = Impl::Hash(key);
  CacheShard& shard = *s.shards[s.ShardIndex(h)];
  // An invalid key cannot be cached, so lookups need not validate it.
  if (s.options.enabled) {
    if (CacheValue v = shard.Lookup(key, h, s.Now())) {
      shard.counters.l1_hits.fetch_add(1, std::memory_order_relaxed);
      return v;
    }
    if (s.l2 != nullptr) {
      const uint64_t start_epoch = s.epoch.load(std::memory_order_acquire);
      internal::L2Store::Lookup lookup;
      if (internal::ValidateKey(key).ok()) lookup = s.l2->Get(key);
      if (lookup.value != nullptr) {
        shard.Insert(key, h, lookup.value, s.ExpiryAfter(lookup.ttl), s.Now(),
                     &s.epoch, start_epoch);
        shard.counters.l2_hits.fetch_add(1, std::memory_order_relaxed);
        return lookup.value;
      }
    }
  }
  shard.counters.misses.fetch_add(1, std::memory_order_relaxed);
  return nullptr;
}

absl::StatusOr<CacheValue> Cache::GetOrLoad(absl::string_view key,
                                            absl::Duration ttl,
                                            const CacheLoader& loader) {
  Impl& s = *impl_;
  const uint64_t h = Impl::Hash(key);
  const size_t index = s.ShardIndex(h);
  CacheShard& shard = *s.shards[index];
  const bool cacheable = s.options.enabled && ttl > absl::ZeroDuration();
  // Only valid keys are ever stored, so a hit needs no validation.
  if (cacheable) {
    if (CacheValue v = shard.Lookup(key, h, s.Now())) {
      shard.counters.l1_hits.fetch_add(1, std::memory_order_relaxed);
      return v;
    }
  }
  absl::Status valid = internal::ValidateKey(key);
  if (!valid.ok()) return valid;
  if (!cacheable) {
    shard.counters.misses.fetch_add(1, std::memory_order_relaxed);
    return Impl::RunLoader(loader);
  }
  Impl::FlightTable& table = *s.flights[index];
  std::shared_ptr<Impl::Flight> flight;
  bool leader = false;
  {
    absl::MutexLock lock(&table.mu);
    // A load that finished since the lookup above has stored its value.
    if (CacheValue v = shard.Lookup(key, h, s.Now())) {
      shard.counters.l1_hits.fetch_add(1, std::memory_order_relaxed);
      return v;
    }
    auto it = table.map.find(key);
    if (it != table.map.end()) {
      flight = it->second;
    } else {
      flight = std::make_shared<Impl::Flight>();
      table.map.emplace(std::string(key), flight);
      leader = true;
    }
  }
  if (!leader) {
    shard.counters.misses.fetch_add(1, std::memory_order_relaxed);
    flight->done.WaitForNotification();
    return flight->result;
  }
  absl::StatusOr<CacheValue> result = s.Load(key, h, ttl, loader);
  {
    absl::MutexLock lock(&table.mu);
    table.map.erase(std::string(key));
  }
  flight->result = result;
  flight->done.Notify();
  return result;
}

bool Cache::Put(absl::string_view key, std::string value, absl::Duration ttl) {
  Impl& s = *impl_;
  if (!s.options.enabled || ttl <= absl::ZeroDuration() ||
      !internal::ValidateKey(key).ok()) {
    return false;
  }
  return s.Store(key, std::make_shared<const std::string>(std::move(value)),
                 ttl);
}

absl::StatusOr<CacheValue> Cache::Refresh(absl::string_view key,
                                          absl::Duration ttl,
                                          const CacheLoader& loader) {
  Impl& s = *impl_;
  absl::Status valid = internal::ValidateKey(key);
  if (!valid.ok()) return valid;
  absl::StatusOr<CacheValue> value = Impl::RunLoader(loader);
  if (value.ok() && s.options.enabled && ttl > absl::ZeroDuration()) {
    s.Store(key, *value, ttl);
  }
  return value;
}

absl::StatusOr<int64_t> Cache::Invalidate(
    const std::vector<std::string>& keys) {
  Impl& s = *impl_;
  absl::flat_hash_set<std::string> families;
  for (const std::string& k : keys) {
    absl::Status valid = internal::ValidateKey(k);
    if (!valid.ok()) return valid;
    families.insert(std::string(internal::KeyFamily(k)));
  }
  if (keys.empty()) return 0;
  int64_t n = s.EraseKeys(keys);
  if (s.l2 != nullptr) {
    s.l2->InvalidateFamilies({families.begin(), families.end()});
  }
  InvalidationMessage m;
  m.instance = s.instance_id;
  m.kind = InvalidationMessage::Kind::kKeys;
  m.keys = keys;
  s.Publish(m);
  return n;
}

absl::StatusOr<int64_t> Cache::InvalidatePattern(absl::string_view pattern) {
  Impl& s = *impl_;
  absl::Status valid = internal::ValidateGlob(pattern);
  if (!valid.ok()) return valid;
  int64_t n = s.ErasePattern(pattern);
  s.InvalidateL2Pattern(pattern);
  InvalidationMessage m;
  m.instance = s.instance_id;
  m.kind = InvalidationMessage::Kind::kPattern;
  m.pattern = std::string(pattern);
  s.Publish(m);
  return n;
}

int64_t Cache::InvalidateAll() {
  Impl& s = *impl_;
  int64_t n = s.EraseAll();
  if (s.l2 != nullptr) s.l2->InvalidateAll();
  InvalidationMessage m;
  m.instance = s.instance_id;
  m.kind = InvalidationMessage::Kind::kAll;
  s.Publish(m);
  return n;
}

absl::Status Cache::ApplyDatabaseNotification(absl::string_view payload) {
  Impl& s = *impl_;
  absl::Status valid = internal::ValidateGlob(payload);
  if (!valid.ok()) {
    return absl::InvalidArgumentError(
        absl::StrCat("cache notification payload: ", valid.message()));
  }
  s.ErasePattern(payload);
  s.InvalidateL2Pattern(payload);
  return absl::OkStatus();
}

void Cache::OnDatabaseListenerReconnected() {
  Impl& s = *impl_;
  s.EraseAll();
  if (s.l2 != nullptr) s.l2->InvalidateAll();
}

}  // namespace pggitops
