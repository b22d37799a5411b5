// Parsing, formatting and lookup of configuration keys by their KeySpec.
#include "libpggitops/config/key_spec.h"

#include <algorithm>
#include <cmath>
#include <string>
#include <vector>

#include "absl/strings/ascii.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_replace.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"
#include "libpggitops/config/checks.h"
#include "nlohmann/json.hpp"

namespace pggitops::internal::config {
namespace {

bool IsRegistered(const KeySpec& spec) {
  return std::holds_alternative<std::monostate>(spec.member);
}

// The value of a registered key in `config`, else its default.
const ConfigValue& RegisteredValue(const KeySpec& spec, const Config& config) {
  auto it = config.registered.find(spec.name);
  return it != config.registered.end() ? it->second : spec.default_value;
}

std::string FormatRegistered(const KeySpec& spec, const ConfigValue& v) {
  if (const int64_t* i = std::get_if<int64_t>(&v)) return absl::StrCat(*i);
  if (const absl::Duration* d = std::get_if<absl::Duration>(&v)) {
    return spec.type == KeyType::kHours
               ? FormatNumber(absl::ToDoubleHours(*d))
               : FormatNumber(absl::ToDoubleSeconds(*d));
  }
  if (const bool* b = std::get_if<bool>(&v)) return *b ? "true" : "false";
  if (const std::string* t = std::get_if<std::string>(&v)) return *t;
  return absl::StrJoin(std::get<std::vector<std::string>>(v), ",");
}

bool ParseInteger(const std::string& text, int64_t* out) {
  if (text.empty()) return false;
  for (size_t i = 0; i < text.size(); ++i) {
    char c = text[i];
    bool sign = (c == '-' || c == '+') && i == 0;
    if (!sign && !absl::ascii_isdigit(static_cast<unsigned char>(c))) {
      return false;
    }
  }
  return absl::SimpleAtoi(text, out);
}

bool ParseNumber(const std::string& text, double* out) {
  if (text.empty()) return false;
  for (char c : text) {
    if (!absl::ascii_isdigit(static_cast<unsigned char>(c)) &&
        std::string(".eE+-").find(c) == std::string::npos) {
      return false;
    }
  }
  return absl::SimpleAtod(text, out) && std::isfinite(*out);
}

bool ParseBoolText(const std::string& text, bool* out) {
  std::string t = absl::AsciiStrToLower(text);
  if (t == "true" || t == "1" || t == "yes" || t == "on") {
    *out = true;
  } else if (t == "false" || t == "0" || t == "no" || t == "off") {
    *out = false;
  } else {
    return false;
  }
  return true;
}

// Splits a list value: a JSON list of strings or a comma list.
bool SplitList(const RawValue& raw, std::vector<std::string>* out) {
  out->clear();
  if (raw.is_sequence) {
    for (const std::string& item : raw.items) {
      out->push_back(std::string(absl::StripAsciiWhitespace(item)));
    }
    return true;
  }
  absl::string_view text = absl::StripAsciiWhitespace(raw.text);
  if (absl::StartsWith(text, "[")) {
    nlohmann::json j = nlohmann::json::parse(text, nullptr, false);
    if (j.is_discarded() || !j.is_array()) return false;
    for (const nlohmann::json& item : j) {
      if (!item.is_string()) return false;
      out->push_back(
          std::string(absl::StripAsciiWhitespace(item.get<std::string>())));
    }
    return true;
  }
  for (absl::string_view item : absl::StrSplit(text, ',')) {
    item = absl::StripAsciiWhitespace(item);
    if (!item.empty()) out->push_back(std::string(item));
  }
  return true;
}

std::string Range(const KeySpec& spec) {
  return absl::StrCat("from ", FormatNumber(spec.min), " to ",
                      FormatNumber(spec.max));
}

// Parses a number for the numeric types; "" or the reason.
std::string ApplyNumber(const KeySpec& spec, const std::string& text,
                        Config* config) {
  bool integral = spec.type == KeyType::kInt || spec.type == KeyType::kInt64 ||
                  spec.type == KeyType::kDays;
  double v = 0;
  int64_t i = 0;
  bool ok = integral ? ParseInteger(text, &i) : ParseNumber(text, &v);
  if (integral) v = static_cast<double>(i);
  bool in_range = ok && v >= spec.min && v <= spec.max;
  if (in_range && IsRegistered(spec)) {
    if (integral) {
      config->registered[spec.name] = i;
    } else {
      config->registered[spec.name] =
          spec.type == KeyType::kHours ? absl::Hours(v) : absl::Seconds(v);
    }
    return "";
  }
  if (!in_range) {
    switch (spec.type) {
      case KeyType::kSeconds:
        return absl::StrCat("must be a number of seconds ", Range(spec));
      case KeyType::kHours:
        return absl::StrCat("must be a number of hours ", Range(spec));
      case KeyType::kDays:
        return absl::StrCat("must be a whole number of days ", Range(spec));
      default:
        return absl::StrCat("must be an integer ", Range(spec));
    }
  }
  switch (spec.type) {
    case KeyType::kInt:
    case KeyType::kDays:
      config->*std::get<int Config::*>(spec.member) = static_cast<int>(i);
      break;
    case KeyType::kInt64:
      config->*std::get<int64_t Config::*>(spec.member) = i;
      break;
    case KeyType::kSeconds:
      config->*std::get<absl::Duration Config::*>(spec.member) =
          absl::Seconds(v);
      break;
    default:  // kHours
      config->*std::get<absl::Duration Config::*>(spec.member) = absl::Hours(v);
      break;
  }
  return "";
}

std::string ApplyList(const KeySpec& spec, const RawValue& raw,
                      Config* config) {
  std::vector<std::string> items;
  if (!SplitList(raw, &items)) {
    return absl::StrCat("must be a JSON list of strings or a comma list of ",
                        spec.range_text);
  }
  for (const std::string& item : items) {
    std::string reason = spec.check(item);
    if (!reason.empty()) return reason;
  }
  if (IsRegistered(spec)) {
    config->registered[spec.name] = std::move(items);
  } else {
    config->*std::get<std::vector<std::string> Config::*>(spec.member) =
        std::move(items);
  }
  return "";
}

void StoreString(const KeySpec& spec, const std::string& value,
                 Config* config) {
  if (IsRegistered(spec)) {
    config->registered[spec.name] = value;
  } else {
    config->*std::get<std::string Config::*>(spec.member) = value;
  }
}

}  // namespace

std::string FormatNumber(double v) {
  if (std::floor(v) == v && std::fabs(v) < 1e15) {
    return absl::StrCat(static_cast<int64_t>(v));
  }
  std::string s = absl::StrFormat("%.9f", v);
  s.erase(s.find_last_not_of('0') + 1);
  if (!s.empty() && s.back() == '.') s.pop_back();
  return s;
}

std::string ApplyValue(const KeySpec& spec, const RawValue& raw,
                       Config* config) {
  if (raw.is_sequence && spec.type != KeyType::kList) {
    return "must be a single value, not a list";
  }
  std::string text(absl::StripAsciiWhitespace(raw.text));
  switch (spec.type) {
    case KeyType::kInt:
    case KeyType::kInt64:
    case KeyType::kSeconds:
    case KeyType::kHours:
    case KeyType::kDays:
      return ApplyNumber(spec, text, config);
    case KeyType::kBool: {
      bool b = false;
      if (!ParseBoolText(text, &b)) {
        return "must be true or false (also 1/0, yes/no, on/off)";
      }
      if (IsRegistered(spec)) {
        config->registered[spec.name] = b;
      } else {
        config->*std::get<bool Config::*>(spec.member) = b;
      }
      return "";
    }
    case KeyType::kEnum: {
      std::string lower = absl::AsciiStrToLower(text);
      if (std::find(spec.allowed.begin(), spec.allowed.end(), lower) ==
          spec.allowed.end()) {
        return absl::StrCat("must be one of ",
                            absl::StrJoin(spec.allowed, ", "));
      }
      StoreString(spec, lower, config);
      return "";
    }
    case KeyType::kLogLevel: {
      absl::StatusOr<LogLevel> level = ParseLogLevel(text);
      if (!level.ok()) return "must be one of DEBUG, INFO, WARNING, ERROR";
      config->*std::get<LogLevel Config::*>(spec.member) = *level;
      return "";
    }
    case KeyType::kString: {
      std::string reason = spec.check ? spec.check(text) : "";
      if (!reason.empty()) return reason;
      StoreString(spec, text, config);
      return "";
    }
    case KeyType::kList:
      return ApplyList(spec, raw, config);
  }
  return "has an unsupported type";
}

std::string FormatValue(const KeySpec& spec, const Config& config) {
  if (IsRegistered(spec)) {
    return FormatRegistered(spec, RegisteredValue(spec, config));
  }
  switch (spec.type) {
    case KeyType::kInt:
    case KeyType::kDays:
      return absl::StrCat(config.*std::get<int Config::*>(spec.member));
    case KeyType::kInt64:
      return absl::StrCat(config.*std::get<int64_t Config::*>(spec.member));
    case KeyType::kSeconds:
      return FormatNumber(absl::ToDoubleSeconds(
          config.*std::get<absl::Duration Config::*>(spec.member)));
    case KeyType::kHours:
      return FormatNumber(absl::ToDoubleHours(
          config.*std::get<absl::Duration Config::*>(spec.member)));
    case KeyType::kBool:
      return config.*std::get<bool Config::*>(spec.member) ? "true" : "false";
    case KeyType::kString:
    case KeyType::kEnum:
      return config.*std::get<std::string Config::*>(spec.member);
    case KeyType::kLogLevel:
      return LogLevelName(config.*std::get<LogLevel Config::*>(spec.member));
    case KeyType::kList:
      return absl::StrJoin(
          config.*std::get<std::vector<std::string> Config::*>(spec.member),
          ",");
  }
  return "";
}

std::string ShowRaw(const KeySpec& spec, const RawValue& raw) {
  std::string shown =
      raw.is_sequence ? absl::StrCat("[", absl::StrJoin(raw.items, ", "), "]")
                      : raw.text;
  return spec.secret ? RedactSecrets(shown) : shown;
}

std::string RangeText(const KeySpec& spec) {
  std::string range =
      absl::StrCat(FormatNumber(spec.min), " to ", FormatNumber(spec.max));
  switch (spec.type) {
    case KeyType::kInt:
    case KeyType::kInt64:
      return range;
    case KeyType::kSeconds:
      return absl::StrCat(range, " s");
    case KeyType::kHours:
      return absl::StrCat(range, " h");
    case KeyType::kDays:
      return absl::StrCat(range, " days");
    case KeyType::kBool:
      return "true/false";
    case KeyType::kEnum:
      return absl::StrJoin(spec.allowed, ", ");
    case KeyType::kLogLevel:
      return "DEBUG, INFO, WARNING, ERROR";
    case KeyType::kString:
    case KeyType::kList:
      return spec.range_text;
  }
  return "";
}

std::string DefaultText(const KeySpec& spec) {
  if (!spec.default_text.empty()) return spec.default_text;
  std::string value = FormatValue(spec, Config());
  switch (spec.type) {
    case KeyType::kSeconds:
      return absl::StrCat(value, " s");
    case KeyType::kHours:
      return absl::StrCat(value, " h");
    case KeyType::kDays:
      return absl::StrCat(value, " days");
    case KeyType::kList:
      return value.empty() ? "none" : value;
    default:
      return value.empty() ? "unset" : value;
  }
}

std::string FlagName(const KeySpec& spec) {
  return absl::StrReplaceAll(absl::AsciiStrToLower(spec.name), {{"_", "-"}});
}

const KeySpec* FindKey(const KeyList& table, absl::string_view name) {
  for (const KeySpec& spec : table) {
    if (name == spec.name) return &spec;
  }
  return nullptr;
}

const KeySpec* FindFlag(const KeyList& table, absl::string_view flag) {
  std::string normalized = absl::StrReplaceAll(flag, {{"_", "-"}});
  for (const KeySpec& spec : table) {
    if (normalized == FlagName(spec)) return &spec;
  }
  return nullptr;
}

const KeySpec* FindKey(absl::string_view name) {
  return FindKey(KeyTable(), name);
}

const KeySpec* FindFlag(absl::string_view flag) {
  return FindFlag(KeyTable(), flag);
}

namespace {

size_t EditDistance(const std::string& a, const std::string& b) {
  std::vector<size_t> row(b.size() + 1);
  for (size_t j = 0; j <= b.size(); ++j) row[j] = j;
  for (size_t i = 1; i <= a.size(); ++i) {
    size_t diag = row[0];
    row[0] = i;
    for (size_t j = 1; j <= b.size(); ++j) {
      size_t up = row[j];
      row[j] = std::min(
          {row[j] + 1, row[j - 1] + 1, diag + (a[i - 1] == b[j - 1] ? 0 : 1)});
      diag = up;
    }
  }
  return row[b.size()];
}

}  // namespace

std::string SuggestKey(const KeyList& table, absl::string_view unknown,
                       bool as_flag) {
  std::string probe =
      absl::StrReplaceAll(absl::AsciiStrToLower(unknown), {{"-", "_"}});
  const KeySpec* best = nullptr;
  size_t best_distance = 3;  // suggest only names at most 2 edits away
  for (const KeySpec& spec : table) {
    size_t d = EditDistance(probe, absl::AsciiStrToLower(spec.name));
    if (d < best_distance) {
      best = &spec;
      best_distance = d;
    }
  }
  if (best == nullptr) return "";
  return absl::StrCat("did you mean ",
                      as_flag ? "--" + FlagName(*best) : best->name, "?");
}

}  // namespace pggitops::internal::config
