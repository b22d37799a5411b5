#include <atomic>
#include <memory>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include "absl/synchronization/mutex.h"
#include "absl/synchronization/notification.h"
#include "absl/time/time.h"
#include "doctest/doctest.h"
#include "nlohmann/json.hpp"
#include "pggitops/health.h"
#include "testing/fake_env.h"

namespace pggitops {
namespace {

using testing::FakeEnv;

// Real-time bound for waits that only end early when the code is right.
constexpr absl::Duration kGenerous = absl::Seconds(10);

HealthCheck Counting(std::string name, std::atomic<int>* calls, bool ok = true,
                     Criticality criticality = Criticality::kCritical) {
  HealthCheck check;
  check.name = std::move(name);
  check.criticality = criticality;
  check.run = [calls, ok] {
    calls->fetch_add(1);
    CheckResult r;
    r.ok = ok;
    r.status = ok ? "connected" : "unavailable";
    if (!ok) r.message = "connection refused";
    return r;
  };
  return check;
}

// A check that blocks until `release` is notified.
HealthCheck Blocking(std::string name, absl::Notification* release,
                     std::atomic<int>* calls, absl::Duration timeout) {
  HealthCheck check;
  check.name = std::move(name);
  check.timeout = timeout;
  check.run = [release, calls] {
    calls->fetch_add(1);
    release->WaitForNotification();
    return CheckResult{};
  };
  return check;
}

const CheckResult& Find(const HealthReport& report, const std::string& name) {
  for (const auto& [n, r] : report.checks) {
    if (n == name) return r;
  }
  FAIL("no check named " << name);
  static CheckResult none;
  return none;
}

TEST_CASE("HealthRegistry: Run reuses the report until cache_ttl passes") {
  FakeEnv env;
  HealthRegistry registry({absl::Seconds(2), &env});
  std::atomic<int> calls{0};
  REQUIRE(registry.Register(Counting("database", &calls)).ok());

  HealthReport first = registry.Run();
  CHECK(calls == 1);
  CHECK(first.status == HealthStatus::kHealthy);
  registry.Run();
  CHECK(calls == 1);

  env.AdvanceBy(absl::Milliseconds(1999));
  registry.Run();
  CHECK(calls == 1);

  env.AdvanceBy(absl::Milliseconds(1));  // age == ttl: no longer younger
  registry.Run();
  CHECK(calls == 2);

  registry.RunFresh();  // ignores the cache...
  CHECK(calls == 3);
  registry.Run();  // ...and refreshes it
  CHECK(calls == 3);
}

TEST_CASE("HealthRegistry: zero cache_ttl evaluates on every Run") {
  FakeEnv env;
  HealthRegistry registry({absl::ZeroDuration(), &env});
  std::atomic<int> calls{0};
  REQUIRE(registry.Register(Counting("database", &calls)).ok());
  registry.Run();
  registry.Run();
  CHECK(calls == 2);
}

TEST_CASE("HealthRegistry: report timestamp comes from the Env wall clock") {
  FakeEnv env(absl::FromUnixSeconds(1'700'000'000));
  HealthRegistry registry({absl::Seconds(2), &env});
  CHECK(registry.Run().timestamp == absl::FromUnixSeconds(1'700'000'000));
}

TEST_CASE("HealthRegistry: 50 concurrent callers share one evaluation") {
  FakeEnv env;
  HealthRegistry registry({absl::Seconds(2), &env});
  constexpr int kCallers = 50;
  absl::Mutex mu;
  int entered = 0;  // guarded by mu
  std::atomic<int> calls{0};
  HealthCheck check;
  check.name = "database";
  check.timeout = kGenerous;
  // Holds the evaluation open until every caller has started calling Run.
  check.run = [&] {
    calls.fetch_add(1);
    absl::MutexLock lock(&mu);
    auto all_in = [&] { return entered == kCallers; };
    mu.AwaitWithTimeout(absl::Condition(&all_in), kGenerous);
    return CheckResult{};
  };
  REQUIRE(registry.Register(check).ok());

  std::vector<HealthReport> reports(kCallers);
  std::vector<std::thread> callers;
  for (int i = 0; i < kCallers; ++i) {
    callers.emplace_back([&, i] {
      {
        absl::MutexLock lock(&mu);
        ++entered;
      }
      reports[i] = registry.Run();
    });
  }
  for (auto& t : callers) t.join();

  CHECK(calls == 1);
  for (const HealthReport& r : reports) {
    REQUIRE(r.checks.size() == 1);
    CHECK(r.checks[0].second.ok);
    CHECK(r.timestamp == reports[0].timestamp);
  }
}

TEST_CASE("HealthRegistry: checks run concurrently with each other") {
  FakeEnv env;
  HealthRegistry registry({absl::Seconds(2), &env});
  absl::Notification a_started, b_started;
  // Each check succeeds only if the other one started while it runs.
  auto waits_for = [](absl::Notification* mine, absl::Notification* other) {
    return [mine, other] {
      mine->Notify();
      CheckResult r;
      r.ok = other->WaitForNotificationWithTimeout(absl::Seconds(5));
      return r;
    };
  };
  REQUIRE(registry
              .Register({"a", Criticality::kCritical, kGenerous,
                         waits_for(&a_started, &b_started)})
              .ok());
  REQUIRE(registry
              .Register({"b", Criticality::kCritical, kGenerous,
                         waits_for(&b_started, &a_started)})
              .ok());
  HealthReport report = registry.RunFresh();
  CHECK(Find(report, "a").ok);
  CHECK(Find(report, "b").ok);
  CHECK(report.status == HealthStatus::kHealthy);
}

TEST_CASE("HealthRegistry: a check over its timeout is reported as timeout") {
  FakeEnv env;
  absl::Notification release;
  HealthRegistry registry({absl::Seconds(2), &env});
  std::atomic<int> slow_calls{0}, fast_calls{0};
  REQUIRE(registry
              .Register(Blocking("database", &release, &slow_calls,
                                 absl::Milliseconds(50)))
              .ok());
  REQUIRE(registry
              .Register(Counting("cache", &fast_calls, true,
                                 Criticality::kNonCritical))
              .ok());

  HealthReport report = registry.RunFresh();  // returns with the check hung
  const CheckResult& db = Find(report, "database");
  CHECK_FALSE(db.ok);
  CHECK(db.status == "timeout");
  CHECK(db.message == "check exceeded 50 ms");
  CHECK(Find(report, "cache").ok);
  CHECK(report.status == HealthStatus::kUnhealthy);

  release.Notify();
  CHECK(registry.WaitForRunningChecks(kGenerous));
}

TEST_CASE("HealthRegistry: a hung check is not started again") {
  FakeEnv env;
  absl::Notification release;
  HealthRegistry registry({absl::Seconds(2), &env});
  std::atomic<int> calls{0};
  REQUIRE(
      registry
          .Register(Blocking("redis", &release, &calls, absl::Milliseconds(50)))
          .ok());

  CHECK(registry.Run().checks[0].second.status == "timeout");
  CHECK(calls == 1);

  env.AdvanceBy(absl::Seconds(2));  // cache expired: a new evaluation
  HealthReport again = registry.Run();
  const CheckResult& redis = Find(again, "redis");
  CHECK(redis.status == "timeout");
  CHECK(redis.message.find("still running") != std::string::npos);
  CHECK(calls == 1);
  CHECK(registry.RunFresh().checks[0].second.status == "timeout");
  CHECK(calls == 1);
  CHECK_FALSE(registry.WaitForRunningChecks(absl::ZeroDuration()));

  release.Notify();
  REQUIRE(registry.WaitForRunningChecks(kGenerous));
  HealthReport recovered = registry.RunFresh();  // starts it anew
  CHECK(calls == 2);
  CHECK(Find(recovered, "redis").ok);
  CHECK(recovered.status == HealthStatus::kHealthy);
}

TEST_CASE("HealthRegistry: destruction does not wait for a hung check") {
  auto release = std::make_shared<absl::Notification>();
  auto finished = std::make_shared<absl::Notification>();
  {
    FakeEnv env;
    HealthRegistry registry({absl::Seconds(2), &env});
    HealthCheck check;
    check.name = "hung";
    check.timeout = absl::Milliseconds(20);
    check.run = [release, finished] {
      release->WaitForNotification();
      finished->Notify();
      return CheckResult{};
    };
    REQUIRE(registry.Register(check).ok());
    CHECK(registry.RunFresh().checks[0].second.status == "timeout");
  }  // the destructor gives up after its grace period
  CHECK_FALSE(finished->HasBeenNotified());
  release->Notify();  // the detached thread still finishes cleanly
  CHECK(finished->WaitForNotificationWithTimeout(kGenerous));
}

TEST_CASE("HealthRegistry: exceptions become error results") {
  FakeEnv env;
  HealthRegistry registry({absl::Seconds(2), &env});
  HealthCheck std_throw{
      "webhooks", Criticality::kNonCritical, absl::Seconds(2),
      []() -> CheckResult { throw std::runtime_error("boom"); }};
  HealthCheck odd_throw{"queue", Criticality::kNonCritical, absl::Seconds(2),
                        []() -> CheckResult { throw 42; }};
  REQUIRE(registry.Register(std_throw).ok());
  REQUIRE(registry.Register(odd_throw).ok());

  HealthReport report = registry.RunFresh();
  const CheckResult& webhooks = Find(report, "webhooks");
  CHECK_FALSE(webhooks.ok);
  CHECK(webhooks.status == "error");
  CHECK(webhooks.message == "boom");
  const CheckResult& queue = Find(report, "queue");
  CHECK_FALSE(queue.ok);
  CHECK(queue.status == "error");
  CHECK(queue.message.find("exception") != std::string::npos);
  CHECK(report.status == HealthStatus::kDegraded);
}

TEST_CASE("HealthRegistry: criticality decides the overall status") {
  FakeEnv env;
  std::atomic<int> calls{0};
  struct Case {
    bool critical_ok, non_critical_ok;
    HealthStatus expected;
  };
  for (Case c : {Case{true, true, HealthStatus::kHealthy},
                 Case{true, false, HealthStatus::kDegraded},
                 Case{false, true, HealthStatus::kUnhealthy},
                 Case{false, false, HealthStatus::kUnhealthy}}) {
    HealthRegistry registry({absl::Seconds(2), &env});
    REQUIRE(registry
                .Register(Counting("database", &calls, c.critical_ok,
                                   Criticality::kCritical))
                .ok());
    REQUIRE(registry
                .Register(Counting("redis", &calls, c.non_critical_ok,
                                   Criticality::kNonCritical))
                .ok());
    CHECK(registry.Run().status == c.expected);
  }
  HealthRegistry empty({absl::Seconds(2), &env});
  HealthReport none = empty.Run();
  CHECK(none.status == HealthStatus::kHealthy);
  CHECK(none.checks.empty());
}

TEST_CASE("HealthStatusName: names each status") {
  CHECK(std::string(HealthStatusName(HealthStatus::kHealthy)) == "healthy");
  CHECK(std::string(HealthStatusName(HealthStatus::kDegraded)) == "degraded");
  CHECK(std::string(HealthStatusName(HealthStatus::kUnhealthy)) == "unhealthy");
}

TEST_CASE("HealthReport: ToJson renders the /health/deep shape") {
  HealthReport report;
  report.status = HealthStatus::kDegraded;
  report.timestamp = absl::FromUnixMillis(1'700'000'000'123);
  CheckResult db;
  db.status = "connected";
  db.details_json =
      R"({"response_time_ms": 1.5, "pool": {"size": 10}, "status": "x"})";
  CheckResult redis;
  redis.ok = false;
  redis.status = "unavailable";
  redis.message = "connection refused";
  CheckResult cache;
  cache.status = "operational";
  cache.details_json = "not json";
  CheckResult queue;
  queue.details_json = "[1, 2]";
  CheckResult bare;
  bare.ok = false;
  bare.status = "disabled";
  report.checks = {{"database", db},
                   {"redis", redis},
                   {"cache", cache},
                   {"queue", queue},
                   {"bare", bare}};

  std::string text = report.ToJson();
  nlohmann::json j = nlohmann::json::parse(text);
  CHECK(j["status"] == "degraded");
  CHECK(j["timestamp"] == "2023-11-14T22:13:20.123Z");
  CHECK(j["failing"] == nlohmann::json({"redis", "bare"}));
  CHECK(j["database"]["status"] == "connected");  // not the details' "x"
  CHECK(j["database"]["response_time_ms"] == 1.5);
  CHECK(j["database"]["pool"]["size"] == 10);
  CHECK_FALSE(j["database"].contains("error"));
  CHECK(j["redis"]["status"] == "unavailable");
  CHECK(j["redis"]["error"] == "connection refused");
  CHECK(j["cache"]["status"] == "operational");
  CHECK(j["cache"]["details_error"] == "not json");
  CHECK(j["queue"]["details_error"] == "[1, 2]");
  CHECK(j["bare"]["error"] == "disabled");
  // Top-level keys keep the documented order.
  CHECK(text.rfind(R"({"status":"degraded","timestamp":)", 0) == 0);
}

TEST_CASE("FailureCode: stable codes from dependency errors") {
  CHECK(FailureCode("unavailable",
                    "connection to server at \"10.0.0.5\", port 5432 "
                    "failed: Connection refused") == "CONNECTION_REFUSED");
  CHECK(FailureCode("error",
                    "FATAL:  password authentication failed for user "
                    "\"pggit\"") == "AUTH_FAILED");
  CHECK(FailureCode("error", "FATAL: role \"x\" does not exist") ==
        "AUTH_FAILED");
  CHECK(FailureCode("error", "NOAUTH Authentication required.") ==
        "AUTH_FAILED");
  CHECK(FailureCode("timeout", "check exceeded 2000 ms") == "TIMEOUT");
  CHECK(
      FailureCode("error", "could not translate host name \"db\" to address") ==
      "DNS_FAILED");
  CHECK(FailureCode("error", "FATAL: database \"x\" does not exist") ==
        "NOT_FOUND");
  CHECK(FailureCode("unavailable", "") == "UNAVAILABLE");
  CHECK(FailureCode("error", "something else") == "CHECK_FAILED");
}

TEST_CASE("HealthReport: details only with_details; codes always") {
  HealthReport report;
  report.status = HealthStatus::kUnhealthy;
  CheckResult db;
  db.ok = false;
  db.status = "unavailable";
  db.message =
      "connection to server at \"10.0.0.5\", port 5432 failed: "
      "Connection refused";
  db.details_json = R"({"response_time_ms": 3})";
  CheckResult schema;
  schema.ok = false;
  schema.status = "incompatible";
  schema.error_code = "SCHEMA_INCOMPATIBLE";
  report.checks = {{"database", db}, {"schema", schema}};
  nlohmann::json full = nlohmann::json::parse(report.ToJson(true));
  CHECK(full["database"]["error_code"] == "CONNECTION_REFUSED");
  CHECK(full["database"]["error"] == db.message);
  CHECK(full["schema"]["error_code"] == "SCHEMA_INCOMPATIBLE");
  std::string bare = report.ToJson(false);
  CHECK(bare.find("10.0.0.5") == std::string::npos);
  nlohmann::json j = nlohmann::json::parse(bare);
  CHECK(j["database"]["error_code"] == "CONNECTION_REFUSED");
  CHECK_FALSE(j["database"].contains("error"));
  CHECK(j["database"]["response_time_ms"] == 3);
}

TEST_CASE("HealthReport: ToJson of a healthy report has no failing list") {
  HealthReport report;
  report.timestamp = absl::FromUnixSeconds(0);
  report.checks = {{"database", CheckResult{}}};
  nlohmann::json j = nlohmann::json::parse(report.ToJson());
  CHECK(j["status"] == "healthy");
  CHECK(j["timestamp"] == "1970-01-01T00:00:00.000Z");
  CHECK_FALSE(j.contains("failing"));
  CHECK(j["database"]["status"] == "ok");
}

TEST_CASE("HealthReport: ToJson survives invalid UTF-8 and reserved names") {
  HealthReport report;
  report.status = HealthStatus::kUnhealthy;
  CheckResult bad;
  bad.ok = false;
  bad.status = "error";
  bad.message = "bad byte \xff here";
  report.checks = {{"database", bad}, {"status", CheckResult{}}};
  std::string text;
  CHECK_NOTHROW(text = report.ToJson());
  nlohmann::json j = nlohmann::json::parse(text);
  CHECK(j["status"] == "unhealthy");  // not replaced by the check "status"
  CHECK(j["database"]["error"].get<std::string>().find("bad byte") == 0);
}

TEST_CASE("HealthRegistry: Unregister removes a check") {
  FakeEnv env;
  HealthRegistry registry({absl::Seconds(2), &env});
  std::atomic<int> db_calls{0}, redis_calls{0};
  REQUIRE(registry.Register(Counting("database", &db_calls)).ok());
  REQUIRE(registry.Register(Counting("redis", &redis_calls, false)).ok());
  CHECK(registry.RunFresh().status == HealthStatus::kUnhealthy);

  registry.Unregister("redis");
  registry.Unregister("no-such-check");  // no-op
  HealthReport report = registry.RunFresh();
  REQUIRE(report.checks.size() == 1);
  CHECK(report.checks[0].first == "database");
  CHECK(report.status == HealthStatus::kHealthy);
  CHECK(redis_calls == 1);
  CHECK(db_calls == 2);
}

TEST_CASE("HealthRegistry: registering a name again replaces it in place") {
  FakeEnv env;
  HealthRegistry registry({absl::Seconds(2), &env});
  std::atomic<int> old_calls{0}, new_calls{0}, cache_calls{0};
  REQUIRE(registry.Register(Counting("database", &old_calls)).ok());
  REQUIRE(registry.Register(Counting("cache", &cache_calls)).ok());
  REQUIRE(registry.Register(Counting("database", &new_calls, false)).ok());

  HealthReport report = registry.RunFresh();
  REQUIRE(report.checks.size() == 2);
  CHECK(report.checks[0].first == "database");
  CHECK_FALSE(report.checks[0].second.ok);
  CHECK(report.checks[1].first == "cache");
  CHECK(old_calls == 0);
  CHECK(new_calls == 1);
}

TEST_CASE("HealthRegistry: Register rejects invalid checks, changing nothing") {
  FakeEnv env;
  HealthRegistry registry({absl::Seconds(2), &env});
  std::atomic<int> calls{0}, bad_calls{0};
  REQUIRE(registry.Register(Counting("database", &calls)).ok());

  HealthCheck no_name = Counting("", &bad_calls);
  HealthCheck reserved = Counting("status", &bad_calls);
  HealthCheck reserved2 = Counting("failing", &bad_calls);
  HealthCheck no_run = Counting("database", &bad_calls);
  no_run.run = nullptr;
  HealthCheck zero = Counting("database", &bad_calls);
  zero.timeout = absl::ZeroDuration();
  HealthCheck forever = Counting("database", &bad_calls);
  forever.timeout = absl::InfiniteDuration();
  for (const HealthCheck& bad :
       {no_name, reserved, reserved2, no_run, zero, forever}) {
    absl::Status s = registry.Register(bad);
    CHECK(s.code() == absl::StatusCode::kInvalidArgument);
    CHECK_FALSE(s.message().empty());
  }
  HealthReport report = registry.RunFresh();
  REQUIRE(report.checks.size() == 1);
  CHECK(report.checks[0].first == "database");
  CHECK(report.checks[0].second.ok);
  CHECK(calls == 1);
  CHECK(bad_calls == 0);
}

TEST_CASE("HealthOptionsFromConfig: HEALTH_CACHE_SECONDS") {
  Config c;
  c.health_cache = absl::Milliseconds(1500);
  HealthOptions o = HealthOptionsFromConfig(c);
  CHECK(o.cache_ttl == absl::Milliseconds(1500));
  CHECK(o.env == nullptr);
}

}  // namespace
}  // namespace pggitops
