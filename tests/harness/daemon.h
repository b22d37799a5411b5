// The daemon under test: the real `pggit-api serve` (built beside the tests)
// on a migrated database of the harness's PostgreSQL, listening on a free
// port of 127.0.0.1, and the HTTP readiness wait every test uses.
//
//   harness::Daemon d("api_alerts_crud", {{"RATE_LIMIT_PER_MINUTE", "0"}});
//   httplib::Client c = d.Client();
//   auto r = c.Get("/api/v1/alerts");
//   CHECK(d.Sql("SELECT count(*) FROM pggit.alerts") == "0");
//
// Environment: Daemon::BaseEnv() and the caller's overrides on top, added
// to this process's environment. The base sets no REDIS_URL: a suite that
// wants Redis names a database number of its own (the L2 keys carry no
// database name, so daemons of two suites must not share one).
//
// Failures (migration, start-up, readiness) throw std::runtime_error with
// the reason and the daemon's output, like the rest of the harness.
#ifndef PGGITOPS_TESTS_HARNESS_DAEMON_H_
#define PGGITOPS_TESTS_HARNESS_DAEMON_H_

#include <sys/types.h>

#include <chrono>
#include <cstdint>
#include <map>
#include <memory>
#include <string>

#include "httplib.h"
#include "tests/harness/harness.h"

namespace pggitops::harness {

using EnvMap = std::map<std::string, std::string>;

// Polls GET http://127.0.0.1:`port``path` (with `headers`, a new connection
// each time) with WaitFor until it answers `status`; returns whether it did
// within `limit`.
bool WaitForHttp(int port, const std::string& path, int status,
                 std::chrono::milliseconds limit,
                 const httplib::Headers& headers = {});

// BuildPath("server/pggit-api").
std::string ApiBinary();

// FreshDatabase(name), migrated by `pggit-api migrate`; returns its DSN.
std::string MigratedDatabase(const std::string& name);

class Daemon {
 public:
  struct Options {
    // The database's name (for Sql()). Required.
    std::string db;
    // Empty: a FreshDatabase(db), migrated. Otherwise the DSN of database
    // `db`, already migrated (and filled) by the caller, served as it is.
    std::string dsn;
    // Overrides of (and additions to) BaseEnv.
    EnvMap env;
    // How long /health/ready may take to answer 200.
    std::chrono::milliseconds ready_limit{30000};
  };

  // DATABASE_URL=`dsn`, API_HOST=127.0.0.1, API_PORT=`port`,
  // HEALTH_CACHE_SECONDS=0, SHUTDOWN_GRACE_SECONDS=0, API_LOG_LEVEL=INFO.
  // Also for tests that run `pggit-api` themselves (refusals, check-config).
  static EnvMap BaseEnv(const std::string& dsn, int port);

  // Migrates a fresh database `db` and serves it with `env` over BaseEnv.
  explicit Daemon(const std::string& db, const EnvMap& env = {});
  explicit Daemon(Options options);
  // SIGTERM and up to 30 s to exit; then SIGKILL.
  ~Daemon();
  Daemon(const Daemon&) = delete;
  Daemon& operator=(const Daemon&) = delete;

  int port() const { return port_; }
  const std::string& dsn() const { return dsn_; }
  const std::string& db() const { return db_; }
  pid_t pid() const { return process_->pid(); }

  // A client of the daemon (read timeout 30 s).
  httplib::Client Client() const;
  // AdminQuery(db(), sql): as the superuser, psql's unaligned output.
  std::string Sql(const std::string& sql) const;

  // The daemon process (see Process).
  void Signal(int sig) { process_->Signal(sig); }
  int Wait(int timeout_ms) { return process_->Wait(timeout_ms); }
  bool Running() { return process_->Running(); }
  std::string Output() { return process_->Output(); }

  // The daemon's resident set (VmRSS of /proc/<pid>/status) in bytes; -1
  // once it has exited.
  int64_t RssBytes() const;

 private:
  std::string db_;
  std::string dsn_;
  int port_ = 0;
  std::unique_ptr<Process> process_;
};

}  // namespace pggitops::harness

#endif  // PGGITOPS_TESTS_HARNESS_DAEMON_H_
