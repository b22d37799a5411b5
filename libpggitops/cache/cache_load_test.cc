// Single-flight loads: many threads, one loader call; failures shared and
// never cached; loads that overlap an invalidation are not cached.
#include <atomic>
#include <chrono>
#include <memory>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include "absl/synchronization/notification.h"
#include "doctest/doctest.h"
#include "pggitops/cache.h"
#include "testing/fake_env.h"

namespace pggitops {
namespace {

using testing::FakeEnv;

std::unique_ptr<Cache> MakeCache(FakeEnv* env) {
  CacheOptions o;
  o.env = env;
  o.max_bytes = 1 << 20;
  absl::StatusOr<std::unique_ptr<Cache>> c = Cache::Create(o);
  REQUIRE(c.ok());
  return *std::move(c);
}

// Runs `n` threads that each call GetOrLoad(key) once the loader is
// blocked, so they all find the load in flight; returns their results.
std::vector<absl::StatusOr<CacheValue>> Stampede(
    Cache* cache, int n, std::function<absl::StatusOr<std::string>()> body,
    std::atomic<int>* calls) {
  absl::Notification loader_entered, release;
  CacheLoader loader = [&]() -> absl::StatusOr<std::string> {
    calls->fetch_add(1);
    loader_entered.Notify();
    release.WaitForNotification();
    return body();
  };
  std::vector<absl::StatusOr<CacheValue>> results(n, absl::UnknownError(""));
  std::vector<std::thread> threads;
  threads.emplace_back([&] {
    results[0] = cache->GetOrLoad("webhooks:list", absl::Minutes(2), loader);
  });
  loader_entered.WaitForNotification();
  for (int i = 1; i < n; ++i) {
    threads.emplace_back([&, i] {
      results[i] = cache->GetOrLoad("webhooks:list", absl::Minutes(2), loader);
    });
  }
  // A waiter counts its miss once it has joined the flight (the leader
  // counted its own before calling the loader), so `n` misses mean every
  // thread waits on this one load. Bounded, should single-flight break.
  auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
  while (cache->Stats().misses < n &&
         std::chrono::steady_clock::now() < deadline) {
    std::this_thread::yield();
  }
  CHECK(cache->Stats().misses == n);
  release.Notify();
  for (auto& t : threads) t.join();
  return results;
}

TEST_CASE("Cache: concurrent misses on one key run the loader once") {
  FakeEnv env;
  auto cache = MakeCache(&env);
  std::atomic<int> calls{0};
  auto results = Stampede(
      cache.get(), 32, [] { return absl::StatusOr<std::string>("page"); },
      &calls);
  CHECK(calls.load() == 1);
  for (const auto& r : results) {
    REQUIRE(r.ok());
    CHECK(r->get() == results[0]->get());  // one shared buffer
  }
  CacheStats st = cache->Stats();
  CHECK(st.total_requests() == 32);
  CHECK(st.entries == 1);
}

TEST_CASE("Cache: a failing loader fails its waiters and caches nothing") {
  FakeEnv env;
  auto cache = MakeCache(&env);
  std::atomic<int> calls{0};
  auto results = Stampede(
      cache.get(), 16,
      [] {
        return absl::StatusOr<std::string>(absl::UnavailableError("db down"));
      },
      &calls);
  CHECK(calls.load() == 1);
  for (const auto& r : results) {
    CHECK(r.status().code() == absl::StatusCode::kUnavailable);
    CHECK(r.status().message() == "db down");
  }
  CHECK(cache->Stats().entries == 0);
  int later = 0;
  auto ok = cache->GetOrLoad("webhooks:list", absl::Minutes(2), [&later] {
    ++later;
    return absl::StatusOr<std::string>("fresh");
  });
  REQUIRE(ok.ok());
  CHECK(**ok == "fresh");
  CHECK(later == 1);
}

TEST_CASE("Cache: a throwing loader is an internal error, not a crash") {
  FakeEnv env;
  auto cache = MakeCache(&env);
  auto r = cache->GetOrLoad("k", absl::Seconds(1),
                            []() -> absl::StatusOr<std::string> {
                              throw std::runtime_error("boom");
                            });
  CHECK(r.status().code() == absl::StatusCode::kInternal);
  CHECK(cache->Stats().entries == 0);
}

TEST_CASE("Cache: a load overlapping an invalidation is returned, not cached") {
  FakeEnv env;
  auto cache = MakeCache(&env);
  int calls = 0;
  auto r = cache->GetOrLoad("webhooks:list", absl::Minutes(2), [&] {
    ++calls;
    // The data changes while the (old) value is being read.
    REQUIRE(cache->InvalidatePattern("webhooks:*").ok());
    return absl::StatusOr<std::string>("old");
  });
  REQUIRE(r.ok());
  CHECK(**r == "old");
  CHECK(cache->Get("webhooks:list") == nullptr);
  auto again = cache->GetOrLoad("webhooks:list", absl::Minutes(2), [&] {
    ++calls;
    return absl::StatusOr<std::string>("new");
  });
  CHECK(**again == "new");
  CHECK(calls == 2);
  CHECK(cache->Get("webhooks:list") != nullptr);
}

TEST_CASE("Cache: a Put during a load wins over the load's older value") {
  FakeEnv env;
  auto cache = MakeCache(&env);
  auto r = cache->GetOrLoad("k:1", absl::Minutes(2), [&] {
    cache->Put("k:1", "written", absl::Minutes(2));
    return absl::StatusOr<std::string>("loaded before the write");
  });
  REQUIRE(r.ok());
  CacheValue v = cache->Get("k:1");
  REQUIRE(v != nullptr);
  CHECK(*v == "written");
}

TEST_CASE("Cache: many threads, many keys: counts add up, nothing lost") {
  FakeEnv env;
  auto cache = MakeCache(&env);
  std::atomic<int> loads{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < 8; ++t) {
    threads.emplace_back([&, t] {
      for (int i = 0; i < 2000; ++i) {
        std::string key = "k:" + std::to_string((i * 7 + t) % 50);
        auto v = cache->GetOrLoad(key, absl::Hours(1), [&, key] {
          loads.fetch_add(1);
          return absl::StatusOr<std::string>(key);
        });
        REQUIRE(v.ok());
        CHECK(**v == key);
      }
    });
  }
  for (auto& th : threads) th.join();
  CHECK(loads.load() == 50);
  CacheStats st = cache->Stats();
  CHECK(st.total_requests() == 16000);
  CHECK(st.hits >= 16000 - 8 * 50);
  CHECK(st.entries == 50);
}

}  // namespace
}  // namespace pggitops
