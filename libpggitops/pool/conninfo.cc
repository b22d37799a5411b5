#include "libpggitops/pool/conninfo.h"

#include <libpq-fe.h>

#include <algorithm>
#include <cmath>
#include <cstdint>

#include "absl/strings/str_cat.h"
#include "absl/strings/strip.h"

namespace pggitops::internal {
namespace {

// Quotes a value for a key/value connection string.
std::string Quote(const std::string& v) {
  std::string out = "'";
  for (char c : v) {
    if (c == '\'' || c == '\\') out += '\\';
    out += c;
  }
  out += '\'';
  return out;
}

// libpq quotes the offending part of the string, which may be a password:
// replace every "..." fragment.
std::string HideQuoted(absl::string_view message) {
  std::string out;
  bool quoted = false;
  for (char c : message) {
    if (c == '"') {
      if (!quoted) out += "\"...\"";
      quoted = !quoted;
    } else if (!quoted) {
      out += c;
    }
  }
  return out;
}

void Set(ConnParams* params, const std::string& key, std::string value) {
  for (auto& kv : *params) {
    if (kv.first == key) {
      kv.second = std::move(value);
      return;
    }
  }
  params->emplace_back(key, std::move(value));
}

}  // namespace

absl::StatusOr<ConnParams> ParseDsn(const std::string& dsn) {
  if (dsn.empty()) {
    return absl::InvalidArgumentError("PoolOptions.dsn: must not be empty");
  }
  char* error = nullptr;
  PQconninfoOption* options = PQconninfoParse(dsn.c_str(), &error);
  if (options == nullptr) {
    std::string message = error != nullptr ? error : "out of memory";
    PQfreemem(error);
    return absl::InvalidArgumentError(absl::StrCat(
        "PoolOptions.dsn: ", HideQuoted(absl::StripAsciiWhitespace(message))));
  }
  ConnParams params;
  for (PQconninfoOption* o = options; o->keyword != nullptr; ++o) {
    if (o->val != nullptr) params.emplace_back(o->keyword, o->val);
  }
  PQconninfoFree(options);
  return params;
}

std::string RenderConninfo(const ConnParams& params, const PoolOptions& options,
                           absl::Duration connect_timeout) {
  ConnParams p = params;
  const int64_t seconds = std::max<int64_t>(
      2,
      static_cast<int64_t>(std::ceil(absl::ToDoubleSeconds(connect_timeout))));
  Set(&p, "connect_timeout", absl::StrCat(seconds));
  if (options.statement_timeout != absl::InfiniteDuration()) {
    std::string setting =
        absl::StrCat("-c statement_timeout=",
                     absl::ToInt64Milliseconds(absl::Ceil(
                         options.statement_timeout, absl::Milliseconds(1))));
    auto it = std::find_if(p.begin(), p.end(), [](const auto& kv) {
      return kv.first == "options";
    });
    if (it != p.end() && !it->second.empty()) {
      setting = absl::StrCat(it->second, " ", setting);
    }
    Set(&p, "options", setting);
  }
  Set(&p, "fallback_application_name", options.application_name);
  std::string out;
  for (const auto& [key, value] : p) {
    if (!out.empty()) out += ' ';
    absl::StrAppend(&out, key, "=", Quote(value));
  }
  return out;
}

}  // namespace pggitops::internal
