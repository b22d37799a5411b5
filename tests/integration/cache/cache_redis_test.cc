// The cache against the harness's real Redis: L2 read/write-through, shared
// invalidation between two instances, and outages (Redis stopped, Redis
// frozen with SIGSTOP) during which requests keep answering from L1 and the
// health check says "unavailable" within its time bound, then recovery
// without a restart. Stops and pauses the shared Redis: never parallel.
#include <chrono>
#include <functional>
#include <memory>
#include <string>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/strip.h"
#include "doctest/doctest.h"
#include "pggitops/cache.h"
#include "tests/harness/harness.h"

namespace pggitops {
namespace {

constexpr absl::Duration kTimeout = absl::Milliseconds(200);
constexpr absl::Duration kRetry = absl::Milliseconds(500);
// Slack for a loaded machine on top of a bound the code promises.
constexpr double kSlackSeconds = 1.0;
// Bound of the waits for a state to come about.
constexpr std::chrono::seconds kWait(10);

std::unique_ptr<Cache> MakeCache(const std::string& test,
                                 const std::string& instance,
                                 std::string url = "") {
  CacheOptions o;
  o.redis_url = url.empty() ? harness::Get().redis_url : url;
  o.redis_timeout = kTimeout;
  o.redis_retry_interval = kRetry;
  o.redis_key_prefix = absl::StrCat("it:", test, ":");
  o.redis_channel = absl::StrCat("it:", test, ":invalidate");
  o.instance_id = instance;
  absl::StatusOr<std::unique_ptr<Cache>> c = Cache::Create(o);
  REQUIRE_MESSAGE(c.ok(), c.status().ToString());
  return *std::move(c);
}

double SecondsOf(const std::function<void()>& f) {
  const absl::Time start = absl::Now();
  f();
  return absl::ToDoubleSeconds(absl::Now() - start);
}

std::string RedisCli(const std::string& args) {
  std::string out;
  harness::Run(
      absl::StrCat("redis-cli -p ", harness::Get().redis_port, " ", args),
      &out);
  return std::string(absl::StripAsciiWhitespace(out));
}

CacheLoader Loader(std::string value, int* calls) {
  return [value, calls]() -> absl::StatusOr<std::string> {
    ++*calls;
    return value;
  };
}

TEST_CASE("Redis L2: a value loaded by one instance is read by another") {
  auto a = MakeCache("l2read", "a");
  auto b = MakeCache("l2read", "b");
  CHECK(a->Stats().l2.status == "connected");
  int calls_a = 0, calls_b = 0;
  auto va = a->GetOrLoad("dashboard:summary", absl::Seconds(60),
                         Loader("D1", &calls_a));
  REQUIRE(va.ok());
  auto vb = b->GetOrLoad("dashboard:summary", absl::Seconds(60),
                         Loader("D2", &calls_b));
  REQUIRE(vb.ok());
  CHECK(**vb == "D1");
  CHECK(calls_a == 1);
  CHECK(calls_b == 0);
  CacheStats sb = b->Stats();
  CHECK(sb.l2_hits == 1);
  CHECK(sb.hits == 1);
  CHECK(sb.l2.hits == 1);
  // Written with the entry's TTL.
  const std::string key = "it:l2read:d:0:0:dashboard:summary";
  int64_t pttl = 0;
  REQUIRE(absl::SimpleAtoi(RedisCli("PTTL " + key), &pttl));
  CHECK(pttl > 50'000);
  CHECK(pttl <= 60'000);
  CHECK(RedisCli("GET " + key) == "D1");
  // Put writes through as well.
  REQUIRE(a->Put("alerts:list", "A", absl::Seconds(30)));
  CacheValue v = b->Get("alerts:list");
  REQUIRE(v != nullptr);
  CHECK(*v == "A");
}

TEST_CASE("Redis: two instances share invalidations; L2 drops the family") {
  auto a = MakeCache("shared", "a");
  auto b = MakeCache("shared", "b");
  for (Cache* c : {a.get(), b.get()}) {
    REQUIRE(c->Put("webhooks:list:20:0", "W", absl::Minutes(2)));
    REQUIRE(c->Put("alerts:list:20:0", "A", absl::Minutes(2)));
  }
  REQUIRE(b->Stats().entries == 2);
  auto n = a->InvalidatePattern("webhooks:*");
  REQUIRE(n.ok());
  CHECK(*n == 1);
  CHECK(harness::WaitFor([&] { return b->Stats().entries == 1; }, kWait));
  CHECK(b->Stats().l2.received == 1);
  CHECK(a->Stats().l2.received == 0);  // its own message is ignored
  CHECK(a->Stats().l2.published == 1);
  // A third instance with an empty L1 cannot read the old value from L2.
  auto c = MakeCache("shared", "c");
  int calls = 0;
  auto fresh = c->GetOrLoad("webhooks:list:20:0", absl::Minutes(2),
                            Loader("W2", &calls));
  REQUIRE(fresh.ok());
  CHECK(**fresh == "W2");
  CHECK(calls == 1);
  // ... while the other family is still served by L2.
  calls = 0;
  auto alerts =
      c->GetOrLoad("alerts:list:20:0", absl::Minutes(2), Loader("A2", &calls));
  CHECK(**alerts == "A");
  CHECK(calls == 0);
  // Keys and "all" travel too.
  REQUIRE(b->Put("alerts:7", "x", absl::Minutes(2)));
  REQUIRE(a->Invalidate({"alerts:7"}).ok());
  CHECK(harness::WaitFor([&] { return b->Stats().entries == 1; },
                         kWait));  // alerts:list
  a->InvalidateAll();
  CHECK(harness::WaitFor([&] { return b->Stats().entries == 0; }, kWait));
  CHECK(harness::WaitFor([&] { return c->Stats().entries == 0; }, kWait));
}

TEST_CASE("Redis stopped: L1 answers, health unavailable in time, then back") {
  auto a = MakeCache("stopped", "a");
  auto b = MakeCache("stopped", "b");
  REQUIRE(a->Put("webhooks:list", "W", absl::Minutes(5)));
  HealthCheck health = a->RedisHealthCheck();
  REQUIRE(health.run().status == "connected");

  harness::StopRedis();
  CacheValue hit;
  CHECK(SecondsOf([&] { hit = a->Get("webhooks:list"); }) < 0.1);
  REQUIRE(hit != nullptr);
  CHECK(*hit == "W");
  // A miss still loads (Redis failing costs at most one timeout).
  int calls = 0;
  absl::StatusOr<CacheValue> loaded;
  double first = SecondsOf([&] {
    loaded = a->GetOrLoad("alerts:list", absl::Minutes(1), Loader("A", &calls));
  });
  REQUIRE(loaded.ok());
  CHECK(**loaded == "A");
  CHECK(first < absl::ToDoubleSeconds(kTimeout) + kSlackSeconds);
  CheckResult r;
  double took = SecondsOf([&] { r = health.run(); });
  CHECK_FALSE(r.ok);
  CHECK(r.status == "unavailable");
  CHECK(took < absl::ToDoubleSeconds(health.timeout));
  CHECK(a->Stats().l2.status == "unavailable");
  // Within the retry interval Redis is skipped: no more errors.
  const int64_t errors = a->Stats().l2.errors;
  for (int i = 0; i < 20; ++i) {
    REQUIRE(a->GetOrLoad(absl::StrCat("alerts:", i), absl::Minutes(1),
                         Loader("x", &calls))
                .ok());
  }
  CHECK(a->Stats().l2.errors == errors);
  CHECK(a->Stats().l2.skipped >= 20);
  // Invalidation still works locally while Redis is down.
  REQUIRE(a->InvalidatePattern("alerts:*").ok());
  CHECK(a->Get("alerts:list") == nullptr);

  harness::StartRedis();
  CHECK(harness::WaitFor([&] { return health.run().status == "connected"; },
                         kWait));
  CHECK(a->Stats().l2.reconnects >= 1);
  // The subscribers come back by themselves, dropping L1 (messages may have
  // been lost while they were away).
  CHECK(harness::WaitFor(
      [&] {
        CacheStats sa = a->Stats(), sb = b->Stats();
        return sa.l2.subscribed && sb.l2.subscribed && sa.entries == 0;
      },
      kWait));
  // Shared invalidation works again.
  REQUIRE(b->Put("dashboard:summary", "D", absl::Minutes(1)));
  CHECK(b->Stats().entries == 1);
  REQUIRE(a->InvalidatePattern("dashboard:*").ok());
  CHECK(harness::WaitFor([&] { return b->Stats().entries == 0; }, kWait));
}

TEST_CASE("Redis frozen (SIGSTOP): one timeout per interval, then back") {
  auto a = MakeCache("paused", "a");
  REQUIRE(a->Put("webhooks:list", "W", absl::Minutes(5)));
  HealthCheck health = a->RedisHealthCheck();
  REQUIRE(health.run().status == "connected");

  harness::PauseRedis();
  CacheValue hit;
  CHECK(SecondsOf([&] { hit = a->Get("webhooks:list"); }) < 0.1);
  REQUIRE(hit != nullptr);
  int calls = 0;
  double first = SecondsOf([&] {
    REQUIRE(
        a->GetOrLoad("alerts:1", absl::Minutes(1), Loader("A", &calls)).ok());
  });
  // One command timeout, not more.
  CHECK(first >= absl::ToDoubleSeconds(kTimeout) * 0.9);
  CHECK(first < absl::ToDoubleSeconds(kTimeout) + kSlackSeconds);
  double next = SecondsOf([&] {
    for (int i = 0; i < 10; ++i) {
      REQUIRE(a->GetOrLoad(absl::StrCat("alerts:x", i), absl::Minutes(1),
                           Loader("A", &calls))
                  .ok());
    }
  });
  CHECK(next < 0.1);  // skipped while the breaker is open
  CheckResult r;
  double took = SecondsOf([&] { r = health.run(); });
  CHECK(r.status == "unavailable");
  CHECK(took < absl::ToDoubleSeconds(health.timeout));
  // The first call failed; the health check may have been the one probe of
  // the next interval (the machine may be slow), nothing more.
  CHECK(a->Stats().l2.errors >= 1);
  CHECK(a->Stats().l2.errors <= 2);

  harness::ResumeRedis();
  CHECK(harness::WaitFor([&] { return health.run().status == "connected"; },
                         kWait));
  CHECK(harness::WaitFor([&] { return a->Stats().l2.subscribed; }, kWait));
  calls = 0;
  REQUIRE(
      a->GetOrLoad("alerts:after", absl::Minutes(1), Loader("B", &calls)).ok());
  CHECK(a->Stats().l2.status == "connected");
}

TEST_CASE("Redis: an invalidation lost in an outage is applied on reconnect") {
  auto a = MakeCache("flush", "a");
  REQUIRE(a->Put("webhooks:list", "old", absl::Minutes(5)));
  harness::PauseRedis();
  REQUIRE(a->InvalidatePattern("webhooks:*").ok());  // Redis unreachable
  const int64_t flushes = a->Stats().l2.invalidations;
  harness::ResumeRedis();
  // Once the retry interval is over, a's next Redis call (the health
  // check's) flushes L2 first: a new generation token.
  CHECK(harness::WaitFor(
      [&] {
        return a->RedisHealthCheck().run().ok &&
               a->Stats().l2.invalidations > flushes;
      },
      kWait));
  auto c = MakeCache("flush", "c");
  int calls = 0;
  auto v =
      c->GetOrLoad("webhooks:list", absl::Minutes(5), Loader("new", &calls));
  REQUIRE(v.ok());
  CHECK(**v == "new");
  CHECK(calls == 1);
}

TEST_CASE("Redis: database number and a refused password") {
  const int port = harness::Get().redis_port;
  auto db3 =
      MakeCache("db3", "a", absl::StrCat("redis://127.0.0.1:", port, "/3"));
  REQUIRE(db3->Put("alerts:list", "in db 3", absl::Minutes(1)));
  CHECK(RedisCli("-n 3 GET it:db3:d:0:0:alerts:list") == "in db 3");
  CHECK(RedisCli("-n 0 EXISTS it:db3:d:0:0:alerts:list") == "0");

  auto pw =
      MakeCache("pw", "a", absl::StrCat("redis://:wrong@127.0.0.1:", port));
  CheckResult r = pw->RedisHealthCheck().run();
  CHECK_FALSE(r.ok);
  CHECK(r.status == "unavailable");
  CHECK(absl::StrContains(r.message, "AUTH"));
  int calls = 0;
  REQUIRE(pw->GetOrLoad("k:1", absl::Seconds(5), Loader("v", &calls)).ok());
  CHECK(pw->Get("k:1") != nullptr);  // L1 still works
}

}  // namespace
}  // namespace pggitops
