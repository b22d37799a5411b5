// The one libpqxx-exception-to-Status mapping (pqxx_status.h), on
// exceptions built as libpqxx 6.4 throws them: many types carry no
// SQLSTATE, so the type decides.
#include "libpggitops/pool/pqxx_status.h"

#include <pqxx/pqxx>
#include <stdexcept>

#include "absl/strings/match.h"
#include "doctest/doctest.h"
#include "pggitops/connection_pool.h"
#include "pggitops/pqxx.h"

namespace pggitops::internal {
namespace {

TEST_CASE("StatusFromPqxx: a privilege error without SQLSTATE") {
  // libpqxx 6.4 throws insufficient_privilege{err, query}: no SQLSTATE.
  pqxx::insufficient_privilege e("ERROR:  permission denied for table x\n");
  REQUIRE(e.sqlstate().empty());
  absl::Status s = StatusFromPqxx(e);
  CHECK(s.code() == absl::StatusCode::kPermissionDenied);
  CHECK(SqlStateOf(s) == "42501");
  CHECK(absl::StrContains(s.message(), "permission denied for table x"));
  // The public adapter is the same mapping.
  CHECK(StatusFromPqxxException(e).code() ==
        absl::StatusCode::kPermissionDenied);
}

TEST_CASE("StatusFromPqxx: by SQLSTATE when libpqxx kept one") {
  pqxx::sql_error dup("duplicate key", "INSERT ...", "23505");
  CHECK(StatusFromPqxx(dup).code() == absl::StatusCode::kAlreadyExists);
  pqxx::sql_error timeout("canceling statement", "SELECT", "57014");
  CHECK(StatusFromPqxx(timeout).code() == absl::StatusCode::kUnavailable);
  pqxx::sql_error privilege("permission denied", "SELECT", "42501");
  CHECK(StatusFromPqxx(privilege).code() ==
        absl::StatusCode::kPermissionDenied);
}

TEST_CASE("StatusFromPqxx: by type when the SQLSTATE is missing") {
  CHECK(StatusFromPqxx(pqxx::unique_violation("dup")).code() ==
        absl::StatusCode::kAlreadyExists);
  CHECK(StatusFromPqxx(pqxx::check_violation("check")).code() ==
        absl::StatusCode::kFailedPrecondition);
  CHECK(StatusFromPqxx(pqxx::data_exception("bad")).code() ==
        absl::StatusCode::kInvalidArgument);
  CHECK(StatusFromPqxx(pqxx::serialization_failure("retry")).code() ==
        absl::StatusCode::kAborted);
  CHECK(StatusFromPqxx(pqxx::deadlock_detected("deadlock")).code() ==
        absl::StatusCode::kAborted);
  CHECK(StatusFromPqxx(pqxx::out_of_memory("oom")).code() ==
        absl::StatusCode::kResourceExhausted);
  CHECK(StatusFromPqxx(pqxx::broken_connection("gone")).code() ==
        absl::StatusCode::kUnavailable);
  CHECK(StatusFromPqxx(pqxx::too_many_connections("full")).code() ==
        absl::StatusCode::kUnavailable);
  CHECK(StatusFromPqxx(pqxx::in_doubt_error("?")).code() ==
        absl::StatusCode::kUnknown);
  CHECK(StatusFromPqxx(pqxx::sql_error("other")).code() ==
        absl::StatusCode::kInternal);
  CHECK(StatusFromPqxx(std::runtime_error("not libpqxx")).code() ==
        absl::StatusCode::kInternal);
}

TEST_CASE("StatusFromPqxx: one line, context first, payload kept") {
  pqxx::sql_error e("ERROR:  boom\n\tDETAIL:  more\n", "Q", "42P01");
  absl::Status s = StatusFromPqxx(e, "migrating the database schema");
  CHECK(absl::StartsWith(s.message(), "migrating the database schema: "));
  CHECK(absl::StrContains(s.message(), "boom DETAIL: more"));
  CHECK_FALSE(absl::StrContains(s.message(), "\n"));
  CHECK(SqlStateOf(s) == "42P01");
}

}  // namespace
}  // namespace pggitops::internal
