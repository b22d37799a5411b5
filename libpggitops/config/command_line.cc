// ParseCommandLine: argv -> config flags, --config, --help and positionals.
#include <string>

#include "absl/status/status.h"
#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "libpggitops/config/key_spec.h"
#include "pggitops/config.h"

namespace pggitops {
namespace {

using internal::config::KeySpec;

bool IsBoolWord(const std::string& word) {
  std::string w = absl::AsciiStrToLower(word);
  return w == "true" || w == "false" || w == "1" || w == "0" || w == "yes" ||
         w == "no" || w == "on" || w == "off";
}

void CopyEnvironment(const char* const* envp,
                     std::map<std::string, std::string>* out) {
  for (; envp != nullptr && *envp != nullptr; ++envp) {
    absl::string_view entry(*envp);
    size_t eq = entry.find('=');
    if (eq == absl::string_view::npos || eq == 0) continue;
    (*out)[std::string(entry.substr(0, eq))] =
        std::string(entry.substr(eq + 1));
  }
}

// Walks argv once; the state a flag needs to take its value.
class ArgvParser {
 public:
  ArgvParser(const internal::config::KeyList& table, int argc,
             const char* const* argv)
      : table_(table), argc_(argc), argv_(argv) {}

  absl::Status Run(CommandLine* out) {
    for (i_ = 1; i_ < argc_; ++i_) {
      std::string word = argv_[i_] != nullptr ? argv_[i_] : "";
      absl::Status s = Word(word, out);
      if (!s.ok()) return s;
    }
    return absl::OkStatus();
  }

 private:
  absl::Status Word(const std::string& word, CommandLine* out) {
    if (only_positionals_) {
      out->positionals.push_back(word);
    } else if (word == "--") {
      only_positionals_ = true;
      if (in_positionals_) out->positionals.push_back(word);
    } else if (word == "-h" || word == "--help") {
      out->help = true;
    } else if (word.size() < 2 || word[0] != '-') {
      in_positionals_ = true;
      out->positionals.push_back(word);
    } else if (word[1] != '-') {
      return Unknown(word, "", out);
    } else {
      return LongFlag(word, out);
    }
    return absl::OkStatus();
  }

  // A flag that is not a config key: a subcommand's own flag after the
  // first positional, else an error.
  absl::Status Unknown(const std::string& word, const std::string& name,
                       CommandLine* out) {
    if (in_positionals_) {
      out->positionals.push_back(word);
      return absl::OkStatus();
    }
    std::string hint =
        name.empty() ? "" : internal::config::SuggestKey(table_, name, true);
    if (!hint.empty()) hint = absl::StrCat(" (", hint, ")");
    // Name only the flag: its value may be a secret.
    return absl::InvalidArgumentError(
        absl::StrCat("unknown flag ", name.empty() ? word : "--" + name, hint));
  }

  absl::Status LongFlag(const std::string& word, CommandLine* out) {
    size_t eq = word.find('=');
    std::string name = word.substr(2, eq == std::string::npos ? eq : eq - 2);
    bool has_value = eq != std::string::npos;
    std::string value = has_value ? word.substr(eq + 1) : "";
    if (name == "config") {
      if (!has_value && !TakeNext(&value)) {
        return absl::InvalidArgumentError("flag --config needs a file name");
      }
      if (value.empty()) {
        return absl::InvalidArgumentError("flag --config needs a file name");
      }
      out->sources.yaml_path = value;
      return absl::OkStatus();
    }
    const KeySpec* spec = internal::config::FindFlag(table_, name);
    if (spec == nullptr) return Unknown(word, name, out);
    if (!has_value) {
      if (spec->type == internal::config::KeyType::kBool) {
        if (i_ + 1 >= argc_ || argv_[i_ + 1] == nullptr ||
            !IsBoolWord(argv_[i_ + 1]) || !TakeNext(&value)) {
          value = "true";
        }
      } else if (!TakeNext(&value)) {
        return absl::InvalidArgumentError(
            absl::StrCat("flag --", name, " needs a value (", spec->name, ": ",
                         internal::config::RangeText(*spec), ")"));
      }
    }
    out->sources.flags.emplace_back(internal::config::FlagName(*spec), value);
    return absl::OkStatus();
  }

  // Consumes the next word as a value unless it is missing or a --flag.
  bool TakeNext(std::string* value) {
    if (i_ + 1 >= argc_ || argv_[i_ + 1] == nullptr) return false;
    std::string next = argv_[i_ + 1];
    if (absl::StartsWith(next, "--")) return false;
    *value = next;
    ++i_;
    return true;
  }

  const internal::config::KeyList& table_;
  const int argc_;
  const char* const* const argv_;
  int i_ = 1;
  bool in_positionals_ = false;
  bool only_positionals_ = false;
};

}  // namespace

namespace internal::config {

absl::StatusOr<CommandLine> ParseCommandLineWith(const KeyList& table, int argc,
                                                 const char* const* argv,
                                                 const char* const* envp) {
  CommandLine out;
  CopyEnvironment(envp, &out.sources.environment);
  ArgvParser parser(table, argc, argv);
  absl::Status s = parser.Run(&out);
  if (!s.ok()) return s;
  return out;
}

}  // namespace internal::config
}  // namespace pggitops
