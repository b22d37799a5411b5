#include "libpggitops/schema/migration_plan.h"

#include <string>
#include <vector>

#include "doctest/doctest.h"
#include "libpggitops/schema/migrations.h"
#include "pggitops/schema.h"

namespace pggitops::internal {
namespace {

const std::vector<Migration>& ThreeMigrations() {
  static const std::vector<Migration> kMigrations = {
      {1, "initial", "CREATE TABLE a (x int);"},
      {2, "more", "CREATE TABLE b (x int);"},
      {3, "most", "CREATE TABLE c (x int);"},
  };
  return kMigrations;
}

AppliedMigration AppliedAsShipped(int version) {
  const Migration& m = ThreeMigrations()[version - 1];
  return {m.version, m.name, MigrationChecksum(m.sql)};
}

TEST_CASE("MigrationChecksum: hex SHA-256 of the text") {
  CHECK(MigrationChecksum("") ==
        "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
  CHECK(MigrationChecksum("abc") ==
        "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
  CHECK(MigrationChecksum("abc ") != MigrationChecksum("abc"));
}

TEST_CASE("MigrationLabel: three-digit version and name") {
  CHECK(MigrationLabel(1, "initial") == "001_initial");
  CHECK(MigrationLabel(42, "x") == "042_x");
}

TEST_CASE("PlanMigrations: fresh database gets every migration in order") {
  auto plan = PlanMigrations({}, ThreeMigrations(), 3);
  REQUIRE(plan.ok());
  REQUIRE(plan->size() == 3);
  CHECK((*plan)[0]->version == 1);
  CHECK((*plan)[2]->version == 3);
}

TEST_CASE("PlanMigrations: only the missing newer ones") {
  auto plan = PlanMigrations({AppliedAsShipped(1), AppliedAsShipped(2)},
                             ThreeMigrations(), 3);
  REQUIRE(plan.ok());
  REQUIRE(plan->size() == 1);
  CHECK((*plan)[0]->version == 3);
}

TEST_CASE("PlanMigrations: up to date applies nothing") {
  auto plan = PlanMigrations(
      {AppliedAsShipped(1), AppliedAsShipped(2), AppliedAsShipped(3)},
      ThreeMigrations(), 3);
  REQUIRE(plan.ok());
  CHECK(plan->empty());
}

TEST_CASE("PlanMigrations: refuses a schema newer than max compatible") {
  AppliedMigration future{4, "future", "whatever"};
  auto plan = PlanMigrations(
      {AppliedAsShipped(1), AppliedAsShipped(2), AppliedAsShipped(3), future},
      ThreeMigrations(), 3);
  REQUIRE_FALSE(plan.ok());
  CHECK(plan.status().code() == absl::StatusCode::kFailedPrecondition);
  CHECK(plan.status().message().find("version 4 (004_future)") !=
        absl::string_view::npos);
}

TEST_CASE("PlanMigrations: accepts a newer version declared compatible") {
  AppliedMigration future{4, "future", "not checked"};
  auto plan = PlanMigrations(
      {AppliedAsShipped(1), AppliedAsShipped(2), AppliedAsShipped(3), future},
      ThreeMigrations(), 4);
  REQUIRE(plan.ok());
  CHECK(plan->empty());
}

TEST_CASE("PlanMigrations: a changed migration file is refused by name") {
  AppliedMigration edited = AppliedAsShipped(2);
  edited.checksum = MigrationChecksum("CREATE TABLE b (x bigint);");
  auto plan =
      PlanMigrations({AppliedAsShipped(1), edited}, ThreeMigrations(), 3);
  REQUIRE_FALSE(plan.ok());
  CHECK(plan.status().code() == absl::StatusCode::kFailedPrecondition);
  const std::string message(plan.status().message());
  CHECK(message.find("002_more") != std::string::npos);
  CHECK(message.find(edited.checksum) != std::string::npos);
  CHECK(message.find(MigrationChecksum(ThreeMigrations()[1].sql)) !=
        std::string::npos);
}

TEST_CASE("PlanMigrations: a renamed migration is refused") {
  AppliedMigration renamed = AppliedAsShipped(1);
  renamed.name = "first";
  auto plan = PlanMigrations({renamed}, ThreeMigrations(), 3);
  REQUIRE_FALSE(plan.ok());
  CHECK(plan.status().message().find("001_first") != absl::string_view::npos);
}

TEST_CASE("PlanMigrations: a gap below an applied version is refused") {
  auto plan = PlanMigrations({AppliedAsShipped(1), AppliedAsShipped(3)},
                             ThreeMigrations(), 3);
  REQUIRE_FALSE(plan.ok());
  CHECK(plan.status().code() == absl::StatusCode::kFailedPrecondition);
  CHECK(plan.status().message().find("002_more") != absl::string_view::npos);
}

TEST_CASE("PlanMigrations: an invalid recorded version is refused") {
  auto plan = PlanMigrations({{0, "zero", ""}}, ThreeMigrations(), 3);
  REQUIRE_FALSE(plan.ok());
  CHECK(plan.status().code() == absl::StatusCode::kFailedPrecondition);
}

TEST_CASE("SchemaVersionStatus: missing, behind, ok, ahead") {
  CHECK(std::string(SchemaVersionStatus(0, 2, 3)) == "missing");
  CHECK(std::string(SchemaVersionStatus(1, 2, 3)) == "behind");
  CHECK(std::string(SchemaVersionStatus(2, 2, 3)) == "ok");
  CHECK(std::string(SchemaVersionStatus(3, 2, 3)) == "ok");
  CHECK(std::string(SchemaVersionStatus(4, 2, 3)) == "ahead");
}

TEST_CASE("EmbeddedMigrations: numbered 1..N with non-empty SQL") {
  const auto& embedded = EmbeddedMigrations();
  REQUIRE_FALSE(embedded.empty());
  for (size_t i = 0; i < embedded.size(); ++i) {
    CHECK(embedded[i].version == static_cast<int>(i) + 1);
    // Statements, not just the comment header.
    const std::string sql = embedded[i].sql;
    CHECK((sql.find("CREATE ") != std::string::npos ||
           sql.find("ALTER ") != std::string::npos));
  }
  CHECK(std::string(embedded[0].name) == "initial");
  CHECK(RequiredSchemaVersion() == static_cast<int>(embedded.size()));
}

TEST_CASE("MaxCompatibleSchemaVersion: the required version, no newer yet") {
  // A newer migration is compatible only once a release declares it.
  CHECK(MaxCompatibleSchemaVersion() == RequiredSchemaVersion());
}

}  // namespace
}  // namespace pggitops::internal
