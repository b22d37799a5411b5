// The parts of API keys that need no database: scopes, tokens and hashes.
// The store and the verifier are tested against PostgreSQL in
// tests/integration/security.
#include "pggitops/api_keys.h"

#include <set>
#include <string>

#include "absl/strings/match.h"
#include "doctest/doctest.h"

namespace pggitops {
namespace {

TEST_CASE("ParseApiScopes: names, order, duplicates and errors") {
  absl::StatusOr<std::vector<ApiScope>> s = ParseApiScopes("write, read");
  REQUIRE(s.ok());
  CHECK(*s == std::vector<ApiScope>{ApiScope::kRead, ApiScope::kWrite});

  s = ParseApiScopes("admin,admin,read");
  REQUIRE(s.ok());
  CHECK(*s == std::vector<ApiScope>{ApiScope::kRead, ApiScope::kAdmin});

  s = ParseApiScopes("read,owner");
  REQUIRE_FALSE(s.ok());
  CHECK(s.status().code() == absl::StatusCode::kInvalidArgument);
  CHECK(absl::StrContains(s.status().message(), "'owner'"));

  for (const char* empty : {"", ",", " , "}) {
    s = ParseApiScopes(empty);
    REQUIRE_FALSE(s.ok());
    CHECK(absl::StrContains(s.status().message(), "no scopes"));
  }
  // Case matters: the database's CHECK knows lower case only.
  CHECK_FALSE(ParseApiScopes("Read").ok());
}

TEST_CASE("WidestScope: admin includes write includes read") {
  CHECK(WidestScope({ApiScope::kRead}) == ApiScope::kRead);
  CHECK(WidestScope({ApiScope::kRead, ApiScope::kWrite}) == ApiScope::kWrite);
  CHECK(WidestScope({ApiScope::kAdmin, ApiScope::kRead}) == ApiScope::kAdmin);
  CHECK(std::string(ApiScopeName(ApiScope::kWrite)) == "write");
}

TEST_CASE("GenerateApiToken: prefixed, base64url, 256 random bits, distinct") {
  std::set<std::string> seen;
  for (int i = 0; i < 1000; ++i) {
    std::string t = GenerateApiToken();
    REQUIRE(absl::StartsWith(t, "pggit_"));
    CHECK(t.size() == 6 + 43);
    for (char c : t.substr(6)) {
      bool ok = (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') ||
                (c >= '0' && c <= '9') || c == '-' || c == '_';
      REQUIRE_MESSAGE(ok, t);
    }
    seen.insert(t);
    CHECK(ApiTokenPrefix(t).size() == 14);
    CHECK(absl::StartsWith(t, ApiTokenPrefix(t)));
  }
  CHECK(seen.size() == 1000);
}

TEST_CASE("HashApiToken: lower-case hex SHA-256, as the table requires") {
  CHECK(HashApiToken("abc") ==
        "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
  std::string h = HashApiToken(GenerateApiToken());
  CHECK(h.size() == 64);
  CHECK(h.find_first_not_of("0123456789abcdef") == std::string::npos);
}

TEST_CASE(
    "ApiKeyVerifierOptionsFromConfig: API_KEY_CACHE_SECONDS and the pool") {
  Config c;
  c.api_key_cache = absl::Seconds(7);
  auto* pool = reinterpret_cast<ConnectionPool*>(0x1);  // never dereferenced
  ApiKeyVerifierOptions o = ApiKeyVerifierOptionsFromConfig(c, pool);
  CHECK(o.refresh_interval == absl::Seconds(7));
  CHECK(o.pool == pool);
  CHECK(o.metrics == nullptr);
}

}  // namespace
}  // namespace pggitops
