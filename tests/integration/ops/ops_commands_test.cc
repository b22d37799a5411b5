// pggit-ops health, warm-cache, invalidate, status/start/stop/restart and
// maintenance against the real daemon, PostgreSQL and Redis. The service
// commands go through tests/integration/ops/fake-systemctl (PGGIT_OPS_
// SYSTEMCTL): what is tested is pggit-ops's pre-flight and readiness
// logic; the unit files themselves are checked by ops/systemd/check.
#include <netinet/in.h>
#include <signal.h>
#include <sys/socket.h>
#include <unistd.h>

#include <chrono>
#include <fstream>
#include <string>
#include <utility>
#include <vector>

#include "absl/strings/match.h"
#include "tests/integration/ops/ops_test_util.h"

namespace pggitops::ops_test {
namespace {

using absl::StrContains;

TEST_CASE("pggit-ops: --help for every command; usage errors exit 64") {
  Ops ops("ops_help", {}, /*migrate=*/false);
  OpsResult r = ops.Run({"--help"}, "", /*text=*/true);
  CHECK(r.code == 0);
  CHECK(StrContains(r.out, "exit status: 0 OK, 1 WARNING"));
  for (const std::string cmd :
       {"health", "start", "stop", "restart", "status", "warm-cache",
        "invalidate", "incident", "backup", "restore", "verify-backup",
        "maintenance"}) {
    CAPTURE(cmd);
    r = ops.Run({cmd, "--help"}, "", /*text=*/true);
    CHECK(r.code == 0);
    CHECK(absl::StartsWith(r.out, "usage: pggit-ops " + cmd));
    CHECK(StrContains(r.out, "Exit"));
  }
  for (const std::vector<std::string>& bad :
       std::vector<std::vector<std::string>>{{},
                                             {"nosuch"},
                                             {"incident"},
                                             {"incident", "slow"},
                                             {"invalidate"},
                                             {"restore"},
                                             {"maintenance", "yearly"},
                                             {"health", "extra"}}) {
    r = ops.Run(bad, "", /*text=*/true);
    CHECK_MESSAGE(r.code == 64, r.Dump());
    CHECK(!r.err.empty());
  }
}

TEST_CASE("health, warm-cache and invalidate against a running daemon") {
  Ops ops("ops_health");
  ops.StartDaemon();
  OpsResult r = ops.Run({"health"});
  CHECK_MESSAGE(r.code == 0, r.Dump());
  CHECK(r.j["status"] == "OK");
  CHECK(r.j["command"] == "health");
  CHECK(r.Level("api") == "ok");
  CHECK(r.Level("deep") == "ok");
  CHECK(r.Level("deep.database") == "ok");
  CHECK(r.Level("locks") == "ok");
  CHECK(r.Level("cache") == "ok");
  CHECK(r.Level("database") == "ok");
  CHECK(StrContains(r.Messages("database"), "DB connected"));
  CHECK(r.Level("redis") == "ok");
  CHECK(r.j["data"]["deep"]["database"]["locks"]["waiting"] == 0);

  // The text form says the same, one line per check.
  r = ops.Run({"health"}, "", /*text=*/true);
  CHECK(r.code == 0);
  CHECK(StrContains(r.out, "ok      database: DB connected as pggit@"));
  CHECK(StrContains(r.out, "status: OK (exit 0)"));
  CHECK(!StrContains(r.out + r.err, "pggit:pggit"));  // no password shown

  r = ops.Run({"warm-cache"});
  CHECK_MESSAGE(r.code == 0, r.Dump());
  CHECK(r.j["data"]["warm"]["warmed_entries"].get<int>() >= 2);
  CHECK(StrContains(r.Actions(), "warmed the cache"));

  r = ops.Run({"invalidate", "webhooks:*"});
  CHECK_MESSAGE(r.code == 0, r.Dump());
  CHECK(r.j["data"]["invalidate"]["invalidated"].get<int>() >= 1);
  r = ops.Run({"invalidate", "webhooks:["});  // not a valid pattern
  CHECK(r.code == 2);
  CHECK(r.Level("invalidate") == "crit");
}

TEST_CASE("health: Redis not configured is fine and said; Redis down warns") {
  {
    Ops ops("ops_health_noredis", {{"REDIS_URL", ""}});
    ops.StartDaemon();
    OpsResult r = ops.Run({"health"});
    CHECK_MESSAGE(r.code == 0, r.Dump());
    CHECK(r.Level("redis") == "info");
    CHECK(StrContains(r.Messages("redis"), "not configured (REDIS_URL unset)"));
    CHECK(r.Level("deep.redis") == "info");
  }
  {
    // Nothing listens there: the daemon is degraded, pggit-ops warns.
    int dead = harness::FreePort();
    Ops ops("ops_health_redisdown",
            {{"REDIS_URL", "redis://127.0.0.1:" + std::to_string(dead)}});
    ops.StartDaemon();
    OpsResult r = ops.Run({"health"});
    CHECK_MESSAGE(r.code == 1, r.Dump());
    CHECK(r.j["status"] == "WARNING");
    CHECK(r.Level("redis") == "warn");
    CHECK(r.Level("deep.redis") == "warn");
    CHECK(r.Level("database") == "ok");
  }
}

TEST_CASE("health: Redis on a unix socket with a password, read alike") {
  // One REDIS_URL grammar (libpggitops/config/redis_url.h): the daemon's
  // cache and pggit-ops's redis-cli read both unix forms of the password,
  // percent-escapes included, and both see a wrong one.
  char tmpl[] = "/var/tmp/pggitops-redis.XXXXXX";
  REQUIRE(mkdtemp(tmpl) != nullptr);
  const std::string dir = tmpl;
  const std::string sock = dir + "/redis.sock";
  harness::Process redis({"redis-server", "--port", "0", "--unixsocket", sock,
                          "--unixsocketperm", "700", "--requirepass", "p@ss&w",
                          "--save", "", "--appendonly", "no"});
  REQUIRE_MESSAGE(
      harness::WaitFor([&] { return access(sock.c_str(), F_OK) == 0; },
                       std::chrono::seconds(20)),
      redis.Output());
  const std::vector<std::pair<std::string, std::string>> good = {
      {"ops_redis_query", "unix://" + sock + "?db=4&password=p%40ss%26w"},
      {"ops_redis_userinfo", "unix://:p%40ss%26w@" + sock + "?db=4"},
  };
  for (const auto& entry : good) {
    const std::string& name = entry.first;
    const std::string& url = entry.second;  // CAPTURE: not a binding
    CAPTURE(url);
    Ops ops(name, {{"REDIS_URL", url}});
    ops.StartDaemon();
    OpsResult r = ops.Run({"health"});
    CHECK_MESSAGE(r.code == 0, r.Dump());
    CHECK(r.Level("redis") == "ok");
    CHECK(r.Level("deep.redis") == "ok");
    CHECK(r.Dump().find("p@ss") == std::string::npos);
  }
  {
    Ops ops("ops_redis_wrong",
            {{"REDIS_URL", "unix://" + sock + "?password=wrong"}});
    ops.StartDaemon();
    OpsResult r = ops.Run({"health"});
    CHECK_MESSAGE(r.code == 1, r.Dump());
    CHECK(r.Level("redis") == "warn");
    CHECK(r.Level("deep.redis") == "warn");
  }
  redis.Signal(SIGTERM);
  CHECK(redis.Wait(10000) == 0);
  harness::Run("rm -rf " + Quote(dir));
}

TEST_CASE("health: a DATABASE_URL password with ? and @ reads as libpq does") {
  // libpq takes "user:pa?ss@host" as the password "pa?ss" (the userinfo
  // ends at the first '@' before any '/'); pggit-ops read the '?' as the
  // query's start. The cluster trusts loopback, so the password only has
  // to be parsed right, not checked.
  Ops ops("ops_pw_chars");
  const std::string plain = "pggit:pggit@";
  std::string url = ops.env_file["DATABASE_URL"];
  REQUIRE(url.find(plain) != std::string::npos);
  url.replace(url.find(plain), plain.size(), "pggit:pg?g%40it@");
  ops.env_file["DATABASE_URL"] = url;
  ops.WriteDotenv();
  ops.StartDaemon();
  OpsResult r = ops.Run({"health"});
  CHECK_MESSAGE(r.code == 0, r.Dump());
  CHECK(r.Level("database") == "ok");
  CHECK(r.Level("deep.database") == "ok");
  CHECK(r.Dump().find("pg?g") == std::string::npos);
}

TEST_CASE("health: the daemon down is critical and named") {
  Ops ops("ops_health_down");
  OpsResult r = ops.Run({"health"});
  CHECK(r.code == 2);
  CHECK(r.Level("api") == "crit");
  CHECK(StrContains(r.Causes(), "pggit-api is not running"));
  CHECK(r.Level("database") == "ok");  // still checked
  r = ops.Run({"warm-cache"});
  CHECK(r.code == 2);
}

// A listening socket on `port`, so the daemon cannot bind it.
class PortSquatter {
 public:
  explicit PortSquatter(int port) {
    fd_ = socket(AF_INET, SOCK_STREAM, 0);
    int one = 1;
    setsockopt(fd_, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_port = htons(static_cast<uint16_t>(port));
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    REQUIRE(bind(fd_, reinterpret_cast<sockaddr*>(&a), sizeof a) == 0);
    REQUIRE(listen(fd_, 1) == 0);
  }
  ~PortSquatter() { close(fd_); }

 private:
  int fd_ = -1;
};

TEST_CASE("start, status, restart, stop: pre-flight and readiness") {
  Ops ops("ops_service", {}, /*migrate=*/false);

  OpsResult r = ops.Run({"status"});
  CHECK(r.code == 2);
  CHECK(r.Level("unit") == "crit");

  // Pre-flight: an invalid setting stops the start before systemctl.
  ops.env_file["DATABASE_POOL_SIZE"] = "0";
  ops.WriteDotenv();
  r = ops.Run({"start"});
  CHECK(r.code == 2);
  CHECK(r.Level("config") == "crit");
  CHECK(StrContains(r.Messages("config"), "DATABASE_POOL_SIZE=0"));
  CHECK(StrContains(r.Causes(), "pre-flight failed"));
  CHECK(ops.ActiveState() == "inactive");  // systemctl was not called
  ops.env_file.erase("DATABASE_POOL_SIZE");
  ops.WriteDotenv();

  // Pre-flight: the schema is behind (never migrated).
  r = ops.Run({"start"});
  CHECK(r.code == 2);
  CHECK(r.Level("config") == "ok");
  CHECK(r.Level("database") == "ok");
  CHECK(r.Level("migrations") == "crit");
  CHECK(StrContains(r.Messages("migrations"), "pggit-api migrate"));
  CHECK(ops.ActiveState() == "inactive");

  // Readiness: the daemon cannot listen (the port is taken), exits, and
  // the start fails with its log.
  {
    PortSquatter squat(ops.port);
    r = ops.Run({"start", "--migrate", "--timeout", "30"});
    CHECK(r.code == 2);
    CHECK(StrContains(r.Actions(), "pggit-api migrate"));
    CHECK(r.Level("migrations") == "ok");
    CHECK(r.Level("ready") == "crit");
    CHECK(StrContains(r.Messages("ready"), "exited while starting"));
    CHECK(r.j["data"]["journal"].dump().find("start failed") !=
          std::string::npos);
  }

  r = ops.Run({"start"});
  CHECK_MESSAGE(r.code == 0, r.Dump() << ops.DaemonLog());
  CHECK(r.Level("ready") == "ok");
  CHECK(r.Level("warm") == "ok");
  CHECK(r.Level("deep") == "ok");
  CHECK(ops.ActiveState() == "active");

  r = ops.Run({"status"});
  CHECK(r.code == 0);
  CHECK(r.Level("unit") == "ok");
  CHECK(r.Level("ready") == "ok");
  const std::string pid = r.j["data"]["unit"]["main_pid"];
  CHECK(pid != "0");

  r = ops.Run({"restart"});
  CHECK_MESSAGE(r.code == 0, r.Dump());
  CHECK(StrContains(r.Actions(), "systemctl restart pggit-api.service"));
  r = ops.Run({"status"});
  CHECK(r.j["data"]["unit"]["main_pid"] != pid);
  CHECK(r.j["data"]["unit"]["restarts"] == "1");

  r = ops.Run({"stop"});
  CHECK_MESSAGE(r.code == 0, r.Dump());
  CHECK(r.Level("stopped") == "ok");
  CHECK(r.Level("port") == "ok");
  r = ops.Run({"status"});
  CHECK(r.code == 2);

  // A daemon that the unit does not manage still answers: stop says so.
  harness::Process stray({Ops::Api(), "serve"},
                         {{"DATABASE_URL", ops.dsn},
                          {"API_PORT", std::to_string(ops.port)},
                          {"SHUTDOWN_GRACE_SECONDS", "0"}});
  REQUIRE(ops.WaitReady(30000));
  r = ops.Run({"stop"});
  CHECK(r.code == 2);
  CHECK(r.Level("port") == "crit");
  stray.Signal(SIGTERM);
  stray.Wait(15000);
}

TEST_CASE("maintenance daily, weekly, monthly") {
  Ops ops("ops_maintenance");
  ops.StartDaemon();
  OpsResult r = ops.Run({"maintenance", "daily"});
  CHECK_MESSAGE(r.code <= 1, r.Dump());
  CHECK(r.Level("backup") == "warn");  // none yet
  CHECK(r.Level("integrity") == "ok");
  CHECK(StrContains(r.Messages("integrity"), "pggit 6"));
  CHECK(r.Level("failures") == "ok");
  CHECK(r.Level("errors") == "ok");
  CHECK(r.Level("performance") == "info");

  r = ops.Run({"backup"});
  REQUIRE_MESSAGE(r.code == 0, r.Dump());
  r = ops.Run({"maintenance", "daily"});
  CHECK(r.Level("backup") == "ok");

  r = ops.Run({"maintenance", "weekly"}, "", /*text=*/true);
  CHECK_MESSAGE(r.code <= 1, r.out);
  CHECK(StrContains(r.out, "ok      vacuum: VACUUM ANALYZE"));
  CHECK(StrContains(r.out, "ok      reindex: REINDEX INDEX CONCURRENTLY"));
  CHECK(StrContains(r.out, "ok      restore-test:"));
  CHECK(StrContains(r.out, "info    bloat: most wasted:"));
  CHECK(StrContains(r.out, "[ ] Update dependencies"));
  CHECK(harness::AdminQuery("postgres",
                            "SELECT count(*) FROM pg_database"
                            " WHERE datname LIKE 'pggit_verify%'") == "0");

  r = ops.Run({"maintenance", "monthly"});
  CHECK_MESSAGE(r.code <= 1, r.Dump());
  CHECK(r.Level("capacity") == "info");
  CHECK(r.Level("tables") == "info");
}

TEST_CASE("no password and no API key in any process's arguments") {
  Ops ops("ops_secrets");
  harness::Process key(
      {Ops::Api(), "keys", "create", "--name", "ops", "--scopes", "admin"},
      {{"DATABASE_URL", ops.dsn}});
  REQUIRE(key.Wait(30000) == 0);
  std::string token = key.Output();
  while (!token.empty() && token.back() == '\n') token.pop_back();
  token = token.substr(token.rfind('\n') + 1);
  REQUIRE(token.size() > 20);
  // The harness's cluster trusts loopback, so any password gets in: what
  // is checked is where the password travels.
  const std::string password = "S3cr3t-Pw";
  ops.env_file["DATABASE_URL"] =
      "postgresql://pggit:" + password +
      "%21@127.0.0.1:" + std::to_string(harness::Get().pgport) + "/ops_secrets";
  ops.env_file["PGGIT_API_KEY"] = token;
  ops.WriteDotenv();
  ops.StartDaemon();
  // Every client program pggit-ops runs records its arguments first.
  const std::string shims = ops.dir + "/shims", log = ops.dir + "/argv.log";
  REQUIRE(harness::Run("mkdir -p " + Quote(shims)) == 0);
  for (const std::string prog :
       {"psql", "pg_dump", "pg_restore", "curl", "redis-cli"}) {
    std::ofstream f(shims + "/" + prog);
    f << "#!/bin/sh\nprintf '%s\\n' \"" << prog << " $*\" >> " << Quote(log)
      << "\nexec /usr/bin/" << prog << " \"$@\"\n";
  }
  REQUIRE(harness::Run("chmod +x " + Quote(shims) + "/*") == 0);
  const std::string env = "PATH=" + Quote(shims) + ":\"$PATH\"";
  for (const std::vector<std::string>& cmd :
       std::vector<std::vector<std::string>>{
           {"health"},
           {"warm-cache"},
           {"backup"},
           {"verify-backup"},
           {"incident", "pool-exhausted", "--apply", "--yes"},
           {"incident", "queue-backlog", "--apply", "--yes"}}) {
    OpsResult r = ops.Run(cmd, env);
    CHECK_MESSAGE(r.code <= 1, r.Dump());
  }
  std::string argv;
  REQUIRE(harness::Run("cat " + Quote(log), &argv) == 0);
  CHECK(StrContains(argv, "pg_dump --format=custom"));
  CHECK(StrContains(argv, "pg_restore --single-transaction"));
  CHECK(StrContains(argv, "curl -sS -K -"));
  CHECK(StrContains(argv, "psql -X"));
  CHECK_MESSAGE(!StrContains(argv, password), argv);
  CHECK_MESSAGE(!StrContains(argv, token), argv);
}

TEST_CASE("meson install: pggit-ops finds its files where they are installed") {
  Ops ops("ops_installed");
  const std::string root = ops.dir + "/root";
  std::string out;
  REQUIRE_MESSAGE(
      harness::Run("meson install -C " + Quote(harness::BuildPath("")) +
                       " --no-rebuild --quiet --destdir " + Quote(root),
                   &out) == 0,
      out);
  REQUIRE(harness::Run("find " + Quote(root) +
                           " -path '*/bin/pggit-ops' -type f -perm -0755",
                       &out) == 0);
  const std::string tool = out.substr(0, out.find('\n'));
  REQUIRE(!tool.empty());
  // The data folder is named in the installed script, and holds the rest.
  const std::string prefix = tool.substr(0, tool.rfind("/bin/"));
  const std::string data = prefix + "/share/pggitops/ops";
  CHECK(harness::Run("grep -q " + Quote(data.substr(root.size()) + "'") + " " +
                     Quote(tool)) == 0);
  for (const std::string f :
       {"/lib/pggit-ops/common.sh", "/sql/pool-exhausted-kill-idle.sql",
        "/sql/backup-table-counts.sql", "/scripts/provision-db"}) {
    CHECK_MESSAGE(harness::Run("test -r " + Quote(data + f)) == 0, f);
  }
  CHECK(harness::Run("test -x " + Quote(data + "/scripts/provision-db")) == 0);
  // Run from the staging tree it finds them next to itself.
  CHECK(harness::Run("cd " + Quote(ops.etc) + " && " + Quote(tool) +
                         " incident queue-backlog --json | jq -e "
                         "'.checks[] | select(.name == \"queue\" and "
                         ".level == \"ok\")'",
                     &out) == 0);
  CHECK(harness::Run(Quote(tool) + " maintenance --help") == 0);
}

}  // namespace
}  // namespace pggitops::ops_test
