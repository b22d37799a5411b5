// PoolOptions validation (every field), Create's refusals and the mapping
// from Config.
#include <memory>
#include <string>

#include "absl/strings/match.h"
#include "doctest/doctest.h"
#include "libpggitops/pool/fake_connector_for_test.h"
#include "pggitops/connection_pool.h"

namespace pggitops::internal {
namespace {

// Returns the Validate() message for options changed by `mutate`.
template <typename Fn>
std::string ErrorFor(Fn mutate) {
  PoolOptions o;
  mutate(o);
  absl::Status s = o.Validate();
  CHECK(absl::IsInvalidArgument(s));
  return std::string(s.message());
}

TEST_CASE("PoolOptions: defaults are valid and match the guide") {
  PoolOptions o;
  CHECK(o.Validate().ok());
  CHECK(o.size == 20);
  CHECK(o.max_overflow == 10);
  CHECK(o.timeout == absl::Seconds(30));
  CHECK(o.recycle == absl::Seconds(3600));
  CHECK(o.pre_ping);
  CHECK(o.pre_ping_idle == absl::Seconds(10));
  CHECK(o.connect_timeout == absl::Seconds(5));
  CHECK(o.statement_timeout == absl::Seconds(30));
  CHECK(o.slow_query == absl::Seconds(1));
}

TEST_CASE("PoolOptions: every out-of-range field is named") {
  using D = absl::Duration;
  const D inf = absl::InfiniteDuration();
  struct Case {
    const char* field;
    std::string message;
  } cases[] = {
      {"size: must be from 1 to 1000 (got 0)",
       ErrorFor([](PoolOptions& o) { o.size = 0; })},
      {"size: must be from 1 to 1000 (got 1001)",
       ErrorFor([](PoolOptions& o) { o.size = 1001; })},
      {"max_overflow: must be from 0 to 1000 (got -1)",
       ErrorFor([](PoolOptions& o) { o.max_overflow = -1; })},
      {"timeout:", ErrorFor([](PoolOptions& o) { o.timeout = D(); })},
      {"recycle:",
       ErrorFor([](PoolOptions& o) { o.recycle = -absl::Seconds(1); })},
      {"pre_ping_idle:",
       ErrorFor([](PoolOptions& o) { o.pre_ping_idle = -absl::Seconds(1); })},
      {"connect_timeout:", ErrorFor([](PoolOptions& o) {
         o.connect_timeout = absl::Milliseconds(500);
       })},
      {"connect_timeout:",
       ErrorFor([&](PoolOptions& o) { o.connect_timeout = inf; })},
      {"statement_timeout:",
       ErrorFor([](PoolOptions& o) { o.statement_timeout = D(); })},
      {"statement_timeout:",
       ErrorFor([](PoolOptions& o) { o.statement_timeout = absl::Hours(25); })},
      {"slow_query:", ErrorFor([](PoolOptions& o) { o.slow_query = D(); })},
      {"down_retry_interval:",
       ErrorFor([](PoolOptions& o) { o.down_retry_interval = D(); })},
      {"application_name:", ErrorFor([](PoolOptions& o) {
         o.application_name = std::string(64, 'a');
       })},
      {"application_name:",
       ErrorFor([](PoolOptions& o) { o.application_name = "bad\nname"; })},
  };
  for (const Case& c : cases) {
    INFO(c.message);
    CHECK(absl::StartsWith(c.message, std::string("PoolOptions.") + c.field));
  }
}

TEST_CASE("PoolOptions: infinite durations and edges are accepted") {
  PoolOptions o;
  o.size = 1;
  o.max_overflow = 0;
  o.timeout = absl::InfiniteDuration();
  o.recycle = absl::InfiniteDuration();
  o.pre_ping_idle = absl::ZeroDuration();
  o.connect_timeout = absl::Seconds(1);
  o.statement_timeout = absl::InfiniteDuration();
  o.slow_query = absl::InfiniteDuration();
  o.application_name = "";
  CHECK(o.Validate().ok());
}

TEST_CASE("ConnectionPool::Create refuses bad options and connects nothing") {
  auto server = std::make_shared<FakeServer>();
  PoolOptions o;
  o.max_overflow = -3;
  auto pool =
      ConnectionPool::Create(o, std::make_unique<FakeConnector>(server));
  REQUIRE_FALSE(pool.ok());
  CHECK(absl::StrContains(pool.status().message(), "max_overflow"));
  CHECK(server->connect_attempts() == 0);

  CHECK(absl::IsInvalidArgument(
      ConnectionPool::Create(PoolOptions{}, nullptr).status()));
}

TEST_CASE("ConnectionPool::Create(options) checks the dsn") {
  PoolOptions o;
  auto empty = ConnectionPool::Create(o);
  CHECK(absl::IsInvalidArgument(empty.status()));
  CHECK(absl::StartsWith(empty.status().message(), "PoolOptions.dsn:"));
  o.dsn = "host=x password secret";
  auto garbage = ConnectionPool::Create(o);
  CHECK(absl::IsInvalidArgument(garbage.status()));
  CHECK_FALSE(absl::StrContains(garbage.status().message(), "secret"));
  o.dsn = "postgresql://u:p@127.0.0.1:1/db";
  auto fine = ConnectionPool::Create(o);  // lazy: nothing is contacted
  REQUIRE(fine.ok());
  CHECK((*fine)->Stats().open == 0);
}

TEST_CASE("PoolOptionsFromConfig maps every DATABASE_* key") {
  Config c;
  c.database_url = "postgresql://a@b/c";
  c.database_pool_size = 7;
  c.database_pool_max_overflow = 3;
  c.database_pool_timeout = absl::Seconds(4);
  c.database_pool_recycle = absl::Seconds(90);
  c.database_pool_pre_ping = false;
  c.database_pool_pre_ping_idle = absl::Seconds(6);
  c.database_connect_timeout = absl::Seconds(8);
  c.database_statement_timeout = absl::Seconds(9);
  c.database_slow_query = absl::Milliseconds(250);
  PoolOptions o = PoolOptionsFromConfig(c);
  CHECK(o.dsn == c.database_url);
  CHECK(o.size == 7);
  CHECK(o.max_overflow == 3);
  CHECK(o.timeout == absl::Seconds(4));
  CHECK(o.recycle == absl::Seconds(90));
  CHECK_FALSE(o.pre_ping);
  CHECK(o.pre_ping_idle == absl::Seconds(6));
  CHECK(o.connect_timeout == absl::Seconds(8));
  CHECK(o.statement_timeout == absl::Seconds(9));
  CHECK(o.slow_query == absl::Milliseconds(250));
  CHECK(o.Validate().ok());

  c.database_pool_recycle = absl::ZeroDuration();
  c.database_statement_timeout = absl::ZeroDuration();
  c.database_slow_query = absl::ZeroDuration();
  o = PoolOptionsFromConfig(c);
  CHECK(o.recycle == absl::InfiniteDuration());
  CHECK(o.statement_timeout == absl::InfiniteDuration());
  CHECK(o.slow_query == absl::InfiniteDuration());
}

}  // namespace
}  // namespace pggitops::internal
