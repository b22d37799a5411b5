#include "libpggitops/cache/redis_url.h"

#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "pggitops/text.h"

namespace pggitops::internal {
namespace {

// Takes "user:pass@" off the front of `rest` (a TCP authority: up to its
// last '@'; a unix URL: up to the '@' before the path). Returns false on bad
// escapes.
bool TakeCredentials(bool is_unix, absl::string_view* rest, RedisUrl* url,
                     std::string* redacted_prefix) {
  size_t at = is_unix ? (absl::StartsWith(*rest, "/") ? absl::string_view::npos
                                                      : rest->find("@/"))
                      : rest->rfind('@');
  if (at == absl::string_view::npos) return true;
  absl::string_view cred = rest->substr(0, at);
  *rest = rest->substr(at + 1);
  size_t colon = cred.find(':');
  absl::string_view user = cred.substr(0, colon);
  absl::string_view pass =
      colon == absl::string_view::npos ? "" : cred.substr(colon + 1);
  if (colon == absl::string_view::npos) {
    // "redis://secret@host": a lone credential is the password (redis-py).
    pass = user;
    user = "";
  }
  if (!PercentDecode(user, &url->username) ||
      !PercentDecode(pass, &url->password)) {
    return false;
  }
  *redacted_prefix = absl::StrCat(user, ":***@");
  return true;
}

absl::Status Invalid(const std::string& redacted, absl::string_view why) {
  return absl::InvalidArgumentError(
      absl::StrCat("REDIS_URL ", redacted, ": ", why));
}

bool ParseDb(absl::string_view s, int* db) {
  return !s.empty() && s.size() <= 9 && absl::SimpleAtoi(s, db) && *db >= 0 &&
         s.find_first_not_of("0123456789") == absl::string_view::npos;
}

absl::StatusOr<RedisUrl> ParseUnix(absl::string_view rest, RedisUrl url,
                                   const std::string& creds) {
  absl::string_view query;
  size_t q = rest.find('?');
  if (q != absl::string_view::npos) {
    query = rest.substr(q + 1);
    rest = rest.substr(0, q);
  }
  url.redacted =
      absl::StrCat("unix://", creds, rest, query.empty() ? "" : "?", query);
  if (rest.size() < 2 || rest[0] != '/') {
    return Invalid(url.redacted, "expected unix:///absolute/path/to/socket");
  }
  url.unix_path = std::string(rest);
  if (!query.empty()) {
    if (!absl::StartsWith(query, "db=") || !ParseDb(query.substr(3), &url.db)) {
      return Invalid(url.redacted, "the only query parameter is db=N");
    }
  }
  return url;
}

absl::StatusOr<RedisUrl> ParseTcp(absl::string_view rest, RedisUrl url,
                                  const std::string& creds) {
  url.redacted = absl::StrCat("redis://", creds, rest);
  absl::string_view hostport = rest, path;
  size_t slash = rest.find('/');
  if (slash != absl::string_view::npos) {
    hostport = rest.substr(0, slash);
    path = rest.substr(slash + 1);
  }
  absl::string_view port;
  if (absl::StartsWith(hostport, "[")) {
    size_t close = hostport.find(']');
    if (close == absl::string_view::npos) {
      return Invalid(url.redacted, "unterminated [IPv6] host");
    }
    url.host = std::string(hostport.substr(1, close - 1));
    if (url.host.find('[') != std::string::npos) {
      return Invalid(url.redacted, "bad host");
    }
    absl::string_view after = hostport.substr(close + 1);
    if (!after.empty()) {
      if (after[0] != ':') return Invalid(url.redacted, "bad host");
      port = after.substr(1);
    }
  } else {
    size_t colon = hostport.rfind(':');
    url.host = std::string(hostport.substr(0, colon));
    if (colon != absl::string_view::npos) port = hostport.substr(colon + 1);
    // "redis://::1" or "redis://a]:1": an IPv6 address needs its brackets
    // (and the port would be ambiguous without them).
    if (url.host.find_first_of(":[]") != std::string::npos) {
      return Invalid(url.redacted,
                     "an IPv6 host must be in brackets: redis://[::1]:6379");
    }
  }
  if (url.host.empty()) return Invalid(url.redacted, "the host is empty");
  if (!port.empty() || hostport.back() == ':') {
    if (!ParsePort(port, &url.port)) {
      return Invalid(url.redacted, "the port must be from 1 to 65535");
    }
  }
  if (!path.empty() && !ParseDb(path, &url.db)) {
    return Invalid(url.redacted, "the path must be a database number");
  }
  return url;
}

}  // namespace

absl::StatusOr<RedisUrl> ParseRedisUrl(absl::string_view text) {
  RedisUrl url;
  std::string creds;
  absl::string_view rest = text;
  if (absl::StartsWithIgnoreCase(text, "rediss://")) {
    return absl::InvalidArgumentError(
        "REDIS_URL: rediss:// (TLS) is not supported; use redis:// on a "
        "trusted network, a unix:// socket, or a local TLS tunnel");
  }
  const bool is_unix = absl::StartsWithIgnoreCase(text, "unix://");
  if (!is_unix && !absl::StartsWithIgnoreCase(text, "redis://")) {
    return absl::InvalidArgumentError(
        "REDIS_URL must start with redis:// or unix://");
  }
  rest.remove_prefix(is_unix ? 7 : 8);
  if (!TakeCredentials(is_unix, &rest, &url, &creds)) {
    return absl::InvalidArgumentError(
        "REDIS_URL: bad percent-escape in the credentials");
  }
  return is_unix ? ParseUnix(rest, std::move(url), creds)
                 : ParseTcp(rest, std::move(url), creds);
}

}  // namespace pggitops::internal
