// Private: the migration runner and schema check on a caller's libpqxx
// connection (the daemon's health check uses a pooled one). The public
// functions in pggitops/schema.h open their own connection and call these.
#ifndef PGGITOPS_LIBPGGITOPS_SCHEMA_SCHEMA_INTERNAL_H_
#define PGGITOPS_LIBPGGITOPS_SCHEMA_SCHEMA_INTERNAL_H_

#include <cstdint>
#include <exception>
#include <pqxx/connection_base>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "pggitops/schema.h"

namespace pggitops::internal {

// The pg_advisory_xact_lock key held while migrating: "pggitsch" in ASCII.
// NOTE: never change it, or old and new builds would migrate concurrently.
inline constexpr int64_t kMigrationLockKey = 0x7067676974736368;

// The guide's index names, which CheckSchema reports when absent.
const std::vector<std::string>& GuideIndexNames();

// Migrate on `conn`, in one transaction of its own.
// REQUIRES: no transaction is open on `conn`. Never throws.
absl::StatusOr<MigrateResult> MigrateOn(pqxx::connection_base& conn);

// CheckSchema on `conn`, in a read-only transaction of its own.
// REQUIRES: no transaction is open on `conn`. Never throws.
absl::StatusOr<SchemaStatus> CheckSchemaOn(pqxx::connection_base& conn);

// StatusFromPqxx (libpggitops/pool/pqxx_status.h) narrowed to the codes
// schema.h promises: kUnavailable, kPermissionDenied and kUnknown as
// mapped, anything else kInternal; the message starts with `context`.
absl::Status SchemaError(const std::exception& e, absl::string_view context);

}  // namespace pggitops::internal

#endif  // PGGITOPS_LIBPGGITOPS_SCHEMA_SCHEMA_INTERNAL_H_
