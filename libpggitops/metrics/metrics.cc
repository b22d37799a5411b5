// Counter, Gauge, Histogram and Family: the lock-free hot path.
#include "pggitops/metrics.h"

#include <algorithm>
#include <cmath>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "libpggitops/metrics/text_format.h"

namespace pggitops {
namespace {

// fetch_add for std::atomic<double> is C++20; this is the C++17 CAS loop.
void AtomicAdd(std::atomic<double>* a, double v) {
  double cur = a->load(std::memory_order_relaxed);
  while (!a->compare_exchange_weak(cur, cur + v, std::memory_order_relaxed,
                                   std::memory_order_relaxed)) {
  }
}

void CheckBounds(const std::vector<double>& bounds) {
  for (size_t i = 0; i < bounds.size(); ++i) {
    if (!std::isfinite(bounds[i])) {
      internal::MetricsAbort(
          absl::StrCat("histogram bound #", i, " is not finite"));
    }
    if (i > 0 && !(bounds[i - 1] < bounds[i])) {
      internal::MetricsAbort(absl::StrCat("histogram bounds must be strictly ",
                                          "increasing (bound #", i, ")"));
    }
  }
}

}  // namespace

void Counter::Inc(double v) {
  if (!(v >= 0)) return;  // also rejects NaN
  AtomicAdd(&value_, v);
}

void Gauge::Inc(double v) { AtomicAdd(&value_, v); }

Histogram::Histogram(std::vector<double> bounds)
    : bounds_(std::move(bounds)),
      counts_(new std::atomic<uint64_t>[bounds_.size() + 1]) {
  CheckBounds(bounds_);
  for (size_t i = 0; i <= bounds_.size(); ++i) {
    counts_[i].store(0, std::memory_order_relaxed);
  }
}

void Histogram::Observe(double v) {
  // lower_bound finds the first bound >= v (buckets are "le"); NaN compares
  // false with every bound, so it falls through to +Inf.
  size_t i = std::isnan(v)
                 ? bounds_.size()
                 : std::lower_bound(bounds_.begin(), bounds_.end(), v) -
                       bounds_.begin();
  counts_[i].fetch_add(1, std::memory_order_relaxed);
  AtomicAdd(&sum_, v);
}

Histogram::Snapshot Histogram::Collect() const {
  Snapshot s;
  s.bounds = bounds_;
  s.cumulative_counts.reserve(bounds_.size() + 1);
  uint64_t total = 0;
  for (size_t i = 0; i <= bounds_.size(); ++i) {
    total += counts_[i].load(std::memory_order_relaxed);
    s.cumulative_counts.push_back(total);
  }
  s.count = total;
  s.sum = sum_.load(std::memory_order_relaxed);
  return s;
}

std::vector<double> DefaultBuckets() {
  return {0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10};
}

std::vector<double> ExponentialBuckets(double start, double factor, int count) {
  if (!(start > 0) || !(factor > 1) || count < 1) {
    internal::MetricsAbort(
        absl::StrCat("ExponentialBuckets(", start, ", ", factor, ", ", count,
                     "): need start > 0, factor > 1 and count >= 1"));
  }
  std::vector<double> bounds;
  bounds.reserve(count);
  double b = start;
  for (int i = 0; i < count; ++i) {
    bounds.push_back(b);
    b *= factor;
  }
  return bounds;
}

template <typename T>
T& Family<T>::WithLabels(const std::vector<std::string>& values) {
  if (values.size() != label_names_.size()) {
    internal::MetricsAbort(absl::StrCat(
        "metric \"", name_, "\" has labels [", absl::StrJoin(label_names_, ","),
        "] but WithLabels got ", values.size(), " value(s)"));
  }
  {
    absl::ReaderMutexLock lock(&mu_);
    auto it = children_.find(values);
    if (it != children_.end()) return *it->second;
  }
  absl::MutexLock lock(&mu_);
  auto [it, inserted] = children_.try_emplace(values);
  if (inserted) it->second = factory_();
  return *it->second;
}

template <typename T>
void Family<T>::ForEach(
    const std::function<void(const std::vector<std::string>&, const T&)>& fn)
    const {
  // Children are never removed, so the child pointers outlive the lock and
  // `fn` runs without it. The keys are copied: a rehash may move them.
  std::vector<std::pair<std::vector<std::string>, const T*>> children;
  {
    absl::ReaderMutexLock lock(&mu_);
    children.reserve(children_.size());
    for (const auto& [values, child] : children_) {
      children.emplace_back(values, child.get());
    }
  }
  std::sort(children.begin(), children.end(),
            [](const auto& a, const auto& b) { return a.first < b.first; });
  for (const auto& [values, child] : children) fn(values, *child);
}

template class Family<Counter>;
template class Family<Gauge>;
template class Family<Histogram>;

}  // namespace pggitops
