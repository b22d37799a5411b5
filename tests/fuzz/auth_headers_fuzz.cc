// libFuzzer target: the credentials a request carries. The dashboard's
// session cookie (FindCookie, IsCookieSafe, SessionCookie in
// server/http/session_cookie.h), the `Authorization: Bearer` header
// (BearerTokenOf, server/http/access_control.h) and what the API keys make
// of a token and a scope list (HashApiToken, ApiTokenPrefix,
// ParseApiScopes). Invariants:
//   - a cookie found is non-empty and holds no ';'; the first pair named
//     wins; a cookie-safe value written after any header is read back (when
//     the header names none), and SessionCookie(v) read as a Cookie header
//     gives v;
//   - a bearer token is non-empty with no surrounding whitespace, and any
//     such token survives "Bearer <token>" in any case and spacing;
//   - a token's hash is 64 lower-case hex digits, the same every time, and
//     its prefix is a prefix of it; parsed scopes are sorted, distinct and
//     parse again from their names to the same list.
// Input: a HEADER '\n' VALUE (both used by every check). Seeds:
// tests/fuzz/auth_headers/. See docs/TESTING.md.
#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_join.h"
#include "pggitops/api_keys.h"
#include "server/http/access_control.h"
#include "server/http/session_cookie.h"
#include "tests/fuzz/fuzz_util.h"

using pggitops::fuzz::Bytes;
using pggitops::fuzz::Require;
namespace s = pggitops::server;

namespace {

bool IsSpace(char c) {
  return absl::ascii_isspace(static_cast<unsigned char>(c));
}

void CheckCookies(const std::string& header, const std::string& value) {
  const std::optional<std::string> found =
      s::FindCookie(header, s::kSessionCookieName);
  if (found.has_value()) {
    Require(!found->empty(), "an empty cookie found");
    Require(found->find(';') == std::string::npos, "a cookie holds ';'");
  }
  const std::string appended =
      header + "; " + s::kSessionCookieName + "=" + value;
  const std::optional<std::string> again =
      s::FindCookie(appended, s::kSessionCookieName);
  if (found.has_value()) {
    Require(again == found, "a later pair overrode the first");
  } else if (s::IsCookieSafe(value)) {
    Require(again == value, "a safe value appended was not read back");
  }
  if (s::IsCookieSafe(value)) {
    for (char c : value) {
      Require(!IsSpace(c) && c != ';' && c != ',' && c != '"' && c != '=',
              "a cookie-safe value holds a separator");
    }
    for (bool secure : {false, true}) {
      Require(s::FindCookie(s::SessionCookie(value, secure),
                            s::kSessionCookieName) == value,
              "SessionCookie does not read back");
    }
  }
}

void CheckBearer(const std::string& header, const std::string& value) {
  const std::optional<std::string> token = s::BearerTokenOf(header);
  if (token.has_value()) {
    Require(!token->empty(), "an empty bearer token");
    Require(!IsSpace(token->front()) && !IsSpace(token->back()),
            "a bearer token with surrounding whitespace");
  }
  if (!value.empty() && !IsSpace(value.front()) && !IsSpace(value.back())) {
    for (const char* scheme :
         {"Bearer ", "bearer ", "BEARER \t", " bEaReR  "}) {
      Require(s::BearerTokenOf(scheme + value + " ") == value,
              "a bearer token did not survive its header");
    }
  }
}

void CheckKeys(const std::string& value) {
  const std::string hash = pggitops::HashApiToken(value);
  Require(hash.size() == 64, "a hash is not 64 digits");
  for (char c : hash) {
    Require((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'),
            "a hash is not lower-case hex");
  }
  Require(hash == pggitops::HashApiToken(value), "hashing is not stable");
  Require(absl::StartsWith(value, pggitops::ApiTokenPrefix(value)),
          "a token's prefix is not its prefix");

  auto scopes = pggitops::ParseApiScopes(value);
  if (!scopes.ok()) return;
  Require(!scopes->empty(), "an empty scope list parsed");
  Require(
      std::is_sorted(scopes->begin(), scopes->end()) &&
          std::adjacent_find(scopes->begin(), scopes->end()) == scopes->end(),
      "scopes not sorted and distinct");
  std::vector<std::string> names;
  for (pggitops::ApiScope sc : *scopes) {
    names.push_back(pggitops::ApiScopeName(sc));
    Require(sc <= pggitops::WidestScope(*scopes),
            "a scope wider than the widest");
  }
  auto again = pggitops::ParseApiScopes(absl::StrJoin(names, ","));
  Require(again.ok() && *again == *scopes, "scope names do not parse back");
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  Bytes in(data, size);
  const std::string header = in.Until('\n');
  const std::string value = in.Rest();
  CheckCookies(header, value);
  CheckBearer(header, value);
  CheckKeys(value);
  return 0;
}
