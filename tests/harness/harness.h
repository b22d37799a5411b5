// The integration-test harness: real PostgreSQL 15 and Redis on loopback.
//
// One PostgreSQL cluster and one Redis serve a whole test run. scripts/test
// starts them with `tests/harness/services start DIR` and exports the
// PGGITOPS_TEST_* variables below; a test executable run by hand without
// them starts its own (and stops them at exit), so an integration test never
// skips for want of a server.
//
// Environment written by `services start` (DIR/env):
//   PGGITOPS_TEST_PGBIN        /usr/lib/postgresql/15/bin
//   PGGITOPS_TEST_PGDATA       the cluster's data folder (owned by postgres)
//   PGGITOPS_TEST_PGHOST       127.0.0.1
//   PGGITOPS_TEST_PGPORT       a free port
//   PGGITOPS_TEST_ADMIN_DSN    postgresql://postgres@127.0.0.1:PORT/postgres
//   PGGITOPS_TEST_DSN          postgresql://pggit:pggit@127.0.0.1:PORT/pggit
//                              (provisioned by ops/scripts/provision-db, not
//                              migrated)
//   PGGITOPS_TEST_REDIS_PORT   a free port
//   PGGITOPS_TEST_REDIS_PID    redis-server's pid (to SIGSTOP/SIGCONT/kill)
//   PGGITOPS_TEST_REDIS_URL    redis://127.0.0.1:PORT
//   PGGITOPS_TEST_STATE_DIR    DIR
//
// Failures: every function below throws std::runtime_error with the reason
// (also printed to stderr) when the harness cannot do what it promises, so
// doctest reports the calling test as failed instead of skipping it.
//
// Thread safety: Get() may be called from any thread. The control functions
// (FreshDatabase, Stop/Start/Restart*, Pause/Resume*) change shared servers
// and Services::redis_pid: call them from one thread at a time, and register
// tests that call them with `is_parallel: false`, since every test of the run
// shares the same PostgreSQL and Redis.
#ifndef PGGITOPS_TESTS_HARNESS_HARNESS_H_
#define PGGITOPS_TESTS_HARNESS_HARNESS_H_

#include <sys/types.h>

#include <chrono>
#include <functional>
#include <map>
#include <string>
#include <vector>

namespace pggitops::harness {

struct Services {
  std::string pgbin, pgdata, pghost, admin_dsn, dsn, redis_url, state_dir;
  int pgport = 0;
  int redis_port = 0;
  pid_t redis_pid = 0;
};

// The run's services, started on first use if the environment has none
// (then stopped when the process exits, or by a watchdog if it crashes).
// The first call also brings back a server an earlier test left stopped or
// paused.
const Services& Get();

// Creates a new database owned by `pggit`, provisioned like the main one
// (extensions, grants) but empty, and returns its DSN as the pggit role.
// `name` must be unique in the run (use the test's name); an existing
// database of that name is dropped first, even with open sessions.
// REQUIRES: name matches [a-z][a-z0-9_]{0,62}.
std::string FreshDatabase(const std::string& name);
// Runs `sql` as the superuser on database `db` with psql and returns its
// unaligned, tuples-only output without the final newline ("1" for
// SELECT 1; rows on separate lines, columns separated by '|').
std::string AdminQuery(const std::string& db, const std::string& sql);

// PostgreSQL control (pg_ctl as the postgres user); each waits until done.
void StopPostgres();
void StartPostgres();
void RestartPostgres();

// Redis control by pid: stop (SIGTERM, waits), start again on the same port
// (updates Get().redis_pid), pause (SIGSTOP) and resume (SIGCONT).
void StopRedis();
void StartRedis();
void PauseRedis();
void ResumeRedis();
// True when Redis answers PING with PONG within `timeout_ms`.
bool RedisPing(int timeout_ms);

// A free TCP port on 127.0.0.1.
int FreePort();

// Evaluates `done` every 20 ms until it returns true or `limit` has passed,
// and returns its last evaluation (one is always made at or after the
// limit). The one polling loop of the tests: poll on real state with it
// instead of sleeping a fixed time. `done` may assert (REQUIRE throws out).
bool WaitFor(const std::function<bool()>& done,
             std::chrono::milliseconds limit);

// Path of a built binary, e.g. BuildPath("server/pggit-api"), from the
// PGGITOPS_BUILD_DIR environment variable set by meson test (else the build
// folder this harness was compiled in).
std::string BuildPath(const std::string& relative);
// Path of a source file, from PGGITOPS_SOURCE_DIR set by meson test (else
// the source folder this harness was compiled from).
std::string SourcePath(const std::string& relative);

// A child process with captured output; killed (SIGKILL) on destruction if
// still running.
class Process {
 public:
  // Starts argv[0] (looked up in PATH) with `env` added to (and overriding)
  // this environment, stdin on /dev/null and stdout and stderr both captured.
  // An argv[0] that cannot be run gives exit code 127 and a message in
  // Output().
  Process(const std::vector<std::string>& argv,
          const std::map<std::string, std::string>& env = {});
  ~Process();
  Process(const Process&) = delete;
  Process& operator=(const Process&) = delete;

  pid_t pid() const { return pid_; }
  void Signal(int sig);
  // Waits up to `timeout_ms` (forever when negative); returns the exit code,
  // 128+signal when killed by a signal, or -1 on time-out (the process keeps
  // running).
  int Wait(int timeout_ms);
  bool Running();
  // Everything the process wrote to stdout and stderr so far.
  std::string Output();

 private:
  pid_t pid_ = -1;
  bool reaped_ = false;
  int exit_code_ = -1;
  int output_fd_ = -1;  // an unlinked file holding stdout and stderr
};

// Prints "harness: `what`" on stderr and throws std::runtime_error with it:
// how the harness fails (see the top of this file).
[[noreturn]] void Fail(const std::string& what);

// Runs a shell command (sh -c) and returns its exit code (128+signal when
// killed). Its stdout and stderr go to `out`; with no `out`, they are copied
// to stderr when the command fails, so the test log shows why.
int Run(const std::string& command, std::string* out = nullptr);

}  // namespace pggitops::harness

#endif  // PGGITOPS_TESTS_HARNESS_HARNESS_H_
