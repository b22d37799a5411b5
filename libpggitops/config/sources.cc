// The only yaml-cpp user in libpggitops; yaml-cpp exceptions stop here.
#include "libpggitops/config/sources.h"

#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <fstream>
#include <set>
#include <sstream>
#include <string>

#include "absl/status/status.h"
#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"
#include "yaml-cpp/yaml.h"

namespace pggitops::internal::config {
namespace {

bool IsKeyName(absl::string_view key) {
  if (key.empty() || absl::ascii_isdigit(static_cast<unsigned char>(key[0]))) {
    return false;
  }
  for (char c : key) {
    if (!absl::ascii_isalnum(static_cast<unsigned char>(c)) && c != '_') {
      return false;
    }
  }
  return true;
}

// After a closing quote only whitespace or a comment may follow.
bool OnlyCommentLeft(absl::string_view rest) {
  rest = absl::StripLeadingAsciiWhitespace(rest);
  return rest.empty() || rest[0] == '#';
}

// Parses a double-quoted value starting after the opening quote.
bool ParseDoubleQuoted(absl::string_view in, std::string* out) {
  for (size_t i = 0; i < in.size(); ++i) {
    char c = in[i];
    if (c == '"') return OnlyCommentLeft(in.substr(i + 1));
    if (c != '\\' || i + 1 == in.size()) {
      out->push_back(c);
      continue;
    }
    char e = in[++i];
    switch (e) {
      case 'n':
        out->push_back('\n');
        break;
      case 't':
        out->push_back('\t');
        break;
      case '"':
      case '\\':
      case '$':
        out->push_back(e);
        break;
      default:
        out->push_back('\\');
        out->push_back(e);
    }
  }
  return false;  // unterminated
}

// Parses the value part of a line; false when it is malformed.
bool ParseDotenvValue(absl::string_view v, std::string* out) {
  out->clear();
  v = absl::StripLeadingAsciiWhitespace(v);
  if (absl::ConsumePrefix(&v, "\"")) return ParseDoubleQuoted(v, out);
  if (absl::ConsumePrefix(&v, "'")) {
    size_t close = v.find('\'');
    if (close == absl::string_view::npos) return false;
    *out = std::string(v.substr(0, close));
    return OnlyCommentLeft(v.substr(close + 1));
  }
  for (size_t i = 0; i < v.size(); ++i) {
    if (v[i] == '#' && (i == 0 || v[i - 1] == ' ' || v[i - 1] == '\t')) {
      v = v.substr(0, i);
      break;
    }
  }
  *out = std::string(absl::StripTrailingAsciiWhitespace(v));
  return true;
}

absl::Status FileError(const std::string& path, absl::string_view what) {
  return absl::InvalidArgumentError(
      absl::StrCat("config file \"", path, "\": ", what));
}

// Converts one YAML value into a RawValue; "" or the reason.
std::string YamlValue(const YAML::Node& node, RawValue* raw) {
  raw->source = "yaml";
  switch (node.Type()) {
    case YAML::NodeType::Null:
    case YAML::NodeType::Undefined:
      return "";
    case YAML::NodeType::Scalar:
      raw->text = node.Scalar();
      return "";
    case YAML::NodeType::Sequence:
      raw->is_sequence = true;
      for (const YAML::Node& item : node) {
        if (!item.IsScalar()) return "list entries must be plain values";
        raw->items.push_back(item.Scalar());
      }
      return "";
    case YAML::NodeType::Map:
      raw->text = "{...}";
      return "must be a single value, not a map";
  }
  return "has an unsupported YAML type";
}

using YamlEntries = std::vector<std::pair<const KeySpec*, RawValue>>;

absl::StatusOr<YamlEntries> ReadYamlRoot(const KeyList& table,
                                         const std::string& path,
                                         const YAML::Node& root) {
  YamlEntries out;
  if (root.IsNull()) return out;
  if (!root.IsMap()) return FileError(path, "must be a flat map of KEY: value");
  std::set<const KeySpec*> seen;
  for (const auto& kv : root) {
    if (!kv.first.IsScalar())
      return FileError(path, "keys must be plain names");
    std::string key = kv.first.Scalar();
    const KeySpec* spec = FindKey(table, absl::AsciiStrToUpper(key));
    if (spec != nullptr && key != spec->name &&
        key != absl::AsciiStrToLower(spec->name)) {
      spec = nullptr;  // only API_PORT and api_port, not Api_Port
    }
    if (spec == nullptr) {
      std::string hint = SuggestKey(table, key, false);
      if (key == absl::AsciiStrToLower(key)) absl::AsciiStrToLower(&hint);
      if (!hint.empty()) hint = absl::StrCat(" (", hint, ")");
      return FileError(path, absl::StrCat("unknown key \"", key, "\"", hint));
    }
    if (!seen.insert(spec).second) {
      return FileError(path, absl::StrCat(spec->name, " is given twice"));
    }
    RawValue raw;
    std::string reason = YamlValue(kv.second, &raw);
    if (!reason.empty()) {
      return absl::InvalidArgumentError(absl::StrCat(
          spec->name, "=", ShowRaw(*spec, raw), " (yaml): ", reason));
    }
    out.emplace_back(spec, std::move(raw));
  }
  return out;
}

}  // namespace

absl::StatusOr<DotenvEntries> ParseDotenv(const std::string& text,
                                          const std::string& origin) {
  DotenvEntries out;
  int line_no = 0;
  for (absl::string_view line : absl::StrSplit(text, '\n')) {
    ++line_no;
    line = absl::StripAsciiWhitespace(line);
    if (line.empty() || line[0] == '#') continue;
    if (absl::ConsumePrefix(&line, "export ") ||
        absl::ConsumePrefix(&line, "export\t")) {
      line = absl::StripLeadingAsciiWhitespace(line);
    }
    size_t eq = line.find('=');
    absl::string_view key =
        eq == absl::string_view::npos
            ? line
            : absl::StripTrailingAsciiWhitespace(line.substr(0, eq));
    std::string value;
    if (eq == absl::string_view::npos || !IsKeyName(key)) {
      return absl::InvalidArgumentError(
          absl::StrCat(origin, " line ", line_no, ": expected KEY=VALUE"));
    }
    if (!ParseDotenvValue(line.substr(eq + 1), &value)) {
      return absl::InvalidArgumentError(absl::StrCat(
          origin, " line ", line_no, ": ", key,
          " has an unterminated quote or text after the closing quote"));
    }
    out.emplace_back(std::string(key), std::move(value));
  }
  return out;
}

absl::StatusOr<DotenvEntries> ReadDotenvFile(const std::string& path) {
  struct stat st;
  if (stat(path.c_str(), &st) == 0 && S_ISDIR(st.st_mode)) {
    return absl::InvalidArgumentError(
        absl::StrCat(".env file \"", path, "\": is a directory"));
  }
  std::ifstream in(path, std::ios::binary);
  if (!in.is_open()) {
    if (access(path.c_str(), F_OK) != 0 && errno == ENOENT) {
      return DotenvEntries();
    }
    return absl::InvalidArgumentError(absl::StrCat(
        ".env file \"", path, "\": cannot be read: ", std::strerror(errno)));
  }
  std::stringstream text;
  text << in.rdbuf();
  return ParseDotenv(text.str(), absl::StrCat(".env file \"", path, "\""));
}

absl::StatusOr<std::vector<std::pair<const KeySpec*, RawValue>>> ReadYamlFile(
    const KeyList& table, const std::string& path) {
  struct stat st;
  if (stat(path.c_str(), &st) == 0 && S_ISDIR(st.st_mode)) {
    return FileError(path, "is a directory");
  }
  std::ifstream in(path, std::ios::binary);
  if (!in.is_open()) {
    return FileError(path,
                     absl::StrCat("cannot be read: ", std::strerror(errno)));
  }
  try {
    YAML::Node root = YAML::Load(in);
    return ReadYamlRoot(table, path, root);
  } catch (const YAML::Exception& e) {
    if (e.mark.is_null()) return FileError(path, e.msg);
    return FileError(path, absl::StrCat("line ", e.mark.line + 1, ", column ",
                                        e.mark.column + 1, ": ", e.msg));
  }
}

}  // namespace pggitops::internal::config
