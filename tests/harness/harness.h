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
#ifndef PGGITOPS_TESTS_HARNESS_HARNESS_H_
#define PGGITOPS_TESTS_HARNESS_HARNESS_H_

#include <sys/types.h>

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

// The run's services, started on first use if the environment has none.
const Services& Get();

// Creates a new database owned by `pggit`, provisioned like the main one
// (extensions, grants) but empty, and returns its DSN as the pggit role.
// `name` must be unique in the run (use the test's name); an existing
// database of that name is dropped first.
std::string FreshDatabase(const std::string& name);
// Runs `sql` as the superuser on database `db`; aborts the test on error.
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

// A free TCP port on 127.0.0.1.
int FreePort();

// Path of a built binary, e.g. BuildPath("server/pggit-api"), from the
// PGGITOPS_BUILD_DIR environment variable set by meson test.
std::string BuildPath(const std::string& relative);
// Path of a source file, from PGGITOPS_SOURCE_DIR set by meson test.
std::string SourcePath(const std::string& relative);

// A child process with captured output; killed (SIGKILL) on destruction if
// still running.
class Process {
 public:
  // Starts argv[0] with `env` added to (and overriding) this environment.
  Process(const std::vector<std::string>& argv,
          const std::map<std::string, std::string>& env = {});
  ~Process();
  Process(const Process&) = delete;
  Process& operator=(const Process&) = delete;

  pid_t pid() const { return pid_; }
  void Signal(int sig);
  // Waits up to `timeout_ms`; returns the exit code, 128+signal when killed
  // by a signal, or -1 on time-out (the process keeps running).
  int Wait(int timeout_ms);
  bool Running();
  // Everything the process wrote to stdout and stderr so far.
  std::string Output();

 private:
  pid_t pid_ = -1;
  int exit_code_ = -1;
  std::string output_path_;
};

// Runs a shell command and returns its exit code; output goes to `out`.
int Run(const std::string& command, std::string* out = nullptr);

}  // namespace pggitops::harness

#endif  // PGGITOPS_TESTS_HARNESS_HARNESS_H_
