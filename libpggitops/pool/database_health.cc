// The "database" check of /health/deep.
#include <cmath>
#include <string>

#include "nlohmann/json.hpp"
#include "pggitops/connection_pool.h"

namespace pggitops {
namespace {

nlohmann::json PoolJson(const PoolStats& s) {
  return {{"size", s.size},
          {"checked_out", s.checked_out},
          {"overflow", s.overflow},
          {"available", s.available},
          {"waiting", s.waiting}};
}

CheckResult RunDatabaseCheck(ConnectionPool* pool, absl::Duration timeout) {
  Env* env = Env::Default();
  const absl::Time start = env->MonotonicNow();
  absl::Status status;
  {
    absl::StatusOr<PooledConnection> lease = pool->Acquire(timeout / 2);
    status = lease.status();
    if (lease.ok()) status = lease->Query("SELECT 1").status();
  }
  const double ms = absl::ToDoubleMilliseconds(env->MonotonicNow() - start);
  CheckResult result;
  result.ok = status.ok();
  result.status = status.ok() ? "connected" : "disconnected";
  if (!status.ok()) result.message = std::string(status.message());
  nlohmann::json details = {{"response_time_ms", std::round(ms * 100) / 100},
                            {"pool", PoolJson(pool->Stats())}};
  result.details_json = details.dump();
  return result;
}

}  // namespace

HealthCheck DatabaseHealthCheck(ConnectionPool* pool, absl::Duration timeout) {
  HealthCheck check;
  check.name = "database";
  check.criticality = Criticality::kCritical;
  check.timeout = timeout;
  check.run = [pool, timeout] { return RunDatabaseCheck(pool, timeout); };
  return check;
}

}  // namespace pggitops
