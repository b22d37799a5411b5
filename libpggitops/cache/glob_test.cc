#include "libpggitops/cache/glob.h"

#include <string>

#include "doctest/doctest.h"

namespace pggitops::internal {
namespace {

TEST_CASE("GlobMatch: * and ?") {
  CHECK(GlobMatch("webhooks:*", "webhooks:list:20:0"));
  CHECK(GlobMatch("webhooks:*", "webhooks:"));
  CHECK_FALSE(GlobMatch("webhooks:*", "webhooks"));
  CHECK_FALSE(GlobMatch("webhooks:*", "alerts:webhooks:1"));
  CHECK(GlobMatch("*", ""));
  CHECK(GlobMatch("*:list:*", "alerts:list:20:0"));
  CHECK(GlobMatch("a?c", "abc"));
  CHECK_FALSE(GlobMatch("a?c", "ac"));
  CHECK(GlobMatch("*a*b*c", "xxaxxbxxbc"));
  CHECK_FALSE(GlobMatch("*a*b*c", "xxaxxbxxb"));
  CHECK(GlobMatch("exact", "exact"));
  CHECK_FALSE(GlobMatch("exact", "exactly"));
  // Pathological input stays fast (no exponential backtracking).
  CHECK_FALSE(GlobMatch(std::string(30, '*') + "b", std::string(1000, 'a')));
}

TEST_CASE("ValidateGlob and ValidateKey") {
  CHECK(ValidateGlob("webhooks:*").ok());
  CHECK(ValidateGlob("dashboard:summary").ok());
  CHECK(ValidateGlob("alertes:é*").ok());
  CHECK_FALSE(ValidateGlob("").ok());
  CHECK_FALSE(ValidateGlob("webhooks:[a-z]").ok());
  CHECK_FALSE(ValidateGlob("webhooks:\\*").ok());
  CHECK_FALSE(ValidateGlob("tab\there").ok());
  CHECK_FALSE(ValidateGlob(std::string(1025, 'a')).ok());
  CHECK(ValidateGlob(std::string(1024, 'a')).ok());
  CHECK(ValidateKey("webhooks:list:limit=20").ok());
  CHECK(ValidateKey("a[1]").ok());  // brackets are fine in keys
  CHECK_FALSE(ValidateKey("").ok());
  CHECK_FALSE(ValidateKey("new\nline").ok());
}

TEST_CASE("KeyFamily and PatternFamily") {
  CHECK(KeyFamily("webhooks:list:1") == "webhooks");
  CHECK(KeyFamily("plain") == "plain");
  absl::string_view f;
  CHECK(PatternFamily("webhooks:*", &f));
  CHECK(f == "webhooks");
  CHECK(PatternFamily("dashboard", &f));
  CHECK(f == "dashboard");
  CHECK_FALSE(PatternFamily("*", &f));
  CHECK_FALSE(PatternFamily("web*:x", &f));
  CHECK_FALSE(PatternFamily("web?", &f));
}

}  // namespace
}  // namespace pggitops::internal
