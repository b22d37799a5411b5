// The time seam: the real Env (Env::Default()) reads the system clocks, and
// the manual clock the unit tests inject (testing/fake_env.h) moves only
// when told. Nothing here sleeps.
#include "pggitops/env.h"

#include <chrono>
#include <thread>
#include <vector>

#include "absl/time/clock.h"
#include "doctest/doctest.h"
#include "testing/fake_env.h"

namespace pggitops {
namespace {

absl::Time SteadyNow() {
  return absl::UnixEpoch() +
         absl::FromChrono(std::chrono::steady_clock::now().time_since_epoch());
}

TEST_CASE("Env::Default: one process-wide instance") {
  Env* env = Env::Default();
  REQUIRE(env != nullptr);
  CHECK(Env::Default() == env);
}

TEST_CASE("Env::Default: Now is the wall clock") {
  Env* env = Env::Default();
  const absl::Time before = absl::Now();
  const absl::Time now = env->Now();
  const absl::Time after = absl::Now();
  CHECK(before <= now);
  CHECK(now <= after);
}

TEST_CASE("Env::Default: MonotonicNow follows the steady clock, never back") {
  Env* env = Env::Default();
  const absl::Time before = SteadyNow();
  absl::Time last = env->MonotonicNow();
  CHECK(before <= last);
  for (int i = 0; i < 10000; ++i) {
    const absl::Time t = env->MonotonicNow();
    REQUIRE(t >= last);
    last = t;
  }
  CHECK(last <= SteadyNow());
}

TEST_CASE("Env::Default: SleepFor of nothing returns at once") {
  Env* env = Env::Default();
  const absl::Time start = env->MonotonicNow();
  env->SleepFor(absl::ZeroDuration());
  env->SleepFor(-absl::Minutes(1));
  // Half of what a sign mistake would sleep: no machine is that slow.
  CHECK(env->MonotonicNow() - start < absl::Seconds(30));
}

TEST_CASE("FakeEnv: time moves only when told, both clocks together") {
  const absl::Time start = absl::FromUnixSeconds(1'700'000'000);
  testing::FakeEnv env;
  CHECK(env.Now() == start);
  CHECK(env.MonotonicNow() == start);
  CHECK(env.Now() == start);  // reading does not move it

  env.AdvanceBy(absl::Milliseconds(1500));
  CHECK(env.Now() == start + absl::Milliseconds(1500));
  CHECK(env.MonotonicNow() == env.Now());

  // SleepFor advances instead of blocking.
  env.SleepFor(absl::Hours(2));
  CHECK(env.Now() == start + absl::Hours(2) + absl::Milliseconds(1500));

  testing::FakeEnv other(absl::FromUnixSeconds(42));
  CHECK(other.Now() == absl::FromUnixSeconds(42));
}

TEST_CASE("FakeEnv: advances from many threads all count") {
  testing::FakeEnv env;
  const absl::Time start = env.Now();
  constexpr int kThreads = 8;
  constexpr int kSteps = 1000;
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&env] {
      for (int i = 0; i < kSteps; ++i) env.AdvanceBy(absl::Milliseconds(1));
    });
  }
  for (std::thread& t : threads) t.join();
  CHECK(env.Now() - start == absl::Milliseconds(kThreads * kSteps));
}

}  // namespace
}  // namespace pggitops
