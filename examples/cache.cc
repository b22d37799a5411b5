// cache: the pggitops cache in a program of your own.
//
//   cache [--redis-url redis://127.0.0.1:6379] [--help]
//
// Without --redis-url it uses the in-process cache (L1) alone: a value is
// loaded once by its loader and then served from memory until its TTL
// passes or it is invalidated. With --redis-url, Redis is the second level
// (L2) shared by every instance: a second Cache (standing for another
// process) finds the value there without running its loader, and an
// invalidation in one instance reaches the other. Exits 1, saying why, when
// something does not behave as described.
#include "pggitops/cache.h"

#include <cstdio>
#include <cstring>
#include <memory>
#include <string>

#include "absl/status/statusor.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"

namespace {

constexpr char kUsage[] =
    "usage: cache [--redis-url URL]\n"
    "  Caches a value in the in-process cache (L1) and, with --redis-url\n"
    "  (redis://[[user]:password@]host[:port][/db] or unix:///path), in\n"
    "  Redis (L2) shared with a second instance.\n";

int Fail(const std::string& what) {
  std::fprintf(stderr, "cache: %s\n", what.c_str());
  return 1;
}

// Creates a cache. Options not set here keep their defaults (see
// CacheOptions in pggitops/cache.h); an application reading its settings
// from the environment would start from CacheOptionsFromConfig(config).
absl::StatusOr<std::unique_ptr<pggitops::Cache>> NewCache(
    const std::string& redis_url, const std::string& instance) {
  pggitops::CacheOptions options;
  options.max_bytes = 16 << 20;  // 16 MiB of keys and values
  options.redis_url = redis_url;
  options.redis_key_prefix = "example:cache:";  // keep clear of the daemon's
  options.redis_channel = "example:cache:invalidate";
  options.instance_id = instance;
  return pggitops::Cache::Create(options);
}

}  // namespace

int main(int argc, char** argv) {
  std::string redis_url;
  for (int i = 1; i < argc; ++i) {
    if (std::strcmp(argv[i], "--help") == 0 ||
        std::strcmp(argv[i], "-h") == 0) {
      std::fputs(kUsage, stdout);
      return 0;
    } else if (std::strcmp(argv[i], "--redis-url") == 0 && i + 1 < argc) {
      redis_url = argv[++i];
    } else {
      std::fprintf(stderr, "cache: unknown or incomplete argument %s\n%s",
                   argv[i], kUsage);
      return 2;
    }
  }

  // An invalid URL is refused here; an unreachable Redis is not an error
  // (the cache runs on L1 and keeps retrying): Stats() says which.
  absl::StatusOr<std::unique_ptr<pggitops::Cache>> cache =
      NewCache(redis_url, "example-a");
  if (!cache.ok()) return Fail(cache.status().ToString());

  // GetOrLoad runs the loader on a miss only; concurrent callers of one key
  // share one load. The value is an immutable shared string.
  const std::string key =
      "example:greeting:" + std::to_string(absl::ToUnixNanos(absl::Now()));
  int loads = 0;
  auto loader = [&loads]() -> absl::StatusOr<std::string> {
    ++loads;
    return std::string("hello from the loader");
  };
  for (int i = 0; i < 3; ++i) {
    absl::StatusOr<pggitops::CacheValue> v =
        (*cache)->GetOrLoad(key, absl::Minutes(5), loader);
    if (!v.ok()) return Fail("GetOrLoad: " + v.status().ToString());
    std::printf("lookup %d: \"%s\"\n", i + 1, (*v)->c_str());
  }
  if (loads != 1) return Fail("the loader ran more than once");

  pggitops::CacheStats stats = (*cache)->Stats();
  std::printf("L1: %lld hits, %lld misses, %lld entries, %lld bytes\n",
              static_cast<long long>(stats.l1_hits),
              static_cast<long long>(stats.misses),
              static_cast<long long>(stats.entries),
              static_cast<long long>(stats.bytes));
  std::printf("L2: %s%s%s\n", stats.l2.status.c_str(),
              stats.l2.last_error.empty() ? "" : ": ",
              stats.l2.last_error.c_str());

  if (!redis_url.empty()) {
    if (stats.l2.status != "connected") {
      return Fail("Redis is not reachable at " + redis_url);
    }
    // Another instance: its L1 is empty, so the value comes from Redis.
    absl::StatusOr<std::unique_ptr<pggitops::Cache>> other =
        NewCache(redis_url, "example-b");
    if (!other.ok()) return Fail(other.status().ToString());
    pggitops::CacheValue v = (*other)->Get(key);
    if (v == nullptr) return Fail("the second instance did not find the key");
    std::printf("second instance: \"%s\" (L2 hits: %lld)\n", v->c_str(),
                static_cast<long long>((*other)->Stats().l2_hits));
    // An invalidation removes the key in both levels and is published to
    // the other instances.
    absl::StatusOr<int64_t> removed = (*cache)->Invalidate({key});
    if (!removed.ok()) return Fail(removed.status().ToString());
    // The other instance's L1 drops the key when the message published
    // through Redis arrives (its subscriber thread), within moments.
    absl::Time deadline = absl::Now() + absl::Seconds(5);
    while ((*other)->Get(key) != nullptr) {
      if (absl::Now() > deadline) {
        return Fail("the second instance still has the invalidated key");
      }
      absl::SleepFor(absl::Milliseconds(10));
    }
    std::printf("invalidated in both instances\n");
    (*other)->Shutdown();
  } else {
    absl::StatusOr<int64_t> removed = (*cache)->Invalidate({key});
    if (!removed.ok()) return Fail(removed.status().ToString());
    std::printf("invalidated: %lld entry\n", static_cast<long long>(*removed));
    if ((*cache)->Get(key) != nullptr) return Fail("the key is still there");
  }

  // Stops the Redis subscriber thread; the destructor would do it too.
  (*cache)->Shutdown();
  std::printf("ok\n");
  return 0;
}
