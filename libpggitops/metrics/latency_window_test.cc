// Tests of LatencyWindow on a manual clock.
#include "pggitops/latency_window.h"

#include <thread>
#include <vector>

#include "doctest/doctest.h"
#include "testing/fake_env.h"

namespace pggitops {
namespace {

using testing::FakeEnv;

// The bucket error: 2 % wide log buckets, reported at their middle.
constexpr double kRelErr = 0.011;

TEST_CASE("LatencyWindow: empty window gives zeros") {
  FakeEnv env;
  LatencyWindow w(absl::Seconds(60), &env);
  LatencyWindow::Summary s = w.Summarize();
  CHECK(s.count == 0);
  CHECK(s.errors == 0);
  CHECK(s.p50_ms == 0);
  CHECK(s.p95_ms == 0);
  CHECK(s.p99_ms == 0);
}

TEST_CASE("LatencyWindow: percentiles of 1..1000 ms within bucket error") {
  FakeEnv env;
  LatencyWindow w(absl::Seconds(60), &env);
  for (int ms = 1000; ms >= 1; --ms) {  // order does not matter
    w.Record(absl::Milliseconds(ms), ms % 100 == 0);
    if (ms % 50 == 0) env.AdvanceBy(absl::Milliseconds(1100));  // 22 s total
  }
  LatencyWindow::Summary s = w.Summarize();
  CHECK(s.count == 1000);
  CHECK(s.errors == 10);
  CHECK(s.p50_ms == doctest::Approx(500).epsilon(kRelErr));
  CHECK(s.p95_ms == doctest::Approx(950).epsilon(kRelErr));
  CHECK(s.p99_ms == doctest::Approx(990).epsilon(kRelErr));
}

TEST_CASE("LatencyWindow: skewed data and exact single values") {
  FakeEnv env;
  LatencyWindow w(absl::Seconds(60), &env);
  for (int i = 0; i < 98; ++i) w.Record(absl::Microseconds(250));
  w.Record(absl::Seconds(2));
  w.Record(absl::Seconds(2));
  LatencyWindow::Summary s = w.Summarize();
  CHECK(s.p50_ms == doctest::Approx(0.25));  // clamped to min == max here
  CHECK(s.p95_ms == doctest::Approx(0.25));
  CHECK(s.p99_ms == doctest::Approx(2000));  // clamped to the largest seen

  LatencyWindow one(absl::Seconds(60), &env);
  one.Record(absl::Milliseconds(37));
  s = one.Summarize();
  CHECK(s.p50_ms == doctest::Approx(37));
  CHECK(s.p99_ms == doctest::Approx(37));
}

TEST_CASE("LatencyWindow: out-of-range latencies are counted") {
  FakeEnv env;
  LatencyWindow w(absl::Seconds(10), &env);
  w.Record(absl::Nanoseconds(100));
  w.Record(-absl::Seconds(1));  // counts as 0
  w.Record(absl::Seconds(500));
  LatencyWindow::Summary s = w.Summarize();
  CHECK(s.count == 3);
  CHECK(s.p50_ms == doctest::Approx(0.01));    // reported at 10 us
  CHECK(s.p99_ms == doctest::Approx(100000));  // reported at 100 s
}

TEST_CASE("LatencyWindow: old slots expire as time passes") {
  FakeEnv env;
  LatencyWindow w(absl::Seconds(60), &env);
  w.Record(absl::Milliseconds(100), true);
  env.AdvanceBy(absl::Seconds(30));
  w.Record(absl::Milliseconds(10));
  CHECK(w.Summarize().count == 2);
  env.AdvanceBy(absl::Seconds(29));  // first record is 59 s old
  LatencyWindow::Summary s = w.Summarize();
  CHECK(s.count == 2);
  CHECK(s.errors == 1);
  env.AdvanceBy(absl::Seconds(1));  // 60 s: gone
  s = w.Summarize();
  CHECK(s.count == 1);
  CHECK(s.errors == 0);
  CHECK(s.p99_ms == doctest::Approx(10));
  env.AdvanceBy(absl::Seconds(30));
  s = w.Summarize();
  CHECK(s.count == 0);
  CHECK(s.p50_ms == 0);
}

TEST_CASE("LatencyWindow: a reused slot drops its old second") {
  FakeEnv env;
  LatencyWindow w(absl::Seconds(5), &env);
  w.Record(absl::Milliseconds(1));
  env.AdvanceBy(absl::Seconds(5));  // same ring slot, a new second
  w.Record(absl::Milliseconds(9));
  LatencyWindow::Summary s = w.Summarize();
  CHECK(s.count == 1);
  CHECK(s.p50_ms == doctest::Approx(9));
  env.AdvanceBy(absl::Hours(3));  // far jumps are fine too
  CHECK(w.Summarize().count == 0);
}

TEST_CASE("LatencyWindow: window rounds up to whole seconds") {
  FakeEnv env;
  LatencyWindow w(absl::Milliseconds(1500), &env);  // 2 s
  w.Record(absl::Milliseconds(3));
  env.AdvanceBy(absl::Seconds(1));
  CHECK(w.Summarize().count == 1);
  env.AdvanceBy(absl::Seconds(1));
  CHECK(w.Summarize().count == 0);
}

TEST_CASE("LatencyWindow: concurrent records are all counted") {
  FakeEnv env;
  LatencyWindow w(absl::Seconds(60), &env);
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&] {
      for (int i = 0; i < 10000; ++i) {
        w.Record(absl::Milliseconds(5), i % 10 == 0);
      }
    });
  }
  for (std::thread& t : threads) t.join();
  LatencyWindow::Summary s = w.Summarize();
  CHECK(s.count == 40000);
  CHECK(s.errors == 4000);
  CHECK(s.p95_ms == doctest::Approx(5));
}

}  // namespace
}  // namespace pggitops
