// Helpers of the pggit-ops integration tests: a migrated database of the
// harness's PostgreSQL, a .env for it (read by pggit-ops and by the
// daemon), pggit-api run as "pggit-api.service" by tests/integration/ops/
// fake-systemctl (this machine runs no systemd), and pggit-ops itself, run
// from the source tree with --json and its output parsed.
#ifndef PGGITOPS_TESTS_INTEGRATION_OPS_OPS_TEST_UTIL_H_
#define PGGITOPS_TESTS_INTEGRATION_OPS_OPS_TEST_UTIL_H_

#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

#include <chrono>
#include <fstream>
#include <functional>
#include <map>
#include <string>
#include <thread>
#include <vector>

#include "doctest/doctest.h"
#include "httplib.h"
#include "nlohmann/json.hpp"
#include "tests/harness/harness.h"
#include "tests/integration/api/api_test_util.h"

namespace pggitops::ops_test {

using nlohmann::json;
using Clock = std::chrono::steady_clock;

// 'text' for sh -c.
inline std::string Quote(const std::string& s) {
  std::string out = "'";
  for (char c : s) {
    if (c == '\'') {
      out += "'\\''";
    } else {
      out += c;
    }
  }
  return out + "'";
}

// Polls `done` every 50 ms for up to `timeout_ms`.
inline bool PollUntil(int timeout_ms, const std::function<bool()>& done) {
  auto deadline = Clock::now() + std::chrono::milliseconds(timeout_ms);
  while (Clock::now() < deadline) {
    if (done()) return true;
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  return done();
}

struct OpsResult {
  int code = -1;
  std::string out;  // stdout
  std::string err;  // stderr
  json j;           // stdout parsed (with --json)

  // The check named `name` (the first), or null.
  json Check(const std::string& name) const {
    for (const json& c : j.value("checks", json::array())) {
      if (c["name"] == name) return c;
    }
    return nullptr;
  }
  std::string Level(const std::string& name) const {
    json c = Check(name);
    return c.is_null() ? "(none)" : c["level"].get<std::string>();
  }
  // Every message of the checks named `name`, joined.
  std::string Messages(const std::string& name) const {
    std::string all;
    for (const json& c : j.value("checks", json::array())) {
      if (c["name"] == name) all += c["message"].get<std::string>() + "\n";
    }
    return all;
  }
  std::string Causes() const {
    std::string all;
    for (const json& c : j.value("likely_causes", json::array())) {
      all += c.get<std::string>() + "\n";
    }
    return all;
  }
  std::string Actions() const {
    std::string all;
    for (const json& c : j.value("actions", json::array())) {
      all += c.get<std::string>() + "\n";
    }
    return all;
  }
  std::string Dump() const { return "stdout:\n" + out + "\nstderr:\n" + err; }
};

// A migrated database, its .env, the daemon (through fake-systemctl) and
// pggit-ops. Files live in a temporary folder under /var/tmp.
class Ops {
 public:
  // `name` names the database (see harness::FreshDatabase). `dotenv` adds
  // to (or, with an empty value, removes from) the default .env.
  explicit Ops(const std::string& name,
               const std::map<std::string, std::string>& dotenv = {},
               bool migrate = true)
      : db(name) {
    char tmpl[] = "/var/tmp/pggitops-ops.XXXXXX";
    REQUIRE(mkdtemp(tmpl) != nullptr);
    dir = tmpl;
    chmod(dir.c_str(), 0755);
    etc = dir + "/etc";
    backups = dir + "/backups";
    systemd = dir + "/systemd";
    REQUIRE(harness::Run("mkdir -p " + Quote(etc) + " " + Quote(systemd)) == 0);
    dsn = harness::FreshDatabase(name);
    if (migrate) Migrate();
    port = harness::FreePort();
    const harness::Services& s = harness::Get();
    env_file = {
        {"DATABASE_URL", dsn},
        {"API_HOST", "127.0.0.1"},
        {"API_PORT", std::to_string(port)},
        {"REDIS_URL", s.redis_url + "/5"},
        {"PGGIT_ADMIN_URL", s.admin_dsn},
        {"BACKUP_DIR", backups},
        {"PGGIT_LOG_FILE", dir + "/error.log"},
        {"HEALTH_CACHE_SECONDS", "0"},
        {"SHUTDOWN_GRACE_SECONDS", "0"},
        {"SHUTDOWN_TIMEOUT", "10"},
        {"RATE_LIMIT_PER_MINUTE", "0"},
        {"API_LOG_LEVEL", "INFO"},
    };
    for (const auto& [k, v] : dotenv) {
      if (v.empty()) {
        env_file.erase(k);
      } else {
        env_file[k] = v;
      }
    }
    WriteDotenv();
  }
  ~Ops() {
    Systemctl("stop");
    harness::Run("rm -rf " + Quote(dir));
  }
  Ops(const Ops&) = delete;
  Ops& operator=(const Ops&) = delete;

  void Migrate() {
    harness::Process m({Api(), "migrate"}, {{"DATABASE_URL", dsn}});
    REQUIRE_MESSAGE(m.Wait(60000) == 0, m.Output());
  }

  static std::string Api() { return harness::BuildPath("server/pggit-api"); }
  static std::string Tool() { return harness::SourcePath("ops/bin/pggit-ops"); }
  static std::string Fake(const std::string& name) {
    return harness::SourcePath("tests/integration/ops/" + name);
  }

  // Writes etc/.env from env_file, as an operator would (quoted values).
  void WriteDotenv() const {
    std::ofstream f(etc + "/.env");
    f << "# written by the ops tests\n";
    for (const auto& [k, v] : env_file) f << k << "='" << v << "'\n";
  }

  // The seams: fake systemctl and journalctl, the daemon's binary.
  std::string SeamEnv() const {
    return "PGGIT_OPS_SYSTEMCTL=" + Quote(Fake("fake-systemctl")) +
           " PGGIT_OPS_JOURNALCTL=" + Quote(Fake("fake-journalctl")) +
           " PGGIT_FAKE_SYSTEMD_DIR=" + Quote(systemd) +
           " PGGIT_FAKE_WORKDIR=" + Quote(etc) +
           " PGGIT_FAKE_API_BIN=" + Quote(Api()) +
           " PGGIT_FAKE_OWNER_PID=" + std::to_string(getpid()) +
           " PGGIT_API_BIN=" + Quote(Api());
  }

  // pggit-ops ARGS in etc/ (so it reads ./.env), with --json unless
  // `text`; `env` adds variables (VAR=value words).
  OpsResult Run(const std::vector<std::string>& args,
                const std::string& env = "", bool text = false) const {
    std::string cmd = "cd " + Quote(etc) + " && env " + SeamEnv() + " " + env +
                      " " + Quote(Tool());
    if (!text) cmd += " --json";
    for (const std::string& a : args) cmd += " " + Quote(a);
    const std::string err_file = dir + "/ops-stderr.txt";
    cmd += " 2>" + Quote(err_file);
    OpsResult r;
    r.code = harness::Run(cmd, &r.out);
    std::ifstream e(err_file);
    r.err.assign(std::istreambuf_iterator<char>(e),
                 std::istreambuf_iterator<char>());
    if (!text) {
      r.j = json::parse(r.out, nullptr, false);
      if (r.j.is_discarded() || !r.j.is_object()) {
        FAIL_CHECK("pggit-ops did not print one JSON object: " << r.Dump());
        r.j = json::object();
      }
    }
    return r;
  }

  // fake-systemctl ARGS... on pggit-api.service; its output.
  std::string Systemctl(const std::string& verb,
                        const std::string& more = "") const {
    std::string out;
    harness::Run("env " + SeamEnv() + " " + Quote(Fake("fake-systemctl")) +
                     " " + verb + " pggit-api.service " + more,
                 &out);
    while (!out.empty() && out.back() == '\n') out.pop_back();
    return out;
  }
  std::string ActiveState() const {
    return Systemctl("show", "--property=ActiveState --value");
  }

  // Starts the daemon through the fake unit and waits until it is ready.
  void StartDaemon() const {
    Systemctl("start");
    REQUIRE_MESSAGE(WaitReady(30000), DaemonLog());
  }
  bool WaitReady(int timeout_ms) const {
    return harness::WaitForHttp(port, "/health/ready", 200,
                                std::chrono::milliseconds(timeout_ms));
  }
  std::string DaemonLog() const {
    std::string out;
    harness::Run("cat " + Quote(systemd + "/daemon.log"), &out);
    return out;
  }

  httplib::Client Client() const {
    httplib::Client c("127.0.0.1", port);
    c.set_read_timeout(30, 0);
    return c;
  }
  std::string Sql(const std::string& sql) const {
    return harness::AdminQuery(db, sql);
  }

  std::string db, dsn, dir, etc, backups, systemd;
  int port = 0;
  std::map<std::string, std::string> env_file;
};

}  // namespace pggitops::ops_test

#endif  // PGGITOPS_TESTS_INTEGRATION_OPS_OPS_TEST_UTIL_H_
