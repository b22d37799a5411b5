// Tests of RateLimiter on a manual clock: the bucket arithmetic, the
// decision's figures, the bound on tracked clients and concurrent use.
#include "pggitops/rate_limiter.h"

#include <algorithm>
#include <atomic>
#include <memory>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "doctest/doctest.h"
#include "testing/fake_env.h"

namespace pggitops {
namespace {

using testing::FakeEnv;

std::unique_ptr<RateLimiter> MakeLimiter(Env* env, int per_minute, int burst,
                                         size_t max_clients = 100000) {
  RateLimiterOptions options;
  options.per_minute = per_minute;
  options.burst = burst;
  options.max_clients = max_clients;
  options.env = env;
  absl::StatusOr<std::unique_ptr<RateLimiter>> limiter =
      RateLimiter::Create(options);
  REQUIRE(limiter.ok());
  return std::move(*limiter);
}

// A distinct client address for each i < 2^24.
std::string Address(int i) {
  return absl::StrCat("10.", (i >> 16) & 255, ".", (i >> 8) & 255, ".",
                      i & 255);
}

// Checks `client` until refused; returns how many were allowed.
int Drain(RateLimiter& limiter, absl::string_view client) {
  int allowed = 0;
  while (limiter.Check(client).allowed) ++allowed;
  return allowed;
}

// Wall clock and monotonic clock far apart, as on a real host.
class SplitClockEnv final : public Env {
 public:
  absl::Time Now() override { return fake.Now(); }
  absl::Time MonotonicNow() override {
    return absl::UnixEpoch() +
           (fake.Now() - absl::FromUnixSeconds(1'000'000'000));
  }
  void SleepFor(absl::Duration d) override { fake.AdvanceBy(d); }
  FakeEnv fake{absl::FromUnixSeconds(1'700'000'000)};
};

TEST_CASE("RateLimiter: a burst is allowed, then refused until one token") {
  FakeEnv env;
  auto limiter = MakeLimiter(&env, 60, 5);  // one token a second
  for (int i = 0; i < 5; ++i) {
    RateLimitDecision d = limiter->Check("a");
    CHECK(d.allowed);
    CHECK(d.limit == 60);
    CHECK(d.remaining == 4 - i);
    CHECK(d.retry_after == absl::ZeroDuration());
  }
  RateLimitDecision d = limiter->Check("a");
  CHECK_FALSE(d.allowed);
  CHECK(d.limit == 60);
  CHECK(d.remaining == 0);
  CHECK(d.retry_after == absl::Seconds(1));

  env.AdvanceBy(absl::Milliseconds(999));
  d = limiter->Check("a");
  CHECK_FALSE(d.allowed);
  CHECK(d.retry_after == absl::Milliseconds(1));
  env.AdvanceBy(absl::Milliseconds(1));
  d = limiter->Check("a");
  CHECK(d.allowed);
  CHECK(d.remaining == 0);
  d = limiter->Check("a");
  CHECK_FALSE(d.allowed);
  CHECK(d.retry_after == absl::Seconds(1));
}

TEST_CASE("RateLimiter: the bucket refills continuously at per_minute") {
  FakeEnv env;
  auto limiter = MakeLimiter(&env, 120, 3);  // a token every 500 ms
  CHECK(Drain(*limiter, "a") == 3);

  env.AdvanceBy(absl::Milliseconds(750));  // 1.5 tokens
  RateLimitDecision d = limiter->Check("a");
  CHECK(d.allowed);
  CHECK(d.remaining == 0);
  d = limiter->Check("a");
  CHECK_FALSE(d.allowed);
  CHECK(d.retry_after == absl::Milliseconds(250));

  env.AdvanceBy(absl::Seconds(10));  // full again, never more than burst
  CHECK(Drain(*limiter, "a") == 3);

  // Sustained: a request every 100 ms for a minute gets the burst, then one
  // every 500 ms (at 0, 0.1, 0.2 s, then 0.5, 1.0, ... 59.5 s).
  auto paced = MakeLimiter(&env, 120, 3);
  int allowed = 0;
  for (int i = 0; i < 600; ++i) {
    allowed += paced->Check("b").allowed;
    env.AdvanceBy(absl::Milliseconds(100));
  }
  CHECK(allowed == 3 + 119);
}

TEST_CASE("RateLimiter: remaining counts down and reset is when full again") {
  SplitClockEnv env;
  const absl::Time start = env.Now();
  auto limiter = MakeLimiter(&env, 60, 5);
  for (int i = 1; i <= 3; ++i) {
    RateLimitDecision d = limiter->Check("a");
    CHECK(d.remaining == 5 - i);
    CHECK(d.reset == start + absl::Seconds(i));  // wall clock, not monotonic
  }
  env.fake.AdvanceBy(absl::Milliseconds(500));  // 2.5 tokens left
  RateLimitDecision d = limiter->Check("a");
  CHECK(d.allowed);
  CHECK(d.remaining == 1);
  CHECK(d.reset == start + absl::Seconds(4));
  d = limiter->Check("a");
  CHECK(d.remaining == 0);
  d = limiter->Check("a");
  CHECK_FALSE(d.allowed);
  CHECK(d.reset == start + absl::Seconds(5));  // a refusal takes no token
  CHECK(d.retry_after == absl::Milliseconds(500));
}

TEST_CASE("RateLimiter: per_minute 0 allows everything and tracks nothing") {
  FakeEnv env;
  auto limiter = MakeLimiter(&env, 0, 2);
  for (int i = 0; i < 1000; ++i) {
    RateLimitDecision d = limiter->Check(i % 2 == 0 ? "a" : Address(i));
    CHECK(d.allowed);
    CHECK(d.limit == 0);
    CHECK(d.remaining == 2);
    CHECK(d.reset == env.Now());
    CHECK(d.retry_after == absl::ZeroDuration());
  }
  CHECK(limiter->tracked_clients() == 0);
}

TEST_CASE("RateLimiter: clients have independent buckets") {
  FakeEnv env;
  auto limiter = MakeLimiter(&env, 60, 3);
  CHECK(Drain(*limiter, "a") == 3);
  CHECK(limiter->Check("b").remaining == 2);
  CHECK_FALSE(limiter->Check("a").allowed);
  CHECK(limiter->Check("b").remaining == 1);
  CHECK(limiter->Check(absl::string_view("a\0", 2)).remaining ==
        2);  // keys compare as bytes
  CHECK(limiter->tracked_clients() == 3);
}

TEST_CASE("RateLimiter: invalid options are refused naming the field") {
  struct Case {
    const char* field;
    void (*mutate)(RateLimiterOptions&);
  };
  const Case cases[] = {
      {"per_minute", [](RateLimiterOptions& o) { o.per_minute = -1; }},
      {"per_minute", [](RateLimiterOptions& o) { o.per_minute = 1000001; }},
      {"burst", [](RateLimiterOptions& o) { o.burst = 0; }},
      {"burst", [](RateLimiterOptions& o) { o.burst = 1000001; }},
      {"max_clients", [](RateLimiterOptions& o) { o.max_clients = 0; }},
  };
  for (const Case& c : cases) {
    RateLimiterOptions options;
    c.mutate(options);
    absl::StatusOr<std::unique_ptr<RateLimiter>> limiter =
        RateLimiter::Create(options);
    CAPTURE(c.field);
    REQUIRE_FALSE(limiter.ok());
    CHECK(absl::IsInvalidArgument(limiter.status()));
    CHECK(absl::StrContains(limiter.status().message(),
                            absl::StrCat("RateLimiterOptions.", c.field)));
  }
  RateLimiterOptions edge;
  edge.per_minute = 1000000;
  edge.burst = 1000000;
  edge.max_clients = 1;
  CHECK(edge.Validate().ok());
  CHECK(RateLimiterOptions().Validate().ok());
}

TEST_CASE("RateLimiter: extreme settings do not overflow") {
  FakeEnv env;
  auto slow = MakeLimiter(&env, 1, 1000000);  // capacity: 1e6 minutes
  RateLimitDecision d = slow->Check("a");
  CHECK(d.remaining == 999999);
  CHECK(d.reset == env.Now() + absl::Minutes(1));
  auto fast = MakeLimiter(&env, 1000000, 1);  // a token every 60 us
  CHECK(fast->Check("a").allowed);
  d = fast->Check("a");
  CHECK_FALSE(d.allowed);
  CHECK(d.retry_after == absl::Microseconds(60));
}

// With max_clients < 128 there is one shard, so eviction is deterministic.
TEST_CASE("RateLimiter: at the bound, clients with full buckets go first") {
  FakeEnv env;
  auto limiter = MakeLimiter(&env, 60, 2, 10);
  CHECK(Drain(*limiter, "busy") == 2);                     // full again in 2 s
  for (int i = 0; i < 9; ++i) limiter->Check(Address(i));  // full in 1 s
  CHECK(limiter->tracked_clients() == 10);

  env.AdvanceBy(absl::Milliseconds(1500));
  limiter->Check("new");  // drops the nine full buckets
  CHECK(limiter->tracked_clients() == 2);
  RateLimitDecision d = limiter->Check("busy");  // 0.5 token left, not 2
  CHECK(d.allowed);
  CHECK(d.remaining == 0);
}

TEST_CASE("RateLimiter: with no full bucket the least recently seen go") {
  FakeEnv env;  // the clock never moves: no bucket refills
  auto limiter = MakeLimiter(&env, 60, 5, 10);
  limiter->Check("a");
  for (int i = 1; i <= 9; ++i) limiter->Check(Address(i));
  limiter->Check("a");    // now the most recently seen
  limiter->Check("new");  // drops Address(1), the least recently seen
  CHECK(limiter->tracked_clients() == 10);
  CHECK(limiter->Check("a").remaining == 2);         // kept
  CHECK(limiter->Check(Address(2)).remaining == 3);  // kept
  CHECK(limiter->Check(Address(1)).remaining == 4);  // fresh bucket again
  CHECK(limiter->tracked_clients() == 10);

  auto single = MakeLimiter(&env, 60, 1, 1);
  CHECK(single->Check("x").allowed);
  CHECK_FALSE(single->Check("x").allowed);
  CHECK(single->Check("y").allowed);  // forgets x
  CHECK(single->Check("x").allowed);
  CHECK(single->tracked_clients() == 1);
}

TEST_CASE("RateLimiter: a flood of addresses stays within max_clients") {
  FakeEnv env;  // frozen: every bucket stays partly used
  RateLimiterOptions defaults;
  auto limiter = MakeLimiter(&env, 60, 5, defaults.max_clients);
  CHECK(Drain(*limiter, "active") == 5);
  size_t most = 0;
  for (int i = 0; i < 300000; ++i) {
    limiter->Check(Address(i));
    if (i % 50 == 0) {
      // Still refused: its empty bucket was never dropped.
      REQUIRE_FALSE(limiter->Check("active").allowed);
    }
    if (i % 1000 == 0) most = std::max(most, limiter->tracked_clients());
  }
  CHECK(most <= defaults.max_clients);
  CHECK(limiter->tracked_clients() <= defaults.max_clients);
  CHECK(limiter->tracked_clients() > defaults.max_clients / 2);
}

TEST_CASE("RateLimiter: threads on one key share exactly one burst") {
  FakeEnv env;
  auto limiter = MakeLimiter(&env, 60, 100);
  std::atomic<int> allowed{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&] {
      for (int i = 0; i < 5000; ++i)
        allowed += limiter->Check("shared").allowed;
    });
  }
  for (std::thread& t : threads) t.join();
  CHECK(allowed.load() == 100);
}

TEST_CASE("RateLimiter: threads on distinct keys each get their burst") {
  FakeEnv env;
  auto limiter = MakeLimiter(&env, 60, 7);
  constexpr int kThreads = 4, kKeys = 500;
  std::vector<int> allowed(kThreads, 0);
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      for (int round = 0; round < 10; ++round) {
        for (int k = 0; k < kKeys; ++k) {
          allowed[t] += limiter->Check(Address(t * kKeys + k)).allowed;
        }
      }
    });
  }
  for (std::thread& t : threads) t.join();
  for (int t = 0; t < kThreads; ++t) CHECK(allowed[t] == kKeys * 7);
  CHECK(limiter->tracked_clients() == kThreads * kKeys);
}

TEST_CASE("RateLimiter: threads evicting concurrently keep the bound") {
  FakeEnv env;
  auto limiter = MakeLimiter(&env, 60, 3, 2000);
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&, t] {
      for (int i = 0; i < 30000; ++i) {
        limiter->Check(Address(t * 30000 + i));
        if (i % 64 == 0) limiter->Check("shared");
        if (t == 0 && i % 100 == 0) env.AdvanceBy(absl::Milliseconds(10));
      }
    });
  }
  for (std::thread& t : threads) t.join();
  CHECK(limiter->tracked_clients() <= 2000);
}

TEST_CASE("RateLimiterOptionsFromConfig: RATE_LIMIT_PER_MINUTE and _BURST") {
  Config c;
  c.rate_limit_per_minute = 7;
  c.rate_limit_burst = 3;
  RateLimiterOptions o = RateLimiterOptionsFromConfig(c);
  CHECK(o.per_minute == 7);
  CHECK(o.burst == 3);
  CHECK(o.max_clients == RateLimiterOptions().max_clients);
  CHECK(o.Validate().ok());
}

}  // namespace
}  // namespace pggitops
