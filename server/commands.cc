#include "server/commands.h"

#include <cstdio>
#include <iostream>

#include "absl/strings/str_join.h"
#include "pggitops/log.h"
#include "pggitops/schema.h"
#include "pggitops/version.h"
#include "server/app.h"

namespace pggitops::server {

int RunServe(const Config& config) {
  App app(config);
  return app.Serve();
}

int RunMigrate(const Config& config) {
  absl::StatusOr<MigrateResult> r = Migrate(config.database_url);
  if (!r.ok()) {
    std::fprintf(stderr, "pggit-api migrate: %s\n",
                 std::string(r.status().message()).c_str());
    return 1;
  }
  if (r->applied.empty()) {
    std::printf("schema is up to date at version %d\n", r->to_version);
  } else {
    std::printf("migrated schema from version %d to %d: %s\n", r->from_version,
                r->to_version, absl::StrJoin(r->applied, ", ").c_str());
  }
  return 0;
}

int RunCheckConfig(const Config& config) {
  std::cout << "configuration is valid\n" << DescribeConfig(config);
  return 0;
}

int RunVersion() {
  std::printf("pggit-api %s (libpggitops %s, schema %d, compatible up to %d)\n",
              kVersionString, kVersionString, RequiredSchemaVersion(),
              MaxCompatibleSchemaVersion());
  return 0;
}

void PrintUsage() {
  std::cout
      << "usage: pggit-api [--config FILE] [--KEY VALUE ...] [COMMAND]\n\n"
         "commands:\n"
         "  serve          run the daemon in the foreground (default)\n"
         "  migrate        apply the SQL migrations (idempotent, locked)\n"
         "  check-config   validate and print the effective configuration,\n"
         "                 secrets redacted\n"
         "  version        print version and schema compatibility\n\n"
         "Configuration: defaults < YAML file (--config or PGGIT_CONFIG) <\n"
         ".env in the working directory < environment < flags. Keys (env\n"
         "spelling; as a flag lower-case with dashes, e.g. --api-port "
         "8001):\n\n"
      << ConfigHelp();
}

}  // namespace pggitops::server
