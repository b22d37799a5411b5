// The .env and YAML readers.
#include "libpggitops/config/sources.h"

#include <string>
#include <utility>

#include "absl/strings/match.h"
#include "doctest/doctest.h"
#include "libpggitops/config/test_util.h"

namespace pggitops::internal::config {
namespace {

using Entries = DotenvEntries;

TEST_CASE("ParseDotenv: comments, blanks, export, quotes") {
  const std::string text =
      "# pggit settings\n"
      "\n"
      "DATABASE_POOL_SIZE=30\n"
      "  export DATABASE_POOL_MAX_OVERFLOW = 15  \n"
      "export\tAPI_HOST=0.0.0.0\n"
      "DATABASE_URL='postgresql://u:p#w@h/db'\n"
      "PGGIT_LOG_FILE=\"/var/log/a b.log\"  # the error log\n"
      "CORS_ORIGINS=https://a.example # trailing comment\n"
      "API_LOG_LEVEL=DEBUG#not-a-comment\n"
      "ESCAPES=\"a\\\"b\\\\c\\nd\\$e\\qf\"\n"
      "EMPTY=\n"
      "EMPTY_QUOTED=''\n"
      "WINDOWS=1\r\n";
  absl::StatusOr<Entries> e = ParseDotenv(text, ".env");
  REQUIRE_MESSAGE(e.ok(), e.status().ToString());
  Entries want = {
      {"DATABASE_POOL_SIZE", "30"},
      {"DATABASE_POOL_MAX_OVERFLOW", "15"},
      {"API_HOST", "0.0.0.0"},
      {"DATABASE_URL", "postgresql://u:p#w@h/db"},
      {"PGGIT_LOG_FILE", "/var/log/a b.log"},
      {"CORS_ORIGINS", "https://a.example"},
      {"API_LOG_LEVEL", "DEBUG#not-a-comment"},
      {"ESCAPES", "a\"b\\c\nd$e\\qf"},
      {"EMPTY", ""},
      {"EMPTY_QUOTED", ""},
      {"WINDOWS", "1"},
  };
  CHECK(*e == want);
}

TEST_CASE("ParseDotenv: malformed lines name the line, not the value") {
  struct Bad {
    const char* text;
    const char* want;
  };
  for (const Bad& b : {
           Bad{"A=1\nnot a pair\n", "f line 2: expected KEY=VALUE"},
           Bad{"=1\n", "f line 1: expected KEY=VALUE"},
           Bad{"1A=1\n", "f line 1: expected KEY=VALUE"},
           Bad{"MY KEY=1\n", "f line 1: expected KEY=VALUE"},
           Bad{"K=\"secret\n", "f line 1: K has an unterminated quote"},
           Bad{"K='secret\n", "f line 1: K has an unterminated quote"},
           Bad{"K='a'b\n", "f line 1: K has an unterminated quote"},
       }) {
    CAPTURE(b.text);
    absl::StatusOr<Entries> e = ParseDotenv(b.text, "f");
    REQUIRE_FALSE(e.ok());
    CHECK(absl::StartsWith(e.status().message(), b.want));
    CHECK_FALSE(absl::StrContains(e.status().message(), "secret"));
  }
}

TEST_CASE("ReadDotenvFile: missing file is empty, a directory is an error") {
  TempDir dir;
  absl::StatusOr<Entries> e = ReadDotenvFile(dir.path() + "/none");
  REQUIRE(e.ok());
  CHECK(e->empty());
  e = ReadDotenvFile(dir.Write("x.env", "A=1\nB='2'\n"));
  REQUIRE(e.ok());
  CHECK(*e == Entries{{"A", "1"}, {"B", "2"}});
  e = ReadDotenvFile(dir.path());
  REQUIRE_FALSE(e.ok());
  CHECK(absl::EndsWith(e.status().message(), "is a directory"));
}

// The library's keys plus two registered ones, as the daemon has them.
const KeyList& Table() {
  static const KeyList* table = [] {
    auto* t = new KeyList(KeyTable());
    ConfigKey port;
    port.name = "API_PORT";
    port.type = ConfigKey::Type::kInt;
    port.min = 1;
    port.max = 65535;
    port.default_value = int64_t{8000};
    t->push_back(*SpecFromKey(port, *t));
    ConfigKey origins;
    origins.name = "CORS_ORIGINS";
    origins.type = ConfigKey::Type::kList;
    origins.default_value = std::vector<std::string>{};
    t->push_back(*SpecFromKey(origins, *t));
    return t;
  }();
  return *table;
}

TEST_CASE("ReadYamlFile: both spellings, scalars, sequences and nulls") {
  TempDir dir;
  std::string path = dir.Write("c.yaml",
                               "# comment\n"
                               "API_PORT: 9000\n"
                               "database_pool_timeout: 0.5\n"
                               "cache_enabled: off\n"
                               "cors_origins: ['https://a.example', '*']\n"
                               "redis_url: ~\n");
  auto e = ReadYamlFile(Table(), path);
  REQUIRE_MESSAGE(e.ok(), e.status().ToString());
  REQUIRE(e->size() == 5);
  CHECK(std::string((*e)[0].first->name) == "API_PORT");
  CHECK((*e)[0].second.text == "9000");
  CHECK((*e)[0].second.source == "yaml");
  CHECK((*e)[1].second.text == "0.5");
  CHECK((*e)[2].second.text == "off");
  CHECK((*e)[3].second.is_sequence);
  CHECK((*e)[3].second.items ==
        std::vector<std::string>{"https://a.example", "*"});
  CHECK((*e)[4].second.text.empty());
  CHECK(ReadYamlFile(Table(), dir.Write("e.yaml", "")).ok());
  CHECK(ReadYamlFile(Table(), dir.Write("e.yaml", "# only a comment\n"))
            ->empty());
}

TEST_CASE("ReadYamlFile: errors") {
  TempDir dir;
  auto err = [&dir](const std::string& text) {
    auto e = ReadYamlFile(Table(), dir.Write("c.yaml", text));
    REQUIRE_FALSE(e.ok());
    return std::string(e.status().message());
  };
  CHECK(absl::StrContains(err("apiport: 1\n"), "unknown key \"apiport\""));
  CHECK(
      absl::StrContains(err("API_PORTT: 1\n"),
                        "unknown key \"API_PORTT\" (did you mean API_PORT?)"));
  CHECK(absl::StrContains(err("cors_origins: [[a]]\n"),
                          "list entries must be plain values"));
  CHECK(err("api_port: {x: 1}\n") ==
        "API_PORT={...} (yaml): must be a single value, not a map");
  CHECK(absl::StrContains(err("a: b: c\n"), "line 1"));
  CHECK(absl::StrContains(err("just text\n"), "must be a flat map"));
  CHECK(absl::StrContains(err("[1]: 2\n"), "keys must be plain names"));
  auto missing = ReadYamlFile(Table(), dir.path() + "/nope.yaml");
  REQUIRE_FALSE(missing.ok());
  CHECK(absl::StrContains(missing.status().message(), "cannot be read"));
  CHECK(absl::EndsWith(ReadYamlFile(Table(), dir.path()).status().message(),
                       "is a directory"));
}

}  // namespace
}  // namespace pggitops::internal::config
