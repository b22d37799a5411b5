// Checks the integration-test harness against the real servers it manages.
#include "tests/harness/harness.h"

#include <signal.h>
#include <sys/stat.h>

#include <chrono>
#include <stdexcept>
#include <string>

#include "doctest/doctest.h"

namespace pggitops::harness {
namespace {

// Runs `sql` through psql as whoever `dsn` names; returns exit code and
// output (unaligned, tuples only).
int Psql(const std::string& dsn, const std::string& sql, std::string* out) {
  Process p({Get().pgbin + "/psql", "-X", "-q", "-A", "-t", "-v",
             "ON_ERROR_STOP=1", "-d", dsn, "-c", sql},
            {{"PGCONNECT_TIMEOUT", "5"}});
  int code = p.Wait(60'000);
  *out = p.Output();
  while (!out->empty() && out->back() == '\n') out->pop_back();
  return code;
}

bool Exists(const std::string& path) {
  struct stat st;
  return stat(path.c_str(), &st) == 0;
}

TEST_CASE("harness: PostgreSQL answers as pggit with pg_stat_statements") {
  const Services& s = Get();
  CHECK(s.pgport > 0);
  CHECK(s.pghost == "127.0.0.1");
  std::string out;
  REQUIRE(Psql(s.dsn, "SELECT current_user, 1", &out) == 0);
  CHECK(out == "pggit|1");
  CHECK(AdminQuery("postgres", "SHOW shared_preload_libraries")
            .find("pg_stat_statements") != std::string::npos);
  CHECK(AdminQuery("postgres",
                   "SELECT rolsuper FROM pg_roles WHERE "
                   "rolname = 'pggit'") == "f");
  CHECK_THROWS_AS(AdminQuery("postgres", "SELECT * FROM no_such_table"),
                  std::runtime_error);
}

TEST_CASE("harness: FreshDatabase recreates a database, even when in use") {
  std::string dsn = FreshDatabase("harness_selftest_db");
  CHECK(dsn.find("/harness_selftest_db") != std::string::npos);
  std::string out;
  REQUIRE(Psql(dsn,
               "CREATE TABLE t (x int); INSERT INTO t VALUES (7); "
               "SELECT x FROM t",
               &out) == 0);
  CHECK(out == "7");
  CHECK(AdminQuery("harness_selftest_db",
                   "SELECT count(*) FROM pg_extension WHERE extname = "
                   "'pg_stat_statements'") == "1");

  // A session still open in the old database does not stop the drop.
  Process holder(
      {Get().pgbin + "/psql", "-X", "-d", dsn, "-c", "SELECT pg_sleep(60)"});
  WaitFor(
      [] {
        return AdminQuery("postgres",
                          "SELECT count(*) FROM pg_stat_activity WHERE "
                          "datname = 'harness_selftest_db'") != "0";
      },
      std::chrono::seconds(10));
  CHECK(FreshDatabase("harness_selftest_db") == dsn);
  CHECK(holder.Wait(10'000) != 0);  // its session was terminated
  CHECK(Psql(dsn, "SELECT x FROM t", &out) != 0);
  CHECK(out.find("does not exist") != std::string::npos);
  REQUIRE(Psql(dsn, "SELECT current_database()", &out) == 0);
  CHECK(out == "harness_selftest_db");
  AdminQuery("postgres", "DROP DATABASE harness_selftest_db WITH (FORCE)");
}

TEST_CASE("harness: FreshDatabase refuses a bad name and changes nothing") {
  CHECK_THROWS_AS(FreshDatabase("Bad-Name"), std::runtime_error);
  CHECK_THROWS_AS(FreshDatabase("x\"; DROP DATABASE pggit; --"),
                  std::runtime_error);
  CHECK_THROWS_AS(FreshDatabase(""), std::runtime_error);
  CHECK(AdminQuery("postgres",
                   "SELECT count(*) FROM pg_database WHERE "
                   "datname = 'pggit'") == "1");
}

TEST_CASE("harness: PostgreSQL stop, start and restart") {
  const Services& s = Get();
  std::string before =
      AdminQuery("postgres", "SELECT pg_postmaster_start_time()");
  RestartPostgres();
  std::string out;
  REQUIRE(Psql(s.dsn, "SELECT pg_postmaster_start_time()", &out) == 0);
  CHECK(out != before);

  StopPostgres();
  CHECK(Psql(s.dsn, "SELECT 1", &out) != 0);
  StartPostgres();
  REQUIRE(Psql(s.dsn, "SELECT 1", &out) == 0);
  CHECK(out == "1");
}

TEST_CASE("harness: Redis pause, resume, stop and start") {
  REQUIRE(RedisPing(2000));
  PauseRedis();
  CHECK_FALSE(RedisPing(300));
  ResumeRedis();
  CHECK(RedisPing(2000));

  const int port = Get().redis_port;
  const pid_t old_pid = Get().redis_pid;
  StopRedis();
  CHECK_FALSE(RedisPing(300));
  StartRedis();
  CHECK(RedisPing(2000));
  CHECK(Get().redis_port == port);
  CHECK(Get().redis_pid != old_pid);
  CHECK(Get().redis_pid > 0);
  CHECK(std::string(std::getenv("PGGITOPS_TEST_REDIS_PID")) ==
        std::to_string(Get().redis_pid));
}

TEST_CASE("harness: Process captures output, exit codes and signals") {
  Process p({"sh", "-c", "echo out; echo err >&2; exit 3"});
  CHECK(p.Wait(10'000) == 3);
  CHECK_FALSE(p.Running());
  CHECK(p.Output() == "out\nerr\n");

  Process env({"sh", "-c", "printf %s \"$HARNESS_X\""}, {{"HARNESS_X", "y z"}});
  CHECK(env.Wait(10'000) == 0);
  CHECK(env.Output() == "y z");

  Process sleeper({"sleep", "30"});
  CHECK(sleeper.Wait(50) == -1);
  CHECK(sleeper.Running());
  sleeper.Signal(SIGTERM);
  CHECK(sleeper.Wait(10'000) == 128 + SIGTERM);
  CHECK_FALSE(sleeper.Running());

  Process missing({"/nonexistent/binary"});
  CHECK(missing.Wait(10'000) == 127);
  CHECK(missing.Output().find("/nonexistent/binary") != std::string::npos);
}

TEST_CASE("harness: Run, FreePort and paths") {
  std::string out;
  CHECK(Run("echo hi; echo there >&2", &out) == 0);
  CHECK(out == "hi\nthere\n");
  CHECK(Run("exit 4", &out) == 4);

  int a = FreePort();
  int b = FreePort();
  CHECK(a > 0);
  CHECK(a < 65536);
  CHECK(b > 0);

  CHECK(Exists(SourcePath("tests/harness/harness.h")));
  CHECK(Exists(BuildPath("tests/harness")));
}

}  // namespace
}  // namespace pggitops::harness
