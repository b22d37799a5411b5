// pggit-api end to end: the real binary against the harness's PostgreSQL.
// Commands (migrate, check-config, version), start-up refusals, health and
// metrics endpoints, and the lifecycle of CONTRACT section 9.
#include "tests/harness/daemon.h"

#include <signal.h>
#include <sys/stat.h>

#include <chrono>
#include <cstdio>
#include <future>
#include <memory>
#include <pqxx/pqxx>
#include <string>

#include "doctest/doctest.h"
#include "httplib.h"
#include "nlohmann/json.hpp"
#include "testing/temp_dir.h"
#include "tests/harness/harness.h"

namespace pggitops {
namespace {

using harness::Process;

using harness::ApiBinary;
using harness::Daemon;

TEST_CASE("migrate: twice, and from two processes at once, leaves one schema") {
  std::string dsn = harness::FreshDatabase("daemon_migrate");
  Process a({ApiBinary(), "migrate"}, {{"DATABASE_URL", dsn}});
  Process b({ApiBinary(), "migrate"}, {{"DATABASE_URL", dsn}});
  CHECK(a.Wait(60000) == 0);
  CHECK(b.Wait(60000) == 0);
  Process again({ApiBinary(), "migrate"}, {{"DATABASE_URL", dsn}});
  CHECK(again.Wait(60000) == 0);
  CHECK(again.Output().find("up to date") != std::string::npos);
  std::string versions = harness::AdminQuery(
      "daemon_migrate",
      "SELECT count(*) = max(version) FROM pggit.schema_migrations");
  CHECK(versions.find('t') != std::string::npos);
}

TEST_CASE("serve: refuses an unmigrated database and invalid configuration") {
  std::string dsn = harness::FreshDatabase("daemon_unmigrated");
  Process p({ApiBinary(), "serve"}, Daemon::BaseEnv(dsn, harness::FreePort()));
  CHECK(p.Wait(30000) == 1);
  CHECK(p.Output().find("pggit-api migrate") != std::string::npos);

  auto env = Daemon::BaseEnv(dsn, harness::FreePort());
  env["DATABASE_POOL_SIZE"] = "0";
  Process bad({ApiBinary(), "serve"}, env);
  CHECK(bad.Wait(10000) == 1);
  CHECK(bad.Output().find("DATABASE_POOL_SIZE") != std::string::npos);

  env = Daemon::BaseEnv(dsn, harness::FreePort());
  env["API_PORT"] = "99999";
  Process bad_port({ApiBinary(), "check-config"}, env);
  CHECK(bad_port.Wait(10000) == 1);
  CHECK(bad_port.Output().find("API_PORT") != std::string::npos);
}

TEST_CASE("check-config redacts secrets; version prints the schema range") {
  auto env = Daemon::BaseEnv(
      "postgresql://pggit:s3cr3t-pw@127.0.0.1:5432/pggit", 8000);
  Process p({ApiBinary(), "check-config"}, env);
  CHECK(p.Wait(10000) == 0);
  CHECK(p.Output().find("s3cr3t-pw") == std::string::npos);
  CHECK(p.Output().find("DATABASE_URL") != std::string::npos);
  Process v({ApiBinary(), "version"});
  CHECK(v.Wait(10000) == 0);
  CHECK(v.Output().find("pggit-api ") != std::string::npos);
}

TEST_CASE("serve: health, readiness, deep health and metrics") {
  Daemon d("daemon_serve");
  httplib::Client c = d.Client();
  auto r = c.Get("/health");
  REQUIRE(r);
  auto j = nlohmann::json::parse(r->body);
  CHECK(j["status"] == "healthy");
  CHECK(j["version"].is_string());
  CHECK(j["uptime_seconds"].get<double>() >= 0);
  CHECK(j["timestamp"].get<std::string>().back() == 'Z');

  r = c.Get("/health/deep");
  REQUIRE(r);
  CHECK(r->status == 200);
  j = nlohmann::json::parse(r->body);
  CHECK(j["status"] == "healthy");
  CHECK(j["schema"]["status"] == "ok");
  CHECK(j["schema"]["version"] == j["schema"]["expected_version"]);

  r = c.Get("/metrics");
  REQUIRE(r);
  CHECK(r->status == 200);
  CHECK(r->get_header_value("Content-Type").find("version=0.0.4") !=
        std::string::npos);
  for (const char* series :
       {"http_requests_total{", "http_request_duration_seconds_bucket{",
        "http_request_size_bytes_bucket{", "process_resident_memory_bytes ",
        "process_cpu_seconds_total ", "process_open_fds ",
        "process_start_time_seconds ", "pggit_build_info{version="}) {
    CHECK_MESSAGE(r->body.find(series) != std::string::npos, series);
  }
  r = c.Get("/api/v1/nothing-here");
  REQUIRE(r);
  CHECK(r->status == 404);
  CHECK(nlohmann::json::parse(r->body)["error_code"] == "RESOURCE_NOT_FOUND");
  CHECK(d.RssBytes() > 0);

  d.Signal(SIGTERM);
  CHECK(d.Wait(30000) == 0);
  CHECK(d.RssBytes() == -1);
}

TEST_CASE("SIGTERM: readiness 503 during the grace period, then exit 0") {
  Daemon d("daemon_drain", {{"SHUTDOWN_GRACE_SECONDS", "2"}});
  d.Signal(SIGTERM);
  CHECK(harness::WaitForHttp(d.port(), "/health/ready", 503,
                             std::chrono::milliseconds(1500)));
  // Liveness still answers while the listener is open.
  httplib::Client c = d.Client();
  auto r = c.Get("/health");
  REQUIRE(r);
  CHECK(r->status == 200);
  CHECK(d.Wait(30000) == 0);
  CHECK(d.Output().find("\"message\":\"stopped\"") != std::string::npos);
}

TEST_CASE("SIGTERM during a slow request lets it finish, then exit 0") {
  Daemon d("daemon_slow");
  std::future<int> slow;  // declared first: the lock goes before it waits
  // Hold a lock the schema check needs, so /health/deep waits until the
  // test lets it go.
  const std::string admin = harness::Get().admin_dsn;
  pqxx::connection locker(admin.substr(0, admin.rfind('/')) + "/daemon_slow");
  auto lock = std::make_unique<pqxx::work>(locker);
  lock->exec("LOCK TABLE pggit.schema_migrations IN ACCESS EXCLUSIVE MODE");
  slow = std::async(std::launch::async, [&d] {
    httplib::Client c = d.Client();
    auto r = c.Get("/health/deep");
    return r ? r->status : -1;
  });
  // The request is in the daemon, its query waiting for the lock.
  const auto waiting = [&d] {
    return d.Sql(
               "SELECT count(*) FROM pg_locks l JOIN pg_class c ON c.oid = "
               "l.relation WHERE c.relname = 'schema_migrations' AND NOT "
               "l.granted") != "0";
  };
  REQUIRE(harness::WaitFor(waiting, std::chrono::seconds(10)));
  d.Signal(SIGTERM);
  REQUIRE(harness::WaitFor(
      [&d] {
        return d.Output().find("\"message\":\"draining: readiness now 503\"") !=
               std::string::npos;
      },
      std::chrono::seconds(10)));
  // Draining, and the request still waits: it really is slow, and the
  // signal did not cut it off.
  CHECK(waiting());
  CHECK(slow.wait_for(std::chrono::seconds(0)) == std::future_status::timeout);
  lock->abort();
  const int status = slow.get();
  CHECK((status == 200 || status == 503));  // answered
  CHECK(d.Wait(30000) == 0);
}

TEST_CASE("SIGHUP reopens PGGIT_LOG_FILE") {
  testing::TempDir dir("pggit-log-");
  const std::string log = dir.path() + "/error.log";
  Daemon d("daemon_sighup", {{"PGGIT_LOG_FILE", log}});
  struct stat st;
  REQUIRE(stat(log.c_str(), &st) == 0);
  REQUIRE(std::rename(log.c_str(), (log + ".1").c_str()) == 0);
  d.Signal(SIGHUP);
  CHECK(harness::WaitFor([&] { return stat(log.c_str(), &st) == 0; },
                         std::chrono::seconds(5)));
  d.Signal(SIGTERM);
  CHECK(d.Wait(30000) == 0);
}

}  // namespace
}  // namespace pggitops
