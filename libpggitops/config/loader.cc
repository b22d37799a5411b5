// ConfigLoader: the library's key table plus the keys an application
// registers, and the free functions over the library's table alone.
#include <string>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "libpggitops/config/key_spec.h"
#include "pggitops/config.h"

namespace pggitops {
namespace internal::config {
namespace {

bool IsEnvironmentName(absl::string_view name) {
  if (name.empty() || !absl::ascii_isupper(static_cast<unsigned char>(name[0])))
    return false;
  for (char c : name) {
    if (!absl::ascii_isupper(static_cast<unsigned char>(c)) &&
        !absl::ascii_isdigit(static_cast<unsigned char>(c)) && c != '_') {
      return false;
    }
  }
  return true;
}

KeyType TypeOf(ConfigKey::Type type) {
  switch (type) {
    case ConfigKey::Type::kInt:
      return KeyType::kInt;
    case ConfigKey::Type::kInt64:
      return KeyType::kInt64;
    case ConfigKey::Type::kSeconds:
      return KeyType::kSeconds;
    case ConfigKey::Type::kBool:
      return KeyType::kBool;
    case ConfigKey::Type::kEnum:
      return KeyType::kEnum;
    case ConfigKey::Type::kList:
      return KeyType::kList;
    case ConfigKey::Type::kString:
      break;
  }
  return KeyType::kString;
}

// "" when `key.default_value` fits the key's type and range, else why not.
std::string CheckDefault(const ConfigKey& key) {
  const ConfigValue& v = key.default_value;
  switch (key.type) {
    case ConfigKey::Type::kInt:
    case ConfigKey::Type::kInt64: {
      const int64_t* i = std::get_if<int64_t>(&v);
      if (i == nullptr) return "the default must be an int64_t";
      if (*i < key.min || *i > key.max) return "the default is out of range";
      return "";
    }
    case ConfigKey::Type::kSeconds: {
      const absl::Duration* d = std::get_if<absl::Duration>(&v);
      if (d == nullptr) return "the default must be an absl::Duration";
      double s = absl::ToDoubleSeconds(*d);
      if (s < key.min || s > key.max) return "the default is out of range";
      return "";
    }
    case ConfigKey::Type::kBool:
      return std::holds_alternative<bool>(v) ? ""
                                             : "the default must be a bool";
    case ConfigKey::Type::kString:
      return std::holds_alternative<std::string>(v)
                 ? ""
                 : "the default must be a std::string";
    case ConfigKey::Type::kEnum: {
      const std::string* t = std::get_if<std::string>(&v);
      if (t == nullptr) return "the default must be a std::string";
      for (const std::string& a : key.allowed) {
        if (absl::AsciiStrToLower(a) == *t) return "";
      }
      return "the default is not one of the allowed values";
    }
    case ConfigKey::Type::kList:
      return std::holds_alternative<std::vector<std::string>>(v)
                 ? ""
                 : "the default must be a std::vector<std::string>";
  }
  return "unknown type";
}

std::string CheckKey(const ConfigKey& key, const KeyList& table) {
  if (!IsEnvironmentName(key.name)) {
    return "the name must be upper-case letters, digits and _, starting "
           "with a letter";
  }
  if (FindKey(table, key.name) != nullptr) return "already a key";
  if (key.name == "CONFIG" || key.name == "HELP" ||
      key.name == "PGGIT_CONFIG") {
    return "the name is reserved (--config, --help, PGGIT_CONFIG)";
  }
  bool numeric = key.type == ConfigKey::Type::kInt ||
                 key.type == ConfigKey::Type::kInt64 ||
                 key.type == ConfigKey::Type::kSeconds;
  if (numeric && key.min > key.max) return "min is greater than max";
  if (key.type == ConfigKey::Type::kEnum && key.allowed.empty()) {
    return "an enum needs allowed values";
  }
  return CheckDefault(key);
}

}  // namespace

absl::StatusOr<KeySpec> SpecFromKey(const ConfigKey& key,
                                    const KeyList& table) {
  std::string reason = CheckKey(key, table);
  if (!reason.empty()) {
    return absl::InvalidArgumentError(absl::StrCat(
        "cannot register configuration key \"", key.name, "\": ", reason));
  }
  KeySpec s;
  s.name = key.name;
  s.type = TypeOf(key.type);
  s.member = std::monostate();
  s.min = key.min;
  s.max = key.max;
  for (const std::string& a : key.allowed) {
    s.allowed.push_back(absl::AsciiStrToLower(a));
  }
  s.secret = key.secret;
  s.check = key.check;
  s.range_text = key.range_text;
  s.default_text = key.default_text;
  s.help = key.help;
  s.default_value = key.default_value;
  return s;
}

}  // namespace internal::config

struct ConfigLoader::Impl {
  internal::config::KeyList table = internal::config::KeyTable();
};

ConfigLoader::ConfigLoader() : impl_(std::make_unique<Impl>()) {}
ConfigLoader::~ConfigLoader() = default;
ConfigLoader::ConfigLoader(const ConfigLoader& other)
    : impl_(std::make_unique<Impl>(*other.impl_)) {}
ConfigLoader& ConfigLoader::operator=(const ConfigLoader& other) {
  if (this != &other) *impl_ = *other.impl_;
  return *this;
}

absl::Status ConfigLoader::Register(const ConfigKey& key) {
  absl::StatusOr<internal::config::KeySpec> spec =
      internal::config::SpecFromKey(key, impl_->table);
  if (!spec.ok()) return spec.status();
  internal::config::KeyList& t = impl_->table;
  auto at = t.end();
  for (auto it = t.begin(); it != t.end() && !key.before.empty(); ++it) {
    if (it->name == key.before) {
      at = it;
      break;
    }
  }
  t.insert(at, *std::move(spec));
  return absl::OkStatus();
}

absl::StatusOr<CommandLine> ConfigLoader::ParseCommandLine(
    int argc, const char* const* argv, const char* const* envp) const {
  return internal::config::ParseCommandLineWith(impl_->table, argc, argv, envp);
}

absl::StatusOr<Config> ConfigLoader::Load(const ConfigSources& sources) const {
  return internal::config::LoadConfigWith(impl_->table, sources);
}

std::string ConfigLoader::Describe(const Config& config) const {
  return internal::config::DescribeConfigWith(impl_->table, config);
}

std::string ConfigLoader::Help() const {
  return internal::config::ConfigHelpWith(impl_->table);
}

std::string ConfigLoader::MarkdownTable() const {
  return internal::config::ConfigMarkdownTable(impl_->table);
}

std::vector<std::string> ConfigLoader::KeyNames() const {
  std::vector<std::string> names;
  for (const internal::config::KeySpec& spec : impl_->table) {
    names.push_back(spec.name);
  }
  return names;
}

absl::StatusOr<CommandLine> ParseCommandLine(int argc, const char* const* argv,
                                             const char* const* envp) {
  return internal::config::ParseCommandLineWith(internal::config::KeyTable(),
                                                argc, argv, envp);
}

absl::StatusOr<Config> LoadConfig(const ConfigSources& sources) {
  return internal::config::LoadConfigWith(internal::config::KeyTable(),
                                          sources);
}

std::string DescribeConfig(const Config& config) {
  return internal::config::DescribeConfigWith(internal::config::KeyTable(),
                                              config);
}

std::string ConfigHelp() {
  return internal::config::ConfigHelpWith(internal::config::KeyTable());
}

}  // namespace pggitops
