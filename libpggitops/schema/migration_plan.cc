#include "libpggitops/schema/migration_plan.h"

#include <openssl/evp.h>

#include <algorithm>
#include <set>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"

namespace pggitops::internal {

std::string MigrationChecksum(absl::string_view sql) {
  unsigned char digest[EVP_MAX_MD_SIZE];
  unsigned int length = 0;
  // EVP_Digest with SHA-256 cannot fail on valid input and memory.
  EVP_Digest(sql.data(), sql.size(), digest, &length, EVP_sha256(), nullptr);
  std::string hex;
  hex.reserve(2 * length);
  for (unsigned int i = 0; i < length; ++i) {
    absl::StrAppendFormat(&hex, "%02x", digest[i]);
  }
  return hex;
}

std::string MigrationLabel(int version, absl::string_view name) {
  return absl::StrFormat("%03d_%s", version, name);
}

namespace {

absl::Status CheckApplied(const AppliedMigration& row,
                          const std::vector<Migration>& embedded,
                          int max_compatible) {
  const int required = static_cast<int>(embedded.size());
  if (row.version < 1) {
    return absl::FailedPreconditionError(absl::StrCat(
        "pggit.schema_migrations holds an invalid version ", row.version));
  }
  if (row.version > max_compatible) {
    return absl::FailedPreconditionError(absl::StrFormat(
        "the database schema is at version %d (%s), newer than this build "
        "supports (it needs version %d and runs against versions up to %d); "
        "run a newer pggit-api",
        row.version, MigrationLabel(row.version, row.name), required,
        max_compatible));
  }
  if (row.version > required) return absl::OkStatus();  // compatible, newer
  const Migration& mine = embedded[row.version - 1];
  const std::string expected = MigrationChecksum(mine.sql);
  if (row.checksum != expected || row.name != mine.name) {
    return absl::FailedPreconditionError(absl::StrFormat(
        "migration %s was applied with checksum %s, but this build carries "
        "%s with checksum %s: a released migration file was changed; restore "
        "it and put the change in a new migration",
        MigrationLabel(row.version, row.name), row.checksum,
        MigrationLabel(mine.version, mine.name), expected));
  }
  return absl::OkStatus();
}

}  // namespace

absl::StatusOr<std::vector<const Migration*>> PlanMigrations(
    const std::vector<AppliedMigration>& applied,
    const std::vector<Migration>& embedded, int max_compatible) {
  std::set<int> done;
  int newest = 0;
  for (const AppliedMigration& row : applied) {
    absl::Status s = CheckApplied(row, embedded, max_compatible);
    if (!s.ok()) return s;
    done.insert(row.version);
    newest = std::max(newest, row.version);
  }
  std::vector<const Migration*> plan;
  for (const Migration& m : embedded) {
    if (done.count(m.version) != 0) continue;
    if (m.version < newest) {
      return absl::FailedPreconditionError(absl::StrFormat(
          "migration %s was never applied although version %d was; "
          "pggit.schema_migrations has a gap and needs an operator's look",
          MigrationLabel(m.version, m.name), newest));
    }
    plan.push_back(&m);
  }
  return plan;
}

const char* SchemaVersionStatus(int version, int required, int max_compatible) {
  if (version <= 0) return "missing";
  if (version < required) return "behind";
  if (version > max_compatible) return "ahead";
  return "ok";
}

}  // namespace pggitops::internal
