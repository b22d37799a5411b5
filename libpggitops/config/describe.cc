// Text renderings of the key table: DescribeConfig (effective values),
// ConfigHelp (--help) and the Markdown table of docs/CONFIGURATION.md.
#include <string>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_replace.h"
#include "libpggitops/config/checks.h"
#include "libpggitops/config/key_spec.h"
#include "pggitops/config.h"

namespace pggitops {
namespace {

using internal::config::KeySpec;

// Double-quotes a value that .env would otherwise read differently.
std::string QuoteForDotenv(const std::string& value) {
  bool needs_quotes = false;
  for (char c : value) {
    if (c == ' ' || c == '\t' || c == '\n' || c == '#' || c == '"' ||
        c == '\'' || c == '\\') {
      needs_quotes = true;
      break;
    }
  }
  if (!needs_quotes) return value;
  return absl::StrCat("\"",
                      absl::StrReplaceAll(value, {{"\\", "\\\\"},
                                                  {"\"", "\\\""},
                                                  {"\n", "\\n"},
                                                  {"\t", "\\t"},
                                                  {"$", "\\$"}}),
                      "\"");
}

std::string SourceOf(const KeySpec& spec, const Config& config,
                     const std::string& value) {
  auto it = config.value_sources.find(spec.name);
  if (it != config.value_sources.end()) return it->second;
  return value == internal::config::FormatValue(spec, Config()) ? "default"
                                                                : "program";
}

std::string MarkdownCell(absl::string_view text) {
  return absl::StrReplaceAll(text, {{"|", "\\|"}});
}

}  // namespace

namespace internal::config {

std::string DescribeConfigWith(const KeyList& table, const Config& config) {
  std::string out;
  for (const KeySpec& spec : table) {
    std::string value = internal::config::FormatValue(spec, config);
    std::string source = SourceOf(spec, config, value);
    if (spec.secret) value = internal::config::RedactSecrets(value);
    absl::StrAppend(&out, spec.name, "=", QuoteForDotenv(value), "  # ", source,
                    "\n");
  }
  return out;
}

std::string ConfigHelpWith(const KeyList& table) {
  std::string out;
  for (const KeySpec& spec : table) {
    std::string def = internal::config::DefaultText(spec);
    if (def != "required") def = absl::StrCat("default ", def);
    absl::StrAppend(
        &out, absl::StrFormat("  --%-36s %-34s %s; %s; %s\n",
                              internal::config::FlagName(spec), spec.name, def,
                              internal::config::RangeText(spec), spec.help));
  }
  return out;
}

std::string ConfigMarkdownTable(const KeyList& table) {
  std::string out =
      "| Key | Flag | Default | Allowed | Meaning |\n"
      "| --- | --- | --- | --- | --- |\n";
  for (const KeySpec& spec : table) {
    std::string def = DefaultText(spec);
    if (spec.default_text.empty() && def != "unset" && def != "none") {
      def = absl::StrCat("`", def, "`");
    }
    absl::StrAppend(&out, "| `", spec.name, "` | `--", FlagName(spec), "` | ",
                    MarkdownCell(def), " | ", MarkdownCell(RangeText(spec)),
                    " | ", MarkdownCell(spec.help), " |\n");
  }
  return out;
}

}  // namespace internal::config
}  // namespace pggitops
