// File: pggitops/health.h
//
// A HealthRegistry holds named checks, each with a time limit and a
// criticality, and runs them to build one report (the daemon's
// GET /health/deep). Results are reused for a configurable time, and one
// evaluation runs at a time however many callers ask, so a burst of probes
// costs the dependencies one check each. A check that exceeds its time limit
// is reported as failed ("timeout") without waiting for it; a hung check is
// never started twice.
//
// Threads and time: every check runs on its own registry-owned thread,
// concurrently with the other checks. The evaluation waits for each check at
// most its timeout, measured in real time (the wait blocks on a mutex with a
// real deadline; an Env clock cannot wake a blocked thread). The cache age is
// measured with HealthOptions::env, so tests drive cache expiry with a
// manual clock. A check that outlives its timeout keeps running on its
// thread; its state is shared (reference counted) between that thread and
// the registry, so the thread may safely finish after the registry is gone.
//
// Typical use (the daemon does this for database, schema, cache, redis,
// webhooks and queue):
//
//   HealthRegistry registry;
//   absl::Status s = registry.Register(
//       {"database", Criticality::kCritical, absl::Seconds(2), [&pool] {
//          CheckResult r;
//          r.status = "connected";
//          r.details_json = R"({"response_time_ms": 1.2})";
//          return r;
//        }});
//   HealthReport report = registry.Run();
//   int http_status = report.status == HealthStatus::kUnhealthy ? 503 : 200;
//   std::string body = report.ToJson();
#ifndef PGGITOPS_INCLUDE_HEALTH_H_
#define PGGITOPS_INCLUDE_HEALTH_H_

#include <functional>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/time/time.h"
#include "pggitops/config.h"
#include "pggitops/env.h"
#include "pggitops/export.h"

namespace pggitops {

// The result of one check.
struct PGGITOPS_EXPORT CheckResult {
  // False fails the report: unhealthy for a critical check, degraded for a
  // non-critical one.
  bool ok = true;
  // Short word shown as the check's "status": "connected", "operational",
  // "disabled", "unavailable", "timeout", "error", ...
  std::string status = "ok";
  // Optional human-readable explanation (shown as "error" when !ok, to
  // callers allowed to see details: it may hold a dependency's raw error).
  std::string message;
  // A stable upper-case code for a failed check, shown to everyone as
  // "error_code": CONNECTION_REFUSED, AUTH_FAILED, TIMEOUT, DNS_FAILED,
  // NOT_FOUND, PERMISSION_DENIED, UNAVAILABLE, CHECK_FAILED, or a check's
  // own. Empty: FailureCode(status, message) decides.
  std::string error_code;
  // Optional JSON object whose members are added to the check's entry, e.g.
  // {"response_time_ms": 1.2, "pool": {...}}. Must be a JSON object or
  // empty; anything else is shown verbatim under "details_error".
  std::string details_json;
};

enum class Criticality {
  kCritical,     // failure makes the report unhealthy (HTTP 503)
  kNonCritical,  // failure makes the report degraded (HTTP 200)
};

struct PGGITOPS_EXPORT HealthCheck {
  // The key in the report, e.g. "database". REQUIRES: not empty and not one
  // of the report's own keys ("status", "timestamp", "failing").
  std::string name;
  Criticality criticality = Criticality::kCritical;
  // A check still running after this (real time) is reported as {ok=false,
  // status="timeout", message="check exceeded <N> ms"}. REQUIRES: positive
  // and finite. Default: 2 s.
  absl::Duration timeout = absl::Seconds(2);
  // Runs the check. Called from a registry-owned thread, never concurrently
  // with itself: while a run is still in flight (even past its timeout) the
  // next evaluation reports "timeout" again instead of starting another.
  // Exceptions are caught and reported as {ok=false, status="error",
  // message=what()}. Whatever it captures must stay valid until it returns,
  // which may be after Run() has reported it as timed out.
  // REQUIRES: not empty.
  std::function<CheckResult()> run;
};

// A stable upper-case code for a dependency's failure, from the words of
// its message (libpq, hiredis, libcurl, the pool) and the check's status
// word: "CONNECTION_REFUSED", "AUTH_FAILED", "TIMEOUT", "DNS_FAILED",
// "NOT_FOUND", "PERMISSION_DENIED", "UNAVAILABLE", else "CHECK_FAILED".
PGGITOPS_EXPORT std::string FailureCode(const std::string& status_word,
                                        const std::string& message);

enum class HealthStatus { kHealthy, kDegraded, kUnhealthy };
// Returns "healthy", "degraded" or "unhealthy".
PGGITOPS_EXPORT const char* HealthStatusName(HealthStatus s);

struct PGGITOPS_EXPORT HealthReport {
  // kUnhealthy if a critical check failed, else kDegraded if a non-critical
  // check failed, else kHealthy (also with no checks at all).
  HealthStatus status = HealthStatus::kHealthy;
  absl::Time timestamp;  // when the checks ran (wall clock, Env::Now)
  // In registration order.
  std::vector<std::pair<std::string, CheckResult>> checks;
  // Renders CONTRACT section 5's /health/deep body, keys in this order:
  //   {"status": "healthy"|"degraded"|"unhealthy",
  //    "timestamp": "2024-01-02T03:04:05.000Z",
  //    "failing": ["redis"],            // only when status != healthy
  //    "<check>": {"status": "<word>", <details_json members>,
  //                "error": "<message>"},  // "error" only when !ok
  //    ...}
  // "status" and "error" win over details members of the same name. Never
  // throws; invalid UTF-8 is replaced. Every failed check also carries
  // "error_code"; without `with_details` its "error" (the raw message) is
  // left out, for callers that may not see it (CONTRACT section 8).
  std::string ToJson(bool with_details = true) const;
};

struct PGGITOPS_EXPORT HealthOptions {
  // Reports are reused by Run() for this long, counted from the end of the
  // evaluation that produced them. Zero or negative: never reused (callers
  // arriving during an evaluation still share it). Default: 2 s
  // (HEALTH_CACHE_SECONDS).
  absl::Duration cache_ttl = absl::Seconds(2);
  // Clock for the cache age and the report timestamp. *env must outlive the
  // registry. Default (nullptr): Env::Default().
  Env* env = nullptr;
};

// A set of named checks and the cache of their last report. Thread-safe: any
// method may be called from any thread at any time, except that the
// destructor must not race with other calls.
class PGGITOPS_EXPORT HealthRegistry {
 public:
  explicit HealthRegistry(HealthOptions options = {});
  // Waits up to 1 s (real time) for checks still running, then returns
  // without them: a hung check's thread is left detached and finishes on its
  // own, holding only shared state, never the registry.
  ~HealthRegistry();
  HealthRegistry(const HealthRegistry&) = delete;
  HealthRegistry& operator=(const HealthRegistry&) = delete;

  // Adds a check; a check registered under an existing name replaces it in
  // place (same position in the report). Returns InvalidArgument, and
  // changes nothing, for an empty or reserved name, an empty `run`, or a
  // timeout that is not positive and finite. The cached report is kept: the
  // change shows in the next evaluation.
  absl::Status Register(HealthCheck check);
  // Removes the check named `name`; no-op when there is none. A run of it in
  // flight finishes on its own thread and is not reported.
  void Unregister(const std::string& name);

  // Returns the cached report if younger than cache_ttl, else runs every
  // check concurrently (each bounded by its timeout) and caches the result.
  // Concurrent callers share one evaluation.
  HealthReport Run();

  // Runs the checks now, ignoring the cache, and caches the result. A check
  // already in flight (from a concurrent evaluation) is joined, not
  // restarted.
  HealthReport RunFresh();

  // Waits up to `timeout` (real time) until no check started by this
  // registry is still running. Returns true if none is. Useful at shutdown
  // and in tests to know a released check has returned.
  bool WaitForRunningChecks(absl::Duration timeout);

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

// Options from HEALTH_CACHE_SECONDS (cache_ttl); env stays the default.
// HEALTH_CHECK_TIMEOUT is each check's HealthCheck::timeout, set by the
// code that registers the check.
PGGITOPS_EXPORT HealthOptions HealthOptionsFromConfig(const Config& config);

}  // namespace pggitops

#endif  // PGGITOPS_INCLUDE_HEALTH_H_
