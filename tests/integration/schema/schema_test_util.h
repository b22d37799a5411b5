// Helpers shared by the schema integration tests: fresh migrated databases
// and small libpqxx shortcuts that turn results into strings and errors into
// SQLSTATE codes, so a test reads as a list of statements and expectations.
#ifndef PGGITOPS_TESTS_INTEGRATION_SCHEMA_SCHEMA_TEST_UTIL_H_
#define PGGITOPS_TESTS_INTEGRATION_SCHEMA_SCHEMA_TEST_UTIL_H_

#include <fstream>
#include <pqxx/pqxx>
#include <sstream>
#include <string>
#include <vector>

#include "doctest/doctest.h"
#include "pggitops/schema.h"
#include "tests/harness/harness.h"

namespace pggitops::schema_test {

// A new database provisioned by ops/scripts/provision-db and migrated.
inline std::string MigratedDatabase(const std::string& name) {
  const std::string dsn = harness::FreshDatabase(name);
  absl::StatusOr<MigrateResult> r = Migrate(dsn);
  REQUIRE_MESSAGE(r.ok(), r.status().ToString());
  return dsn;
}

// Runs `sql` in its own autocommit statement and returns the first column
// of the first row ("" for no row or NULL).
inline std::string Scalar(pqxx::connection_base& c, const std::string& sql) {
  pqxx::nontransaction tx(c);
  const pqxx::result r = tx.exec(sql);
  if (r.empty() || r[0][0].is_null()) return "";
  return r[0][0].as<std::string>();
}

// Every row's first column, in order.
inline std::vector<std::string> Column(pqxx::connection_base& c,
                                       const std::string& sql) {
  pqxx::nontransaction tx(c);
  std::vector<std::string> out;
  for (const pqxx::row& row : tx.exec(sql)) {
    out.push_back(row[0].is_null() ? "" : row[0].as<std::string>());
  }
  return out;
}

// Runs `sql` outside any transaction block (as psql does): "" when it
// succeeds, else the SQLSTATE; the error text goes to *message.
inline std::string SqlState(pqxx::connection_base& c, const std::string& sql,
                            std::string* message = nullptr) {
  try {
    pqxx::nontransaction tx(c);
    tx.exec(sql);
    return "";
  } catch (const pqxx::insufficient_privilege& e) {
    // libpqxx 6.4 does not fill sqlstate() for this class.
    if (message != nullptr) *message = e.what();
    return "42501";
  } catch (const pqxx::sql_error& e) {
    if (message != nullptr) *message = e.what();
    return e.sqlstate().empty() ? "unknown" : e.sqlstate();
  }
}

inline std::string ReadSource(const std::string& relative) {
  std::ifstream in(harness::SourcePath(relative));
  REQUIRE_MESSAGE(in.good(), "cannot read " << relative);
  std::stringstream text;
  text << in.rdbuf();
  return text.str();
}

}  // namespace pggitops::schema_test

#endif  // PGGITOPS_TESTS_INTEGRATION_SCHEMA_SCHEMA_TEST_UTIL_H_
