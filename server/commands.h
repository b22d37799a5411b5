// The subcommands of pggit-api (CONTRACT section 2).
#ifndef PGGITOPS_SERVER_COMMANDS_H_
#define PGGITOPS_SERVER_COMMANDS_H_

#include <string>
#include <vector>

#include "server/server_config.h"

namespace pggitops::server {

// Each returns the process exit code.
int RunServe(const ServerConfig& config);
int RunMigrate(const ServerConfig& config);
int RunCheckConfig(const ServerConfig& config);
// `keys create --name N --scopes read,write,admin`, `keys list`,
// `keys revoke N`; `args` are the words after "keys".
int RunKeys(const ServerConfig& config, const std::vector<std::string>& args);
int RunVersion();
void PrintUsage();

}  // namespace pggitops::server

#endif  // PGGITOPS_SERVER_COMMANDS_H_
