// File: pggitops/health.h
//
// A HealthRegistry holds named checks, each with a time limit and a
// criticality, and runs them to build one report (the daemon's
// GET /health/deep). Results are reused for a configurable time, and one
// evaluation runs at a time however many callers ask, so a burst of probes
// costs the dependencies one check each. A check that exceeds its time limit
// is reported as failed ("timeout") without waiting for it; a hung check is
// never started twice.
#ifndef PGGITOPS_INCLUDE_HEALTH_H_
#define PGGITOPS_INCLUDE_HEALTH_H_

#include <functional>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "absl/time/time.h"
#include "pggitops/env.h"
#include "pggitops/export.h"

namespace pggitops {

// The result of one check.
struct PGGITOPS_EXPORT CheckResult {
  // False fails the report: unhealthy for a critical check, degraded for a
  // non-critical one.
  bool ok = true;
  // Short word shown as the check's "status": "connected", "operational",
  // "disabled", "unavailable", "timeout", ...
  std::string status = "ok";
  // Optional human-readable explanation (shown as "error" when !ok).
  std::string message;
  // Optional JSON object whose members are added to the check's entry, e.g.
  // {"response_time_ms": 1.2, "pool": {...}}. Must be a JSON object or empty.
  std::string details_json;
};

enum class Criticality {
  kCritical,     // failure makes the report unhealthy (HTTP 503)
  kNonCritical,  // failure makes the report degraded (HTTP 200)
};

struct PGGITOPS_EXPORT HealthCheck {
  std::string name;  // the key in the report, e.g. "database"
  Criticality criticality = Criticality::kCritical;
  // A check still running after this is reported as {ok=false,
  // status="timeout"}. Default: 2 s.
  absl::Duration timeout = absl::Seconds(2);
  // Runs the check. Called from a registry-owned thread, never concurrently
  // with itself. Exceptions are caught and reported as failures.
  std::function<CheckResult()> run;
};

enum class HealthStatus { kHealthy, kDegraded, kUnhealthy };
PGGITOPS_EXPORT const char* HealthStatusName(HealthStatus s);

struct PGGITOPS_EXPORT HealthReport {
  HealthStatus status = HealthStatus::kHealthy;
  absl::Time timestamp;  // when the checks ran (wall clock)
  // In registration order.
  std::vector<std::pair<std::string, CheckResult>> checks;
  // Renders {"status": ..., "timestamp": ..., "<check>": {"status": ...,
  // <details>}, ...} as CONTRACT section 5 describes /health/deep.
  std::string ToJson() const;
};

struct PGGITOPS_EXPORT HealthOptions {
  // Reports are reused for this long. Default: 2 s (HEALTH_CACHE_SECONDS).
  absl::Duration cache_ttl = absl::Seconds(2);
  // Clock. *env must outlive the registry. Default: Env::Default().
  Env* env = nullptr;
};

// Thread-safe.
class PGGITOPS_EXPORT HealthRegistry {
 public:
  explicit HealthRegistry(HealthOptions options = {});
  ~HealthRegistry();
  HealthRegistry(const HealthRegistry&) = delete;
  HealthRegistry& operator=(const HealthRegistry&) = delete;

  // Adds a check. A check registered under an existing name replaces it.
  void Register(HealthCheck check);
  void Unregister(const std::string& name);

  // Returns the cached report if younger than cache_ttl, else runs every
  // check concurrently (each bounded by its timeout) and caches the result.
  // Concurrent callers share one evaluation.
  HealthReport Run();

  // Runs the checks ignoring the cache.
  HealthReport RunFresh();

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace pggitops

#endif  // PGGITOPS_INCLUDE_HEALTH_H_
