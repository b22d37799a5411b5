#include "libpggitops/config/redis_url.h"

#include "absl/strings/match.h"
#include "doctest/doctest.h"

namespace pggitops::internal {
namespace {

TEST_CASE("ParseRedisUrl: host, port, db, password") {
  auto u = ParseRedisUrl("redis://127.0.0.1:6390/3");
  REQUIRE(u.ok());
  CHECK(u->host == "127.0.0.1");
  CHECK(u->port == 6390);
  CHECK(u->db == 3);
  CHECK(u->password.empty());
  u = ParseRedisUrl("redis://:s%40cret@cache.local");
  REQUIRE(u.ok());
  CHECK(u->host == "cache.local");
  CHECK(u->port == 6379);
  CHECK(u->password == "s@cret");
  CHECK(u->username.empty());
  CHECK_FALSE(absl::StrContains(u->redacted, "cret"));
  u = ParseRedisUrl("redis://app:pw@[::1]:7000/0");
  REQUIRE(u.ok());
  CHECK(u->host == "::1");
  CHECK(u->port == 7000);
  CHECK(u->username == "app");
  CHECK(u->password == "pw");
  u = ParseRedisUrl("REDIS://h");
  REQUIRE(u.ok());
  CHECK(u->host == "h");
}

TEST_CASE("ParseRedisUrl: unix sockets") {
  auto u = ParseRedisUrl("unix:///run/redis/redis.sock?db=2");
  REQUIRE(u.ok());
  CHECK(u->unix_path == "/run/redis/redis.sock");
  CHECK(u->db == 2);
  u = ParseRedisUrl("unix://:pw@/tmp/r.sock");
  REQUIRE(u.ok());
  CHECK(u->unix_path == "/tmp/r.sock");
  CHECK(u->password == "pw");
  CHECK(u->redacted == "unix://:***@/tmp/r.sock");
  // The password as a query parameter (redis-py's form), in either order.
  u = ParseRedisUrl("unix:///run/redis/redis.sock?db=2&password=p%26w");
  REQUIRE(u.ok());
  CHECK(u->unix_path == "/run/redis/redis.sock");
  CHECK(u->db == 2);
  CHECK(u->password == "p&w");
  CHECK(u->redacted == "unix:///run/redis/redis.sock?db=2&password=***");
  u = ParseRedisUrl("unix:///r.sock?password=x&db=3");
  REQUIRE(u.ok());
  CHECK(u->password == "x");
  CHECK(u->db == 3);
  CHECK(u->redacted == "unix:///r.sock?password=***&db=3");
  u = ParseRedisUrl("unix://app:x@/r.sock?db=1");
  REQUIRE(u.ok());
  CHECK(u->username == "app");
  CHECK(u->password == "x");
}

TEST_CASE("ParseRedisUrl: refusals say why, without the password") {
  auto u = ParseRedisUrl("rediss://:pw@h:6380");
  CHECK(u.status().code() == absl::StatusCode::kInvalidArgument);
  CHECK(absl::StrContains(u.status().message(), "TLS"));
  for (const char* bad :
       {"http://h", "redis://", "redis://h:0", "redis://h:70000",
        "redis://h:port", "redis://h/x", "redis://h/1/2",
        "redis://h:", "unix://relative", "unix:///s?db=x",
        "redis://:pw@h:99999", "redis://:bad%zz@h",
        // Found by tests/fuzz/redis_url: hosts only brackets may hold.
        "redis://::1", "redis://:1.2.3.4]:65535/9", "redis://a:b:6379",
        "redis://:pw@[::1]]:1", "redis://[[2]:6", "redis://u:pw@[a[b]",
        // Query parameters: only unix:// has them, db and password once.
        "redis://:pw@h?db=1", "redis://:pw@h:6379/1?x", "redis://:pw@h#f",
        "redis://:pw@a b", "unix:///s?db=1&db=2", "unix:///s?timeout=1",
        "unix://:pw@/s?password=x", "unix:///s?password=a&password=b",
        "unix:///s?password=%zz",
        // Found by tests/fuzz/config: a socket path ending in a space.
        "unix:/// ?&&", "unix:///run/r.sock ", "unix:///a\tb"}) {
    auto r = ParseRedisUrl(bad);
    CHECK_MESSAGE(!r.ok(), bad);
    CHECK_FALSE(absl::StrContains(r.status().message(), "pw"));
    CHECK(r.status().code() == absl::StatusCode::kInvalidArgument);
  }
  CHECK(ParseRedisUrl("redis://h?db=1").status().message() ==
        "query parameters are not supported (the db is the path: "
        "redis://host:6379/2)");
  CHECK(ParseRedisUrl("unix://:a@/s?password=b").status().message() ==
        "the password is given twice (before the path and as ?password=)");
}

}  // namespace
}  // namespace pggitops::internal
