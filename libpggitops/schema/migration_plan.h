// Private: the pure decisions of the migration runner (no database), so
// they can be unit-tested: checksums, which migrations to apply, and how a
// schema version compares with what this build needs.
#ifndef PGGITOPS_LIBPGGITOPS_SCHEMA_MIGRATION_PLAN_H_
#define PGGITOPS_LIBPGGITOPS_SCHEMA_MIGRATION_PLAN_H_

#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "libpggitops/schema/migrations.h"

namespace pggitops::internal {

// A row of pggit.schema_migrations.
struct AppliedMigration {
  int version = 0;
  std::string name;
  std::string checksum;
};

// Lower-case hex SHA-256 of a migration's text, as recorded when applied.
std::string MigrationChecksum(absl::string_view sql);

// "001_initial": the file name without ".sql".
std::string MigrationLabel(int version, absl::string_view name);

// Returns the embedded migrations (in `embedded`, version order) that
// `applied` lacks, in order. Refuses with kFailedPrecondition, changing
// nothing, when the database is newer than `max_compatible`, when an applied
// migration this build also carries has another checksum (its file changed
// after it was applied), or when a missing migration is older than an
// applied one.
absl::StatusOr<std::vector<const Migration*>> PlanMigrations(
    const std::vector<AppliedMigration>& applied,
    const std::vector<Migration>& embedded, int max_compatible);

// "missing" (version 0: never migrated), "behind" (older than `required`),
// "ahead" (newer than `max_compatible`) or "ok".
const char* SchemaVersionStatus(int version, int required, int max_compatible);

}  // namespace pggitops::internal

#endif  // PGGITOPS_LIBPGGITOPS_SCHEMA_MIGRATION_PLAN_H_
