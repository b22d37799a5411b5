// Migrations against a real PostgreSQL 15: fresh database, idempotence,
// concurrent runners (threads and `pggit-api migrate` processes), the
// unprivileged role, refusals (newer schema, changed file, failed migration)
// and CheckSchema.
#include <unistd.h>

#include <chrono>
#include <pqxx/pqxx>
#include <string>
#include <thread>
#include <vector>

#include "doctest/doctest.h"
#include "libpggitops/schema/migration_plan.h"
#include "libpggitops/schema/migrations.h"
#include "libpggitops/schema/schema_internal.h"
#include "pggitops/schema.h"
#include "tests/harness/harness.h"
#include "tests/integration/schema/schema_test_util.h"

namespace pggitops {
namespace {

using schema_test::Column;
using schema_test::MigratedDatabase;
using schema_test::Scalar;

const std::vector<std::string> kTables = {
    "alert_delivery_queue", "alerts",   "api_keys",
    "delivery_attempts",    "webhooks", "schema_migrations"};

// The tables of kTables that schema pggit lacks, comma-separated.
std::string MissingTables(pqxx::connection_base& c) {
  std::string missing;
  for (const std::string& table : kTables) {
    if (Scalar(c, "SELECT to_regclass('pggit." + table + "') IS NULL") == "t") {
      missing += table + ",";
    }
  }
  return missing;
}

std::string DatabaseOf(const std::string& dsn) {
  return dsn.substr(dsn.rfind('/') + 1);
}

// Waits until `n` sessions of the database wait for an advisory lock.
bool WaitForLockWaiters(pqxx::connection_base& c, int n) {
  return harness::WaitFor(
      [&] {
        const std::string waiting = Scalar(
            c,
            "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND NOT "
            "granted AND database = (SELECT oid FROM pg_database WHERE "
            "datname = current_database())");
        return std::stoi(waiting) >= n;
      },
      std::chrono::seconds(30));
}

// Holds the migration lock in its own transaction until Release().
class MigrationLockHolder {
 public:
  explicit MigrationLockHolder(const std::string& dsn)
      : conn_(dsn), tx_(std::make_unique<pqxx::work>(conn_)) {
    tx_->exec("SELECT pg_advisory_xact_lock(" +
              std::to_string(internal::kMigrationLockKey) + ")");
  }
  void Release() { tx_->commit(); }

 private:
  pqxx::connection conn_;
  std::unique_ptr<pqxx::work> tx_;
};

TEST_CASE("Migrate: a fresh database gets every table and guide index") {
  const std::string dsn = harness::FreshDatabase("schema_fresh");
  absl::StatusOr<SchemaStatus> before = CheckSchema(dsn);
  REQUIRE(before.ok());
  CHECK(before->status == "missing");
  CHECK(before->version == 0);
  CHECK_FALSE(before->compatible);
  CHECK(before->missing_indexes.size() == 3);

  absl::StatusOr<MigrateResult> r = Migrate(dsn);
  REQUIRE_MESSAGE(r.ok(), r.status().ToString());
  CHECK(r->from_version == 0);
  CHECK(r->to_version == RequiredSchemaVersion());
  REQUIRE(r->applied.size() == static_cast<size_t>(RequiredSchemaVersion()));
  CHECK(r->applied[0] == "001_initial");

  pqxx::connection c(dsn);  // a new session: gets the database's defaults
  CHECK(Scalar(c, "SHOW search_path") == "pggit, public");
  CHECK(MissingTables(c) == "");
  CHECK(Scalar(c,
               "SELECT indexdef FROM pg_indexes WHERE indexname = "
               "'idx_webhook_status'") ==
        "CREATE INDEX idx_webhook_status ON pggit.webhooks USING btree "
        "(status)");
  CHECK(Scalar(c,
               "SELECT indexdef FROM pg_indexes WHERE indexname = "
               "'idx_alert_created'") ==
        "CREATE INDEX idx_alert_created ON pggit.alerts USING btree "
        "(created_at DESC)");
  CHECK(Scalar(c,
               "SELECT indexdef FROM pg_indexes WHERE indexname = "
               "'idx_delivery_status'") ==
        "CREATE INDEX idx_delivery_status ON pggit.alert_delivery_queue "
        "USING btree (delivery_status, created_at)");
  CHECK(Scalar(c,
               "SELECT checksum FROM pggit.schema_migrations WHERE "
               "version = 1") ==
        internal::MigrationChecksum(internal::EmbeddedMigrations()[0].sql));

  // 003: the queue is vacuumed after 1 % of it is dead, not 20 %.
  CHECK(Scalar(c,
               "SELECT array_to_string(reloptions, ',') FROM pg_class WHERE "
               "oid = 'pggit.alert_delivery_queue'::regclass") ==
        "autovacuum_vacuum_scale_factor=0.01,autovacuum_vacuum_threshold=1000,"
        "autovacuum_analyze_scale_factor=0.02,"
        "autovacuum_vacuum_insert_scale_factor=0.05");

  // 004: the claim's index orders by due time, then id; no lease index.
  CHECK(Scalar(c,
               "SELECT indexdef FROM pg_indexes WHERE indexname = "
               "'idx_delivery_claim_due'") ==
        "CREATE INDEX idx_delivery_claim_due ON pggit.alert_delivery_queue "
        "USING btree (next_attempt_at, id) WHERE (delivery_status = "
        "'pending'::text)");
  CHECK(Scalar(c,
               "SELECT count(*) FROM pg_indexes WHERE indexname = "
               "'idx_delivery_claim_lease'") == "0");

  absl::StatusOr<SchemaStatus> after = CheckSchema(dsn);
  REQUIRE(after.ok());
  CHECK(after->status == "ok");
  CHECK(after->version == RequiredSchemaVersion());
  CHECK(after->expected_version == RequiredSchemaVersion());
  CHECK(after->compatible);
  CHECK(after->missing_indexes.empty());
}

TEST_CASE("Migrate: runs as pggit, which is not a superuser") {
  const std::string dsn = harness::FreshDatabase("schema_unprivileged");
  const std::string db = DatabaseOf(dsn);
  CHECK(harness::AdminQuery("postgres",
                            "SELECT rolsuper FROM pg_roles WHERE rolname = "
                            "'pggit'") == "f");
  pqxx::connection c(dsn);
  CHECK(Scalar(c, "SELECT current_user") == "pggit");
  absl::StatusOr<MigrateResult> r = internal::MigrateOn(c);
  REQUIRE_MESSAGE(r.ok(), r.status().ToString());
  CHECK(harness::AdminQuery(db,
                            "SELECT string_agg(DISTINCT tableowner, ',') "
                            "FROM pg_tables WHERE schemaname = 'pggit'") ==
        "pggit");
  absl::StatusOr<SchemaStatus> s = internal::CheckSchemaOn(c);
  REQUIRE(s.ok());
  CHECK(s->status == "ok");
}

TEST_CASE("Migrate: the second run applies nothing") {
  const std::string dsn = MigratedDatabase("schema_twice");
  pqxx::connection c(dsn);
  const std::string applied_at =
      Scalar(c,
             "SELECT string_agg(applied_at::text, ',' ORDER BY version) FROM "
             "pggit.schema_migrations");
  absl::StatusOr<MigrateResult> again = Migrate(dsn);
  REQUIRE_MESSAGE(again.ok(), again.status().ToString());
  CHECK(again->applied.empty());
  CHECK(again->from_version == RequiredSchemaVersion());
  CHECK(again->to_version == RequiredSchemaVersion());
  CHECK(Scalar(c, "SELECT count(*) FROM pggit.schema_migrations") ==
        std::to_string(RequiredSchemaVersion()));
  CHECK(Scalar(c,
               "SELECT string_agg(applied_at::text, ',' ORDER BY version) FROM "
               "pggit.schema_migrations") == applied_at);
}

TEST_CASE("Migrate: two threads at once, one waits and applies nothing") {
  const std::string dsn = harness::FreshDatabase("schema_threads");
  MigrationLockHolder holder(dsn);
  absl::StatusOr<MigrateResult> results[2] = {absl::UnknownError("not run"),
                                              absl::UnknownError("not run")};
  std::thread a([&] { results[0] = Migrate(dsn); });
  std::thread b([&] { results[1] = Migrate(dsn); });
  pqxx::connection watcher(dsn);
  const bool both_waited = WaitForLockWaiters(watcher, 2);
  holder.Release();
  a.join();
  b.join();
  CHECK(both_waited);
  REQUIRE_MESSAGE(results[0].ok(), results[0].status().ToString());
  REQUIRE_MESSAGE(results[1].ok(), results[1].status().ToString());
  // One runner applied everything, the other (after the wait) nothing.
  CHECK(results[0]->applied.size() + results[1]->applied.size() ==
        static_cast<size_t>(RequiredSchemaVersion()));
  CHECK((results[0]->applied.empty() || results[1]->applied.empty()));
  CHECK(results[0]->to_version == RequiredSchemaVersion());
  CHECK(results[1]->to_version == RequiredSchemaVersion());
  CHECK(Scalar(watcher, "SELECT count(*) FROM pggit.schema_migrations") ==
        std::to_string(RequiredSchemaVersion()));
  CHECK(MissingTables(watcher).empty());
}

TEST_CASE("Migrate: two `pggit-api migrate` processes at once") {
  const std::string binary = harness::BuildPath("server/pggit-api");
  if (access(binary.c_str(), X_OK) != 0) return;  // daemon not built yet
  const std::string dsn = harness::FreshDatabase("schema_processes");
  MigrationLockHolder holder(dsn);
  const std::map<std::string, std::string> env = {{"DATABASE_URL", dsn}};
  harness::Process first({binary, "migrate"}, env);
  harness::Process second({binary, "migrate"}, env);
  pqxx::connection watcher(dsn);
  const bool both_waited = WaitForLockWaiters(watcher, 2);
  holder.Release();
  const int first_code = first.Wait(60'000);
  const int second_code = second.Wait(60'000);
  CHECK(both_waited);
  CHECK_MESSAGE(first_code == 0, first.Output());
  CHECK_MESSAGE(second_code == 0, second.Output());
  CHECK(Scalar(watcher, "SELECT count(*) FROM pggit.schema_migrations") ==
        std::to_string(RequiredSchemaVersion()));
  CHECK(Scalar(watcher, "SELECT max(version) FROM pggit.schema_migrations") ==
        std::to_string(RequiredSchemaVersion()));
}

TEST_CASE("Migrate: refuses a newer schema; CheckSchema says ahead") {
  const std::string dsn = MigratedDatabase("schema_ahead");
  const int future = MaxCompatibleSchemaVersion() + 1;
  pqxx::connection c(dsn);
  Scalar(c,
         "INSERT INTO pggit.schema_migrations (version, name, checksum) "
         "VALUES (" +
             std::to_string(future) + ", 'from_the_future', 'abc')");
  absl::StatusOr<MigrateResult> r = Migrate(dsn);
  REQUIRE_FALSE(r.ok());
  CHECK(r.status().code() == absl::StatusCode::kFailedPrecondition);
  CHECK(std::string(r.status().message())
            .find("version " + std::to_string(future)) != std::string::npos);
  CHECK(Scalar(c, "SELECT count(*) FROM pggit.schema_migrations") ==
        std::to_string(RequiredSchemaVersion() + 1));

  absl::StatusOr<SchemaStatus> s = CheckSchema(dsn);
  REQUIRE(s.ok());
  CHECK(s->status == "ahead");
  CHECK(s->version == future);
  CHECK_FALSE(s->compatible);
}

TEST_CASE("Migrate: refuses when an applied migration file changed") {
  const std::string dsn = MigratedDatabase("schema_checksum");
  pqxx::connection c(dsn);
  Scalar(c, "UPDATE pggit.schema_migrations SET checksum = 'deadbeef'");
  absl::StatusOr<MigrateResult> r = Migrate(dsn);
  REQUIRE_FALSE(r.ok());
  CHECK(r.status().code() == absl::StatusCode::kFailedPrecondition);
  const std::string message(r.status().message());
  CHECK(message.find("001_initial") != std::string::npos);
  CHECK(message.find("deadbeef") != std::string::npos);
}

TEST_CASE("Migrate: a failing migration applies nothing at all") {
  const std::string dsn = harness::FreshDatabase("schema_failing");
  pqxx::connection c(dsn);
  // An object in the way of 001_initial's CREATE TABLE.
  Scalar(c, "CREATE SCHEMA pggit; CREATE TABLE pggit.alerts (x int)");
  absl::StatusOr<MigrateResult> r = Migrate(dsn);
  REQUIRE_FALSE(r.ok());
  CHECK(r.status().code() == absl::StatusCode::kInternal);
  CHECK(std::string(r.status().message()).find("001_initial") !=
        std::string::npos);
  CHECK(Scalar(c, "SELECT to_regclass('pggit.webhooks') IS NULL") == "t");
  CHECK(Scalar(c, "SELECT to_regclass('pggit.schema_migrations') IS NULL") ==
        "t");
  pqxx::connection fresh_session(dsn);
  CHECK(Scalar(fresh_session, "SHOW search_path") == "\"$user\", public");
}

TEST_CASE("CheckSchema: names a missing guide index") {
  const std::string dsn = MigratedDatabase("schema_missing_index");
  pqxx::connection c(dsn);
  Scalar(c, "DROP INDEX pggit.idx_alert_created");
  absl::StatusOr<SchemaStatus> s = CheckSchema(dsn);
  REQUIRE(s.ok());
  CHECK(s->status == "ok");
  CHECK(s->missing_indexes == std::vector<std::string>{"idx_alert_created"});
}

TEST_CASE("Migrate: a role that does not own the database is refused") {
  const std::string dsn = harness::FreshDatabase("schema_not_owner");
  harness::AdminQuery("postgres",
                      "DO $$ BEGIN CREATE ROLE pggitops_schema_outsider "
                      "LOGIN; EXCEPTION WHEN duplicate_object THEN NULL; "
                      "END $$");
  const harness::Services& s = harness::Get();
  const std::string outsider = "postgresql://pggitops_schema_outsider@" +
                               s.pghost + ":" + std::to_string(s.pgport) + "/" +
                               DatabaseOf(dsn);
  absl::StatusOr<MigrateResult> r = Migrate(outsider);
  REQUIRE_FALSE(r.ok());
  CHECK_MESSAGE(r.status().code() == absl::StatusCode::kPermissionDenied,
                r.status().ToString());
  CHECK(harness::AdminQuery(DatabaseOf(dsn),
                            "SELECT count(*) FROM pg_namespace WHERE nspname "
                            "= 'pggit'") == "0");
}

TEST_CASE("Migrate and CheckSchema: an unreachable server is kUnavailable") {
  const std::string dsn = "postgresql://pggit:pggit@127.0.0.1:" +
                          std::to_string(harness::FreePort()) +
                          "/pggit?connect_timeout=5";
  absl::StatusOr<MigrateResult> r = Migrate(dsn);
  REQUIRE_FALSE(r.ok());
  CHECK(r.status().code() == absl::StatusCode::kUnavailable);
  absl::StatusOr<SchemaStatus> s = CheckSchema(dsn);
  REQUIRE_FALSE(s.ok());
  CHECK(s.status().code() == absl::StatusCode::kUnavailable);
}

}  // namespace
}  // namespace pggitops
