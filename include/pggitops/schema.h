// File: pggitops/schema.h
//
// The database schema of pggitops (tables in schema `pggit`, see sql/ and
// CONTRACT section 4) and the migrations that build it. Migrations are
// compiled into the library, applied in one transaction under an advisory
// lock, recorded in pggit.schema_migrations, and idempotent: running
// Migrate twice, or from two processes at once, leaves one schema.
#ifndef PGGITOPS_INCLUDE_SCHEMA_H_
#define PGGITOPS_INCLUDE_SCHEMA_H_

#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "pggitops/export.h"

namespace pggitops {

// The schema version this build needs (the newest migration it carries).
PGGITOPS_EXPORT int RequiredSchemaVersion();
// The newest schema version this build still runs against: a newer
// migration applied by a newer release that declared itself compatible with
// this one (a rolling upgrade) does not stop old instances.
PGGITOPS_EXPORT int MaxCompatibleSchemaVersion();

struct PGGITOPS_EXPORT MigrateResult {
  int from_version = 0;
  int to_version = 0;
  std::vector<std::string> applied;  // "001_initial", ...
};

// Applies the missing migrations. Needs no superuser: runs as the owner of
// the database (the `pggit` role). Errors: kUnavailable when the database
// cannot be reached; kFailedPrecondition when the database holds a schema
// newer than this build knows; kInternal when a migration fails (nothing of
// it is applied).
PGGITOPS_EXPORT absl::StatusOr<MigrateResult> Migrate(
    const std::string& database_url);

struct PGGITOPS_EXPORT SchemaStatus {
  int version = 0;           // applied, 0 when none
  int expected_version = 0;  // RequiredSchemaVersion()
  bool compatible = false;   // expected <= version <= MaxCompatible...
  // "ok", "missing" (never migrated), "behind", "ahead" (too new).
  std::string status;
  // Guide index names absent from the database (should be empty).
  std::vector<std::string> missing_indexes;
};

// Reads the schema version and checks the guide's indexes. Errors:
// kUnavailable when the database cannot be reached.
PGGITOPS_EXPORT absl::StatusOr<SchemaStatus> CheckSchema(
    const std::string& database_url);

}  // namespace pggitops

#endif  // PGGITOPS_INCLUDE_SCHEMA_H_
