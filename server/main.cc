// pggit-api: the daemon and its administrative commands. Wiring only: the
// behaviour lives in libpggitops and in server/.
#include <cstdio>
#include <string>
#include <vector>

#include "absl/synchronization/mutex.h"
#include "pggitops/config.h"
#include "pggitops/log.h"
#include "server/commands.h"
#include "server/lifecycle.h"
#include "server/server_config.h"

extern char** environ;

int main(int argc, char** argv) {
  using namespace pggitops;
  // Before any thread exists, so every thread inherits the mask.
  server::BlockShutdownSignals();
  // Abseil's lock-order graph costs every lock on every request; the
  // thread-safety annotations are checked at compile time instead.
  absl::SetMutexDeadlockDetectionMode(absl::OnDeadlockCycle::kIgnore);

  absl::StatusOr<CommandLine> cli =
      server::ServerConfigLoader().ParseCommandLine(argc, argv, environ);
  if (!cli.ok()) {
    std::fprintf(stderr, "pggit-api: %s (see --help)\n",
                 std::string(cli.status().message()).c_str());
    return 2;
  }
  if (cli->help) {
    server::PrintUsage();
    return 0;
  }
  std::string command =
      cli->positionals.empty() ? "serve" : cli->positionals.front();
  if (command == "version") return server::RunVersion();
  if (command != "serve" && command != "migrate" && command != "check-config" &&
      command != "keys") {
    std::fprintf(stderr, "pggit-api: unknown command '%s' (see --help)\n",
                 command.c_str());
    return 2;
  }

  absl::StatusOr<server::ServerConfig> config =
      server::LoadServerConfig(cli->sources);
  if (!config.ok()) {
    std::fprintf(stderr, "pggit-api: invalid configuration: %s\n",
                 std::string(config.status().message()).c_str());
    return 1;
  }
  if (absl::Status s = Log::Configure(LogOptionsFromConfig(*config)); !s.ok()) {
    std::fprintf(stderr, "pggit-api: %s\n", std::string(s.message()).c_str());
    return 1;
  }
  if (command == "migrate") return server::RunMigrate(*config);
  if (command == "check-config") return server::RunCheckConfig(*config);
  if (command == "keys") {
    return server::RunKeys(
        *config, std::vector<std::string>(cli->positionals.begin() + 1,
                                          cli->positionals.end()));
  }
  return server::RunServe(*config);
}
