// CONTRACT section 8 against a running pggit-api: protected mode, API keys
// made with `pggit-api keys` (hashed, scoped, revoked on every request path
// within API_KEY_CACHE_SECONDS), and the rate limit of /api/* with its
// headers, per client address behind a trusted proxy.
#include <chrono>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "doctest/doctest.h"
#include "httplib.h"
#include "nlohmann/json.hpp"
#include "tests/harness/daemon.h"
#include "tests/harness/harness.h"
#include "tests/integration/api/api_test_util.h"
#include "tests/integration/security/keys_test_util.h"

namespace pggitops {
namespace {

using api_test::Bearer;
using api_test::CheckErrorBody;
using api_test::CliResult;
using api_test::CreateKey;
using api_test::Daemon;
using api_test::Keys;
using harness::Process;
using nlohmann::json;

const harness::EnvMap kFastKeys =
    api_test::ApiEnv({{"API_KEY_CACHE_SECONDS", "0.2"}, {"REDIS_URL", ""}});

TEST_CASE("Protected mode: no key, loopback clients only") {
  Daemon d("security_protected", kFastKeys);
  httplib::Client c = d.Client();

  auto r = c.Get("/api/v1/webhooks");
  REQUIRE(r);
  CHECK(r->status == 200);
  // A bearer header changes nothing while no key exists.
  r = c.Get("/api/v1/webhooks", Bearer("pggit_whatever"));
  CHECK(r->status == 200);

  // Through a reverse proxy on this host: not a loopback client.
  for (const httplib::Headers& proxied :
       {httplib::Headers{{"X-Forwarded-For", "203.0.113.9"}},
        httplib::Headers{{"Forwarded", "for=203.0.113.9"}}}) {
    r = c.Get("/api/v1/webhooks", proxied);
    CheckErrorBody(r, 403, "protected mode");
    CHECK(json::parse(r->body)["error_code"] == "FORBIDDEN");
    r = c.Post("/api/v1/alerts", proxied,
               R"({"operation_type":"x","severity":"INFO","message":"m"})",
               "application/json");
    CheckErrorBody(r, 403, "protected mode");
    // Health stays public.
    r = c.Get("/health", proxied);
    CHECK(r->status == 200);
  }
  // The refused POST created nothing.
  CHECK(d.Sql("SELECT count(*) FROM pggit.alerts") == "0");

  SUBCASE("listening beyond loopback without a key is refused") {
    Process p({harness::ApiBinary(), "serve"},
              {{"DATABASE_URL", d.dsn()},
               {"API_HOST", "0.0.0.0"},
               {"API_PORT", std::to_string(harness::FreePort())},
               {"REDIS_URL", ""}});
    CHECK(p.Wait(30000) == 1);
    CHECK_MESSAGE(absl::StrContains(p.Output(), "no API key exists"),
                  p.Output());
  }
}

TEST_CASE("API keys: created hashed, scoped, revoked everywhere") {
  Daemon d("security_keys", kFastKeys);
  const std::string reader = CreateKey(d, "reader", "read");
  const std::string writer = CreateKey(d, "writer", "write");
  const std::string admin = CreateKey(d, "admin", "admin");
  CHECK(reader != writer);

  // Stored as SHA-256, never the key itself.
  CHECK(d.Sql("SELECT count(*) FROM pggit.api_keys WHERE key_hash = "
              "encode(sha256('" +
              reader + "'::bytea), 'hex')") == "1");
  CHECK(d.Sql("SELECT count(*) FROM pggit.api_keys WHERE "
              "row_to_json(api_keys)::text LIKE '%" +
              reader.substr(14) + "%'") == "0");

  // Bad commands say why and change nothing.
  CliResult bad = Keys(d, {"create", "--name", "x", "--scopes", "owner"});
  CHECK(bad.code == 1);
  CHECK(absl::StrContains(bad.output, "unknown scope 'owner'"));
  bad = Keys(d, {"create", "--name", "reader", "--scopes", "read"});
  CHECK(bad.code == 1);
  CHECK(absl::StrContains(bad.output, "exists already"));
  bad = Keys(d, {"create", "--scopes", "read"});
  CHECK(bad.code == 2);
  CHECK(absl::StrContains(bad.output, "--name and --scopes are required"));
  bad = Keys(d, {"rotate"});
  CHECK(bad.code == 2);
  CHECK(d.Sql("SELECT count(*) FROM pggit.api_keys") == "3");

  // Protected mode ends on every instance within API_KEY_CACHE_SECONDS.
  REQUIRE(harness::WaitForHttp(d.port(), "/api/v1/webhooks", 401,
                               std::chrono::seconds(5)));
  // Every key loaded (one reload may have seen only the first ones).
  REQUIRE(harness::WaitForHttp(d.port(), "/api/v1/webhooks", 200,
                               std::chrono::seconds(5), Bearer(admin)));
  httplib::Client c = d.Client();
  auto r = c.Get("/api/v1/webhooks");
  CheckErrorBody(r, 401, "API key is required");
  CHECK(json::parse(r->body)["error_code"] == "UNAUTHORIZED");
  CHECK(absl::StartsWith(r->get_header_value("WWW-Authenticate"), "Bearer"));
  for (const std::string& wrong :
       {std::string("Bearer pggit_nonsense"), "Bearer " + reader + "x",
        "Bearer " + reader.substr(0, 20), std::string("Basic cmVhZDpy")}) {
    r = c.Get("/api/v1/webhooks", {{"Authorization", wrong}});
    REQUIRE(r);
    CHECK_MESSAGE(r->status == 401, wrong);
  }

  // Scopes: admin includes write includes read.
  r = c.Get("/api/v1/webhooks", Bearer(reader));
  CHECK(r->status == 200);
  r = c.Get("/api/v1/webhooks", {{"Authorization", "bearer " + reader}});
  CHECK(r->status == 200);
  const std::string hook = R"({"name":"h1","url":"https://example.com/h"})";
  r = c.Post("/api/v1/webhooks", Bearer(reader), hook, "application/json");
  CheckErrorBody(r, 403, "`write` scope");
  CHECK(d.Sql("SELECT count(*) FROM pggit.webhooks") == "0");
  r = c.Post("/api/v1/webhooks", Bearer(writer), hook, "application/json");
  CHECK_MESSAGE(r->status == 201, r->body);
  r = c.Get("/api/v1/webhooks", Bearer(writer));
  CHECK(r->status == 200);
  r = c.Post("/api/v1/cache/warm", Bearer(writer), "", "");
  CheckErrorBody(r, 403, "`admin` scope");
  r = c.Post("/api/v1/cache/warm", Bearer(admin), "", "");
  CHECK(r->status == 200);
  r = c.Get("/api/v1/alerts", Bearer(admin));
  CHECK(r->status == 200);

  // Health and metrics stay public (METRICS_REQUIRE_KEY is off).
  CHECK(c.Get("/health")->status == 200);
  CHECK(c.Get("/health/deep")->status == 200);
  CHECK(c.Get("/metrics")->status == 200);

  // `keys list` shows names, prefixes and use, never a key.
  REQUIRE(harness::WaitForHttp(d.port(), "/api/v1/webhooks", 200,
                               std::chrono::seconds(1), Bearer(reader)));
  CHECK(harness::WaitFor(
      [&] {
        return d.Sql(
                   "SELECT last_used_at IS NOT NULL FROM pggit.api_keys "
                   "WHERE name = 'reader'") == "t";
      },
      std::chrono::seconds(5)));
  CliResult list = Keys(d, {"list"});
  CHECK(list.code == 0);
  CHECK(absl::StrContains(list.output, "reader"));
  CHECK(absl::StrContains(list.output, reader.substr(0, 14)));
  CHECK_FALSE(absl::StrContains(list.output, reader));
  CHECK(absl::StrContains(list.output, "3 active keys"));

  // Revocation takes effect within API_KEY_CACHE_SECONDS (0.2 s here).
  CliResult revoked = Keys(d, {"revoke", "reader"});
  CHECK_MESSAGE(revoked.code == 0, revoked.output);
  CHECK(harness::WaitForHttp(d.port(), "/api/v1/webhooks", 401,
                             std::chrono::seconds(5), Bearer(reader)));
  CHECK(c.Get("/api/v1/webhooks", Bearer(writer))->status == 200);
  bad = Keys(d, {"revoke", "reader"});
  CHECK(bad.code == 1);
  CHECK(absl::StrContains(bad.output, "already revoked"));
  bad = Keys(d, {"revoke", "nobody"});
  CHECK(bad.code == 1);
  CHECK(absl::StrContains(bad.output, "no API key named 'nobody'"));

  // With every key revoked the daemon is back in protected mode.
  REQUIRE(Keys(d, {"revoke", "writer"}).code == 0);
  REQUIRE(Keys(d, {"revoke", "admin"}).code == 0);
  CHECK(harness::WaitForHttp(d.port(), "/api/v1/webhooks", 200,
                             std::chrono::seconds(5)));
  r = c.Get("/api/v1/webhooks", {{"X-Forwarded-For", "203.0.113.9"}});
  CHECK(r->status == 403);
}

TEST_CASE("METRICS_REQUIRE_KEY puts /metrics behind a read key") {
  harness::EnvMap env = kFastKeys;
  env["METRICS_REQUIRE_KEY"] = "true";
  Daemon d("security_metrics", env);
  httplib::Client c = d.Client();
  CHECK(c.Get("/metrics")->status == 200);  // protected mode: loopback
  CHECK(c.Get("/metrics", {{"X-Forwarded-For", "203.0.113.9"}})->status == 403);
  const std::string reader = CreateKey(d, "prometheus", "read");
  REQUIRE(
      harness::WaitForHttp(d.port(), "/metrics", 401, std::chrono::seconds(5)));
  auto r = c.Get("/metrics", Bearer(reader));
  REQUIRE(r);
  CHECK(r->status == 200);
  CHECK(absl::StrContains(r->body, "http_requests_total"));
  CHECK(c.Get("/health")->status == 200);
}

int HeaderInt(const httplib::Result& r, const char* name) {
  int v = -1;
  CHECK_MESSAGE(absl::SimpleAtoi(r->get_header_value(name), &v), name);
  return v;
}

TEST_CASE("Rate limit: per client address, headers, 429 with Retry-After") {
  harness::EnvMap env = kFastKeys;
  env["RATE_LIMIT_PER_MINUTE"] = "60";  // one a second
  env["RATE_LIMIT_BURST"] = "5";
  env["TRUSTED_PROXIES"] = "127.0.0.1";
  Daemon d("security_rate", env);
  // Requests through the proxy are not loopback clients: a key is needed.
  const std::string key = CreateKey(d, "proxy", "read");
  httplib::Client c = d.Client();
  const auto start = std::chrono::system_clock::now();

  auto as = [&](const std::string& client) {
    httplib::Headers h = Bearer(key);
    h.emplace("X-Forwarded-For", client);
    return h;
  };
  // Wait until the daemon knows the key (protected mode answers 403 to
  // proxied requests), from throw-away client addresses.
  int probe = 0;
  REQUIRE(harness::WaitFor(
      [&] {
        ++probe;  // a new address each time (at most 250 probes in 5 s)
        auto r = c.Get("/api/v1/alerts",
                       as("198.51.100." + std::to_string(1 + probe % 250)));
        return r && r->status == 200;
      },
      std::chrono::seconds(5)));

  std::vector<int> remaining;
  for (int i = 0; i < 5; ++i) {
    auto r = c.Get("/api/v1/webhooks", as("203.0.113.7"));
    REQUIRE(r);
    REQUIRE_MESSAGE(r->status == 200, r->body);
    CHECK(HeaderInt(r, "X-RateLimit-Limit") == 60);
    remaining.push_back(HeaderInt(r, "X-RateLimit-Remaining"));
    long reset = HeaderInt(r, "X-RateLimit-Reset");
    long now = std::chrono::duration_cast<std::chrono::seconds>(
                   start.time_since_epoch())
                   .count();
    CHECK(reset >= now);
    CHECK(reset <= now + 60);
  }
  // Remaining counts down (a token comes back each second the loop runs).
  CHECK(remaining.front() >= 3);
  CHECK(remaining.back() < remaining.front());
  auto r = c.Get("/api/v1/webhooks", as("203.0.113.7"));
  int retry_after = 0;
  for (int i = 0; i < 5 && r->status == 200; ++i) {  // spend what came back
    r = c.Get("/api/v1/webhooks", as("203.0.113.7"));
  }
  CheckErrorBody(r, 429, "rate limit");
  CHECK(json::parse(r->body)["error_code"] == "RATE_LIMITED");
  CHECK(absl::SimpleAtoi(r->get_header_value("Retry-After"), &retry_after));
  CHECK(retry_after >= 1);
  CHECK(retry_after <= 2);
  CHECK(HeaderInt(r, "X-RateLimit-Remaining") == 0);

  // Another client behind the same proxy has its own bucket; health and
  // metrics are never limited.
  CHECK(c.Get("/api/v1/webhooks", as("203.0.113.8"))->status == 200);
  for (int i = 0; i < 10; ++i) {
    auto h = c.Get("/health", as("203.0.113.7"));
    CHECK(h->status == 200);
    CHECK_FALSE(h->has_header("X-RateLimit-Limit"));
  }
  // After Retry-After the client may come back.
  std::this_thread::sleep_for(std::chrono::seconds(retry_after));
  r = c.Get("/api/v1/webhooks", as("203.0.113.7"));
  CHECK(r->status == 200);
}

TEST_CASE("Rate limit: loopback clients exempt only when configured") {
  harness::EnvMap env = kFastKeys;
  env["RATE_LIMIT_PER_MINUTE"] = "60";
  env["RATE_LIMIT_BURST"] = "2";
  SUBCASE("not exempt by default") {
    Daemon d("security_rate_loopback", env);
    httplib::Client c = d.Client();
    CHECK(c.Get("/api/v1/webhooks")->status == 200);
    CHECK(c.Get("/api/v1/webhooks")->status == 200);
    // At one a second, a slow machine may earn a token back meanwhile.
    auto r = c.Get("/api/v1/webhooks");
    for (int i = 0; i < 5 && r->status == 200; ++i) {
      r = c.Get("/api/v1/webhooks");
    }
    CheckErrorBody(r, 429, "rate limit");
  }
  SUBCASE("RATE_LIMIT_EXEMPT_LOOPBACK=true") {
    env["RATE_LIMIT_EXEMPT_LOOPBACK"] = "true";
    Daemon d("security_rate_exempt", env);
    httplib::Client c = d.Client();
    for (int i = 0; i < 10; ++i) {
      auto r = c.Get("/api/v1/webhooks");
      CHECK(r->status == 200);
      CHECK_FALSE(r->has_header("X-RateLimit-Limit"));
    }
  }
}

}  // namespace
}  // namespace pggitops
