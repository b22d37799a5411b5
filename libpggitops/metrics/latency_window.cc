// LatencyWindow: a ring of per-second log-bucket histograms.
#include "pggitops/latency_window.h"

#include <algorithm>
#include <cmath>
#include <limits>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/synchronization/mutex.h"

namespace pggitops {
namespace {

constexpr double kMinSeconds = 1e-5;  // 10 microseconds
constexpr double kMaxSeconds = 100;
constexpr double kGrowth = 1.02;  // each bucket is 2 % wider than the last
constexpr int64_t kMaxWindowSeconds = 3600;

// Bucket 0 holds [0, kMinSeconds), bucket i in [1, kLogBuckets] holds
// [kMinSeconds * kGrowth^(i-1), kMinSeconds * kGrowth^i), and the last one
// [kMaxSeconds, inf).
const int kLogBuckets = static_cast<int>(
    std::ceil(std::log(kMaxSeconds / kMinSeconds) / std::log(kGrowth)));
const int kBuckets = kLogBuckets + 2;

int BucketOf(double seconds) {
  if (!(seconds >= kMinSeconds)) return 0;  // also NaN
  if (seconds >= kMaxSeconds) return kBuckets - 1;
  int i =
      1 + static_cast<int>(std::log(seconds / kMinSeconds) / std::log(kGrowth));
  return std::clamp(i, 1, kLogBuckets);
}

// The geometric middle of bucket `i` (its bounds for the open-ended ones).
double BucketMiddle(int i) {
  if (i == 0) return kMinSeconds;
  if (i == kBuckets - 1) return kMaxSeconds;
  return kMinSeconds * std::pow(kGrowth, i - 0.5);
}

struct Slot {
  int64_t second = -1;  // the slot's second since construction; -1: unused
  uint64_t count = 0;
  uint64_t errors = 0;
  double min = std::numeric_limits<double>::infinity();
  double max = 0;
  std::vector<uint32_t> buckets;  // kBuckets once used

  void Reset(int64_t s) {
    second = s;
    count = errors = 0;
    min = std::numeric_limits<double>::infinity();
    max = 0;
    buckets.assign(kBuckets, 0);
  }
};

// Percentile `q` (0..1) by nearest rank over merged bucket counts, in ms.
double Percentile(const std::vector<uint64_t>& merged, uint64_t count, double q,
                  double min, double max) {
  uint64_t rank = static_cast<uint64_t>(std::ceil(q * count - 1e-9));
  rank = std::clamp<uint64_t>(rank, 1, count);
  uint64_t seen = 0;
  for (int i = 0; i < kBuckets; ++i) {
    seen += merged[i];
    if (seen >= rank) return std::clamp(BucketMiddle(i), min, max) * 1000;
  }
  return max * 1000;
}

}  // namespace

struct LatencyWindow::Impl {
  Env* const env;
  const absl::Time origin;
  const int64_t window_seconds;

  mutable absl::Mutex mu;
  // Slot for second s is slots[s % window_seconds].
  mutable std::vector<Slot> slots ABSL_GUARDED_BY(mu);
  // The latest second seen, so time never runs backwards here.
  mutable int64_t latest ABSL_GUARDED_BY(mu) = 0;

  Impl(Env* e, int64_t seconds)
      : env(e),
        origin(e->MonotonicNow()),
        window_seconds(seconds),
        slots(seconds) {}

  int64_t CurrentSecond() const ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu) {
    int64_t s = absl::ToInt64Seconds(env->MonotonicNow() - origin);
    latest = std::max(latest, s);
    return latest;
  }
};

LatencyWindow::LatencyWindow(absl::Duration window, Env* env) {
  int64_t seconds = absl::ToInt64Seconds(absl::Ceil(window, absl::Seconds(1)));
  seconds = std::clamp<int64_t>(seconds, 1, kMaxWindowSeconds);
  impl_ =
      std::make_unique<Impl>(env != nullptr ? env : Env::Default(), seconds);
}

LatencyWindow::~LatencyWindow() = default;

void LatencyWindow::Record(absl::Duration latency, bool is_error) {
  double seconds = std::max(0.0, absl::ToDoubleSeconds(latency));
  int bucket = BucketOf(seconds);
  absl::MutexLock lock(&impl_->mu);
  int64_t now = impl_->CurrentSecond();
  Slot& slot = impl_->slots[now % impl_->window_seconds];
  if (slot.second != now) slot.Reset(now);
  ++slot.buckets[bucket];
  ++slot.count;
  if (is_error) ++slot.errors;
  slot.min = std::min(slot.min, seconds);
  slot.max = std::max(slot.max, seconds);
}

LatencyWindow::Summary LatencyWindow::Summarize() const {
  Summary summary;
  std::vector<uint64_t> merged(kBuckets, 0);
  double min = std::numeric_limits<double>::infinity();
  double max = 0;
  {
    absl::MutexLock lock(&impl_->mu);
    int64_t now = impl_->CurrentSecond();
    for (const Slot& slot : impl_->slots) {
      if (slot.second < 0 || slot.count == 0) continue;
      if (slot.second > now || now - slot.second >= impl_->window_seconds) {
        continue;
      }
      for (int i = 0; i < kBuckets; ++i) merged[i] += slot.buckets[i];
      summary.count += slot.count;
      summary.errors += slot.errors;
      min = std::min(min, slot.min);
      max = std::max(max, slot.max);
    }
  }
  if (summary.count == 0) return summary;
  summary.p50_ms = Percentile(merged, summary.count, 0.50, min, max);
  summary.p95_ms = Percentile(merged, summary.count, 0.95, min, max);
  summary.p99_ms = Percentile(merged, summary.count, 0.99, min, max);
  return summary;
}

}  // namespace pggitops
