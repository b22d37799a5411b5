// The "database" check of /health/deep, and the lock-contention figures it
// shares with the db_lock_waits and db_lock_wait_seconds_max gauges.
#include <cmath>
#include <optional>
#include <string>

#include "absl/strings/numbers.h"
#include "nlohmann/json.hpp"
#include "pggitops/connection_pool.h"

namespace pggitops {
namespace {

// Sessions of this database waiting for a lock, and the longest wait.
// waitstart (PostgreSQL 14+) is briefly null after a wait begins. A row-lock
// wait is on a transaction id, which has no database: the session's
// database is what counts.
constexpr char kLockWaitsSql[] =
    "SELECT count(DISTINCT l.pid),"
    " coalesce(extract(epoch FROM now() - min(l.waitstart)), 0)::float8"
    " FROM pg_locks l JOIN pg_stat_activity a ON a.pid = l.pid"
    " WHERE NOT l.granted AND a.datname = current_database()";

// The figures of one answer to kLockWaitsSql; nullopt for another shape.
std::optional<LockWaits> ParseLockWaits(const QueryResult& r) {
  LockWaits w;
  if (r.rows.size() != 1 || r.rows[0].size() != 2 ||
      !r.rows[0][0].has_value() || !r.rows[0][1].has_value() ||
      !absl::SimpleAtoi(*r.rows[0][0], &w.waiting) ||
      !absl::SimpleAtod(*r.rows[0][1], &w.longest_wait_seconds)) {
    return std::nullopt;
  }
  return w;
}

nlohmann::json PoolJson(const PoolStats& s) {
  return {{"size", s.size},
          {"checked_out", s.checked_out},
          {"overflow", s.overflow},
          {"available", s.available},
          {"waiting", s.waiting}};
}

double Round2(double v) { return std::round(v * 100) / 100; }

// The lock-wait query doubles as the connectivity probe: one round trip.
CheckResult RunDatabaseCheck(ConnectionPool* pool, absl::Duration timeout) {
  Env* env = Env::Default();
  const absl::Time start = env->MonotonicNow();
  absl::StatusOr<QueryResult> answer = absl::UnknownError("not run");
  {
    absl::StatusOr<PooledConnection> lease = pool->Acquire(timeout / 2);
    answer = lease.ok() ? lease->Query(kLockWaitsSql)
                        : absl::StatusOr<QueryResult>(lease.status());
  }
  const double ms = absl::ToDoubleMilliseconds(env->MonotonicNow() - start);
  CheckResult result;
  result.ok = answer.ok();
  result.status = answer.ok() ? "connected" : "disconnected";
  if (!answer.ok()) result.message = std::string(answer.status().message());
  nlohmann::json details = {{"response_time_ms", Round2(ms)},
                            {"pool", PoolJson(pool->Stats())}};
  std::optional<LockWaits> locks;
  if (answer.ok()) locks = ParseLockWaits(*answer);
  if (locks.has_value()) {
    details["locks"] = {
        {"waiting", locks->waiting},
        {"longest_wait_seconds", Round2(locks->longest_wait_seconds)}};
  }
  result.details_json = details.dump();
  return result;
}

}  // namespace

absl::StatusOr<LockWaits> ReadLockWaits(ConnectionPool* pool,
                                        absl::Duration timeout) {
  absl::StatusOr<PooledConnection> lease = pool->Acquire(timeout);
  if (!lease.ok()) return lease.status();
  absl::StatusOr<QueryResult> r = lease->Query(kLockWaitsSql);
  if (!r.ok()) return r.status();
  std::optional<LockWaits> w = ParseLockWaits(*r);
  if (!w.has_value()) {
    return absl::InternalError("unexpected answer to the lock-wait query");
  }
  return *w;
}

HealthCheck DatabaseHealthCheck(ConnectionPool* pool, absl::Duration timeout) {
  HealthCheck check;
  check.name = "database";
  check.criticality = Criticality::kCritical;
  check.timeout = timeout;
  check.run = [pool, timeout] { return RunDatabaseCheck(pool, timeout); };
  return check;
}

int RegisterLockWaitMetrics(ConnectionPool* pool, MetricsRegistry* registry,
                            absl::Duration timeout) {
  Gauge& waits =
      registry
          ->AddGauge("db_lock_waits",
                     "Sessions of the database waiting for a lock that "
                     "another session holds")
          .WithLabels({});
  Gauge& longest = registry
                       ->AddGauge("db_lock_wait_seconds_max",
                                  "The longest current wait for a lock in "
                                  "the database, in seconds")
                       .WithLabels({});
  return registry->AddCollectHook([pool, timeout, &waits, &longest] {
    absl::StatusOr<LockWaits> w = ReadLockWaits(pool, timeout);
    if (!w.ok()) return;
    waits.Set(static_cast<double>(w->waiting));
    longest.Set(w->longest_wait_seconds);
  });
}

}  // namespace pggitops
