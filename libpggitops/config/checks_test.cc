// Validators, the Redis URL parser and password redaction.
#include "libpggitops/config/checks.h"

#include <string>

#include "absl/strings/match.h"
#include "doctest/doctest.h"
#include "pggitops/config.h"

namespace pggitops::internal::config {
namespace {

TEST_CASE("CheckLogFile") {
  CHECK(CheckLogFile("").empty());
  CHECK(CheckLogFile("/var/log/pggit/error.log").empty());
  CHECK(CheckLogFile("relative.log").empty());
  CHECK_FALSE(CheckLogFile("/var/log/pggit/").empty());
  CHECK_FALSE(CheckLogFile("a\nb").empty());
}

TEST_CASE("CheckDatabaseUrl: URIs and key=value strings as libpq reads them") {
  for (const char* ok :
       {"postgresql://pggit:pw@localhost:5432/pggit",
        "postgres://localhost/pggit?sslmode=disable",
        "postgresql:///pggit?host=/run/postgresql",
        "host=localhost port=5432 dbname=pggit user=pggit password='x y'",
        "dbname=pggit"}) {
    CAPTURE(ok);
    CHECK(CheckDatabaseUrl(ok).empty());
  }
  for (const char* bad : {"mysql://u@h/db", "http://h/db", "host=h port",
                          "hots=localhost", "postgresql://h/db?nope=1"}) {
    CAPTURE(bad);
    CHECK(absl::StartsWith(CheckDatabaseUrl(bad),
                           "must be a postgresql:// or postgres:// URI"));
  }
  CHECK(absl::StrContains(CheckDatabaseUrl("hots=localhost"), "hots"));
}

TEST_CASE("ParseRedisUrl: tcp forms") {
  absl::StatusOr<RedisUrl> u = ParseRedisUrl("redis://:p%40ss@cache:6380/3");
  REQUIRE(u.ok());
  CHECK(u->host == "cache");
  CHECK(u->port == 6380);
  CHECK(u->password == "p@ss");
  CHECK(u->username.empty());
  CHECK(u->db == 3);
  u = ParseRedisUrl("redis://app:pw@[::1]:7000");
  REQUIRE(u.ok());
  CHECK(u->host == "::1");
  CHECK(u->port == 7000);
  CHECK(u->username == "app");
  CHECK(u->password == "pw");
  u = ParseRedisUrl("redis://127.0.0.1");
  REQUIRE(u.ok());
  CHECK(u->port == 6379);
  CHECK(u->db == 0);
  CHECK(u->unix_path.empty());
}

TEST_CASE("ParseRedisUrl: unix sockets") {
  absl::StatusOr<RedisUrl> u =
      ParseRedisUrl("unix:///run/redis/redis.sock?db=2&password=x");
  REQUIRE(u.ok());
  CHECK(u->unix_path == "/run/redis/redis.sock");
  CHECK(u->host.empty());
  CHECK(u->db == 2);
  CHECK(u->password == "x");
  CHECK_FALSE(ParseRedisUrl("unix://run/redis.sock").ok());
  CHECK_FALSE(ParseRedisUrl("unix:///r.sock?timeout=1").ok());
}

TEST_CASE("ParseRedisUrl: refusals") {
  CHECK(ParseRedisUrl("rediss://h:6379").status().message() ==
        "TLS to Redis is not supported; use stunnel or a unix socket");
  CHECK(CheckRedisUrl("REDISS://h") ==
        "TLS to Redis is not supported; use stunnel or a unix socket");
  for (const char* bad :
       {"redis://", "redis://h:", "redis://h:70000", "redis://h/db1",
        "redis://[::1", "http://h", "redis://:%zz@h", "redis://h?db=1"}) {
    CAPTURE(bad);
    CHECK_FALSE(ParseRedisUrl(bad).ok());
    CHECK(absl::StartsWith(CheckRedisUrl(bad), "must be redis://"));
  }
  CHECK(CheckRedisUrl("").empty());
}

TEST_CASE("RedactSecrets: nothing of a password is left, whatever its form") {
  CHECK(RedactSecrets("host=h password=a b dbname=x") ==
        "host=h password=*** dbname=x");
  CHECK(RedactSecrets("host=h password=a  b c user=u") ==
        "host=h password=*** user=u");
  CHECK(RedactSecrets("password=tail with spaces") == "password=***");
  CHECK(RedactSecrets("postgresql://u:p/ss@h/db") == "postgresql://u:***@h/db");
  CHECK(RedactSecrets("postgresql://u:p@ss@w@h:5432/db?sslmode=require") ==
        "postgresql://u:***@h:5432/db?sslmode=require");
  CHECK(RedactSecrets("redis://secret@h:6379/0") == "redis://***@h:6379/0");
  CHECK(RedactSecrets("redis://user:pw@h:6379") == "redis://user:***@h:6379");
  CHECK(RedactSecrets("postgresql://h/db?password=a&user=u") ==
        "postgresql://h/db?password=***&user=u");
  CHECK(pggitops::RedactSecrets("host=h password=x") == "host=h password=***");
}

TEST_CASE("RedactSecrets") {
  CHECK(RedactSecrets("postgresql://u:pw@h:5432/db") ==
        "postgresql://u:***@h:5432/db");
  CHECK(RedactSecrets("postgresql://u:p@w@h/db") == "postgresql://u:***@h/db");
  CHECK(RedactSecrets("postgresql://u@h/db") == "postgresql://u@h/db");
  CHECK(RedactSecrets("postgresql://h/db?user=u&password=pw&sslmode=require") ==
        "postgresql://h/db?user=u&password=***&sslmode=require");
  CHECK(RedactSecrets("host=h password=pw user=u") ==
        "host=h password=*** user=u");
  CHECK(RedactSecrets("host=h PASSWORD = 'a \\' b' user=u") ==
        "host=h PASSWORD = *** user=u");
  CHECK(RedactSecrets("sslpassword=k host=h") == "sslpassword=*** host=h");
  CHECK(RedactSecrets("redis://:pw@h:6379/0") == "redis://:***@h:6379/0");
  CHECK(RedactSecrets("unix:///s.sock?password=pw") ==
        "unix:///s.sock?password=***");
  CHECK(RedactSecrets("passwords are fine") == "passwords are fine");
  CHECK(RedactSecrets("") == "");
}

}  // namespace
}  // namespace pggitops::internal::config
