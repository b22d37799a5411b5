// Helpers of the API integration tests: the real pggit-api binary serving a
// freshly migrated database of the harness's PostgreSQL (with its Redis),
// JSON requests, and checks of the one error body (CONTRACT section 5).
#ifndef PGGITOPS_TESTS_INTEGRATION_API_API_TEST_UTIL_H_
#define PGGITOPS_TESTS_INTEGRATION_API_API_TEST_UTIL_H_

#include <signal.h>

#include <chrono>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "doctest/doctest.h"
#include "httplib.h"
#include "nlohmann/json.hpp"
#include "tests/harness/daemon.h"
#include "tests/harness/harness.h"

namespace pggitops::api_test {

using harness::Process;
using nlohmann::json;
using Clock = std::chrono::steady_clock;

inline std::string Api() { return harness::BuildPath("server/pggit-api"); }

// A migrated database with the daemon serving it.
struct Daemon {
  std::string db;
  std::string dsn;
  int port = 0;
  std::unique_ptr<Process> process;

  Daemon(const std::string& name,
         const std::map<std::string, std::string>& extra = {})
      : db(name) {
    dsn = harness::FreshDatabase(name);
    Process m({Api(), "migrate"}, {{"DATABASE_URL", dsn}});
    REQUIRE(m.Wait(60000) == 0);
    port = harness::FreePort();
    std::map<std::string, std::string> env = {
        {"DATABASE_URL", dsn},
        {"API_HOST", "127.0.0.1"},
        {"API_PORT", std::to_string(port)},
        {"REDIS_URL", harness::Get().redis_url + "/4"},
        {"HEALTH_CACHE_SECONDS", "0"},
        {"SHUTDOWN_GRACE_SECONDS", "0"},
        {"SHUTDOWN_TIMEOUT", "10"},
        {"RATE_LIMIT_PER_MINUTE", "0"},
        {"API_LOG_LEVEL", "INFO"}};
    for (const auto& [k, v] : extra) env[k] = v;
    process = std::make_unique<Process>(
        std::vector<std::string>{Api(), "serve"}, env);
    REQUIRE_MESSAGE(harness::WaitForHttp(port, "/health/ready", 200,
                                         std::chrono::seconds(30)),
                    process->Output());
  }
  ~Daemon() {
    if (process->Running()) {
      process->Signal(SIGTERM);
      process->Wait(15000);
    }
  }
  httplib::Client Client() const {
    httplib::Client c("127.0.0.1", port);
    c.set_read_timeout(10, 0);
    return c;
  }
  std::string Sql(const std::string& sql) const {
    return harness::AdminQuery(db, sql);
  }
};

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
