// File: pggitops/metrics.h
//
// A small Prometheus client: counters, gauges and histograms, with labels,
// collected in a MetricsRegistry and exposed in the Prometheus text format
// (version 0.0.4). Every libpggitops component registers its series in the
// registry it is given; the daemon serves MetricsRegistry::Serialize() on
// GET /metrics.
//
// Hot path: Counter::Inc, Gauge::Set and Histogram::Observe are lock-free
// (atomics only). Family::WithLabels takes only that family's reader lock
// (a writer lock the first time a label set appears), so callers on a hot
// path should look a child up once and keep the reference. Children are
// never removed, so references stay valid for the registry's lifetime.
//
// Programming errors abort the process (they are caught the first time the
// code runs, like a failed assertion), printing a line that starts with
// "pggitops metrics:" to stderr: an invalid metric or label name, a name
// registered again with another kind, other label names or other buckets, a
// WithLabels call with the wrong number of values, histogram bounds that are
// not finite and strictly increasing.
#ifndef PGGITOPS_INCLUDE_METRICS_H_
#define PGGITOPS_INCLUDE_METRICS_H_

#include <atomic>
#include <cstdint>
#include <functional>
#include <initializer_list>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/container/flat_hash_map.h"
#include "absl/strings/string_view.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "pggitops/export.h"

namespace pggitops {

// A monotonically increasing value. Thread-safe; Inc is lock-free.
class PGGITOPS_EXPORT Counter {
 public:
  Counter() = default;
  Counter(const Counter&) = delete;
  Counter& operator=(const Counter&) = delete;

  // Adds `v` to the counter. REQUIRES: v >= 0 (negative and NaN values are
  // ignored).
  void Inc(double v = 1.0);
  double Value() const { return value_.load(std::memory_order_relaxed); }

 private:
  std::atomic<double> value_{0.0};
};

// A value that goes up and down. Thread-safe; every method is lock-free.
class PGGITOPS_EXPORT Gauge {
 public:
  Gauge() = default;
  Gauge(const Gauge&) = delete;
  Gauge& operator=(const Gauge&) = delete;

  void Set(double v) { value_.store(v, std::memory_order_relaxed); }
  void Inc(double v = 1.0);
  void Dec(double v = 1.0) { Inc(-v); }
  double Value() const { return value_.load(std::memory_order_relaxed); }

 private:
  std::atomic<double> value_{0.0};
};

// Counts observations into cumulative buckets. Thread-safe; Observe is
// lock-free.
class PGGITOPS_EXPORT Histogram {
 public:
  // `bounds` are the upper bounds of the buckets, strictly increasing and
  // finite (a violation aborts); the +Inf bucket is implicit. Empty bounds
  // give a histogram with only the +Inf bucket.
  explicit Histogram(std::vector<double> bounds);
  Histogram(const Histogram&) = delete;
  Histogram& operator=(const Histogram&) = delete;

  // Counts `v` in the first bucket whose bound is >= v (NaN lands in +Inf
  // only) and adds it to the sum.
  void Observe(double v);
  // Observes a duration in seconds, the Prometheus base unit.
  void ObserveDuration(absl::Duration d) { Observe(absl::ToDoubleSeconds(d)); }

  struct Snapshot {
    std::vector<double> bounds;
    std::vector<uint64_t> cumulative_counts;  // one per bound, then +Inf
    double sum = 0;
    uint64_t count = 0;
  };
  Snapshot Collect() const;

 private:
  const std::vector<double> bounds_;
  std::unique_ptr<std::atomic<uint64_t>[]> counts_;  // bounds_.size() + 1
  std::atomic<double> sum_{0.0};
};

// The Prometheus client's default buckets, in seconds.
PGGITOPS_EXPORT std::vector<double> DefaultBuckets();
// `count` buckets: start, start*factor, start*factor^2, ...
// REQUIRES: start > 0, factor > 1, count >= 1 (a violation aborts).
PGGITOPS_EXPORT std::vector<double> ExponentialBuckets(double start,
                                                       double factor,
                                                       int count);

// One metric name with a fixed list of label names; its children are the
// series, one per distinct list of label values. Thread-safe. Instantiated
// (and exported) for Counter, Gauge and Histogram only. A family without
// label names has its single child from the start, so it is exposed (as 0)
// before first use.
template <typename T>
class PGGITOPS_EXPORT Family {
 public:
  using Factory = std::function<std::unique_ptr<T>()>;
  Family(std::string name, std::string help, std::vector<std::string> labels,
         Factory factory)
      : name_(std::move(name)),
        help_(std::move(help)),
        label_names_(std::move(labels)),
        factory_(std::move(factory)) {}
  Family(const Family&) = delete;
  Family& operator=(const Family&) = delete;

  // Returns the child for these label values, creating it on first use.
  // REQUIRES: values.size() == label_names().size() (a mismatch aborts: it
  // is a programming error).
  T& WithLabels(const std::vector<std::string>& values);
  T& WithLabels(std::initializer_list<absl::string_view> values) {
    return WithLabels(std::vector<std::string>(values.begin(), values.end()));
  }

  const std::string& name() const { return name_; }
  const std::string& help() const { return help_; }
  const std::vector<std::string>& label_names() const { return label_names_; }

  // Calls `fn(label_values, child)` for every child, sorted by label values.
  void ForEach(const std::function<void(const std::vector<std::string>&,
                                        const T&)>& fn) const;

 private:
  const std::string name_;
  const std::string help_;
  const std::vector<std::string> label_names_;
  const Factory factory_;
  mutable absl::Mutex mu_;
  absl::flat_hash_map<std::vector<std::string>, std::unique_ptr<T>> children_
      ABSL_GUARDED_BY(mu_);
};

extern template class Family<Counter>;
extern template class Family<Gauge>;
extern template class Family<Histogram>;

// Owns metric families and renders them. Thread-safe: families may be added
// while another thread serializes.
class PGGITOPS_EXPORT MetricsRegistry {
 public:
  MetricsRegistry();
  ~MetricsRegistry();
  MetricsRegistry(const MetricsRegistry&) = delete;
  MetricsRegistry& operator=(const MetricsRegistry&) = delete;

  // Each Add* returns the family registered under `name`, creating it if
  // needed. Registering a name again with the same kind and label names
  // returns the existing family. REQUIRES: `name` is a valid metric name and
  // not registered with another kind, labels or buckets (a violation aborts).
  // The returned reference is valid for the registry's lifetime.
  Family<Counter>& AddCounter(const std::string& name, const std::string& help,
                              std::vector<std::string> label_names = {});
  Family<Gauge>& AddGauge(const std::string& name, const std::string& help,
                          std::vector<std::string> label_names = {});
  Family<Histogram>& AddHistogram(
      const std::string& name, const std::string& help,
      std::vector<std::string> label_names = {},
      std::vector<double> bounds = DefaultBuckets());

  // Registers `hook`, called (without registry locks held) at the start of
  // every Serialize() so a component can refresh gauges it computes on
  // demand. The hook must be cheap or bound its own time. Two overlapping
  // Serialize() calls may run the same hook concurrently. A hook may add
  // families and remove hooks (itself included) but must not call
  // Serialize(). Returns an id for RemoveCollectHook().
  int AddCollectHook(std::function<void()> hook);
  // After this returns, the hook is not running (unless RemoveCollectHook is
  // called from the hook itself) and will not run again. Unknown ids are
  // ignored.
  void RemoveCollectHook(int id);

  // Renders every family in the Prometheus text format 0.0.4: families
  // sorted by name, each with `# HELP` (omitted when the help is empty) and
  // `# TYPE` lines, then its series sorted by label values. A labelled
  // family with no series yet shows only its HELP and TYPE lines.
  std::string Serialize();

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

// Registers process_resident_memory_bytes, process_virtual_memory_bytes,
// process_cpu_seconds_total, process_open_fds, process_max_fds and
// process_start_time_seconds (read from /proc by a collect hook on each
// scrape) and pggit_build_info{version="<kVersionString>"} 1. Linux only.
// Calling it again on the same registry is harmless (the families are shared
// and the counter stays exact). The hook belongs to *registry.
PGGITOPS_EXPORT void RegisterProcessMetrics(MetricsRegistry* registry);

}  // namespace pggitops

#endif  // PGGITOPS_INCLUDE_METRICS_H_
