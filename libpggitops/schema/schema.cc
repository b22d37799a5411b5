// The migration runner and schema check (pggitops/schema.h): the libpqxx
// adapter of the schema component. Every libpqxx exception is caught here.
#include "pggitops/schema.h"

#include <pqxx/pqxx>
#include <string>
#include <utility>
#include <vector>

#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "libpggitops/pool/pqxx_status.h"
#include "libpggitops/schema/migration_plan.h"
#include "libpggitops/schema/migrations.h"
#include "libpggitops/schema/schema_internal.h"
#include "pggitops/connection_pool.h"
#include "pggitops/log.h"
#include "pggitops/pqxx.h"

namespace pggitops {
namespace {

// The rule of CONTRACT section 9: a build runs against schema versions
// RequiredSchemaVersion() through MaxCompatibleSchemaVersion() and refuses
// (Migrate, and the daemon at start) a newer one. This many versions after
// its own newest migration are declared compatible. A release may raise it
// only for later migrations it knows to be additive for it (new tables,
// new nullable columns, new indexes), so that during a rolling upgrade the
// instances not yet upgraded keep running against the schema the new release
// migrated to. No such migration exists yet: 0, so the maximum equals
// RequiredSchemaVersion().
constexpr int kCompatibleNewerVersions = 0;

constexpr char kCreateMigrationsTable[] =
    "CREATE TABLE IF NOT EXISTS pggit.schema_migrations ("
    " version integer PRIMARY KEY,"
    " name text NOT NULL,"
    " checksum text NOT NULL,"
    " applied_at timestamptz NOT NULL DEFAULT now())";

std::vector<internal::AppliedMigration> ReadApplied(pqxx::work& tx) {
  std::vector<internal::AppliedMigration> applied;
  const pqxx::result rows = tx.exec(
      "SELECT version, name, checksum FROM pggit.schema_migrations"
      " ORDER BY version");
  for (const pqxx::row& row : rows) {
    applied.push_back(
        {row[0].as<int>(), row[1].as<std::string>(), row[2].as<std::string>()});
  }
  return applied;
}

int NewestVersion(const std::vector<internal::AppliedMigration>& applied) {
  return applied.empty() ? 0 : applied.back().version;
}

// Applies `plan` inside `tx`. Returns the labels applied, or the failure of
// the first migration that fails (the caller's transaction is then void).
absl::StatusOr<std::vector<std::string>> Apply(
    pqxx::work& tx, const std::vector<const internal::Migration*>& plan) {
  std::vector<std::string> labels;
  for (const internal::Migration* m : plan) {
    const std::string label = internal::MigrationLabel(m->version, m->name);
    try {
      tx.exec(m->sql);
    } catch (const pqxx::sql_error& e) {
      absl::Status s = internal::SchemaError(
          e, absl::StrCat("migration ", label, " failed (nothing applied)"));
      if (s.code() == absl::StatusCode::kUnavailable) return s;
      return absl::InternalError(s.message());
    }
    tx.exec_params(
        "INSERT INTO pggit.schema_migrations (version, name, checksum)"
        " VALUES ($1, $2, $3)",
        m->version, std::string(m->name), internal::MigrationChecksum(m->sql));
    labels.push_back(label);
  }
  return labels;
}

absl::StatusOr<MigrateResult> MigrateInTransaction(pqxx::work& tx) {
  tx.exec("SET LOCAL search_path = pggit, public");
  tx.exec("SET LOCAL client_min_messages = warning");
  tx.exec(absl::StrCat("SELECT pg_advisory_xact_lock(",
                       internal::kMigrationLockKey, ")"));
  tx.exec("CREATE SCHEMA IF NOT EXISTS pggit");
  tx.exec(kCreateMigrationsTable);
  const std::vector<internal::AppliedMigration> applied = ReadApplied(tx);
  const auto& embedded = internal::EmbeddedMigrations();
  absl::StatusOr<std::vector<const internal::Migration*>> plan =
      internal::PlanMigrations(applied, embedded, MaxCompatibleSchemaVersion());
  if (!plan.ok()) return plan.status();
  absl::StatusOr<std::vector<std::string>> labels = Apply(tx, *plan);
  if (!labels.ok()) return labels.status();
  MigrateResult result;
  result.from_version = NewestVersion(applied);
  result.to_version =
      plan->empty() ? result.from_version : plan->back()->version;
  result.applied = std::move(*labels);
  return result;
}

}  // namespace

int RequiredSchemaVersion() {
  return static_cast<int>(internal::EmbeddedMigrations().size());
}

int MaxCompatibleSchemaVersion() {
  return RequiredSchemaVersion() + kCompatibleNewerVersions;
}

namespace internal {

const std::vector<std::string>& GuideIndexNames() {
  static const std::vector<std::string> kNames = {
      "idx_webhook_status", "idx_alert_created", "idx_delivery_status"};
  return kNames;
}

absl::Status SchemaError(const std::exception& e, absl::string_view context) {
  absl::Status s = StatusFromPqxx(e, context);
  switch (s.code()) {
    case absl::StatusCode::kUnavailable:
    case absl::StatusCode::kPermissionDenied:
    case absl::StatusCode::kUnknown:
      return s;
    default:  // schema.h promises kInternal for a failing migration
      return absl::InternalError(s.message());
  }
}

absl::StatusOr<MigrateResult> MigrateOn(pqxx::connection_base& conn) {
  try {
    pqxx::work tx(conn, "pggitops_migrate");
    absl::StatusOr<MigrateResult> result = MigrateInTransaction(tx);
    if (!result.ok()) return result.status();  // tx aborts on destruction
    tx.commit();
    for (const std::string& label : result->applied) {
      Log::Info("applied schema migration", {{"migration", label}});
    }
    return result;
  } catch (const std::exception& e) {
    return SchemaError(e, "migrating the database schema");
  }
}

absl::StatusOr<SchemaStatus> CheckSchemaOn(pqxx::connection_base& conn) {
  try {
    pqxx::read_transaction tx(conn, "pggitops_check_schema");
    SchemaStatus status;
    status.expected_version = RequiredSchemaVersion();
    const pqxx::row exists =
        tx.exec1("SELECT to_regclass('pggit.schema_migrations') IS NOT NULL");
    if (exists[0].as<bool>()) {
      status.version = tx.exec1(
                             "SELECT coalesce(max(version), 0)"
                             " FROM pggit.schema_migrations")[0]
                           .as<int>();
    }
    const pqxx::result missing = tx.exec_params(
        "SELECT name FROM unnest(string_to_array($1, ',')) AS g(name)"
        " WHERE to_regclass('pggit.' || quote_ident(name)) IS NULL",
        absl::StrJoin(GuideIndexNames(), ","));
    for (const pqxx::row& row : missing) {
      status.missing_indexes.push_back(row[0].as<std::string>());
    }
    tx.commit();
    status.status = SchemaVersionStatus(status.version, status.expected_version,
                                        MaxCompatibleSchemaVersion());
    status.compatible = status.version >= status.expected_version &&
                        status.version <= MaxCompatibleSchemaVersion();
    return status;
  } catch (const std::exception& e) {
    return SchemaError(e, "checking the database schema");
  }
}

}  // namespace internal

absl::StatusOr<MigrateResult> Migrate(const std::string& database_url) {
  try {
    pqxx::connection conn(database_url);
    pqxx::nontransaction session(conn, "pggitops_session");
    session.exec("SET search_path = pggit, public");
    session.commit();
    return internal::MigrateOn(conn);
  } catch (const std::exception& e) {
    return internal::SchemaError(e, "migrating the database schema");
  }
}

absl::StatusOr<SchemaStatus> CheckSchema(const std::string& database_url) {
  try {
    pqxx::connection conn(database_url);
    return internal::CheckSchemaOn(conn);
  } catch (const std::exception& e) {
    return internal::SchemaError(e, "checking the database schema");
  }
}

absl::StatusOr<SchemaStatus> CheckSchema(ConnectionPool* pool,
                                         absl::Duration timeout) {
  absl::StatusOr<PooledConnection> lease = pool->Acquire(timeout);
  if (!lease.ok()) return lease.status();
  absl::StatusOr<SchemaStatus> result;
  absl::Status s = RunPqxx(*lease, "schema check", [&](pqxx::connection& c) {
    result = internal::CheckSchemaOn(c);
  });
  if (!s.ok()) return s;
  if (!result.ok() &&
      result.status().code() == absl::StatusCode::kUnavailable) {
    lease->MarkBroken();
  }
  return result;
}

}  // namespace pggitops
