// The Cache's options, statistics, metrics, health checks and warmers.
#include <algorithm>
#include <exception>
#include <utility>

#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "libpggitops/cache/cache_impl.h"
#include "libpggitops/config/redis_url.h"
#include "nlohmann/json.hpp"
#include "pggitops/cache.h"
#include "pggitops/config.h"
#include "pggitops/log.h"

namespace pggitops {
namespace {

absl::Status OutOfRange(absl::string_view field, absl::string_view range,
                        absl::string_view got) {
  return absl::InvalidArgumentError(absl::StrCat(
      "CacheOptions.", field, ": must be ", range, " (got ", got, ")"));
}

bool DurationIn(absl::Duration d, absl::Duration lo, absl::Duration hi) {
  return d >= lo && d <= hi;
}

bool IsIdChar(char c) {
  return absl::ascii_isalnum(static_cast<unsigned char>(c)) || c == '_' ||
         c == '.' || c == '-';
}

}  // namespace

absl::Status CacheOptions::Validate() const {
  if (max_bytes < 0 || max_bytes > (int64_t{1} << 40)) {
    return OutOfRange("max_bytes", "from 0 to 2^40", absl::StrCat(max_bytes));
  }
  if (shards < 1 || shards > 256) {
    return OutOfRange("shards", "from 1 to 256", absl::StrCat(shards));
  }
  if (!DurationIn(redis_timeout, absl::Milliseconds(1), absl::Seconds(60))) {
    return OutOfRange("redis_timeout", "from 1 ms to 60 s",
                      absl::FormatDuration(redis_timeout));
  }
  if (!DurationIn(redis_retry_interval, absl::Milliseconds(10),
                  absl::Minutes(10))) {
    return OutOfRange("redis_retry_interval", "from 10 ms to 10 min",
                      absl::FormatDuration(redis_retry_interval));
  }
  if (redis_connections < 1 || redis_connections > 64) {
    return OutOfRange("redis_connections", "from 1 to 64",
                      absl::StrCat(redis_connections));
  }
  for (const auto& [name, value] : {std::pair<const char*, const std::string*>{
                                        "redis_key_prefix", &redis_key_prefix},
                                    {"redis_channel", &redis_channel}}) {
    if (value->empty() || value->size() > 128 ||
        !std::all_of(value->begin(), value->end(), [](char c) {
          return static_cast<unsigned char>(c) > 0x20 && c != 0x7f;
        })) {
      return OutOfRange(name, "1 to 128 printable characters without spaces",
                        *value);
    }
  }
  if (!instance_id.empty() &&
      (instance_id.size() > 64 ||
       !std::all_of(instance_id.begin(), instance_id.end(), IsIdChar))) {
    return OutOfRange("instance_id", "1 to 64 of [A-Za-z0-9_.-]", instance_id);
  }
  if (!redis_url.empty()) {
    absl::StatusOr<internal::RedisUrl> url = internal::ParseRedisUrl(redis_url);
    if (!url.ok()) {
      return absl::InvalidArgumentError(
          absl::StrCat("CacheOptions.redis_url ", RedactSecrets(redis_url),
                       ": ", url.status().message()));
    }
  }
  return absl::OkStatus();
}

CacheOptions CacheOptionsFromConfig(const Config& config) {
  CacheOptions o;
  o.enabled = config.cache_enabled;
  o.max_bytes = config.cache_max_bytes;
  o.redis_url = config.redis_url;
  o.redis_timeout = config.redis_timeout;
  return o;
}

int WarmResult::failed() const {
  return static_cast<int>(
      std::count_if(warmers.begin(), warmers.end(),
                    [](const WarmerResult& w) { return !w.status.ok(); }));
}

CacheStats Cache::Stats() {
  Impl& s = *impl_;
  CacheStats st;
  const absl::Time now = s.Now();
  for (const auto& shard : s.shards) {
    shard->PurgeExpired(now);
    internal::CacheShard::Snapshot snap = shard->Stats();
    st.entries += snap.entries;
    st.bytes += snap.bytes;
    st.evictions += snap.evictions;
    st.expirations += snap.expirations;
    st.l1_hits += shard->counters.l1_hits.load(std::memory_order_relaxed);
    st.l2_hits += shard->counters.l2_hits.load(std::memory_order_relaxed);
    st.misses += shard->counters.misses.load(std::memory_order_relaxed);
  }
  st.hits = st.l1_hits + st.l2_hits;
  st.hit_rate = st.total_requests() == 0
                    ? 0.0
                    : static_cast<double>(st.hits) /
                          static_cast<double>(st.total_requests());
  st.max_bytes = s.options.max_bytes;
  st.entry_overhead_bytes = internal::kEntryOverheadBytes;
  if (s.l2 != nullptr) {
    st.l2 = s.l2->Stats();
    if (s.subscriber != nullptr) {
      st.l2.subscribed = s.subscriber->subscribed();
      st.l2.received = s.remote_applied.load(std::memory_order_relaxed);
    }
  }
  return st;
}

void Cache::Impl::RegisterMetrics() {
  registry = options.metrics;
  MetricsRegistry& r = *registry;
  r.AddCounter("cache_hits_total", "Cache lookups answered by L1 or L2");
  r.AddCounter("cache_misses_total", "Cache lookups answered by neither level");
  r.AddCounter("cache_evictions_total", "Cache entries evicted to make room");
  r.AddCounter("cache_expirations_total", "Cache entries dropped at expiry");
  r.AddCounter("cache_l2_hits_total", "Cache lookups answered by Redis");
  r.AddCounter("cache_l2_errors_total", "Failed Redis calls of the cache");
  r.AddGauge("cache_size_bytes", "Bytes charged by the L1 cache entries");
  r.AddGauge("cache_entries", "Live L1 cache entries");
  r.AddGauge("cache_max_bytes", "L1 cache byte budget (CACHE_MAX_BYTES)");
  r.AddGauge("cache_l2_up", "1 when the Redis L2 is connected, else 0");
  hook_id = r.AddCollectHook([this] { RefreshMetrics(); });
}

void Cache::Impl::RefreshMetrics() {
  CacheStats st = self->Stats();
  MetricsRegistry& r = *registry;
  absl::MutexLock lock(&report_mu);
  auto bump = [&r](const char* name, int64_t now, int64_t* last) {
    if (now > *last) {
      r.AddCounter(name, "").WithLabels({}).Inc(
          static_cast<double>(now - *last));
    }
    *last = std::max(*last, now);
  };
  bump("cache_hits_total", st.hits, &reported.hits);
  bump("cache_misses_total", st.misses, &reported.misses);
  bump("cache_evictions_total", st.evictions, &reported.evictions);
  bump("cache_expirations_total", st.expirations, &reported.expirations);
  bump("cache_l2_hits_total", st.l2_hits, &reported.l2_hits);
  bump("cache_l2_errors_total", st.l2.errors, &reported.l2_errors);
  r.AddGauge("cache_size_bytes", "")
      .WithLabels({})
      .Set(static_cast<double>(st.bytes));
  r.AddGauge("cache_entries", "")
      .WithLabels({})
      .Set(static_cast<double>(st.entries));
  r.AddGauge("cache_max_bytes", "")
      .WithLabels({})
      .Set(static_cast<double>(st.max_bytes));
  r.AddGauge("cache_l2_up", "")
      .WithLabels({})
      .Set(st.l2.status == "connected" ? 1.0 : 0.0);
}

HealthCheck Cache::CacheHealthCheck() {
  HealthCheck check;
  check.name = "cache";
  check.criticality = Criticality::kNonCritical;
  check.timeout = absl::Seconds(1);
  check.run = [this] {
    CacheStats st = Stats();
    CheckResult r;
    r.status = impl_->options.enabled ? "operational" : "disabled";
    r.details_json = nlohmann::json{
        {"hit_rate", st.hit_rate},
        {"entries", st.entries},
        {"bytes", st.bytes},
        {"max_bytes",
         st.max_bytes}}.dump();
    return r;
  };
  return check;
}

HealthCheck Cache::RedisHealthCheck() {
  HealthCheck check;
  check.name = "redis";
  check.criticality = Criticality::kNonCritical;
  // A PING may wait for a connection, connect and run: three timeouts.
  check.timeout = 3 * impl_->options.redis_timeout + absl::Seconds(1);
  check.run = [this] {
    CheckResult r;
    Impl& s = *impl_;
    if (s.l2 == nullptr) {
      r.status = "disabled";
      return r;
    }
    const absl::Time start = absl::Now();
    absl::Status ping = s.l2->Ping();
    const double ms = absl::ToDoubleMilliseconds(absl::Now() - start);
    nlohmann::json details = {
        {"subscribed", s.subscriber != nullptr && s.subscriber->subscribed()}};
    if (ping.ok()) {
      r.status = "connected";
      details["response_time_ms"] = ms;
    } else {
      r.ok = false;
      r.status = "unavailable";
      r.message = std::string(ping.message());
    }
    r.details_json = details.dump();
    return r;
  };
  return check;
}

absl::Status Cache::RegisterWarmer(const std::string& name,
                                   CacheWarmer warmer) {
  if (name.empty()) return absl::InvalidArgumentError("warmer name is empty");
  if (!warmer) {
    return absl::InvalidArgumentError(
        absl::StrCat("warmer ", name, " has no function"));
  }
  Impl& s = *impl_;
  absl::MutexLock lock(&s.warm_mu);
  for (auto& [n, fn] : s.warmers) {
    if (n == name) {
      fn = std::move(warmer);
      return absl::OkStatus();
    }
  }
  s.warmers.emplace_back(name, std::move(warmer));
  return absl::OkStatus();
}

WarmResult Cache::Warm() {
  Impl& s = *impl_;
  WarmResult result;
  if (!s.options.enabled) return result;
  std::vector<std::pair<std::string, CacheWarmer>> warmers;
  {
    absl::MutexLock lock(&s.warm_mu);
    warmers = s.warmers;
  }
  const absl::Time start = s.Now();
  for (const auto& [name, fn] : warmers) {
    WarmerResult w;
    w.name = name;
    const absl::Time t0 = s.Now();
    try {
      absl::StatusOr<int64_t> n = fn(*this);
      w.status = n.status();
      if (n.ok()) w.entries = std::max<int64_t>(0, *n);
    } catch (const std::exception& e) {
      w.status = absl::InternalError(absl::StrCat("warmer threw: ", e.what()));
    }
    w.duration = s.Now() - t0;
    if (!w.status.ok()) {
      Log::Warning(
          "cache warmer failed",
          {{"warmer", name}, {"error", std::string(w.status.message())}});
    }
    result.warmed_entries += w.entries;
    result.warmers.push_back(std::move(w));
  }
  result.duration = s.Now() - start;
  return result;
}

}  // namespace pggitops
