// LoadConfig: precedence, validation of every key, cross-field checks and
// derived defaults.
#include "pggitops/config.h"

#include <map>
#include <set>
#include <string>
#include <utility>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "doctest/doctest.h"
#include "libpggitops/config/key_spec.h"
#include "libpggitops/config/test_util.h"

namespace pggitops {
namespace {

using internal::config::KeySpec;
using internal::config::KeyTable;
using internal::config::TempDir;

constexpr char kDsn[] = "postgresql://pggit@localhost:5432/pggit";

// Sources with only the environment set (no .env, no YAML).
ConfigSources EnvOnly(std::map<std::string, std::string> env) {
  ConfigSources s;
  s.dotenv_path = "";
  env.emplace("DATABASE_URL", kDsn);
  s.environment = std::move(env);
  return s;
}

std::string ErrorOf(const ConfigSources& s) {
  absl::StatusOr<Config> c = LoadConfig(s);
  if (c.ok()) return "";
  CHECK(c.status().code() == absl::StatusCode::kInvalidArgument);
  return std::string(c.status().message());
}

TEST_CASE("LoadConfig: defaults match Config and are marked default") {
  absl::StatusOr<Config> c = LoadConfig(EnvOnly({}));
  REQUIRE(c.ok());
  Config d;
  CHECK(c->database_pool_size == d.database_pool_size);
  CHECK(c->database_pool_size == 20);
  CHECK(c->redis_timeout == absl::Milliseconds(250));
  CHECK(c->webhook_disable_after == absl::Hours(24));
  CHECK_FALSE(c->webhook_allow_private_targets);
  CHECK(c->database_url == kDsn);
  CHECK(c->value_sources.size() == KeyTable().size());
  CHECK(c->value_sources.at("DATABASE_URL") == "env");
  CHECK(c->value_sources.at("DATABASE_POOL_SIZE") == "default");
  CHECK(c->registered.empty());
}

// Writes one layer per source with a distinct value for each key and checks
// that every layer overrides the one below it.
TEST_CASE("LoadConfig: yaml < .env < env < flag, for every kind of key") {
  struct Case {
    const char* key;
    std::vector<std::string> values;  // yaml, .env, env, flag
    std::vector<std::string> shown;   // as DescribeConfig prints them
  };
  const std::vector<Case> cases = {
      {"DATABASE_POOL_SIZE", {"5", "6", "7", "8"}, {"5", "6", "7", "8"}},
      {"DATABASE_POOL_TIMEOUT",
       {"0.05", "1.5", "2", "3"},
       {"0.05", "1.5", "2", "3"}},
      {"CACHE_ENABLED",
       {"false", "on", "0", "yes"},
       {"false", "true", "false", "true"}},
      {"API_LOG_LEVEL",
       {"debug", "WARN", "error", "Info"},
       {"DEBUG", "WARNING", "ERROR", "INFO"}},
      {"WEBHOOK_DISABLE_AFTER_HOURS",
       {"1", "2", "0.5", "48"},
       {"1", "2", "0.5", "48"}},
  };
  const std::vector<std::string> layer_names = {"yaml", ".env", "env", "flag"};
  for (const Case& c : cases) {
    const KeySpec* spec = internal::config::FindKey(c.key);
    REQUIRE(spec != nullptr);
    for (int top = 3; top >= -1; --top) {
      CAPTURE(c.key);
      CAPTURE(top);
      TempDir dir;
      ConfigSources s = EnvOnly({});
      s.yaml_path =
          dir.Write("c.yaml", absl::StrCat(c.key, ": '", c.values[0], "'\n"));
      if (top < 0) s.yaml_path = dir.Write("c.yaml", "{}\n");
      s.dotenv_path = dir.Write(
          ".env",
          top >= 1 ? absl::StrCat(c.key, "='", c.values[1], "'\n") : "");
      if (top >= 2) s.environment[c.key] = c.values[2];
      if (top >= 3)
        s.flags.emplace_back(internal::config::FlagName(*spec), c.values[3]);
      absl::StatusOr<Config> cfg = LoadConfig(s);
      REQUIRE_MESSAGE(cfg.ok(), cfg.status().ToString());
      if (top < 0) {
        CHECK(cfg->value_sources.at(c.key) == "default");
        CHECK(internal::config::FormatValue(*spec, *cfg) ==
              internal::config::FormatValue(*spec, Config()));
      } else {
        CHECK(cfg->value_sources.at(c.key) == layer_names[top]);
        CHECK(internal::config::FormatValue(*spec, *cfg) == c.shown[top]);
      }
    }
  }
}

TEST_CASE("LoadConfig: the last of repeated flags wins") {
  ConfigSources s = EnvOnly({});
  s.flags = {{"database-pool-size", "9"}, {"database_pool_size", "11"}};
  absl::StatusOr<Config> c = LoadConfig(s);
  REQUIRE(c.ok());
  CHECK(c->database_pool_size == 11);
}

TEST_CASE("LoadConfig: durations take fractional seconds, hours and days") {
  absl::StatusOr<Config> c = LoadConfig(EnvOnly({
      {"DATABASE_POOL_TIMEOUT", "0.05"},
      {"REDIS_TIMEOUT", "0.25"},
      {"WEBHOOK_DISABLE_AFTER_HOURS", "1.5"},
      {"WEBHOOK_RETENTION_DAYS", "7"},
      {"HEALTH_CHECK_TIMEOUT", " 3 "},
  }));
  REQUIRE(c.ok());
  CHECK(c->database_pool_timeout == absl::Milliseconds(50));
  CHECK(c->redis_timeout == absl::Milliseconds(250));
  CHECK(c->webhook_disable_after == absl::Minutes(90));
  CHECK(c->webhook_retention_days == 7);
  CHECK(c->health_check_timeout == absl::Seconds(3));
}

TEST_CASE("LoadConfig: DATABASE_URL is required") {
  ConfigSources s;
  s.dotenv_path = "";
  std::string err = ErrorOf(s);
  CHECK(absl::StartsWith(err, "DATABASE_URL is required"));
  s.environment["DATABASE_URL"] = "  ";
  err = ErrorOf(s);
  CHECK(absl::StartsWith(err, "DATABASE_URL= (env): must not be empty"));
  s.environment["DATABASE_URL"] = "host=/run/postgresql dbname=pggit";
  CHECK(ErrorOf(s).empty());
}

TEST_CASE("LoadConfig: rediss:// is refused with a clear message") {
  std::string err = ErrorOf(EnvOnly({{"REDIS_URL", "rediss://:pw@h:6380/0"}}));
  CHECK(err ==
        "REDIS_URL=rediss://:***@h:6380/0 (env): TLS to Redis is not "
        "supported; use stunnel or a unix socket");
}

TEST_CASE("LoadConfig: secrets are redacted in errors") {
  std::string err =
      ErrorOf(EnvOnly({{"DATABASE_URL", "mysql://app:hunter2@db/app"}}));
  CHECK(absl::StartsWith(err, "DATABASE_URL=mysql://app:***@db/app (env): "));
  CHECK_FALSE(absl::StrContains(err, "hunter2"));
  err =
      ErrorOf(EnvOnly({{"DATABASE_URL", "host=db password=hunter2 bogus=1"}}));
  CHECK(absl::StrContains(err, "password=***"));
  CHECK(absl::StrContains(err, "bogus"));  // libpq names the bad keyword
  CHECK_FALSE(absl::StrContains(err, "hunter2"));
}

// Found by tests/fuzz/config: libpq read a DATABASE_URL up to its NUL, and
// the rest of the value (with another password) was silently dropped.
TEST_CASE("LoadConfig: a value with NUL is refused, secrets still redacted") {
  const std::string dsn("postgresql://app:hunter2@db/app\0x", 33);
  std::string err = ErrorOf(EnvOnly({{"DATABASE_URL", dsn}}));
  CHECK(err ==
        "DATABASE_URL=postgresql://app:***@db/app\\0x (env): must not "
        "contain NUL characters");
  err = ErrorOf(EnvOnly({{"PGGIT_LOG_FILE", std::string("a\0b", 3)}}));
  CHECK(absl::StartsWith(err,
                         "PGGIT_LOG_FILE=a\\0b (env): must not contain NUL"));
}

TEST_CASE("LoadConfig: private targets default to true in development only") {
  absl::StatusOr<Config> c =
      LoadConfig(EnvOnly({{"ENVIRONMENT", "Development"}}));
  REQUIRE(c.ok());
  CHECK(c->environment == "development");
  CHECK(c->is_development());
  CHECK(c->webhook_allow_private_targets);
  CHECK(c->value_sources.at("WEBHOOK_ALLOW_PRIVATE_TARGETS") == "default");
  c = LoadConfig(EnvOnly({{"ENVIRONMENT", "development"},
                          {"WEBHOOK_ALLOW_PRIVATE_TARGETS", "false"}}));
  REQUIRE(c.ok());
  CHECK_FALSE(c->webhook_allow_private_targets);
  c = LoadConfig(EnvOnly({{"ENVIRONMENT", "production"}}));
  REQUIRE(c.ok());
  CHECK_FALSE(c->webhook_allow_private_targets);
}

TEST_CASE("LoadConfig: cross-field checks name the key that was set") {
  CHECK(ErrorOf(EnvOnly({{"DATABASE_POOL_SIZE", "995"}})) ==
        "DATABASE_POOL_SIZE=995 (env): DATABASE_POOL_SIZE + "
        "DATABASE_POOL_MAX_OVERFLOW (995 + 10) must be at most 1000");
  CHECK(absl::StartsWith(
      ErrorOf(EnvOnly({{"DATABASE_POOL_SIZE", "600"},
                       {"DATABASE_POOL_MAX_OVERFLOW", "500"}})),
      "DATABASE_POOL_MAX_OVERFLOW=500 (env): "));
  CHECK(ErrorOf(EnvOnly({{"DATABASE_POOL_SIZE", "990"}})).empty());
  CHECK(ErrorOf(EnvOnly({{"WEBHOOK_BREAKER_OPEN_SECONDS", "900"}})) ==
        "WEBHOOK_BREAKER_OPEN_SECONDS=900 (env): must be at most "
        "WEBHOOK_BREAKER_MAX_OPEN_SECONDS");
  CHECK(ErrorOf(EnvOnly({{"WEBHOOK_BREAKER_MAX_OPEN_SECONDS", "10"}})) ==
        "WEBHOOK_BREAKER_MAX_OPEN_SECONDS=10 (env): must be at least "
        "WEBHOOK_BREAKER_OPEN_SECONDS");
}

TEST_CASE(
    "LoadConfig: unknown keys: ignored in env and .env, errors in flags") {
  TempDir dir;
  ConfigSources s = EnvOnly({{"DATABASE_POOL_SIZ", "x"}, {"HOME", "/root"}});
  s.dotenv_path = dir.Write(".env", "COMPOSE_PROJECT_NAME=pggit\nFOO=1\n");
  CHECK(ErrorOf(s).empty());
  s.flags = {{"database-pool-siz", "5"}};
  CHECK(ErrorOf(s) ==
        "unknown flag --database-pool-siz (did you mean "
        "--database-pool-size?)");
  s.flags = {{"zzz", "5"}};
  CHECK(ErrorOf(s) == "unknown flag --zzz");
}

TEST_CASE("LoadConfig: PGGIT_CONFIG names the YAML file") {
  TempDir dir;
  ConfigSources s = EnvOnly({});
  s.environment["PGGIT_CONFIG"] =
      dir.Write("a.yaml", "database_pool_size: 91\n");
  absl::StatusOr<Config> c = LoadConfig(s);
  REQUIRE(c.ok());
  CHECK(c->database_pool_size == 91);
  CHECK(c->value_sources.at("DATABASE_POOL_SIZE") == "yaml");
  s.yaml_path = dir.Write("b.yaml", "DATABASE_POOL_SIZE: 92\n");  // wins
  c = LoadConfig(s);
  REQUIRE(c.ok());
  CHECK(c->database_pool_size == 92);
  s.yaml_path = dir.path() + "/missing.yaml";
  CHECK(absl::StrContains(ErrorOf(s), "missing.yaml\": cannot be read"));
}

TEST_CASE("LoadConfig: a missing .env file is fine, a bad one is not") {
  TempDir dir;
  ConfigSources s = EnvOnly({});
  s.dotenv_path = dir.path() + "/.env";
  CHECK(ErrorOf(s).empty());
  dir.Write(".env", "# comment\nAPI_PORT 80\n");
  CHECK(ErrorOf(s) == absl::StrCat(".env file \"", dir.path(),
                                   "/.env\" line 2: expected KEY=VALUE"));
}

TEST_CASE("LoadConfig: YAML errors name the key or the line") {
  TempDir dir;
  ConfigSources s = EnvOnly({});
  s.yaml_path = dir.Write("c.yaml", "database_pool_sise: 5\n");
  CHECK(absl::EndsWith(ErrorOf(s),
                       ": unknown key \"database_pool_sise\" (did you mean "
                       "database_pool_size?)"));
  s.yaml_path = dir.Write("c.yaml", "Database_Pool_Size: 5\n");
  CHECK(absl::StrContains(ErrorOf(s), "unknown key \"Database_Pool_Size\""));
  s.yaml_path =
      dir.Write("c.yaml", "database_pool_size: 5\nDATABASE_POOL_SIZE: 6\n");
  CHECK(absl::EndsWith(ErrorOf(s), ": DATABASE_POOL_SIZE is given twice"));
  s.yaml_path = dir.Write("c.yaml", "database_pool_size: [1, 2]\n");
  CHECK(ErrorOf(s) ==
        "DATABASE_POOL_SIZE=[1, 2] (yaml): must be a single value, not a "
        "list");
  s.yaml_path = dir.Write("c.yaml", "database_pool_size: {a: 1}\n");
  CHECK(absl::StartsWith(ErrorOf(s), "DATABASE_POOL_SIZE="));
  s.yaml_path = dir.Write("c.yaml", "database_pool_size: 0\n");
  CHECK(ErrorOf(s) ==
        "DATABASE_POOL_SIZE=0 (yaml): must be an integer from 1 to 1000");
  s.yaml_path = dir.Write("c.yaml", "- a\n- b\n");
  CHECK(absl::EndsWith(ErrorOf(s), "must be a flat map of KEY: value"));
  s.yaml_path = dir.Write("c.yaml", "database_pool_size: [1\n");
  CHECK(absl::StrContains(ErrorOf(s), "line "));
}

TEST_CASE("LoadConfig: YAML nulls") {
  TempDir dir;
  ConfigSources s = EnvOnly({});
  s.yaml_path = dir.Write("c.yaml", "pggit_log_file:\n");
  absl::StatusOr<Config> c = LoadConfig(s);
  REQUIRE_MESSAGE(c.ok(), c.status().ToString());
  CHECK(c->log_file.empty());
  CHECK(c->value_sources.at("PGGIT_LOG_FILE") == "yaml");
}

}  // namespace
}  // namespace pggitops
