// HealthRegistry: the list of checks, single-flight evaluation and the
// report cache. The per-check threads live in check_runner.cc.
#include <algorithm>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/container/flat_hash_map.h"
#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "libpggitops/health/check_runner.h"
#include "libpggitops/health/health_report_json.h"
#include "pggitops/health.h"
#include "pggitops/log.h"

namespace pggitops {
namespace {

// How long the destructor waits for checks still running.
constexpr absl::Duration kShutdownGrace = absl::Seconds(1);

absl::Status ValidateCheck(const HealthCheck& check) {
  if (check.name.empty()) {
    return absl::InvalidArgumentError("health check name is empty");
  }
  if (internal::IsReservedReportKey(check.name)) {
    return absl::InvalidArgumentError(
        absl::StrCat("health check name \"", check.name,
                     "\" is reserved for the report itself"));
  }
  if (!check.run) {
    return absl::InvalidArgumentError(
        absl::StrCat("health check \"", check.name, "\" has no run function"));
  }
  if (check.timeout <= absl::ZeroDuration() ||
      check.timeout == absl::InfiniteDuration()) {
    return absl::InvalidArgumentError(
        absl::StrCat("health check \"", check.name,
                     "\" timeout must be "
                     "positive and finite, got ",
                     absl::FormatDuration(check.timeout)));
  }
  return absl::OkStatus();
}

}  // namespace

// Thread-safe; state below mu is guarded by it. Evaluations run without mu.
struct HealthRegistry::Impl {
  explicit Impl(HealthOptions options)
      : env(options.env != nullptr ? options.env : Env::Default()),
        cache_ttl(options.cache_ttl) {}

  // Runs every check once (concurrently) and builds the report.
  HealthReport Evaluate();
  // Caches `report` unless a later-started evaluation (higher `seq`)
  // already did.
  void Store(const HealthReport& report, uint64_t seq)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu);
  bool CacheFresh() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu);

  Env* const env;
  const absl::Duration cache_ttl;
  const std::shared_ptr<internal::RunningChecks> running =
      std::make_shared<internal::RunningChecks>();

  absl::Mutex mu;
  // In registration order.
  std::vector<std::shared_ptr<internal::CheckSlot>> slots ABSL_GUARDED_BY(mu);
  std::optional<HealthReport> cached ABSL_GUARDED_BY(mu);
  absl::Time cached_at ABSL_GUARDED_BY(mu);  // env->MonotonicNow()
  uint64_t cached_seq ABSL_GUARDED_BY(mu) = 0;
  uint64_t next_seq ABSL_GUARDED_BY(mu) = 1;
  // Run()'s single flight: true while one of its evaluations is running;
  // flights_done counts the finished ones so waiters know theirs ended.
  bool evaluating ABSL_GUARDED_BY(mu) = false;
  uint64_t flights_done ABSL_GUARDED_BY(mu) = 0;
  // The failure last logged per check: a failure is logged when it starts
  // or its message changes, a recovery once (the details reports leave out
  // for most callers are in the log).
  absl::flat_hash_map<std::string, std::string> logged ABSL_GUARDED_BY(mu);

  void LogChanges(const HealthReport& report);
};

void HealthRegistry::Impl::LogChanges(const HealthReport& report) {
  absl::MutexLock lock(&mu);
  for (const auto& [name, result] : report.checks) {
    auto it = logged.find(name);
    if (!result.ok) {
      std::string text =
          result.message.empty() ? result.status : result.message;
      if (it != logged.end() && it->second == text) continue;
      Log::Warning(
          "health check failed",
          {{"check", name},
           {"error_code", result.error_code.empty()
                              ? FailureCode(result.status, result.message)
                              : result.error_code},
           {"error", text}});
      logged[name] = text;
    } else if (it != logged.end()) {
      Log::Info("health check recovered", {{"check", name}});
      logged.erase(it);
    }
  }
}

HealthReport HealthRegistry::Impl::Evaluate() {
  std::vector<std::shared_ptr<internal::CheckSlot>> snapshot;
  {
    absl::MutexLock lock(&mu);
    snapshot = slots;
  }
  HealthReport report;
  report.timestamp = env->Now();
  std::vector<internal::CheckSlot::Pending> pending;
  pending.reserve(snapshot.size());
  for (const auto& slot : snapshot) pending.push_back(slot->Start());

  bool critical_failed = false;
  bool other_failed = false;
  for (size_t i = 0; i < snapshot.size(); ++i) {
    const HealthCheck& check = snapshot[i]->check();
    CheckResult result = snapshot[i]->Await(pending[i]);
    if (!result.ok) {
      (check.criticality == Criticality::kCritical ? critical_failed
                                                   : other_failed) = true;
    }
    report.checks.emplace_back(check.name, std::move(result));
  }
  report.status = critical_failed ? HealthStatus::kUnhealthy
                  : other_failed  ? HealthStatus::kDegraded
                                  : HealthStatus::kHealthy;
  LogChanges(report);
  return report;
}

void HealthRegistry::Impl::Store(const HealthReport& report, uint64_t seq) {
  if (cached.has_value() && seq < cached_seq) return;
  cached = report;
  cached_seq = seq;
  cached_at = env->MonotonicNow();
}

bool HealthRegistry::Impl::CacheFresh() {
  return cached.has_value() && env->MonotonicNow() - cached_at < cache_ttl;
}

HealthRegistry::HealthRegistry(HealthOptions options)
    : impl_(std::make_unique<Impl>(options)) {}

HealthRegistry::~HealthRegistry() {
  // Hung checks keep running on detached threads that share only the slot,
  // the run and the counter (shared_ptr), never *this.
  impl_->running->WaitUntilNone(kShutdownGrace);
}

absl::Status HealthRegistry::Register(HealthCheck check) {
  if (absl::Status s = ValidateCheck(check); !s.ok()) return s;
  auto slot =
      std::make_shared<internal::CheckSlot>(std::move(check), impl_->running);
  absl::MutexLock lock(&impl_->mu);
  auto& slots = impl_->slots;
  auto it = std::find_if(slots.begin(), slots.end(), [&](const auto& s) {
    return s->check().name == slot->check().name;
  });
  if (it != slots.end()) {
    *it = std::move(slot);
  } else {
    slots.push_back(std::move(slot));
  }
  return absl::OkStatus();
}

void HealthRegistry::Unregister(const std::string& name) {
  absl::MutexLock lock(&impl_->mu);
  auto& slots = impl_->slots;
  slots.erase(
      std::remove_if(slots.begin(), slots.end(),
                     [&](const auto& s) { return s->check().name == name; }),
      slots.end());
}

HealthReport HealthRegistry::Run() {
  Impl& impl = *impl_;
  uint64_t seq;
  {
    absl::MutexLock lock(&impl.mu);
    if (impl.CacheFresh()) return *impl.cached;
    if (impl.evaluating) {
      const uint64_t seen = impl.flights_done;
      auto ended = [&impl, seen]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(impl.mu) {
        return impl.flights_done != seen;
      };
      impl.mu.Await(absl::Condition(&ended));
      return *impl.cached;  // the shared evaluation's report, or a later one
    }
    impl.evaluating = true;
    seq = impl.next_seq++;
  }
  HealthReport report = impl.Evaluate();
  absl::MutexLock lock(&impl.mu);
  impl.Store(report, seq);
  impl.evaluating = false;
  ++impl.flights_done;
  return report;
}

HealthReport HealthRegistry::RunFresh() {
  Impl& impl = *impl_;
  uint64_t seq;
  {
    absl::MutexLock lock(&impl.mu);
    seq = impl.next_seq++;
  }
  HealthReport report = impl.Evaluate();
  absl::MutexLock lock(&impl.mu);
  impl.Store(report, seq);
  return report;
}

bool HealthRegistry::WaitForRunningChecks(absl::Duration timeout) {
  return impl_->running->WaitUntilNone(timeout);
}

HealthOptions HealthOptionsFromConfig(const Config& config) {
  HealthOptions options;
  options.cache_ttl = config.health_cache;
  return options;
}

}  // namespace pggitops
