// Every key of the table: at least one invalid value each, and the edges of
// every numeric range.
#include <map>
#include <set>
#include <string>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "doctest/doctest.h"
#include "libpggitops/config/key_spec.h"
#include "pggitops/config.h"

namespace pggitops {
namespace {

using internal::config::KeySpec;
using internal::config::KeyTable;

// Invalid values per key. The coverage test below fails when a key of the
// table has no entry here.
const std::map<std::string, std::vector<std::string>>& InvalidValues() {
  static const auto* values =
      new std::map<std::string, std::vector<std::string>>{
          {"RATE_LIMIT_IPV6_PREFIX", {"0", "129", "/64"}},
          {"ALERT_CONTEXT_MAX_BYTES", {"255", "16777217", "64k"}},
          {"API_LOG_LEVEL", {"verbose", "", "5"}},
          {"PGGIT_LOG_FILE", {"/var/log/", "a\tb"}},
          {"DATABASE_URL",
           {"mysql://u:p@h/db", "host=localhost bogus=1", "host=x port",
            "postgresql://h/db?bogus=1"}},
          {"DATABASE_POOL_SIZE", {"0", "1001", "1.5", "ten"}},
          {"DATABASE_POOL_MAX_OVERFLOW", {"-1", "1000"}},
          {"DATABASE_POOL_TIMEOUT", {"0", "3601", "0.0001"}},
          {"DATABASE_POOL_RECYCLE", {"0", "604801"}},
          {"DATABASE_POOL_PRE_PING", {"maybe", "2", ""}},
          {"DATABASE_POOL_PRE_PING_IDLE", {"-0.5", "3601"}},
          {"DATABASE_CONNECT_TIMEOUT", {"0.05", "601"}},
          {"DATABASE_STATEMENT_TIMEOUT", {"0", "86401"}},
          {"DATABASE_SLOW_QUERY_SECONDS", {"0", "1e9"}},
          {"CACHE_ENABLED", {"enabled"}},
          {"CACHE_MAX_BYTES", {"1048575", "68719476737", "100MB", "1e9"}},
          {"REDIS_URL",
           {"rediss://h:6379", "http://h", "redis://h:0",
            "redis://:pw@h:6379/x", "unix://relative", "redis://",
            "redis://h:6379?timeout=1"}},
          {"REDIS_TIMEOUT", {"0", "61"}},
          {"RATE_LIMIT_PER_MINUTE", {"-1", "1000001"}},
          {"RATE_LIMIT_BURST", {"0", "1000001"}},
          {"RATE_LIMIT_EXEMPT_LOOPBACK", {"sometimes"}},
          {"WEBHOOK_WORKERS", {"0", "65"}},
          {"WEBHOOK_MAX_IN_FLIGHT", {"0", "100001"}},
          {"WEBHOOK_MAX_IN_FLIGHT_PER_ENDPOINT", {"0", "10001"}},
          {"WEBHOOK_BATCH_SIZE", {"0", "10001"}},
          {"WEBHOOK_POLL_INTERVAL", {"0", "3601"}},
          {"WEBHOOK_LEASE_SECONDS", {"0.05", "86401"}},
          {"WEBHOOK_RETENTION_DAYS", {"0", "3651", "1.5"}},
          {"WEBHOOK_DISABLE_AFTER_HOURS", {"0", "8761"}},
          {"WEBHOOK_ALLOW_PRIVATE_TARGETS", {"allow"}},
          {"WEBHOOK_BREAKER_THRESHOLD", {"0", "1001"}},
          {"WEBHOOK_BREAKER_OPEN_SECONDS", {"0", "86401"}},
          {"WEBHOOK_BREAKER_MAX_OPEN_SECONDS", {"0", "86401"}},
          {"HEALTH_CACHE_SECONDS", {"-1", "3601"}},
          {"HEALTH_CHECK_TIMEOUT", {"0", "601"}},
          {"WEBHOOK_PURGE_INTERVAL", {"0.5", "604801"}},
          {"API_KEY_CACHE_SECONDS", {"0", "0.05", "301"}},
          {"ENVIRONMENT", {"staging", "prod", ""}},
      };
  return *values;
}

// A base environment in which every range edge of every key is reachable
// despite the cross-field checks.
std::map<std::string, std::string> Base() {
  return {{"DATABASE_URL", "postgresql://localhost/pggit"},
          {"DATABASE_POOL_MAX_OVERFLOW", "0"},
          {"WEBHOOK_BREAKER_OPEN_SECONDS", "0.01"},
          {"WEBHOOK_BREAKER_MAX_OPEN_SECONDS", "86400"}};
}

absl::StatusOr<Config> LoadWith(const std::string& key,
                                const std::string& value,
                                const std::string& source) {
  ConfigSources s;
  s.dotenv_path = "";
  s.environment = Base();
  if (key == "DATABASE_POOL_MAX_OVERFLOW")
    s.environment["DATABASE_POOL_SIZE"] = "1";
  if (source == "flag") {
    s.flags.emplace_back(
        internal::config::FlagName(*internal::config::FindKey(key)), value);
  } else {
    s.environment[key] = value;
  }
  return LoadConfig(s);
}

TEST_CASE("Key table: every key has invalid values under test") {
  std::set<std::string> names;
  for (const KeySpec& spec : KeyTable()) {
    CAPTURE(spec.name);
    CHECK(names.insert(spec.name).second);  // no duplicate rows
    CHECK(InvalidValues().count(spec.name) == 1);
    CHECK(std::string(spec.help).size() > 10);
  }
  CHECK(names.size() == InvalidValues().size());
  CHECK(KeyTable().size() == 38);  // one per field of Config
}

TEST_CASE("Key table: every invalid value fails with one line naming the key") {
  for (const auto& entry : InvalidValues()) {
    const std::string& key = entry.first;  // CAPTURE: not a structured binding
    const KeySpec* spec = internal::config::FindKey(key);
    REQUIRE(spec != nullptr);
    for (const std::string& value : entry.second) {
      for (const std::string source : {"env", "flag"}) {
        CAPTURE(key);
        CAPTURE(value);
        absl::StatusOr<Config> c = LoadWith(key, value, source);
        REQUIRE_FALSE(c.ok());
        std::string msg(c.status().message());
        CHECK(c.status().code() == absl::StatusCode::kInvalidArgument);
        CHECK(absl::StartsWith(msg, absl::StrCat(key, "=")));
        CHECK(absl::StrContains(msg, absl::StrCat(" (", source, "): ")));
        CHECK_FALSE(absl::StrContains(msg, "\n"));
        if (!spec->secret && value.find('\t') == std::string::npos) {
          CHECK(absl::StartsWith(msg, absl::StrCat(key, "=", value, " (")));
        }
      }
    }
  }
}

TEST_CASE("Key table: numeric ranges are inclusive at both ends") {
  for (const KeySpec& spec : KeyTable()) {
    bool integral = spec.type == internal::config::KeyType::kInt ||
                    spec.type == internal::config::KeyType::kInt64 ||
                    spec.type == internal::config::KeyType::kDays;
    bool numeric = integral ||
                   spec.type == internal::config::KeyType::kSeconds ||
                   spec.type == internal::config::KeyType::kHours;
    if (!numeric) continue;
    CAPTURE(spec.name);
    for (double edge : {spec.min, spec.max}) {
      absl::StatusOr<Config> c =
          LoadWith(spec.name, internal::config::FormatNumber(edge), "env");
      REQUIRE_MESSAGE(c.ok(), c.status().ToString());
      CHECK(internal::config::FormatValue(spec, *c) ==
            internal::config::FormatNumber(edge));
    }
    double step = integral ? 1 : spec.min / 2 + 1e-9;
    CHECK_FALSE(LoadWith(spec.name,
                         internal::config::FormatNumber(spec.max +
                                                        (integral ? 1 : 0.5)),
                         "env")
                    .ok());
    CHECK_FALSE(LoadWith(spec.name,
                         internal::config::FormatNumber(spec.min - step), "env")
                    .ok());
  }
}

TEST_CASE("Key table: a failed ApplyValue leaves the config unchanged") {
  for (const auto& entry : InvalidValues()) {
    const std::string& key = entry.first;  // CAPTURE: not a structured binding
    const KeySpec& spec = *internal::config::FindKey(key);
    for (const std::string& value : entry.second) {
      Config c;
      internal::config::RawValue raw;
      raw.text = value;
      raw.source = "env";
      std::string reason = internal::config::ApplyValue(spec, raw, &c);
      if (reason.empty()) continue;  // fails only in a cross-field check
      CAPTURE(key);
      CHECK(internal::config::FormatValue(spec, c) ==
            internal::config::FormatValue(spec, Config()));
    }
  }
}

}  // namespace
}  // namespace pggitops
