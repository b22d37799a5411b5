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
#include "libpggitops/config/redis_url.h"
#include "pggitops/config.h"  // RedactSecrets: its PGGITOPS_EXPORT
#include "pggitops/text.h"

namespace pggitops::internal::config {
namespace {

using ::pggitops::internal::ParseRedisUrl;
using ::pggitops::internal::RedisUrl;

constexpr char kRedisForms[] =
    "must be redis://[[user]:password@]host[:port][/db] or "
    "unix:///path[?db=N&password=P]";

bool HasControlChar(absl::string_view s) {
  for (char c : s) {
    if (static_cast<unsigned char>(c) < 0x20 || c == 0x7f) return true;
  }
  return false;
}

// Where the value that starts at `from` ends in a libpq key/value string
// (or, with `uri`, a URI's query): at the next " key=" (a word followed by
// '='), at '&' in a URI, or at the end. A space inside an unquoted value
// ("password=a b dbname=x") is invalid, but must not let "b" out.
// Whitespace as libpq's conninfo parser reads it (isspace: also \n, \v,
// \f, \r; "password=\v A=1" is the password "A=1", found by
// tests/fuzz/config).
bool IsSpace(char c) {
  return absl::ascii_isspace(static_cast<unsigned char>(c));
}

size_t ValueEnd(const std::string& s, size_t from, bool uri) {
  size_t end = from;
  if (from < s.size() && s[from] == '\'') {
    for (++end; end < s.size() && s[end] != '\''; ++end) {
      if (s[end] == '\\') ++end;
    }
    end = std::min(end + 1, s.size());
    // Then on as for an unquoted value, up to the next " key=": text glued
    // to the closing quote ("password='a'b", which libpq refuses in a
    // key/value string and takes as part of a URI's path) or words that
    // are not a key ("password='a' -") are hidden with it. Otherwise a
    // second pass, reading *** as an unquoted value, would hide more than
    // the first (found by tests/fuzz/config).
  }
  while (end < s.size()) {
    // The next parameter of a URI query; in a key/value string "&" is
    // part of the value ("password=&x", found by tests/fuzz/config).
    if (uri && s[end] == '&') return end;
    if (IsSpace(s[end])) {
      size_t k = end;
      while (k < s.size() && IsSpace(s[k])) ++k;
      size_t word = k;
      while (k < s.size() && (absl::ascii_isalnum(s[k]) || s[k] == '_')) ++k;
      size_t eq = k;
      while (eq < s.size() && IsSpace(s[eq])) ++eq;
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
std::string RedactPasswordParams(const std::string& s, bool uri) {
  std::string out;
  std::string lower = absl::AsciiStrToLower(s);
  size_t i = 0;
  while (i < s.size()) {
    size_t hit = lower.find("password", i);
    if (hit == std::string::npos) break;
    size_t j = hit + 8;
    while (j < s.size() && IsSpace(s[j])) ++j;
    if (j >= s.size() || s[j] != '=') {
      out.append(s, i, hit + 8 - i);
      i = hit + 8;
      continue;
    }
    ++j;
    while (j < s.size() && IsSpace(s[j])) ++j;
    out.append(s, i, j - i);
    out.append("***");
    i = ValueEnd(s, j, uri);
  }
  out.append(s, std::min(i, s.size()), std::string::npos);
  return out;
}

// Where the "://" of a URI's scheme is: the text starts (after any
// whitespace) with a scheme, a letter then letters, digits, '+', '-' or
// '.'. Elsewhere "://" is text: libpq reads "password=a://b" as a
// key/value string (found by tests/fuzz/config: such a password was shown).
size_t SchemeEnd(const std::string& s) {
  size_t i = 0;
  while (i < s.size() && IsSpace(s[i])) ++i;
  if (i == s.size() || !absl::ascii_isalpha(s[i])) return std::string::npos;
  while (i < s.size() && (absl::ascii_isalnum(s[i]) || s[i] == '+' ||
                          s[i] == '-' || s[i] == '.')) {
    ++i;
  }
  return s.compare(i, 3, "://") == 0 ? i : std::string::npos;
}

// Replaces the password of scheme://user:password@host with ***. The
// userinfo ends at the last '@' before the query or fragment that follows
// the first '@' (libpq takes "u:pw?x@h" as the password "pw?x"), so a
// password holding an unencoded '@', '/', '?' or '#' is hidden whole. A
// lone credential ("redis://secret@host") is a password too. *rest is set
// to where the text after the userinfo starts: 0 without an '@', the
// scheme's end when libpq reads the '@' as part of the path or query.
std::string RedactUriUserinfo(const std::string& s, size_t* rest) {
  *rest = 0;
  size_t scheme_end = SchemeEnd(s);
  if (scheme_end == std::string::npos) return s;
  size_t start = scheme_end + 3;
  size_t first_at = s.find('@', start);
  if (first_at == std::string::npos) return s;
  size_t end = s.find_first_of("?#", first_at);
  if (end == std::string::npos) end = s.size();
  size_t at = s.rfind('@', end - 1);
  size_t colon = s.find(':', start);
  if (colon == std::string::npos || colon > at) {
    // PostgreSQL's "postgresql://user@host" names a user; Redis's
    // "redis://secret@host" is a password.
    bool redis = absl::StartsWithIgnoreCase(s, "redis") ||
                 absl::StartsWithIgnoreCase(s, "unix");
    if (!redis) {
      // No password here. After a '/' the '@' is in the path or the query
      // ("postgresql://h/db?password=p@ss", where libpq reads no
      // userinfo): every "password" parameter is searched from the start.
      // Before one, libpq reads a user name.
      const size_t slash = s.find('/', start);
      const bool userinfo = slash == std::string::npos || slash > first_at;
      *rest = userinfo ? at + 1 : start;
      return s;
    }
    std::string out = absl::StrCat(s.substr(0, start), "***", s.substr(at));
    *rest = out.size() - (s.size() - at - 1);
    return out;
  }
  std::string out = absl::StrCat(s.substr(0, colon + 1), "***", s.substr(at));
  *rest = out.size() - (s.size() - at - 1);
  return out;
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
  size_t scheme_end = SchemeEnd(value);
  if (scheme_end != std::string::npos) {
    std::string scheme = absl::AsciiStrToLower(
        absl::StripLeadingAsciiWhitespace(value.substr(0, scheme_end)));
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

std::string CheckRedisUrl(const std::string& value) {
  if (value.empty()) return "";
  absl::StatusOr<RedisUrl> parsed = ParseRedisUrl(value);
  if (parsed.ok()) return "";
  std::string reason(parsed.status().message());
  if (reason == kRedisTlsRefused) return reason;
  return absl::StrCat(kRedisForms, " (", reason, ")");
}

namespace {

// Where a URI's query starts ('?'), read as libpq does from `i`, the start
// of its hosts: a host that starts with '[' ends at its ']' (a '?' inside
// is the host's), hosts are separated by ','; after the first '/' the
// query is at the next '?'. npos without one.
size_t QueryStart(const std::string& s, size_t i) {
  bool host_start = true;
  while (i < s.size()) {
    const char c = s[i];
    if (host_start && c == '[') {
      const size_t close = s.find(']', i);
      // Without its ']' libpq refuses the URI: search all of it.
      if (close == std::string::npos) return s.find('?', i);
      i = close + 1;
      host_start = false;
      continue;
    }
    host_start = c == ',';
    if (c == '/') return s.find('?', i);
    if (c == '?') return i;
    ++i;
  }
  return std::string::npos;
}

// One pass of RedactSecrets.
std::string RedactOnce(const std::string& dsn) {
  // A Redis URL the daemon accepts is hidden exactly where its parser
  // finds the password.
  if (absl::StartsWithIgnoreCase(dsn, "redis://") ||
      absl::StartsWithIgnoreCase(dsn, "unix://")) {
    absl::StatusOr<RedisUrl> parsed = ParseRedisUrl(dsn);
    if (parsed.ok()) return parsed->redacted;
  }
  // Otherwise the userinfo's password, then every "password" parameter
  // after it (a user name is not searched: "password=" in one is text).
  // A URI's parameters are its query's: "password=" in its host or path
  // is a host or a database name to libpq, and hiding it could change
  // them ("postgresql://[h password=]" lost its ']'; tests/fuzz/config).
  size_t rest = 0;
  std::string s = RedactUriUserinfo(dsn, &rest);
  const size_t scheme_end = SchemeEnd(s);
  const bool uri = scheme_end != std::string::npos;
  if (uri) {
    rest = std::min(QueryStart(s, std::max(rest, scheme_end + 3)), s.size());
  }
  return absl::StrCat(s.substr(0, rest),
                      RedactPasswordParams(s.substr(rest), uri));
}

}  // namespace

std::string RedactSecrets(const std::string& dsn) {
  // Redacted text must redact to itself: check-config reads back what
  // DescribeConfig wrote, and a log line may quote a redacted value. One
  // pass did not always give that: hiding a parameter's value removed the
  // '?' or '#' that ended the userinfo, so the next pass read a longer one
  // (found by tests/fuzz/config in CI). Parameters are now looked for only
  // in the query, after that mark; the passes stay as the guarantee for
  // whatever one pass still misses. Each pass that changes the text hides
  // more of it, so a few reach the fixed point; text that has not settled
  // after kMaxPasses is hidden whole.
  constexpr int kMaxPasses = 8;
  std::string out = RedactOnce(dsn);
  for (int pass = 1; pass < kMaxPasses; ++pass) {
    std::string again = RedactOnce(out);
    if (again == out) return out;
    out = std::move(again);
  }
  return "***";
}

}  // namespace pggitops::internal::config

namespace pggitops {

std::string RedactSecrets(const std::string& connection_string) {
  return internal::config::RedactSecrets(connection_string);
}

}  // namespace pggitops
