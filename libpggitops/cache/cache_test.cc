// The Cache without Redis: TTL, eviction, statistics, invalidation,
// warmers, metrics and health, on a manual clock.
#include "pggitops/cache.h"

#include <memory>
#include <string>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "doctest/doctest.h"
#include "libpggitops/cache/cache_shard.h"
#include "nlohmann/json.hpp"
#include "pggitops/metrics.h"
#include "testing/fake_env.h"

namespace pggitops {
namespace {

using testing::FakeEnv;

std::unique_ptr<Cache> MakeCache(FakeEnv* env, int64_t max_bytes = 1 << 20,
                                 int shards = 4,
                                 MetricsRegistry* metrics = nullptr) {
  CacheOptions o;
  o.env = env;
  o.max_bytes = max_bytes;
  o.shards = shards;
  o.metrics = metrics;
  absl::StatusOr<std::unique_ptr<Cache>> c = Cache::Create(o);
  REQUIRE(c.ok());
  return *std::move(c);
}

CacheLoader Constant(std::string v, int* calls) {
  return [v, calls]() -> absl::StatusOr<std::string> {
    ++*calls;
    return v;
  };
}

TEST_CASE("Cache: GetOrLoad loads once, then hits until the TTL passes") {
  FakeEnv env;
  auto cache = MakeCache(&env);
  int calls = 0;
  auto a = cache->GetOrLoad("webhooks:list", absl::Seconds(120),
                            Constant("[1]", &calls));
  REQUIRE(a.ok());
  CHECK(**a == "[1]");
  env.AdvanceBy(absl::Seconds(119));
  auto b = cache->GetOrLoad("webhooks:list", absl::Seconds(120),
                            Constant("[2]", &calls));
  REQUIRE(b.ok());
  CHECK(b->get() == a->get());  // the same bytes, shared
  CHECK(calls == 1);
  env.AdvanceBy(absl::Seconds(1));
  auto c = cache->GetOrLoad("webhooks:list", absl::Seconds(120),
                            Constant("[3]", &calls));
  REQUIRE(c.ok());
  CHECK(**c == "[3]");
  CHECK(calls == 2);
  CacheStats st = cache->Stats();
  CHECK(st.hits == 1);
  CHECK(st.l1_hits == 1);
  CHECK(st.l2_hits == 0);
  CHECK(st.misses == 2);
  CHECK(st.expirations == 1);
  CHECK(st.total_requests() == 3);
  CHECK(st.hit_rate == doctest::Approx(1.0 / 3));
}

TEST_CASE("Cache: Get and Put; hit rate 0 with no requests") {
  FakeEnv env;
  auto cache = MakeCache(&env);
  CHECK(cache->Stats().hit_rate == 0);
  CHECK(cache->Get("alerts:1") == nullptr);
  CHECK(cache->Put("alerts:1", "x", absl::Seconds(60)));
  CacheValue v = cache->Get("alerts:1");
  REQUIRE(v != nullptr);
  CHECK(*v == "x");
  CHECK_FALSE(cache->Put("alerts:2", "x", absl::ZeroDuration()));
  CHECK_FALSE(cache->Put("", "x", absl::Seconds(1)));
  CHECK(cache->Get("alerts:2") == nullptr);
  CacheStats st = cache->Stats();
  CHECK(st.hits == 1);
  CHECK(st.misses == 2);
  CHECK(st.hit_rate == doctest::Approx(1.0 / 3));
}

TEST_CASE("Cache: expired entries leave the statistics at Stats()") {
  FakeEnv env;
  auto cache = MakeCache(&env);
  cache->Put("a:1", "v", absl::Seconds(10));
  cache->Put("a:2", "v", absl::Seconds(30));
  CHECK(cache->Stats().entries == 2);
  env.AdvanceBy(absl::Seconds(10));
  CacheStats st = cache->Stats();
  CHECK(st.entries == 1);
  CHECK(st.expirations == 1);
  CHECK(st.bytes == internal::EntryCharge(3, 1));
}

TEST_CASE("Cache: the byte budget bounds L1; eviction is counted") {
  FakeEnv env;
  const int64_t charge = internal::EntryCharge(8, 100);
  auto cache = MakeCache(&env, 50 * charge, 1);
  for (int i = 0; i < 200; ++i) {
    REQUIRE(cache->Put(absl::StrCat("k:", 100000 + i), std::string(100, 'x'),
                       absl::Hours(1)));
  }
  CacheStats st = cache->Stats();
  CHECK(st.bytes <= st.max_bytes);
  CHECK(st.bytes == st.entries * charge);
  CHECK(st.evictions == 200 - st.entries);
  CHECK(st.entries >= 45);
  CHECK(st.max_bytes == 50 * charge);
  CHECK(st.entry_overhead_bytes == internal::kEntryOverheadBytes);
}

TEST_CASE("Cache: zero budget caches nothing but still answers") {
  FakeEnv env;
  auto cache = MakeCache(&env, 0, 1);
  int calls = 0;
  for (int i = 0; i < 3; ++i) {
    auto v = cache->GetOrLoad("k", absl::Seconds(5), Constant("v", &calls));
    REQUIRE(v.ok());
    CHECK(**v == "v");
  }
  CHECK(calls == 3);
  CHECK(cache->Stats().entries == 0);
}

TEST_CASE("Cache: pattern invalidation removes the family only") {
  FakeEnv env;
  auto cache = MakeCache(&env);
  for (const char* k :
       {"webhooks:list:20:0", "webhooks:list:20:20", "webhooks:7",
        "alerts:list:20:0", "dashboard:summary"}) {
    REQUIRE(cache->Put(k, "v", absl::Minutes(5)));
  }
  auto n = cache->InvalidatePattern("webhooks:*");
  REQUIRE(n.ok());
  CHECK(*n == 3);
  CHECK(cache->Get("webhooks:7") == nullptr);
  CHECK(cache->Get("alerts:list:20:0") != nullptr);
  n = cache->InvalidatePattern("?lerts:list:*");
  REQUIRE(n.ok());
  CHECK(*n == 1);
  CHECK(cache->Stats().entries == 1);
  auto keys = cache->Invalidate({"dashboard:summary", "dashboard:absent"});
  REQUIRE(keys.ok());
  CHECK(*keys == 1);
  CHECK(cache->Stats().entries == 0);
  CHECK(cache->Stats().bytes == 0);
}

TEST_CASE("Cache: a bad pattern or key is refused and changes nothing") {
  FakeEnv env;
  auto cache = MakeCache(&env);
  REQUIRE(cache->Put("webhooks:1", "v", absl::Minutes(5)));
  for (const char* bad : {"", "webhooks:[12]", "webhooks:\\*", "a\nb"}) {
    auto r = cache->InvalidatePattern(bad);
    CHECK(r.status().code() == absl::StatusCode::kInvalidArgument);
  }
  CHECK(cache->InvalidatePattern(std::string(1025, '*')).status().code() ==
        absl::StatusCode::kInvalidArgument);
  auto r = cache->Invalidate({"webhooks:1", ""});
  CHECK(r.status().code() == absl::StatusCode::kInvalidArgument);
  CHECK(cache->ApplyDatabaseNotification("not[valid").code() ==
        absl::StatusCode::kInvalidArgument);
  CHECK(cache->Get("webhooks:1") != nullptr);
  auto g = cache->GetOrLoad("", absl::Seconds(1),
                            [] { return absl::StatusOr<std::string>("x"); });
  CHECK(g.status().code() == absl::StatusCode::kInvalidArgument);
}

TEST_CASE("Cache: database notifications and listener reconnection") {
  FakeEnv env;
  auto cache = MakeCache(&env);
  REQUIRE(cache->Put("webhooks:list", "v", absl::Minutes(5)));
  REQUIRE(cache->Put("alerts:list", "v", absl::Minutes(5)));
  REQUIRE(cache->ApplyDatabaseNotification("webhooks:*").ok());
  CHECK(cache->Get("webhooks:list") == nullptr);
  CHECK(cache->Get("alerts:list") != nullptr);
  cache->OnDatabaseListenerReconnected();
  CHECK(cache->Stats().entries == 0);
}

TEST_CASE("Cache: InvalidateAll empties L1 and returns the count") {
  FakeEnv env;
  auto cache = MakeCache(&env);
  for (int i = 0; i < 10; ++i)
    cache->Put(absl::StrCat("x:", i), "v", absl::Hours(1));
  CHECK(cache->InvalidateAll() == 10);
  CHECK(cache->Stats().entries == 0);
  CHECK(cache->InvalidateAll() == 0);
}

TEST_CASE("Cache: warmers report what they really loaded") {
  FakeEnv env;
  auto cache = MakeCache(&env);
  REQUIRE(cache
              ->RegisterWarmer("pages",
                               [&env](Cache& c) -> absl::StatusOr<int64_t> {
                                 int64_t n = 0;
                                 for (int i = 0; i < 3; ++i) {
                                   auto v = c.Refresh(
                                       absl::StrCat("webhooks:page:", i),
                                       absl::Minutes(2), [i] {
                                         return absl::StatusOr<std::string>(
                                             absl::StrCat("page ", i));
                                       });
                                   if (v.ok()) ++n;
                                 }
                                 env.AdvanceBy(absl::Milliseconds(40));
                                 return n;
                               })
              .ok());
  REQUIRE(cache
              ->RegisterWarmer("broken",
                               [](Cache&) -> absl::StatusOr<int64_t> {
                                 return absl::UnavailableError("db down");
                               })
              .ok());
  CHECK(cache
            ->RegisterWarmer("",
                             [](Cache&) { return absl::StatusOr<int64_t>(0); })
            .code() == absl::StatusCode::kInvalidArgument);
  CHECK(cache->RegisterWarmer("x", nullptr).code() ==
        absl::StatusCode::kInvalidArgument);
  WarmResult w = cache->Warm();
  CHECK(w.warmed_entries == 3);
  REQUIRE(w.warmers.size() == 2);
  CHECK(w.warmers[0].name == "pages");
  CHECK(w.warmers[0].entries == 3);
  CHECK(w.warmers[0].duration == absl::Milliseconds(40));
  CHECK(w.warmers[1].status.code() == absl::StatusCode::kUnavailable);
  CHECK(w.failed() == 1);
  CHECK(w.duration == absl::Milliseconds(40));
  CacheValue v = cache->Get("webhooks:page:2");
  REQUIRE(v != nullptr);
  CHECK(*v == "page 2");
  CacheStats st = cache->Stats();
  CHECK(st.entries == 3);
  CHECK(st.hits == 1);  // warming itself counts no hit and no miss
  CHECK(st.misses == 0);
  // Registering under an existing name replaces it in place.
  REQUIRE(cache
              ->RegisterWarmer(
                  "broken", [](Cache&) -> absl::StatusOr<int64_t> { return 0; })
              .ok());
  w = cache->Warm();
  CHECK(w.failed() == 0);
  CHECK(w.warmers.size() == 2);
}

TEST_CASE("Cache: disabled caches nothing and warms nothing") {
  FakeEnv env;
  CacheOptions o;
  o.env = &env;
  o.enabled = false;
  auto cache = *Cache::Create(o);
  int calls = 0;
  for (int i = 0; i < 2; ++i) {
    REQUIRE(
        cache->GetOrLoad("k", absl::Seconds(5), Constant("v", &calls)).ok());
  }
  CHECK(calls == 2);
  CHECK_FALSE(cache->Put("k", "v", absl::Seconds(5)));
  REQUIRE(cache
              ->RegisterWarmer("w",
                               [](Cache&) -> absl::StatusOr<int64_t> {
                                 FAIL("a disabled cache must not warm");
                                 return 0;
                               })
              .ok());
  CHECK(cache->Warm().warmed_entries == 0);
  CHECK(cache->Stats().misses == 2);
  CheckResult r = cache->CacheHealthCheck().run();
  CHECK(r.ok);
  CHECK(r.status == "disabled");
}

TEST_CASE("Cache: options are validated") {
  auto bad = [](std::function<void(CacheOptions&)> f) {
    CacheOptions o;
    f(o);
    return Cache::Create(o).status();
  };
  CHECK(bad([](CacheOptions& o) { o.max_bytes = -1; }).code() ==
        absl::StatusCode::kInvalidArgument);
  CHECK(bad([](CacheOptions& o) { o.shards = 0; }).code() ==
        absl::StatusCode::kInvalidArgument);
  CHECK(bad([](CacheOptions& o) {
          o.redis_timeout = absl::ZeroDuration();
        }).code() == absl::StatusCode::kInvalidArgument);
  CHECK(bad([](CacheOptions& o) { o.redis_key_prefix = "a b"; }).code() ==
        absl::StatusCode::kInvalidArgument);
  CHECK(bad([](CacheOptions& o) { o.instance_id = "x:y"; }).code() ==
        absl::StatusCode::kInvalidArgument);
  absl::Status tls = bad([](CacheOptions& o) { o.redis_url = "rediss://h:1"; });
  CHECK(tls.code() == absl::StatusCode::kInvalidArgument);
  CHECK(absl::StrContains(tls.message(), "TLS"));
  // A refused URL is named, without its password.
  absl::Status port =
      bad([](CacheOptions& o) { o.redis_url = "redis://:s3cret@h:99999"; });
  CHECK(port.code() == absl::StatusCode::kInvalidArgument);
  CHECK(absl::StrContains(port.message(), "redis://:***@h:99999"));
  CHECK(absl::StrContains(port.message(), "port"));
  CHECK_FALSE(absl::StrContains(port.message(), "s3cret"));
  Config config;
  config.cache_max_bytes = 12345;
  config.redis_url = "redis://localhost:6390/2";
  config.redis_timeout = absl::Milliseconds(80);
  CacheOptions o = CacheOptionsFromConfig(config);
  CHECK(o.max_bytes == 12345);
  CHECK(o.redis_url == config.redis_url);
  CHECK(o.redis_timeout == absl::Milliseconds(80));
  CHECK(o.enabled);
}

TEST_CASE("Cache: metrics follow the statistics at each scrape") {
  FakeEnv env;
  MetricsRegistry registry;
  auto cache = MakeCache(&env, 1 << 20, 4, &registry);
  int calls = 0;
  for (int i = 0; i < 3; ++i) {
    REQUIRE(
        cache->GetOrLoad("k:1", absl::Seconds(5), Constant("v", &calls)).ok());
  }
  std::string text = registry.Serialize();
  CHECK(absl::StrContains(text, "\ncache_hits_total 2\n"));
  CHECK(absl::StrContains(text, "\ncache_misses_total 1\n"));
  CHECK(absl::StrContains(text, "\ncache_evictions_total 0\n"));
  CHECK(absl::StrContains(
      text,
      absl::StrCat("\ncache_size_bytes ", internal::EntryCharge(3, 1), "\n")));
  CHECK(absl::StrContains(text, "\ncache_entries 1\n"));
  REQUIRE(
      cache->GetOrLoad("k:1", absl::Seconds(5), Constant("v", &calls)).ok());
  text = registry.Serialize();
  CHECK(absl::StrContains(text, "\ncache_hits_total 3\n"));
}

TEST_CASE("Cache: health checks without Redis") {
  FakeEnv env;
  auto cache = MakeCache(&env);
  cache->Put("k:1", "v", absl::Seconds(5));
  cache->Get("k:1");
  CheckResult c = cache->CacheHealthCheck().run();
  CHECK(c.ok);
  CHECK(c.status == "operational");
  nlohmann::json d = nlohmann::json::parse(c.details_json);
  CHECK(d["hit_rate"] == 1.0);
  CHECK(d["entries"] == 1);
  HealthCheck redis = cache->RedisHealthCheck();
  CHECK(redis.criticality == Criticality::kNonCritical);
  CheckResult r = redis.run();
  CHECK(r.ok);
  CHECK(r.status == "disabled");
  CHECK(cache->Stats().l2.status == "disabled");
}

}  // namespace
}  // namespace pggitops
