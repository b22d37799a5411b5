// rate_limit_bench: what RateLimiter::Check costs, with 1 and 2 threads.
//
//   same key         every thread checks one client (one shard, one lock)
//   key per thread   each thread its own client (usually another shard)
//   new key each time  each thread walks its own 500 000 addresses: every
//                    Check is a new client, and past the first 100 000 (the
//                    default max_clients) the shards keep dropping clients
//
// Default options (100 per minute, burst 20) on the real clock, so most
// Checks of the first two cases are refusals; an allowed Check does the
// same work. Each case runs 5 rounds of 250 ms per thread count
// (bench/thread_bench.h), each on a new limiter, and shows the round with
// the median CPU time; ns/op is the wall time one thread spends per Check,
// cpu-ns/op its thread CPU time (which other processes on the machine do not
// inflate), Mops/s the total over threads. Run with
//   meson test -C <build> --benchmark rate_limit_bench --verbose
// or <build>/bench/rate_limit_bench directly.
#include <algorithm>
#include <atomic>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "absl/strings/str_cat.h"
#include "bench/thread_bench.h"
#include "pggitops/rate_limiter.h"

namespace {

using pggitops::RateLimiter;

constexpr int kKeysPerThread = 500000;
constexpr int kRounds = 5;  // per case and thread count; the median is shown

std::unique_ptr<RateLimiter> NewLimiter() {
  absl::StatusOr<std::unique_ptr<RateLimiter>> limiter =
      RateLimiter::Create(pggitops::RateLimiterOptions());
  if (!limiter.ok()) {
    std::fprintf(stderr, "%s\n", limiter.status().ToString().c_str());
    std::exit(1);
  }
  return std::move(*limiter);
}

struct Run {
  pggitops::bench::ThreadBenchResult result;
  size_t tracked;
  int64_t allowed;
};

// Runs `op` on `threads` threads on a new limiter.
template <typename Op>
Run RunOnce(int threads, Op op) {
  std::unique_ptr<RateLimiter> limiter = NewLimiter();
  std::atomic<int64_t> allowed{0};
  pggitops::bench::ThreadBenchResult r =
      pggitops::bench::RunThreads(threads, [&](int t, uint64_t n) {
        if (op(*limiter, t, n).allowed) {
          allowed.fetch_add(1, std::memory_order_relaxed);
        }
      });
  return {r, limiter->tracked_clients(), allowed.load()};
}

// Prints, for 1 and 2 threads, the run with the median CPU time of kRounds.
template <typename Op>
void Report(const char* name, Op op) {
  for (int threads : {1, 2}) {
    std::vector<Run> runs;
    for (int i = 0; i < kRounds; ++i) runs.push_back(RunOnce(threads, op));
    std::sort(runs.begin(), runs.end(), [](const Run& a, const Run& b) {
      return a.result.cpu_ns_per_op < b.result.cpu_ns_per_op;
    });
    const Run& m = runs[kRounds / 2];
    std::printf("%-28s %7d %10.1f %12.1f %12.2f %10zu %9ld\n", name, threads,
                m.result.ns_per_op, m.result.cpu_ns_per_op, m.result.mops,
                m.tracked, static_cast<long>(m.allowed));
  }
}

}  // namespace

int main() {
  // Addresses built beforehand, so the loop times Check alone.
  std::vector<std::string> addresses;
  for (int i = 0; i < 2 * kKeysPerThread; ++i) {
    addresses.push_back(
        absl::StrCat("10.", i >> 16, ".", (i >> 8) & 255, ".", i & 255));
  }
  const std::string per_thread[] = {"203.0.113.1", "203.0.113.2"};

  std::printf("%-28s %7s %10s %12s %12s %10s %9s\n", "Check", "threads",
              "ns/op", "cpu-ns/op", "total Mops/s", "tracked", "allowed");
  Report("same key",
         [](RateLimiter& l, int, uint64_t) { return l.Check("203.0.113.7"); });
  Report("key per thread", [&](RateLimiter& l, int t, uint64_t) {
    return l.Check(per_thread[t]);
  });
  Report("new key each time (bound)", [&](RateLimiter& l, int t, uint64_t n) {
    return l.Check(addresses[t * kKeysPerThread + n % kKeysPerThread]);
  });
  return 0;
}
