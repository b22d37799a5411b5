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
#include "absl/time/time.h"
#include "pggitops/export.h"

namespace pggitops {

class ConnectionPool;

// The schema version this build needs (the newest migration it carries).
PGGITOPS_EXPORT int RequiredSchemaVersion();
// The newest schema version this build still runs against (CONTRACT section
// 9): versions after RequiredSchemaVersion() up to this one were declared
// additive for this build, so a newer release migrating to them during a
// rolling upgrade does not stop old instances. Currently equal to
// RequiredSchemaVersion().
PGGITOPS_EXPORT int MaxCompatibleSchemaVersion();

struct PGGITOPS_EXPORT MigrateResult {
  int from_version = 0;
  int to_version = 0;
  std::vector<std::string> applied;  // "001_initial", ...
};

// Applies the missing migrations in one transaction under an advisory lock
// (a concurrent runner waits, then applies nothing). Needs no superuser:
// runs as the owner of the database (the `pggit` role). Thread-safe: each
// call uses a connection of its own. Errors, each leaving the database
// unchanged: kUnavailable when the database cannot be reached;
// kFailedPrecondition when the database holds a schema newer than
// MaxCompatibleSchemaVersion(), or an applied migration whose checksum
// differs from the one this build carries (the message names it);
// kPermissionDenied when the role may not create the schema; kInternal when
// a migration fails.
PGGITOPS_EXPORT absl::StatusOr<MigrateResult> Migrate(
    const std::string& database_url);

struct PGGITOPS_EXPORT SchemaStatus {
  int version = 0;           // applied, 0 when none
  int expected_version = 0;  // RequiredSchemaVersion()
  bool compatible = false;   // expected <= version <= MaxCompatible...
  // "ok" (compatible), "missing" (never migrated), "behind" (older than
  // expected: run Migrate), "ahead" (newer than MaxCompatibleSchemaVersion()).
  std::string status;
  // Guide index names absent from the database (should be empty).
  std::vector<std::string> missing_indexes;
};

// Reads the schema version and checks the guide's indexes, in a read-only
// transaction. Thread-safe. Errors: kUnavailable when the database cannot be
// reached.
PGGITOPS_EXPORT absl::StatusOr<SchemaStatus> CheckSchema(
    const std::string& database_url);

// The same on a connection of `pool` (waiting at most `timeout` for one), so
// a periodic check opens no connection of its own. Errors: the pool's
// (kDeadlineExceeded, kUnavailable), or kUnavailable when the session breaks.
// REQUIRES: pool was made by ConnectionPool::Create (the libpqxx connector).
PGGITOPS_EXPORT absl::StatusOr<SchemaStatus> CheckSchema(
    ConnectionPool* pool, absl::Duration timeout);

}  // namespace pggitops

#endif  // PGGITOPS_INCLUDE_SCHEMA_H_
