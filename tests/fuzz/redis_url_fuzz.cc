// libFuzzer target: REDIS_URL (ParseRedisUrl,
// libpggitops/config/redis_url.h). Invariants:
//   - errors are kInvalidArgument and never show a redis:// URL's password;
//   - an accepted URL is TCP (a host, a port from 1 to 65535) or unix (an
//     absolute path), with a non-negative db; a redis:// URL's redacted
//     form is exactly "redis://USER:***@REST";
//   - written back as a URL (credentials percent-encoded, port and db
//     explicit), it parses to the same host, port, path, credentials and
//     db.
// Seeds: tests/fuzz/redis_url/. See docs/TESTING.md.
#include <cstddef>
#include <cstdint>
#include <string>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "libpggitops/config/redis_url.h"
#include "tests/fuzz/fuzz_util.h"

using pggitops::fuzz::Require;
using pggitops::internal::ParseRedisUrl;
using pggitops::internal::RedisUrl;

namespace {

std::string Encode(const std::string& s) {
  std::string out;
  for (unsigned char c : s) {
    if (absl::ascii_isalnum(c) || c == '-' || c == '_' || c == '.' ||
        c == '~') {
      out += static_cast<char>(c);
    } else {
      absl::StrAppendFormat(&out, "%%%02X", c);
    }
  }
  return out;
}

std::string Write(const RedisUrl& u) {
  std::string creds;
  if (!u.username.empty() || !u.password.empty()) {
    creds = absl::StrCat(Encode(u.username), ":", Encode(u.password), "@");
  }
  if (!u.unix_path.empty()) {
    return absl::StrCat("unix://", creds, u.unix_path, "?db=", u.db);
  }
  const bool v6 = u.host.find(':') != std::string::npos;
  return absl::StrCat("redis://", creds, v6 ? "[" : "", u.host, v6 ? "]" : "",
                      ":", u.port, "/", u.db);
}

// For a redis:// URL with credentials, the raw password and what the
// redacted URL must be ("redis://USER:***@REST"); false otherwise.
bool Credentials(const std::string& text, std::string* password,
                 std::string* redacted) {
  if (!absl::StartsWithIgnoreCase(text, "redis://")) return false;
  const std::string rest = text.substr(8);
  const size_t at = rest.rfind('@');
  if (at == std::string::npos) return false;
  const std::string cred = rest.substr(0, at);
  const size_t colon = cred.find(':');
  *password = colon == std::string::npos ? cred : cred.substr(colon + 1);
  const std::string user =
      colon == std::string::npos ? "" : cred.substr(0, colon);
  *redacted = absl::StrCat("redis://", user, ":***@", rest.substr(at + 1));
  return true;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string text(reinterpret_cast<const char*>(data), size);
  absl::StatusOr<RedisUrl> u = ParseRedisUrl(text);
  std::string password, redacted;
  const bool creds = Credentials(text, &password, &redacted);
  // ":PASSWORD@" must not show, unless the redacted URL holds it anyway
  // (as part of the user name or the host).
  const std::string shown = absl::StrCat(":", password, "@");
  const bool check_shown =
      creds && !password.empty() && !absl::StrContains(redacted, shown);
  if (!u.ok()) {
    Require(u.status().code() == absl::StatusCode::kInvalidArgument,
            "an error that is not kInvalidArgument");
    if (check_shown) {
      Require(!absl::StrContains(u.status().message(), shown),
              "an error shows the password");
    }
    return 0;
  }
  if (creds) {
    Require(u->redacted == redacted, "the redacted URL is not USER:***@REST");
  }
  Require(u->db >= 0, "a negative db");
  if (u->unix_path.empty()) {
    Require(!u->host.empty(), "TCP without a host");
    Require(u->port >= 1 && u->port <= 65535, "a port out of range");
  } else {
    Require(u->host.empty() && u->unix_path.front() == '/',
            "a unix socket path that is not absolute");
  }
  const std::string written = Write(*u);
  absl::StatusOr<RedisUrl> again = ParseRedisUrl(written);
  if (!again.ok()) {
    std::fprintf(stderr, "%s -> %s: %s\n", text.c_str(), written.c_str(),
                 std::string(again.status().message()).c_str());
  }
  Require(again.ok(), "a URL written back is refused");
  Require(again->host == u->host && again->port == u->port &&
              again->unix_path == u->unix_path &&
              again->username == u->username &&
              again->password == u->password && again->db == u->db,
          "a URL written back parses differently");
  return 0;
}
