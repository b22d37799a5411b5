// File: libpggitops/config/key_spec.h
//
// The single source of truth for configuration keys: one KeySpec per field of
// pggitops::Config, in the order they are documented, plus the keys an
// application registers (ConfigLoader::Register), whose values live in
// Config::registered. LoadConfig, the command-line parser, DescribeConfig,
// ConfigHelp and the table in docs/CONFIGURATION.md are all driven by a
// KeyList: KeyTable() for the library alone, a ConfigLoader's own list
// otherwise.
#ifndef PGGITOPS_LIBPGGITOPS_CONFIG_KEY_SPEC_H_
#define PGGITOPS_LIBPGGITOPS_CONFIG_KEY_SPEC_H_

#include <cstdint>
#include <functional>
#include <string>
#include <variant>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "pggitops/config.h"

namespace pggitops::internal::config {

enum class KeyType {
  kInt,       // int member, integer text
  kInt64,     // int64_t member, integer text
  kSeconds,   // absl::Duration member, seconds as a number (fractions allowed)
  kHours,     // absl::Duration member, hours as a number (fractions allowed)
  kDays,      // int member, whole days
  kBool,      // bool member
  kString,    // std::string member, checked by KeySpec::check
  kEnum,      // std::string member, one of KeySpec::allowed (case-insensitive)
  kLogLevel,  // LogLevel member
  kList,      // std::vector<std::string>, each entry checked by KeySpec::check
};

// std::monostate: a registered key, stored in Config::registered.
using MemberPtr =
    std::variant<std::monostate, int Config::*, int64_t Config::*,
                 absl::Duration Config::*, bool Config::*,
                 std::string Config::*, std::vector<std::string> Config::*,
                 LogLevel Config::*>;

// Checks one string (a whole kString value or one kList entry). Returns ""
// when it is acceptable, else the reason, phrased to follow "KEY=value: ".
using StringCheck = std::function<std::string(const std::string& value)>;

// One configuration key. Built with the helpers in key_table.cc.
struct KeySpec {
  std::string name;  // environment spelling, e.g. "API_PORT"
  KeyType type = KeyType::kString;
  MemberPtr member;
  double min = 0;  // numeric types: inclusive range
  double max = 0;
  std::vector<std::string> allowed;  // kEnum: accepted values, lower case
  bool secret = false;               // may hold a password: shown redacted
  StringCheck check;                 // kString, kList; may be empty
  std::string range_text;            // kString, kList: what is allowed
  std::string default_text;          // overrides the printed default
  std::string help;
  ConfigValue default_value;  // registered keys only
};

using KeyList = std::vector<KeySpec>;

// Every key of the library, in documentation order.
const KeyList& KeyTable();

// The KeySpec of a registered key. Error: kInvalidArgument with the reason
// (see ConfigLoader::Register); `table` is only read for duplicates.
absl::StatusOr<KeySpec> SpecFromKey(const ConfigKey& key, const KeyList& table);

// Looks a key up by its environment spelling ("API_PORT"); null if unknown.
const KeySpec* FindKey(const KeyList& table, absl::string_view name);
// Looks a key up by its flag spelling without dashes ("api-port"; the
// spelling "api_port" is accepted too); null if unknown.
const KeySpec* FindFlag(const KeyList& table, absl::string_view flag);
// The same over KeyTable().
const KeySpec* FindKey(absl::string_view name);
const KeySpec* FindFlag(absl::string_view flag);
// "api-port" for API_PORT.
std::string FlagName(const KeySpec& spec);
// "did you mean X?" when a known name is close to `unknown`, else "".
// `as_flag` selects the spelling of the suggestion.
std::string SuggestKey(const KeyList& table, absl::string_view unknown,
                       bool as_flag);

// A value as read from one source, before it is parsed.
struct RawValue {
  std::string text;                // scalar text
  std::vector<std::string> items;  // YAML sequence entries
  bool is_sequence = false;        // came from a YAML sequence
  std::string source;              // "yaml", ".env", "env" or "flag"
};

// Parses `raw` as `spec` requires and stores it in `*config`. Returns "" on
// success, else the reason ("must be an integer from 1 to 1000"); `*config`
// is unchanged on failure.
std::string ApplyValue(const KeySpec& spec, const RawValue& raw,
                       Config* config);

// The value of `spec`'s field in `config`, as it would be written in .env
// (secrets not redacted; lists comma-separated; durations in the key's unit).
std::string FormatValue(const KeySpec& spec, const Config& config);
// The text shown for `raw` in an error, redacted when the key is secret.
std::string ShowRaw(const KeySpec& spec, const RawValue& raw);
// What the key accepts, short ("1 to 1000", "0.001 to 3600 s").
std::string RangeText(const KeySpec& spec);
// The built-in default as shown in help and docs.
std::string DefaultText(const KeySpec& spec);
// Formats a number without trailing zeros ("30", "0.25").
std::string FormatNumber(double v);

// The Markdown table of every key (key, flag, default, allowed, meaning) that
// docs/CONFIGURATION.md embeds between its generated-table markers.
std::string ConfigMarkdownTable(const KeyList& table);

// The loader's work over `table` (ConfigLoader and the free functions).
absl::StatusOr<CommandLine> ParseCommandLineWith(const KeyList& table, int argc,
                                                 const char* const* argv,
                                                 const char* const* envp);
absl::StatusOr<Config> LoadConfigWith(const KeyList& table,
                                      const ConfigSources& sources);
std::string DescribeConfigWith(const KeyList& table, const Config& config);
std::string ConfigHelpWith(const KeyList& table);

}  // namespace pggitops::internal::config

#endif  // PGGITOPS_LIBPGGITOPS_CONFIG_KEY_SPEC_H_
