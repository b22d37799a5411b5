// The connection string the pool gives libpq, and SQLSTATE mapping.
#include "libpggitops/pool/conninfo.h"

#include <string>

#include "absl/strings/match.h"
#include "doctest/doctest.h"
#include "libpggitops/pool/sql_status.h"

namespace pggitops::internal {
namespace {

TEST_CASE("Conninfo: a URI becomes key/value with the pool's settings") {
  absl::StatusOr<ConnParams> p =
      ParseDsn("postgresql://pggit:s3cr%27t@127.0.0.1:5432/pggit");
  REQUIRE(p.ok());
  PoolOptions o;
  o.statement_timeout = absl::Milliseconds(1500);
  o.application_name = "pggit-api";
  const std::string s = RenderConninfo(*p, o, absl::Seconds(5));
  CHECK(absl::StrContains(s, "user='pggit'"));
  CHECK(absl::StrContains(s, "password='s3cr\\'t'"));
  CHECK(absl::StrContains(s, "host='127.0.0.1'"));
  CHECK(absl::StrContains(s, "port='5432'"));
  CHECK(absl::StrContains(s, "dbname='pggit'"));
  CHECK(absl::StrContains(s, "connect_timeout='5'"));
  CHECK(absl::StrContains(s, "options='-c statement_timeout=1500'"));
  CHECK(absl::StrContains(s, "fallback_application_name='pggit-api'"));
}

TEST_CASE("Conninfo: connect timeout is whole seconds, at least 2") {
  absl::StatusOr<ConnParams> p = ParseDsn("host=h connect_timeout=60");
  REQUIRE(p.ok());
  PoolOptions o;
  CHECK(absl::StrContains(RenderConninfo(*p, o, absl::Seconds(1)),
                          "connect_timeout='2'"));
  CHECK(absl::StrContains(RenderConninfo(*p, o, absl::Milliseconds(2100)),
                          "connect_timeout='3'"));
  CHECK_FALSE(
      absl::StrContains(RenderConninfo(*p, o, absl::Seconds(4)), "'60'"));
}

TEST_CASE("Conninfo: existing options are kept, infinite timeout adds none") {
  absl::StatusOr<ConnParams> p =
      ParseDsn("host=h options='-c search_path=pggit' application_name=x");
  REQUIRE(p.ok());
  PoolOptions o;
  const std::string s = RenderConninfo(*p, o, absl::Seconds(5));
  CHECK(absl::StrContains(
      s, "options='-c search_path=pggit -c statement_timeout=30000'"));
  CHECK(absl::StrContains(s, "application_name='x'"));
  o.statement_timeout = absl::InfiniteDuration();
  CHECK(absl::StrContains(RenderConninfo(*p, o, absl::Seconds(5)),
                          "options='-c search_path=pggit'"));
}

TEST_CASE("Conninfo: bad DSNs are refused without echoing secrets") {
  CHECK(absl::IsInvalidArgument(ParseDsn("").status()));
  absl::Status s = ParseDsn("host=h password topsecret").status();
  CHECK(absl::IsInvalidArgument(s));
  CHECK(absl::StartsWith(s.message(), "PoolOptions.dsn: "));
  CHECK_FALSE(absl::StrContains(s.message(), "topsecret"));
  CHECK(absl::IsInvalidArgument(
      ParseDsn("postgresql://h/db?nosuchparam=1").status()));
}

TEST_CASE("SqlState: codes by SQLSTATE, payload kept") {
  struct {
    const char* state;
    absl::StatusCode code;
  } cases[] = {
      {"23505", absl::StatusCode::kAlreadyExists},
      {"23503", absl::StatusCode::kFailedPrecondition},
      {"22P02", absl::StatusCode::kInvalidArgument},
      {"40001", absl::StatusCode::kAborted},
      {"40P01", absl::StatusCode::kAborted},
      {"57014", absl::StatusCode::kUnavailable},
      {"57P01", absl::StatusCode::kUnavailable},
      {"08006", absl::StatusCode::kUnavailable},
      {"53300", absl::StatusCode::kResourceExhausted},
      {"42501", absl::StatusCode::kPermissionDenied},
      {"42P01", absl::StatusCode::kInternal},
  };
  for (const auto& c : cases) {
    INFO(c.state);
    absl::Status s = SqlError(c.state, "boom");
    CHECK(s.code() == c.code);
    CHECK(SqlStateOf(s) == c.state);
    CHECK(absl::StrContains(s.message(), "boom"));
  }
  CHECK(SqlStateOf(absl::InternalError("x")).empty());
  CHECK(IsConnectionFailure(SqlError("57P01", "terminating")));
  CHECK(IsConnectionFailure(absl::UnavailableError("server closed")));
  CHECK_FALSE(IsConnectionFailure(SqlError("57014", "statement timeout")));
  CHECK_FALSE(IsConnectionFailure(SqlError("23505", "dup")));
}

}  // namespace
}  // namespace pggitops::internal
