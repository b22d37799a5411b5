#include "server/http/session_cookie.h"

#include <vector>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"

namespace pggitops::server {

std::optional<std::string> FindCookie(absl::string_view header,
                                      absl::string_view name) {
  for (absl::string_view pair : absl::StrSplit(header, ';')) {
    size_t eq = pair.find('=');
    if (eq == absl::string_view::npos) continue;
    if (absl::StripAsciiWhitespace(pair.substr(0, eq)) != name) continue;
    absl::string_view value = absl::StripAsciiWhitespace(pair.substr(eq + 1));
    if (value.size() >= 2 && value.front() == '"' && value.back() == '"') {
      value = value.substr(1, value.size() - 2);
    }
    if (!value.empty()) return std::string(value);
  }
  return std::nullopt;
}

std::optional<std::string> RequestCookie(const httplib::Request& req,
                                         absl::string_view name) {
  auto range = req.headers.equal_range("Cookie");
  for (auto it = range.first; it != range.second; ++it) {
    std::optional<std::string> v = FindCookie(it->second, name);
    if (v.has_value()) return v;
  }
  return std::nullopt;
}

bool IsCookieSafe(absl::string_view value) {
  if (value.empty() || value.size() > 512) return false;
  for (char c : value) {
    if (!absl::ascii_isalnum(c) && c != '-' && c != '_' && c != '.' &&
        c != '~') {
      return false;
    }
  }
  return true;
}

bool ForwardedOverHttps(const httplib::Request& req,
                        const TrustedProxies& trusted) {
  if (!trusted.Contains(req.remote_addr)) return false;
  // The proxy next to the daemon appends last: believe its value only.
  std::string last;
  auto range = req.headers.equal_range("X-Forwarded-Proto");
  for (auto it = range.first; it != range.second; ++it) last = it->second;
  std::vector<absl::string_view> hops = absl::StrSplit(last, ',');
  return !hops.empty() && absl::EqualsIgnoreCase(
                              absl::StripAsciiWhitespace(hops.back()), "https");
}

std::string SessionCookie(absl::string_view key, bool secure) {
  return absl::StrCat(kSessionCookieName, "=", key,
                      "; Path=/; HttpOnly; SameSite=Strict",
                      secure ? "; Secure" : "");
}

std::string ClearedSessionCookie(bool secure) {
  return absl::StrCat(kSessionCookieName,
                      "=; Path=/; Max-Age=0; HttpOnly; SameSite=Strict",
                      secure ? "; Secure" : "");
}

}  // namespace pggitops::server
