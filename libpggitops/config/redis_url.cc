#include "libpggitops/config/redis_url.h"

#include <utility>

#include "absl/status/status.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "pggitops/text.h"

namespace pggitops::internal {
namespace {

absl::Status Invalid(absl::string_view why) {
  return absl::InvalidArgumentError(why);
}

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
  if (rest.size() < 2 || rest[0] != '/') {
    return Invalid(
        "unix:// needs an absolute socket path (unix:///run/redis.sock)");
  }
  // No space or control character: one at an end is a typo that .env and
  // the environment trim away ("unix:/// ?" left "/ " here and "/" once
  // written back; found by tests/fuzz/config).
  for (char c : rest) {
    if (static_cast<unsigned char>(c) <= 0x20 || c == 0x7f) {
      return Invalid(
          "the socket path must not hold spaces or control characters");
    }
  }
  url.unix_path = std::string(rest);
  // db=N and password=P, each at most once, in any order; the redacted
  // form keeps them in their order with the password as ***.
  std::string shown_query;
  bool seen_db = false, seen_password = false;
  for (absl::string_view param :
       absl::StrSplit(query, '&', absl::SkipEmpty())) {
    std::pair<absl::string_view, absl::string_view> kv =
        absl::StrSplit(param, absl::MaxSplits('=', 1));
    if (kv.first == "db" && !seen_db) {
      seen_db = true;
      if (!ParseDb(kv.second, &url.db)) {
        return Invalid("db must be a non-negative number");
      }
      absl::StrAppend(&shown_query, shown_query.empty() ? "" : "&", param);
    } else if (kv.first == "password" && !seen_password) {
      seen_password = true;
      if (!creds.empty()) {
        return Invalid(
            "the password is given twice (before the path and as "
            "?password=)");
      }
      if (!PercentDecode(kv.second, &url.password)) {
        return Invalid("bad percent-escape in the password");
      }
      absl::StrAppend(&shown_query, shown_query.empty() ? "" : "&",
                      "password=***");
    } else if (kv.first == "db" || kv.first == "password") {
      return Invalid(
          absl::StrCat("the parameter ", kv.first, " is given twice"));
    } else {
      return Invalid("unknown query parameter (db and password are known)");
    }
  }
  url.redacted = absl::StrCat("unix://", creds, rest,
                              shown_query.empty() ? "" : "?", shown_query);
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
      return Invalid("unterminated [IPv6] host");
    }
    url.host = std::string(hostport.substr(1, close - 1));
    if (url.host.find('[') != std::string::npos) return Invalid("bad host");
    absl::string_view after = hostport.substr(close + 1);
    if (!after.empty()) {
      if (after[0] != ':') return Invalid("bad host");
      port = after.substr(1);
    }
  } else {
    size_t colon = hostport.rfind(':');
    url.host = std::string(hostport.substr(0, colon));
    if (colon != absl::string_view::npos) port = hostport.substr(colon + 1);
    // "redis://::1" or "redis://a]:1": an IPv6 address needs its brackets
    // (and the port would be ambiguous without them).
    if (url.host.find_first_of(":[]") != std::string::npos) {
      return Invalid("an IPv6 host must be in brackets: redis://[::1]:6379");
    }
  }
  if (url.host.empty()) return Invalid("the host is empty");
  // A name or an address: letters, digits, '.', '-', '_' (and ':' and a
  // "%zone" inside brackets). '?' and '#' would start a query or fragment,
  // which redis:// does not have.
  if (url.host.find_first_not_of(
          "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789.-_"
          ":%") != std::string::npos) {
    return Invalid(absl::StrContains(rest, '?') || absl::StrContains(rest, '#')
                       ? "query parameters are not supported (the db is the "
                         "path: redis://host:6379/2)"
                       : "the host holds a character no host name has");
  }
  if (!port.empty() || hostport.back() == ':') {
    if (!ParsePort(port, &url.port)) {
      return Invalid("the port must be from 1 to 65535");
    }
  }
  if (!path.empty() && !ParseDb(path, &url.db)) {
    return Invalid(absl::StrContains(path, '?') || absl::StrContains(path, '#')
                       ? "query parameters are not supported (the db is the "
                         "path: redis://host:6379/2)"
                       : "the path must be a database number");
  }
  return url;
}

}  // namespace

absl::StatusOr<RedisUrl> ParseRedisUrl(absl::string_view text) {
  RedisUrl url;
  std::string creds;
  absl::string_view rest = text;
  if (absl::StartsWithIgnoreCase(text, "rediss://")) {
    return Invalid(kRedisTlsRefused);
  }
  const bool is_unix = absl::StartsWithIgnoreCase(text, "unix://");
  if (!is_unix && !absl::StartsWithIgnoreCase(text, "redis://")) {
    return Invalid("the scheme must be redis:// or unix://");
  }
  rest.remove_prefix(is_unix ? 7 : 8);
  if (!TakeCredentials(is_unix, &rest, &url, &creds)) {
    return Invalid("bad percent-escape in the credentials");
  }
  return is_unix ? ParseUnix(rest, std::move(url), creds)
                 : ParseTcp(rest, std::move(url), creds);
}

}  // namespace pggitops::internal
