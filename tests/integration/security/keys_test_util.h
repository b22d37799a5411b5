// Helpers of the tests that need API keys: `pggit-api keys` against a
// Daemon's database. Poll with harness::WaitForHttp until a key takes
// effect (API_KEY_CACHE_SECONDS).
#ifndef PGGITOPS_TESTS_INTEGRATION_SECURITY_KEYS_TEST_UTIL_H_
#define PGGITOPS_TESTS_INTEGRATION_SECURITY_KEYS_TEST_UTIL_H_

#include <string>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"
#include "doctest/doctest.h"
#include "httplib.h"
#include "tests/harness/harness.h"
#include "tests/integration/api/api_test_util.h"

namespace pggitops::api_test {

struct CliResult {
  int code;
  std::string output;
  std::string last_line;
};

// Runs `pggit-api keys <args>` against the daemon's database.
inline CliResult Keys(const Daemon& d, std::vector<std::string> args) {
  args.insert(args.begin(), {harness::ApiBinary(), "keys"});
  Process p(args,
            {{"DATABASE_URL", d.dsn()}, {"API_KEY_CACHE_SECONDS", "0.2"}});
  CliResult r;
  r.code = p.Wait(30000);
  r.output = p.Output();
  std::vector<std::string> lines =
      absl::StrSplit(absl::StripSuffix(r.output, "\n"), '\n');
  r.last_line = lines.empty() ? "" : lines.back();
  return r;
}

// Creates a key and returns its token (the last line of the output).
inline std::string CreateKey(const Daemon& d, const std::string& name,
                             const std::string& scopes) {
  CliResult r = Keys(d, {"create", "--name", name, "--scopes", scopes});
  REQUIRE_MESSAGE(r.code == 0, r.output);
  REQUIRE_MESSAGE(absl::StartsWith(r.last_line, "pggit_"), r.output);
  return r.last_line;
}

inline httplib::Headers Bearer(const std::string& token) {
  return {{"Authorization", "Bearer " + token}};
}

}  // namespace pggitops::api_test

#endif  // PGGITOPS_TESTS_INTEGRATION_SECURITY_KEYS_TEST_UTIL_H_
