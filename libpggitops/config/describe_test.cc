// DescribeConfig and ConfigHelp over the library's keys (the daemon's
// table, and docs/CONFIGURATION.md, are tested in server/).
#include <string>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "doctest/doctest.h"
#include "libpggitops/config/key_spec.h"
#include "libpggitops/config/test_util.h"
#include "pggitops/config.h"

namespace pggitops {
namespace {

using internal::config::KeySpec;
using internal::config::KeyTable;

std::vector<std::string> Lines(const std::string& text) {
  return absl::StrSplit(text, '\n', absl::SkipEmpty());
}

absl::StatusOr<Config> Load(std::map<std::string, std::string> env) {
  ConfigSources s;
  s.dotenv_path = "";
  s.environment = std::move(env);
  return LoadConfig(s);
}

TEST_CASE("DescribeConfig: one line per key in table order with sources") {
  absl::StatusOr<Config> c = Load({{"DATABASE_URL", "postgresql://h/db"},
                                   {"PGGIT_LOG_FILE", "/var/log/p.log"}});
  REQUIRE(c.ok());
  std::vector<std::string> lines = Lines(DescribeConfig(*c));
  REQUIRE(lines.size() == KeyTable().size());
  for (size_t i = 0; i < lines.size(); ++i) {
    CHECK(absl::StartsWith(lines[i], absl::StrCat(KeyTable()[i].name, "=")));
  }
  CHECK(lines[0] == "API_LOG_LEVEL=INFO  # default");
  CHECK(lines[1] == "PGGIT_LOG_FILE=/var/log/p.log  # env");
  std::string all = DescribeConfig(*c);
  CHECK(absl::StrContains(all, "\nREDIS_TIMEOUT=0.25  # default\n"));
  CHECK(
      absl::StrContains(all, "\nWEBHOOK_DISABLE_AFTER_HOURS=24  # default\n"));
  CHECK(absl::StrContains(all, "\nDATABASE_URL=postgresql://h/db  # env\n"));
}

TEST_CASE("DescribeConfig: passwords in URLs and DSNs are replaced by ***") {
  absl::StatusOr<Config> c =
      Load({{"DATABASE_URL", "postgresql://pggit:s3cr%40t@db:5432/pggit"},
            {"REDIS_URL", "redis://:r3dis@cache:6379/2"}});
  REQUIRE(c.ok());
  std::string out = DescribeConfig(*c);
  CHECK(absl::StrContains(
      out, "DATABASE_URL=postgresql://pggit:***@db:5432/pggit  # env\n"));
  CHECK(absl::StrContains(out, "REDIS_URL=redis://:***@cache:6379/2  # env\n"));
  CHECK_FALSE(absl::StrContains(out, "s3cr"));
  CHECK_FALSE(absl::StrContains(out, "r3dis"));

  c = Load({{"DATABASE_URL", "host=db user=pggit password='a b' dbname=x"}});
  REQUIRE(c.ok());
  out = DescribeConfig(*c);
  CHECK(absl::StrContains(
      out, "DATABASE_URL=\"host=db user=pggit password=*** dbname=x\"  # env"));
  CHECK_FALSE(absl::StrContains(out, "a b"));
}

TEST_CASE("DescribeConfig: a hand-built Config reports program values") {
  Config c;
  c.database_pool_size = 7;
  std::string out = DescribeConfig(c);
  CHECK(absl::StrContains(out, "DATABASE_POOL_SIZE=7  # program\n"));
  CHECK(absl::StrContains(out, "DATABASE_POOL_MAX_OVERFLOW=10  # default\n"));
}

TEST_CASE("DescribeConfig: the output reads back as a .env file") {
  absl::StatusOr<Config> c =
      Load({{"DATABASE_URL", "host=/run/postgresql dbname='pg git'"},
            {"PGGIT_LOG_FILE", "/var/log/pggit #1/error.log"},
            {"DATABASE_POOL_TIMEOUT", "0.05"},
            {"ENVIRONMENT", "development"}});
  REQUIRE(c.ok());
  internal::config::TempDir dir;
  ConfigSources s;
  s.dotenv_path = dir.Write(".env", DescribeConfig(*c));
  absl::StatusOr<Config> back = LoadConfig(s);
  REQUIRE_MESSAGE(back.ok(), back.status().ToString());
  for (const KeySpec& spec : KeyTable()) {
    CAPTURE(spec.name);
    CHECK(internal::config::FormatValue(spec, *back) ==
          internal::config::FormatValue(spec, *c));
  }
}

TEST_CASE("ConfigHelp: one line per key with flag, name, default and range") {
  std::vector<std::string> lines = Lines(ConfigHelp());
  REQUIRE(lines.size() == KeyTable().size());
  for (size_t i = 0; i < lines.size(); ++i) {
    const KeySpec& spec = KeyTable()[i];
    CAPTURE(spec.name);
    CHECK(absl::StrContains(
        lines[i], absl::StrCat("--", internal::config::FlagName(spec))));
    CHECK(absl::StrContains(lines[i], spec.name));
    CHECK(absl::StrContains(lines[i], internal::config::DefaultText(spec)));
    CHECK(absl::StrContains(lines[i], internal::config::RangeText(spec)));
  }
  CHECK(absl::StrContains(ConfigHelp(), "default 20; 1 to 1000; "));
  CHECK(absl::StrContains(ConfigHelp(), "  required; postgresql://"));
}

}  // namespace
}  // namespace pggitops
