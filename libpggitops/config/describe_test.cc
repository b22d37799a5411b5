// DescribeConfig, ConfigHelp and the generated table of
// docs/CONFIGURATION.md.
#include <cstdlib>
#include <fstream>
#include <sstream>
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
                                   {"API_PORT", "9000"},
                                   {"TRUSTED_PROXIES", "10.0.0.0/8,::1"}});
  REQUIRE(c.ok());
  std::vector<std::string> lines = Lines(DescribeConfig(*c));
  REQUIRE(lines.size() == KeyTable().size());
  for (size_t i = 0; i < lines.size(); ++i) {
    CHECK(absl::StartsWith(lines[i], absl::StrCat(KeyTable()[i].name, "=")));
  }
  CHECK(lines[0] == "API_HOST=127.0.0.1  # default");
  CHECK(lines[1] == "API_PORT=9000  # env");
  std::string all = DescribeConfig(*c);
  CHECK(absl::StrContains(all, "\nTRUSTED_PROXIES=10.0.0.0/8,::1  # env\n"));
  CHECK(absl::StrContains(all, "\nREDIS_TIMEOUT=0.25  # default\n"));
  CHECK(
      absl::StrContains(all, "\nWEBHOOK_DISABLE_AFTER_HOURS=24  # default\n"));
  CHECK(absl::StrContains(all, "\nAPI_LOG_LEVEL=INFO  # default\n"));
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
  c.api_port = 1234;
  std::string out = DescribeConfig(c);
  CHECK(absl::StrContains(out, "API_PORT=1234  # program\n"));
  CHECK(absl::StrContains(out, "API_WORKERS=4  # default\n"));
}

TEST_CASE("DescribeConfig: the output reads back as a .env file") {
  absl::StatusOr<Config> c =
      Load({{"DATABASE_URL", "host=/run/postgresql dbname='pg git'"},
            {"CORS_ORIGINS", "https://a.example,https://b.example"},
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

// docs/CONFIGURATION.md embeds ConfigMarkdownTable() between two markers.
// Run with PGGITOPS_UPDATE_DOCS=1 to rewrite it after changing the table.
TEST_CASE("docs/CONFIGURATION.md: the key table is current") {
  // PGGITOPS_SOURCE_DIR is set for every unit test by tests/meson.build, so
  // the test finds the file whatever the working directory.
  std::string path =
      std::string(PGGITOPS_SOURCE_DIR) + "/docs/CONFIGURATION.md";
  std::ifstream in(path);
  REQUIRE_MESSAGE(in.is_open(), "cannot open ", path);
  std::stringstream text;
  text << in.rdbuf();
  std::string doc = text.str();
  const std::string begin = "<!-- BEGIN KEY TABLE (generated) -->\n";
  const std::string end = "<!-- END KEY TABLE -->";
  size_t b = doc.find(begin);
  size_t e = doc.find(end);
  REQUIRE(b != std::string::npos);
  REQUIRE(e != std::string::npos);
  std::string current = doc.substr(b + begin.size(), e - b - begin.size());
  std::string wanted = internal::config::ConfigMarkdownTable();
  const char* update = std::getenv("PGGITOPS_UPDATE_DOCS");
  if (current != wanted && update != nullptr && std::string(update) == "1") {
    doc.replace(b + begin.size(), current.size(), wanted);
    std::ofstream(path, std::ios::trunc) << doc;
    current = wanted;
  }
  CHECK_MESSAGE(current == wanted,
                "docs/CONFIGURATION.md is stale: run this test with "
                "PGGITOPS_UPDATE_DOCS=1");
}

}  // namespace
}  // namespace pggitops
