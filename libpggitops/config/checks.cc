#include "libpggitops/config/checks.h"

#include <libpq-fe.h>

#include <algorithm>
#include <memory>
#include <string>

#include "absl/status/status.h"
#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_replace.h"
#include "absl/strings/str_split.h"
#include "absl/strings/string_view.h"
#include "pggitops/text.h"

namespace pggitops::internal::config {
namespace {

constexpr char kRedisForms[] =
    "must be redis://[:password@]host:port[/db] or unix:///path";

bool HasControlChar(absl::string_view s) {
  for (char c : s) {
    if (static_cast<unsigned char>(c) < 0x20 || c == 0x7f) return true;
  }
  return false;
}

bool AllDigits(absl::string_view s) {
  if (s.empty()) return false;
  for (char c : s) {
    if (!absl::ascii_isdigit(static_cast<unsigned char>(c))) return false;
  }
  return true;
}

bool ParseDb(absl::string_view s, int* db) {
  return AllDigits(s) && s.size() <= 6 && absl::SimpleAtoi(s, db);
}

std::string ParseUnixRedis(absl::string_view rest, RedisUrl* out) {
  absl::string_view path = rest;
  absl::string_view query;
  size_t q = rest.find('?');
  if (q != absl::string_view::npos) {
    path = rest.substr(0, q);
    query = rest.substr(q + 1);
  }
  if (path.size() < 2 || path[0] != '/') {
    return "unix:// needs an absolute socket path (unix:///run/redis.sock)";
  }
  out->unix_path = std::string(path);
  for (absl::string_view param :
       absl::StrSplit(query, '&', absl::SkipEmpty())) {
    std::pair<absl::string_view, absl::string_view> kv =
        absl::StrSplit(param, absl::MaxSplits('=', 1));
    if (kv.first == "db") {
      if (!ParseDb(kv.second, &out->db)) return "db must be a number";
    } else if (kv.first == "password") {
      if (!PercentDecode(kv.second, &out->password)) return "bad % escape";
    } else {
      return absl::StrCat("unknown parameter \"", kv.first,
                          "\" (db and password are known)");
    }
  }
  return "";
}

std::string ParseTcpRedis(absl::string_view rest, RedisUrl* out) {
  size_t slash = rest.find('/');
  absl::string_view authority = rest.substr(0, slash);
  absl::string_view path =
      slash == absl::string_view::npos ? "" : rest.substr(slash + 1);
  if (absl::StrContains(rest, '?') || absl::StrContains(rest, '#')) {
    return "query parameters are not supported";
  }
  size_t at = authority.rfind('@');
  if (at != absl::string_view::npos) {
    absl::string_view userinfo = authority.substr(0, at);
    authority = authority.substr(at + 1);
    std::pair<absl::string_view, absl::string_view> up =
        absl::StrSplit(userinfo, absl::MaxSplits(':', 1));
    if (!PercentDecode(up.first, &out->username) ||
        !PercentDecode(up.second, &out->password)) {
      return "bad % escape in the user or password";
    }
  }
  std::string reason = SplitHostPort(authority, &out->host, &out->port);
  if (!reason.empty()) return reason;
  if (!path.empty() && !ParseDb(path, &out->db)) {
    return "the database after / must be a number";
  }
  return "";
}

// Where the value that starts at `from` ends in a libpq key/value string:
// at its closing quote when it is quoted, else at the next " key=" (a
// word followed by '=') or the end. A space inside an unquoted value
// ("password=a b dbname=x") is invalid, but must not let "b" out.
size_t ValueEnd(const std::string& s, size_t from) {
  if (from < s.size() && s[from] == '\'') {
    size_t end = from + 1;
    for (; end < s.size() && s[end] != '\''; ++end) {
      if (s[end] == '\\') ++end;
    }
    return std::min(end + 1, s.size());
  }
  size_t end = from;
  while (end < s.size()) {
    if (s[end] == '&') return end;  // the next parameter of a URI query
    if (s[end] == ' ' || s[end] == '\t') {
      size_t k = end;
      while (k < s.size() && (s[k] == ' ' || s[k] == '\t')) ++k;
      size_t word = k;
      while (k < s.size() && (absl::ascii_isalnum(s[k]) || s[k] == '_')) ++k;
      size_t eq = k;
      while (eq < s.size() && (s[eq] == ' ' || s[eq] == '\t')) ++eq;
      if (k > word && eq < s.size() && s[eq] == '=') return end;
      end = k > end ? k : end + 1;
      continue;
    }
    ++end;
  }
  return end;
}

// Replaces the value of every key ending in "password" ("password=x",
// "sslpassword = 'a b'", "?password=x&...") with ***.
std::string RedactPasswordParams(const std::string& s) {
  std::string out;
  std::string lower = absl::AsciiStrToLower(s);
  size_t i = 0;
  while (i < s.size()) {
    size_t hit = lower.find("password", i);
    if (hit == std::string::npos) break;
    size_t j = hit + 8;
    while (j < s.size() && (s[j] == ' ' || s[j] == '\t')) ++j;
    if (j >= s.size() || s[j] != '=') {
      out.append(s, i, hit + 8 - i);
      i = hit + 8;
      continue;
    }
    ++j;
    while (j < s.size() && (s[j] == ' ' || s[j] == '\t')) ++j;
    out.append(s, i, j - i);
    out.append("***");
    i = ValueEnd(s, j);
  }
  out.append(s, std::min(i, s.size()), std::string::npos);
  return out;
}

// Replaces the password of scheme://user:password@host with ***: the
// userinfo ends at the last '@' before the query, so a password holding an
// unencoded '@' or '/' is hidden whole. A lone credential
// ("redis://secret@host") is a password too.
std::string RedactUriUserinfo(const std::string& s) {
  size_t scheme_end = s.find("://");
  if (scheme_end == std::string::npos) return s;
  size_t start = scheme_end + 3;
  size_t end = s.find_first_of("?#", start);
  if (end == std::string::npos) end = s.size();
  size_t at = s.rfind('@', end == 0 ? 0 : end - 1);
  if (at == std::string::npos || at < start) return s;
  size_t colon = s.find(':', start);
  if (colon == std::string::npos || colon > at) {
    // PostgreSQL's "postgresql://user@host" names a user; Redis's
    // "redis://secret@host" is a password.
    bool redis = absl::StartsWithIgnoreCase(s, "redis") ||
                 absl::StartsWithIgnoreCase(s, "unix");
    if (!redis) return s;
    return absl::StrCat(s.substr(0, start), "***", s.substr(at));
  }
  return absl::StrCat(s.substr(0, colon + 1), "***", s.substr(at));
}

}  // namespace

std::string CheckLogFile(const std::string& value) {
  if (HasControlChar(value)) return "must not contain control characters";
  if (!value.empty() && value.back() == '/') {
    return "must name a file, not a directory";
  }
  return "";
}

std::string CheckDatabaseUrl(const std::string& value) {
  constexpr char kForms[] =
      "must be a postgresql:// or postgres:// URI or a libpq key=value "
      "string";
  if (value.empty()) return "";
  size_t scheme_end = value.find("://");
  if (scheme_end != std::string::npos) {
    std::string scheme = absl::AsciiStrToLower(value.substr(0, scheme_end));
    if (scheme != "postgresql" && scheme != "postgres") return kForms;
  }
  char* err = nullptr;
  PQconninfoOption* opts = PQconninfoParse(value.c_str(), &err);
  if (opts != nullptr) {
    PQconninfoFree(opts);
    return "";
  }
  std::string detail = err != nullptr ? err : "out of memory";
  PQfreemem(err);
  absl::StripTrailingAsciiWhitespace(&detail);
  // libpq quotes the offending text; never let that text be a password.
  std::string redacted = RedactSecrets(value);
  for (absl::string_view piece : absl::StrSplit(
           value, absl::ByAnyChar(" \t'=@:/?&"), absl::SkipEmpty())) {
    if (piece.size() >= 3 && !absl::StrContains(redacted, piece)) {
      detail = absl::StrReplaceAll(detail, {{piece, "***"}});
    }
  }
  return absl::StrCat(kForms, " (libpq: ", detail, ")");
}

absl::StatusOr<RedisUrl> ParseRedisUrl(const std::string& url) {
  RedisUrl out;
  std::string reason;
  std::string lower = absl::AsciiStrToLower(url);
  if (absl::StartsWith(lower, "rediss://")) {
    reason = "TLS to Redis is not supported; use stunnel or a unix socket";
  } else if (absl::StartsWith(lower, "redis://")) {
    reason = ParseTcpRedis(absl::string_view(url).substr(8), &out);
  } else if (absl::StartsWith(lower, "unix://")) {
    reason = ParseUnixRedis(absl::string_view(url).substr(7), &out);
  } else {
    return absl::InvalidArgumentError(kRedisForms);
  }
  if (!reason.empty()) return absl::InvalidArgumentError(reason);
  return out;
}

std::string CheckRedisUrl(const std::string& value) {
  if (value.empty()) return "";
  absl::StatusOr<RedisUrl> parsed = ParseRedisUrl(value);
  if (parsed.ok()) return "";
  std::string reason(parsed.status().message());
  if (reason == kRedisForms || absl::StartsWith(reason, "TLS")) return reason;
  return absl::StrCat(kRedisForms, " (", reason, ")");
}

std::string RedactSecrets(const std::string& dsn) {
  return RedactPasswordParams(RedactUriUserinfo(dsn));
}

}  // namespace pggitops::internal::config

namespace pggitops {

std::string RedactSecrets(const std::string& connection_string) {
  return internal::config::RedactSecrets(connection_string);
}

}  // namespace pggitops
