// The daemon fixture (see daemon.h): pggit-api migrate, then serve, driven
// through harness::Process.
#include "tests/harness/daemon.h"

#include <signal.h>

#include <fstream>
#include <sstream>
#include <utility>
#include <vector>

namespace pggitops::harness {

bool WaitForHttp(int port, const std::string& path, int status,
                 std::chrono::milliseconds limit,
                 const httplib::Headers& headers) {
  return WaitFor(
      [&] {
        httplib::Client c("127.0.0.1", port);
        c.set_connection_timeout(1, 0);
        c.set_read_timeout(10, 0);
        auto r = c.Get(path, headers);
        return r && r->status == status;
      },
      limit);
}

std::string ApiBinary() { return BuildPath("server/pggit-api"); }

std::string MigratedDatabase(const std::string& name) {
  const std::string dsn = FreshDatabase(name);
  Process m({ApiBinary(), "migrate"}, {{"DATABASE_URL", dsn}});
  const int code = m.Wait(60000);
  if (code != 0) {
    Fail("pggit-api migrate of " + name + " failed (exit " +
         std::to_string(code) + "):\n" + m.Output());
  }
  return dsn;
}

EnvMap Daemon::BaseEnv(const std::string& dsn, int port) {
  return {{"DATABASE_URL", dsn},
          {"API_HOST", "127.0.0.1"},
          {"API_PORT", std::to_string(port)},
          {"HEALTH_CACHE_SECONDS", "0"},
          {"SHUTDOWN_GRACE_SECONDS", "0"},
          {"API_LOG_LEVEL", "INFO"}};
}

Daemon::Daemon(const std::string& db, const EnvMap& env)
    : Daemon([&] {
        Options o;
        o.db = db;
        o.env = env;
        return o;
      }()) {}

Daemon::Daemon(Options options)
    : db_(std::move(options.db)), dsn_(std::move(options.dsn)) {
  if (db_.empty()) Fail("Daemon: Options.db is required");
  if (dsn_.empty()) dsn_ = MigratedDatabase(db_);
  port_ = FreePort();
  EnvMap env = BaseEnv(dsn_, port_);
  for (const auto& [k, v] : options.env) env[k] = v;
  process_ = std::make_unique<Process>(
      std::vector<std::string>{ApiBinary(), "serve"}, env);
  if (!WaitForHttp(port_, "/health/ready", 200, options.ready_limit)) {
    Fail("pggit-api serve on port " + std::to_string(port_) + " (database " +
         db_ + ") was not ready within " +
         std::to_string(options.ready_limit.count()) + " ms:\n" +
         process_->Output());
  }
}

Daemon::~Daemon() {
  if (process_->Running()) {
    process_->Signal(SIGTERM);
    process_->Wait(30000);
  }
}

httplib::Client Daemon::Client() const {
  httplib::Client c("127.0.0.1", port_);
  c.set_read_timeout(30, 0);
  return c;
}

std::string Daemon::Sql(const std::string& sql) const {
  return AdminQuery(db_, sql);
}

int64_t Daemon::RssBytes() const {
  std::ifstream status("/proc/" + std::to_string(process_->pid()) + "/status");
  std::string line;
  while (std::getline(status, line)) {
    if (line.rfind("VmRSS:", 0) != 0) continue;
    std::istringstream fields(line.substr(6));
    int64_t kb = -1;
    fields >> kb;
    return kb < 0 ? -1 : kb * 1024;
  }
  return -1;
}

}  // namespace pggitops::harness
