// LoadConfig: merges defaults < YAML < .env < environment < flags, then
// validates every key through the table in key_table.cc.
#include "pggitops/config.h"

#include <algorithm>
#include <map>
#include <string>
#include <variant>

#include "absl/status/status.h"
#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_replace.h"
#include "libpggitops/config/checks.h"
#include "libpggitops/config/key_spec.h"
#include "libpggitops/config/sources.h"

namespace pggitops {

namespace {

using internal::config::FindFlag;
using internal::config::FindKey;
using internal::config::KeyList;
using internal::config::KeySpec;
using internal::config::RawValue;

// Latest raw value of each key, by environment name.
using Merged = std::map<std::string, RawValue>;

constexpr int kMaxPoolConnections = 1000;

absl::Status KeyError(const KeySpec& spec, const std::string& shown,
                      const std::string& source, const std::string& reason) {
  return absl::InvalidArgumentError(
      absl::StrCat(spec.name, "=", shown, " (", source, "): ", reason));
}

// The error for a value that is valid alone but not with another key.
absl::Status CrossError(const Config& config, const char* key,
                        const std::string& reason) {
  const KeySpec& spec = *FindKey(key);  // a library key: in every table
  std::string shown = internal::config::FormatValue(spec, config);
  if (spec.secret) shown = internal::config::RedactSecrets(shown);
  return KeyError(spec, shown, config.value_sources.at(key), reason);
}

absl::Status MergeYaml(const KeyList& table, const ConfigSources& sources,
                       Merged* merged) {
  std::string path = sources.yaml_path;
  if (path.empty()) {
    auto it = sources.environment.find("PGGIT_CONFIG");
    if (it != sources.environment.end()) path = it->second;
  }
  if (path.empty()) return absl::OkStatus();
  auto entries = internal::config::ReadYamlFile(table, path);
  if (!entries.ok()) return entries.status();
  for (auto& [spec, raw] : *entries) (*merged)[spec->name] = std::move(raw);
  return absl::OkStatus();
}

absl::Status MergeDotenv(const KeyList& table, const ConfigSources& sources,
                         Merged* merged) {
  if (sources.dotenv_path.empty()) return absl::OkStatus();
  auto entries = internal::config::ReadDotenvFile(sources.dotenv_path);
  if (!entries.ok()) return entries.status();
  for (auto& [key, value] : *entries) {
    if (FindKey(table, key) == nullptr) continue;  // shared .env files are fine
    RawValue raw;
    raw.text = std::move(value);
    raw.source = ".env";
    (*merged)[key] = std::move(raw);
  }
  return absl::OkStatus();
}

void MergeEnvironment(const KeyList& table, const ConfigSources& sources,
                      Merged* merged) {
  for (const KeySpec& spec : table) {
    auto it = sources.environment.find(spec.name);
    if (it == sources.environment.end()) continue;
    RawValue raw;
    raw.text = it->second;
    raw.source = "env";
    (*merged)[spec.name] = std::move(raw);
  }
}

absl::Status MergeFlags(const KeyList& table, const ConfigSources& sources,
                        Merged* merged) {
  for (const auto& [flag, value] : sources.flags) {
    const KeySpec* spec = FindFlag(table, flag);
    if (spec == nullptr) {
      std::string hint = internal::config::SuggestKey(table, flag, true);
      if (!hint.empty()) hint = absl::StrCat(" (", hint, ")");
      return absl::InvalidArgumentError(
          absl::StrCat("unknown flag --", flag, hint));
    }
    RawValue raw;
    raw.text = value;
    raw.source = "flag";
    (*merged)[spec->name] = std::move(raw);
  }
  return absl::OkStatus();
}

// Whether a value (or an item of a list) holds a NUL character.
bool HasNul(const RawValue& raw) {
  if (raw.text.find('\0') != std::string::npos) return true;
  for (const std::string& item : raw.items) {
    if (item.find('\0') != std::string::npos) return true;
  }
  return false;
}

// Parses every merged value into `config`; unset keys keep their default.
absl::Status ApplyAll(const KeyList& table, const Merged& merged,
                      Config* config) {
  for (const KeySpec& spec : table) {
    auto it = merged.find(spec.name);
    if (it == merged.end()) {
      config->value_sources[spec.name] = "default";
      if (std::holds_alternative<std::monostate>(spec.member)) {
        config->registered[spec.name] = spec.default_value;
      }
      continue;
    }
    // A .env or YAML value may hold NUL, which no C string (libpq's
    // connection string, a path) carries: the rest would be dropped
    // silently.
    if (HasNul(it->second)) {
      return KeyError(
          spec,
          absl::StrReplaceAll(internal::config::ShowRaw(spec, it->second),
                              {{absl::string_view("\0", 1), "\\0"}}),
          it->second.source, "must not contain NUL characters");
    }
    std::string reason = internal::config::ApplyValue(spec, it->second, config);
    if (!reason.empty()) {
      return KeyError(spec, internal::config::ShowRaw(spec, it->second),
                      it->second.source, reason);
    }
    config->value_sources[spec.name] = it->second.source;
  }
  return absl::OkStatus();
}

bool IsDefault(const Config& config, const char* key) {
  return config.value_sources.at(key) == "default";
}

// Defaults that depend on other keys.
void ApplyDerivedDefaults(Config* config) {
  if (IsDefault(*config, "WEBHOOK_ALLOW_PRIVATE_TARGETS") &&
      config->is_development()) {
    config->webhook_allow_private_targets = true;
  }
}

absl::Status CheckDatabaseUrlPresent(const Config& config) {
  if (!config.database_url.empty()) return absl::OkStatus();
  if (IsDefault(config, "DATABASE_URL")) {
    return absl::InvalidArgumentError(
        "DATABASE_URL is required: set it in the environment, .env, the YAML "
        "file or with --database-url (postgresql://user:pass@host:5432/db or "
        "a libpq key=value string)");
  }
  return CrossError(config, "DATABASE_URL",
                    "must not be empty: a postgresql:// URI or a libpq "
                    "key=value string is required");
}

absl::Status CheckCrossField(const Config& config) {
  absl::Status s = CheckDatabaseUrlPresent(config);
  if (!s.ok()) return s;
  int connections =
      config.database_pool_size + config.database_pool_max_overflow;
  if (connections > kMaxPoolConnections) {
    bool overflow_set = !IsDefault(config, "DATABASE_POOL_MAX_OVERFLOW");
    return CrossError(
        config,
        overflow_set ? "DATABASE_POOL_MAX_OVERFLOW" : "DATABASE_POOL_SIZE",
        absl::StrCat("DATABASE_POOL_SIZE + DATABASE_POOL_MAX_OVERFLOW (",
                     config.database_pool_size, " + ",
                     config.database_pool_max_overflow, ") must be at most ",
                     kMaxPoolConnections));
  }
  if (config.webhook_breaker_max_open < config.webhook_breaker_open) {
    bool max_set = !IsDefault(config, "WEBHOOK_BREAKER_MAX_OPEN_SECONDS");
    return max_set ? CrossError(config, "WEBHOOK_BREAKER_MAX_OPEN_SECONDS",
                                "must be at least WEBHOOK_BREAKER_OPEN_SECONDS")
                   : CrossError(config, "WEBHOOK_BREAKER_OPEN_SECONDS",
                                "must be at most "
                                "WEBHOOK_BREAKER_MAX_OPEN_SECONDS");
  }
  return absl::OkStatus();
}

}  // namespace

namespace internal::config {

absl::StatusOr<Config> LoadConfigWith(const KeyList& table,
                                      const ConfigSources& sources) {
  Merged merged;
  absl::Status s = MergeYaml(table, sources, &merged);
  if (s.ok()) s = MergeDotenv(table, sources, &merged);
  if (s.ok()) {
    MergeEnvironment(table, sources, &merged);
    s = MergeFlags(table, sources, &merged);
  }
  Config config;
  if (s.ok()) s = ApplyAll(table, merged, &config);
  if (!s.ok()) return s;
  ApplyDerivedDefaults(&config);
  s = CheckCrossField(config);
  if (!s.ok()) return s;
  return config;
}

}  // namespace internal::config

LogOptions LogOptionsFromConfig(const Config& config) {
  LogOptions options;
  options.level = config.api_log_level;
  options.file = config.log_file;
  return options;
}

}  // namespace pggitops
