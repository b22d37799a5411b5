// Helpers of the API integration tests: the settings of the real pggit-api
// (harness::Daemon) they run, JSON requests, and checks of the one error
// body (CONTRACT section 5).
#ifndef PGGITOPS_TESTS_INTEGRATION_API_API_TEST_UTIL_H_
#define PGGITOPS_TESTS_INTEGRATION_API_API_TEST_UTIL_H_

#include <chrono>
#include <string>

#include "doctest/doctest.h"
#include "httplib.h"
#include "nlohmann/json.hpp"
#include "tests/harness/daemon.h"
#include "tests/harness/harness.h"

namespace pggitops::api_test {

using harness::Daemon;
using harness::Process;
using nlohmann::json;
using Clock = std::chrono::steady_clock;

// The settings the API suites (api, security, dashboard) add to the daemon
// fixture's base environment, with `extra` on top: a Redis database of
// their own (the L2 keys carry no database name, so the daemons of other
// suites must not share it), no rate limit, a 10 s drain.
inline harness::EnvMap ApiEnv(const harness::EnvMap& extra = {}) {
  harness::EnvMap env = {{"REDIS_URL", harness::Get().redis_url + "/4"},
                         {"SHUTDOWN_TIMEOUT", "10"},
                         {"RATE_LIMIT_PER_MINUTE", "0"}};
  for (const auto& [k, v] : extra) env[k] = v;
  return env;
}

inline json Body(const httplib::Result& r) {
  REQUIRE(r);
  return json::parse(r->body);
}

inline httplib::Result PostJson(httplib::Client& c, const std::string& path,
                                const json& body) {
  return c.Post(path.c_str(), body.dump(), "application/json");
}

// Checks the status and the error body; `needle` must be in its detail.
inline void CheckErrorBody(const httplib::Result& r, int status,
                           const std::string& needle) {
  REQUIRE(r);
  CHECK_MESSAGE(r->status == status, r->body);
  json j = json::parse(r->body, nullptr, false);
  REQUIRE(j.is_object());
  CHECK(j["error_code"].is_string());
  CHECK(j["timestamp"].is_string());
  CHECK(j["request_id"].is_string());
  const std::string detail = j["detail"].get<std::string>();
  CHECK_MESSAGE(detail.find(needle) != std::string::npos,
                (detail + " should name " + needle));
}

}  // namespace pggitops::api_test

#endif  // PGGITOPS_TESTS_INTEGRATION_API_API_TEST_UTIL_H_
