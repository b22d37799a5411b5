// libFuzzer target: the configuration's outside inputs, the `.env` file
// (ParseDotenv), the process environment and the YAML file, through
// LoadConfig and DescribeConfig (libpggitops/config). Invariants:
//   - parsed .env entries have non-empty keys without '=' or spaces, and
//     written back double-quoted (with the escapes the parser knows) they
//     parse to the same entries;
//   - whatever LoadConfig accepts, from the environment or from YAML,
//     DescribeConfig renders as .env text that parses, loads again, and
//     describes the same values ("reads back as .env", as config.h
//     promises), unless RedactSecrets and libpq disagree on where
//     DATABASE_URL's userinfo ends and the redaction hid more than the
//     password (RedactionHidesMoreThanPassword);
//   - RedactSecrets hides the password of DATABASE_URL where libpq finds
//     it, and of REDIS_URL where ParseRedisUrl finds it; so too for the
//     whole input taken as one connection string, and redacted text
//     redacts to itself;
//   - errors are kInvalidArgument with a message; nothing throws.
// Input: the first byte's low bit chooses .env text (0: entries loaded as
// the environment) or YAML (1: written to a memfd, the YAML file). Seeds:
// tests/fuzz/config/. See docs/TESTING.md.
#include <libpq-fe.h>
#include <sys/mman.h>
#include <unistd.h>

#include <cstddef>
#include <cstdint>
#include <map>
#include <string>

#include "absl/status/statusor.h"
#include "absl/strings/escaping.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_replace.h"
#include "libpggitops/config/redis_url.h"
#include "libpggitops/config/sources.h"
#include "pggitops/config.h"
#include "tests/fuzz/fuzz_util.h"

using pggitops::fuzz::Require;
using pggitops::internal::config::DotenvEntries;
using pggitops::internal::config::ParseDotenv;

namespace {

void CheckError(const absl::Status& s) {
  Require(s.code() == absl::StatusCode::kInvalidArgument,
          "a config error that is not kInvalidArgument");
  Require(!s.message().empty(), "a config error without a message");
}

std::string Quoted(const std::string& v) {
  return absl::StrCat("\"",
                      absl::StrReplaceAll(v, {{"\\", "\\\\"},
                                              {"\"", "\\\""},
                                              {"\n", "\\n"},
                                              {"\t", "\\t"},
                                              {"$", "\\$"}}),
                      "\"");
}

// Sources reading nothing but `environment` (and the YAML file if given).
pggitops::ConfigSources Sources(const DotenvEntries& entries) {
  pggitops::ConfigSources s;
  s.dotenv_path.clear();
  for (const auto& [k, v] : entries) s.environment[k] = v;
  s.environment.erase("PGGIT_CONFIG");  // no file names from the input
  return s;
}

// libpq's reading of a connection string, password left out (empty if
// libpq refuses it).
std::map<std::string, std::string> LibpqFields(const std::string& conninfo) {
  std::map<std::string, std::string> fields;
  PQconninfoOption* opts = PQconninfoParse(conninfo.c_str(), nullptr);
  if (opts == nullptr) return fields;
  for (PQconninfoOption* o = opts; o->keyword != nullptr; ++o) {
    if (o->val != nullptr && std::string(o->keyword) != "password") {
      fields[o->keyword] = o->val;
    }
  }
  PQconninfoFree(opts);
  return fields;
}

// Where RedactSecrets and libpq disagree on a URI's userinfo: libpq ends
// it at the first '@' before any '/', RedactSecrets (erring on the side of
// hiding) at the last '@' before the '?' or '#' after the first '@', and
// again on its own output until nothing changes. For "u:p@ss@h" or
// "h:1/a@b" it hides more than libpq's password, and what is left after
// *** need not load again. Only then: a URL with one '@' that hides no
// more than the password must load again.
bool RedactionHidesMoreThanPassword(const std::string& url) {
  const size_t scheme = url.find("://");
  if (scheme == std::string::npos) return false;
  const size_t start = scheme + 3;
  const size_t first_at = url.find('@', start);
  if (first_at == std::string::npos) return false;
  const size_t slash = url.find('/', start);
  const bool ambiguous = (slash != std::string::npos && slash < first_at) ||
                         url.find('@', first_at + 1) != std::string::npos;
  if (!ambiguous) return false;
  const std::map<std::string, std::string> redacted =
      LibpqFields(pggitops::RedactSecrets(url));
  return redacted.empty() || redacted != LibpqFields(url);
}

void CheckDescribe(const pggitops::Config& config) {
  const std::string text = pggitops::DescribeConfig(config);
  absl::StatusOr<DotenvEntries> entries = ParseDotenv(text, "describe");
  Require(entries.ok(), "DescribeConfig does not parse as .env");
  if (RedactionHidesMoreThanPassword(config.database_url)) return;
  absl::StatusOr<pggitops::Config> again =
      pggitops::LoadConfig(Sources(*entries));
  if (!again.ok()) {
    std::fprintf(stderr, "%s\n%s\n",
                 std::string(again.status().message()).c_str(), text.c_str());
  }
  Require(again.ok(), "DescribeConfig's text does not load");
  const std::string text_again = pggitops::DescribeConfig(*again);
  absl::StatusOr<DotenvEntries> twice = ParseDotenv(text_again, "describe");
  if (!twice.ok() || *twice != *entries) {
    std::fprintf(stderr, "first (%zu):\n%s\nagain (%zu):\n%s\n", text.size(),
                 absl::CHexEscape(text).c_str(), text_again.size(),
                 absl::CHexEscape(text_again).c_str());
  }
  Require(twice.ok() && *twice == *entries,
          "DescribeConfig's text loads to other values");
}

size_t Count(const std::string& text, const std::string& what) {
  size_t n = 0;
  for (size_t i = text.find(what); i != std::string::npos;
       i = text.find(what, i + 1)) {
    ++n;
  }
  return n;
}

// RedactSecrets hides the password where the consumer finds it: at least
// one of its occurrences in the value is gone (a password of 3 or more
// characters, without '*', found as is in the value).
void CheckHidden(const std::string& value, const std::string& password,
                 const char* what) {
  if (password.size() < 3 || password.find('*') != std::string::npos) return;
  const size_t in_value = Count(value, password);
  if (in_value == 0) return;  // percent-encoded in the value
  Require(Count(pggitops::RedactSecrets(value), password) < in_value, what);
}

void CheckRedaction(const pggitops::Config& config) {
  PQconninfoOption* opts =
      PQconninfoParse(config.database_url.c_str(), nullptr);
  if (opts != nullptr) {
    for (PQconninfoOption* o = opts; o->keyword != nullptr; ++o) {
      if (std::string(o->keyword) == "password" && o->val != nullptr) {
        CheckHidden(config.database_url, o->val,
                    "RedactSecrets shows the password libpq reads");
      }
    }
    PQconninfoFree(opts);
  }
  if (!config.redis_url.empty()) {
    absl::StatusOr<pggitops::internal::RedisUrl> redis =
        pggitops::internal::ParseRedisUrl(config.redis_url);
    Require(redis.ok(), "a REDIS_URL that loaded does not parse");
    CheckHidden(config.redis_url, redis->password,
                "RedactSecrets shows the Redis password");
  }
}

// The input itself as a connection string, whatever LoadConfig says of
// it: redacted text redacts to itself, and the password libpq or the Redis
// parser reads is hidden.
void CheckRawRedaction(const std::string& text) {
  if (text.find('\0') != std::string::npos) return;  // not a C string
  const std::string once = pggitops::RedactSecrets(text);
  Require(pggitops::RedactSecrets(once) == once,
          "RedactSecrets of its own output hides more");
  pggitops::Config config;
  config.database_url = text;
  if (pggitops::internal::ParseRedisUrl(text).ok()) config.redis_url = text;
  CheckRedaction(config);
}

void CheckLoad(const pggitops::ConfigSources& sources) {
  absl::StatusOr<pggitops::Config> config = pggitops::LoadConfig(sources);
  if (!config.ok()) return CheckError(config.status());
  CheckRedaction(*config);
  CheckDescribe(*config);
}

void CheckDotenv(const std::string& text) {
  absl::StatusOr<DotenvEntries> entries = ParseDotenv(text, ".env");
  if (!entries.ok()) return CheckError(entries.status());
  std::string back;
  for (const auto& [k, v] : *entries) {
    Require(!k.empty(), "an empty key");
    Require(k.find_first_of("= \t\n") == std::string::npos,
            "a key with '=' or a space");
    absl::StrAppend(&back, k, "=", Quoted(v), "\n");
  }
  absl::StatusOr<DotenvEntries> again = ParseDotenv(back, ".env");
  Require(again.ok() && *again == *entries,
          "entries written back parse differently");
  CheckLoad(Sources(*entries));
}

void CheckYaml(const std::string& text) {
  static const int fd = memfd_create("pggitops-fuzz-config", MFD_CLOEXEC);
  Require(fd >= 0, "memfd_create");
  Require(ftruncate(fd, 0) == 0 && pwrite(fd, text.data(), text.size(), 0) ==
                                       static_cast<ssize_t>(text.size()),
          "writing the memfd");
  pggitops::ConfigSources sources = Sources({});
  sources.yaml_path = absl::StrCat("/proc/self/fd/", fd);
  CheckLoad(sources);
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size == 0) return 0;
  const std::string text(reinterpret_cast<const char*>(data) + 1, size - 1);
  CheckRawRedaction(text);
  if (data[0] & 1) {
    CheckYaml(text);
  } else {
    CheckDotenv(text);
  }
  return 0;
}
