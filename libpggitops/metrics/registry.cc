// MetricsRegistry: family bookkeeping, collect hooks and text exposition.
#include <cstring>
#include <map>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "libpggitops/metrics/text_format.h"
#include "pggitops/metrics.h"

namespace pggitops {
namespace {

enum class Kind { kCounter, kGauge, kHistogram };

const char* KindName(Kind kind) {
  switch (kind) {
    case Kind::kCounter:
      return "counter";
    case Kind::kGauge:
      return "gauge";
    case Kind::kHistogram:
      return "histogram";
  }
  return "untyped";
}

constexpr const char* kHistogramSuffixes[] = {"_bucket", "_sum", "_count"};

void AppendHeader(const std::string& name, const std::string& help, Kind kind,
                  std::string* out) {
  if (!help.empty()) {
    absl::StrAppend(out, "# HELP ", name, " ", internal::EscapeHelp(help),
                    "\n");
  }
  absl::StrAppend(out, "# TYPE ", name, " ", KindName(kind), "\n");
}

void AppendSample(absl::string_view name, const std::vector<std::string>& keys,
                  const std::vector<std::string>& values,
                  absl::string_view extra_name, absl::string_view extra_value,
                  double value, std::string* out) {
  out->append(name.data(), name.size());
  internal::AppendLabels(keys, values, extra_name, extra_value, out);
  absl::StrAppend(out, " ", internal::FormatNumber(value), "\n");
}

// The running hook of this thread, so that a hook removing itself does not
// wait for itself.
thread_local const void* tls_running_hook = nullptr;

}  // namespace

struct MetricsRegistry::Impl {
  // Immutable after creation; owned by `families`, never removed.
  struct Entry {
    Kind kind;
    std::vector<std::string> label_names;
    std::vector<double> bounds;  // histograms only
    std::unique_ptr<Family<Counter>> counter;
    std::unique_ptr<Family<Gauge>> gauge;
    std::unique_ptr<Family<Histogram>> histogram;
  };
  struct Hook {
    std::function<void()> fn;  // constant
    int running = 0;           // guarded by hooks_mu
    bool removed = false;      // guarded by hooks_mu
  };

  absl::Mutex mu;
  std::map<std::string, std::unique_ptr<Entry>> families ABSL_GUARDED_BY(mu);

  absl::Mutex hooks_mu;
  std::map<int, std::shared_ptr<Hook>> hooks ABSL_GUARDED_BY(hooks_mu);
  int next_hook_id ABSL_GUARDED_BY(hooks_mu) = 1;

  // Returns the entry for `name`, or nullptr after checking that a new one
  // may be added; aborts on any conflict.
  Entry* Find(const std::string& name, Kind kind,
              const std::vector<std::string>& labels,
              const std::vector<double>& bounds)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu);
  void CheckHistogramCollisions(const std::string& name, Kind kind)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu);
  Entry* Add(const std::string& name, const std::string& help, Kind kind,
             std::vector<std::string> labels, std::vector<double> bounds);

  void RunHooks();
  void Render(const std::string& name, const Entry& e, std::string* out) const;
};

MetricsRegistry::Impl::Entry* MetricsRegistry::Impl::Find(
    const std::string& name, Kind kind, const std::vector<std::string>& labels,
    const std::vector<double>& bounds) {
  auto it = families.find(name);
  if (it == families.end()) {
    CheckHistogramCollisions(name, kind);
    return nullptr;
  }
  const Entry& e = *it->second;
  if (e.kind != kind) {
    internal::MetricsAbort(
        absl::StrCat("metric \"", name, "\" is already registered as a ",
                     KindName(e.kind), ", not a ", KindName(kind)));
  }
  if (e.label_names != labels) {
    internal::MetricsAbort(absl::StrCat(
        "metric \"", name, "\" is already registered with labels [",
        absl::StrJoin(e.label_names, ","), "], not [",
        absl::StrJoin(labels, ","), "]"));
  }
  if (e.bounds != bounds) {
    internal::MetricsAbort(absl::StrCat(
        "histogram \"", name, "\" is already registered with buckets [",
        absl::StrJoin(e.bounds, ","), "], not [", absl::StrJoin(bounds, ","),
        "]"));
  }
  return it->second.get();
}

// A histogram `h` owns the series names h_bucket, h_sum and h_count.
void MetricsRegistry::Impl::CheckHistogramCollisions(const std::string& name,
                                                     Kind kind) {
  for (const char* suffix : kHistogramSuffixes) {
    if (kind == Kind::kHistogram && families.count(name + suffix) > 0) {
      internal::MetricsAbort(absl::StrCat("histogram \"", name,
                                          "\" would collide with metric \"",
                                          name, suffix, "\""));
    }
    if (!absl::EndsWith(name, suffix)) continue;
    std::string base = name.substr(0, name.size() - strlen(suffix));
    auto it = families.find(base);
    if (it != families.end() && it->second->kind == Kind::kHistogram) {
      internal::MetricsAbort(absl::StrCat(
          "metric \"", name, "\" collides with histogram \"", base, "\""));
    }
  }
}

MetricsRegistry::Impl::Entry* MetricsRegistry::Impl::Add(
    const std::string& name, const std::string& help, Kind kind,
    std::vector<std::string> labels, std::vector<double> bounds) {
  absl::Status valid =
      internal::ValidateFamily(name, labels, kind == Kind::kHistogram);
  if (!valid.ok()) internal::MetricsAbort(valid.message());
  absl::MutexLock lock(&mu);
  if (Entry* e = Find(name, kind, labels, bounds)) return e;
  auto e = std::make_unique<Entry>();
  e->kind = kind;
  e->label_names = labels;
  e->bounds = bounds;
  switch (kind) {
    case Kind::kCounter:
      e->counter = std::make_unique<Family<Counter>>(
          name, help, std::move(labels),
          [] { return std::make_unique<Counter>(); });
      if (e->label_names.empty()) e->counter->WithLabels({});
      break;
    case Kind::kGauge:
      e->gauge = std::make_unique<Family<Gauge>>(
          name, help, std::move(labels),
          [] { return std::make_unique<Gauge>(); });
      if (e->label_names.empty()) e->gauge->WithLabels({});
      break;
    case Kind::kHistogram:
      e->histogram = std::make_unique<Family<Histogram>>(
          name, help, std::move(labels),
          [bounds] { return std::make_unique<Histogram>(bounds); });
      if (e->label_names.empty()) e->histogram->WithLabels({});
      break;
  }
  Entry* raw = e.get();
  families.emplace(name, std::move(e));
  return raw;
}

void MetricsRegistry::Impl::RunHooks() {
  std::vector<std::shared_ptr<Hook>> snapshot;
  {
    absl::MutexLock lock(&hooks_mu);
    for (const auto& [id, hook] : hooks) snapshot.push_back(hook);
  }
  for (const auto& hook : snapshot) {
    {
      absl::MutexLock lock(&hooks_mu);
      if (hook->removed) continue;
      ++hook->running;
    }
    const void* outer = tls_running_hook;
    tls_running_hook = hook.get();
    hook->fn();
    tls_running_hook = outer;
    absl::MutexLock lock(&hooks_mu);
    --hook->running;
  }
}

void MetricsRegistry::Impl::Render(const std::string& name, const Entry& e,
                                   std::string* out) const {
  const std::vector<std::string>& keys = e.label_names;
  switch (e.kind) {
    case Kind::kCounter:
      AppendHeader(name, e.counter->help(), e.kind, out);
      e.counter->ForEach([&](const auto& values, const Counter& c) {
        AppendSample(name, keys, values, "", "", c.Value(), out);
      });
      return;
    case Kind::kGauge:
      AppendHeader(name, e.gauge->help(), e.kind, out);
      e.gauge->ForEach([&](const auto& values, const Gauge& g) {
        AppendSample(name, keys, values, "", "", g.Value(), out);
      });
      return;
    case Kind::kHistogram:
      break;
  }
  AppendHeader(name, e.histogram->help(), e.kind, out);
  const std::string bucket = name + "_bucket";
  e.histogram->ForEach([&](const auto& values, const Histogram& h) {
    Histogram::Snapshot s = h.Collect();
    for (size_t i = 0; i < s.bounds.size(); ++i) {
      AppendSample(bucket, keys, values, "le",
                   internal::FormatNumber(s.bounds[i]),
                   static_cast<double>(s.cumulative_counts[i]), out);
    }
    AppendSample(bucket, keys, values, "le", "+Inf",
                 static_cast<double>(s.count), out);
    AppendSample(name + "_sum", keys, values, "", "", s.sum, out);
    AppendSample(name + "_count", keys, values, "", "",
                 static_cast<double>(s.count), out);
  });
}

MetricsRegistry::MetricsRegistry() : impl_(std::make_unique<Impl>()) {}
MetricsRegistry::~MetricsRegistry() = default;

Family<Counter>& MetricsRegistry::AddCounter(
    const std::string& name, const std::string& help,
    std::vector<std::string> label_names) {
  return *impl_->Add(name, help, Kind::kCounter, std::move(label_names), {})
              ->counter;
}

Family<Gauge>& MetricsRegistry::AddGauge(const std::string& name,
                                         const std::string& help,
                                         std::vector<std::string> label_names) {
  return *impl_->Add(name, help, Kind::kGauge, std::move(label_names), {})
              ->gauge;
}

Family<Histogram>& MetricsRegistry::AddHistogram(
    const std::string& name, const std::string& help,
    std::vector<std::string> label_names, std::vector<double> bounds) {
  Histogram check(bounds);  // aborts on bad bounds before registering
  return *impl_
              ->Add(name, help, Kind::kHistogram, std::move(label_names),
                    std::move(bounds))
              ->histogram;
}

int MetricsRegistry::AddCollectHook(std::function<void()> hook) {
  auto h = std::make_shared<Impl::Hook>();
  h->fn = std::move(hook);
  absl::MutexLock lock(&impl_->hooks_mu);
  int id = impl_->next_hook_id++;
  impl_->hooks.emplace(id, std::move(h));
  return id;
}

void MetricsRegistry::RemoveCollectHook(int id) {
  absl::MutexLock lock(&impl_->hooks_mu);
  auto it = impl_->hooks.find(id);
  if (it == impl_->hooks.end()) return;
  std::shared_ptr<Impl::Hook> hook = std::move(it->second);
  impl_->hooks.erase(it);
  hook->removed = true;
  const int own = tls_running_hook == hook.get() ? 1 : 0;
  auto idle = [&hook, own] { return hook->running == own; };
  impl_->hooks_mu.Await(absl::Condition(&idle));
}

std::string MetricsRegistry::Serialize() {
  impl_->RunHooks();
  std::vector<std::pair<const std::string*, const Impl::Entry*>> entries;
  {
    absl::ReaderMutexLock lock(&impl_->mu);
    entries.reserve(impl_->families.size());
    for (const auto& [name, e] : impl_->families) {
      entries.emplace_back(&name, e.get());  // std::map nodes are stable
    }
  }
  std::string out;
  for (const auto& [name, e] : entries) impl_->Render(*name, *e, &out);
  return out;
}

}  // namespace pggitops
