// The page for people and its cookie login against a running pggit-api
// (CONTRACT section 5 "Dashboard", section 10 "Dashboard with keys"): the
// page's headers and self-containment, protected mode from loopback, and
// the pggit_session cookie, accepted for GET requests only, refused once
// its key is revoked, rate-limited like /api.
#include <map>
#include <regex>
#include <string>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "doctest/doctest.h"
#include "httplib.h"
#include "nlohmann/json.hpp"
#include "testing/temp_dir.h"
#include "tests/harness/daemon.h"
#include "tests/harness/harness.h"
#include "tests/integration/api/api_test_util.h"
#include "tests/integration/security/keys_test_util.h"

namespace pggitops {
namespace {

using api_test::Bearer;
using api_test::CheckErrorBody;
using api_test::CreateKey;
using api_test::Daemon;
using api_test::Keys;
using api_test::PostJson;
using nlohmann::json;

constexpr char kCsp[] =
    "default-src 'self'; script-src 'self' 'unsafe-inline'; "
    "style-src 'unsafe-inline'; img-src 'self' data:; connect-src 'self'";

harness::EnvMap Env(harness::EnvMap extra = {}) {
  harness::EnvMap env = {{"API_KEY_CACHE_SECONDS", "0.2"},
                         {"REDIS_URL", ""},
                         {"SSE_STATUS_INTERVAL", "0.3"}};
  for (const auto& [k, v] : extra) env[k] = v;
  return api_test::ApiEnv(env);
}

httplib::Headers Cookie(const std::string& value) {
  return {{"Cookie", value}};
}

// The head and first bytes of GET /api/v1/alerts/stream; the connection
// is closed after the first bytes.
struct StreamStart {
  int status = 0;
  std::string content_type;
  std::string first;
};

StreamStart OpenStream(const Daemon& d, const httplib::Headers& headers) {
  httplib::Client c = d.Client();
  StreamStart s;
  c.Get(
      "/api/v1/alerts/stream", headers,
      [&s](const httplib::Response& res) {
        s.status = res.status;
        s.content_type = res.get_header_value("Content-Type");
        return true;
      },
      [&s](const char* data, size_t n) {
        s.first.append(data, n);
        return false;
      });
  return s;
}

void CheckPage(const httplib::Result& r) {
  REQUIRE(r);
  CHECK(r->status == 200);
  CHECK(r->get_header_value("Content-Type") == "text/html; charset=utf-8");
  CHECK(r->get_header_value("Content-Security-Policy") == kCsp);
  CHECK(r->get_header_value("X-Content-Type-Options") == "nosniff");
  CHECK(r->get_header_value("Cache-Control") == "no-store");
  CHECK(r->get_header_value("X-Frame-Options") == "DENY");
}

TEST_CASE("GET /dashboard: one self-contained page with strict headers") {
  Daemon d("dashboard_page", Env());
  httplib::Client c = d.Client();
  auto r = c.Get("/dashboard");
  CheckPage(r);
  const std::string& html = r->body;
  CHECK(absl::StartsWith(html, "<!DOCTYPE html>"));
  CHECK(absl::StrContains(html, "</html>"));
  // What it reads, same-origin.
  CHECK(absl::StrContains(html, "'/api/v1/dashboard'"));
  CHECK(absl::StrContains(html, "'/api/v1/alerts/stream'"));
  CHECK(absl::StrContains(html, "'/dashboard/session'"));
  CHECK(absl::StrContains(html, "system_status"));
  CHECK(absl::StrContains(html, "<canvas"));

  // No external assets: no URL with a scheme or a network path, no src= or
  // href= attribute, no CSS import or url(), no markup built from data.
  for (const char* banned :
       {"http://", "https://", "\"//", "'//", "@import", "url(", "innerHTML",
        "outerHTML", "insertAdjacentHTML", "document.write", "eval("}) {
    CAPTURE(banned);
    CHECK_FALSE(absl::StrContains(html, banned));
  }
  std::smatch m;
  CHECK_FALSE(std::regex_search(
      html, m, std::regex(R"(\s(src|href|action)\s*=)", std::regex::icase)));

  // HEAD is answered like GET, without the body.
  auto head = c.Head("/dashboard");
  REQUIRE(head);
  CHECK(head->status == 200);
  CHECK(head->body.empty());
  // The page is public and never rate-limited.
  CHECK_FALSE(r->has_header("X-RateLimit-Limit"));
}

TEST_CASE("Protected mode: the page and what it reads work from loopback") {
  Daemon d("dashboard_protected", Env());
  httplib::Client c = d.Client();
  CheckPage(c.Get("/dashboard"));
  CHECK(c.Get("/api/v1/alerts?limit=15")->status == 200);
  StreamStart s = OpenStream(d, {});
  CHECK(s.status == 200);
  CHECK(absl::StartsWith(s.content_type, "text/event-stream"));
  CHECK_FALSE(s.first.empty());

  // No key exists, so no key can open a session.
  auto r = PostJson(c, "/dashboard/session", {{"key", "pggit_anything"}});
  CheckErrorBody(r, 401, "protected mode");
  CHECK_FALSE(r->has_header("Set-Cookie"));
  // Through a proxy the page still loads; its data is refused (403).
  httplib::Headers proxied = {{"X-Forwarded-For", "203.0.113.9"}};
  CheckPage(c.Get("/dashboard", proxied));
  CheckErrorBody(c.Get("/api/v1/alerts", proxied), 403, "protected mode");
}

TEST_CASE("Session cookie: login, GET only, revocation, logout") {
  Daemon d("dashboard_session", Env({{"TRUSTED_PROXIES", "127.0.0.1"}}));
  const std::string reader = CreateKey(d, "page", "read");
  const std::string writer = CreateKey(d, "writer", "write");
  // Both keys loaded (one reload may have seen only the first).
  REQUIRE(harness::WaitForHttp(d.port(), "/api/v1/webhooks", 200,
                               std::chrono::seconds(5), Bearer(writer)));
  REQUIRE(harness::WaitForHttp(d.port(), "/api/v1/webhooks", 401,
                               std::chrono::seconds(5)));
  httplib::Client c = d.Client();

  // Refused keys and bodies set no cookie.
  auto r = PostJson(c, "/dashboard/session", {{"key", "pggit_nonsense"}});
  CheckErrorBody(r, 401, "not valid");
  CHECK_FALSE(r->has_header("Set-Cookie"));
  r = PostJson(c, "/dashboard/session", {{"key", reader + "x"}});
  CheckErrorBody(r, 401, "not valid");
  CHECK_FALSE(r->has_header("Set-Cookie"));
  r = PostJson(c, "/dashboard/session", {{"key", 42}});
  CheckErrorBody(r, 422, "key");
  r = PostJson(c, "/dashboard/session", json::object());
  CheckErrorBody(r, 422, "key");
  r = PostJson(c, "/dashboard/session", {{"key", reader}, {"remember", true}});
  CheckErrorBody(r, 422, "remember");
  CHECK_FALSE(r->has_header("Set-Cookie"));
  r = c.Post("/dashboard/session", "key=" + reader,
             "application/x-www-form-urlencoded");
  CheckErrorBody(r, 415, "application/json");
  r = c.Post("/dashboard/session", "{\"key\":", "application/json");
  CheckErrorBody(r, 400, "JSON");
  CHECK_FALSE(r->has_header("Set-Cookie"));

  // A read key: 204 and the cookie.
  r = PostJson(c, "/dashboard/session", {{"key", reader}});
  REQUIRE(r);
  CHECK_MESSAGE(r->status == 204, r->body);
  CHECK(r->get_header_value("Set-Cookie") ==
        "pggit_session=" + reader + "; Path=/; HttpOnly; SameSite=Strict");
  CHECK(r->get_header_value("Cache-Control") == "no-store");
  // Over HTTPS behind the trusted proxy: Secure too.
  const httplib::Headers https = {{"X-Forwarded-Proto", "https"}};
  r = c.Post("/dashboard/session", https, json{{"key", reader}}.dump(),
             "application/json");
  REQUIRE(r);
  CHECK(r->status == 204);
  CHECK(r->get_header_value("Set-Cookie") ==
        "pggit_session=" + reader +
            "; Path=/; HttpOnly; SameSite=Strict; Secure");

  const httplib::Headers cookie = Cookie("pggit_session=" + reader);
  // GET with only the cookie: allowed, the stream included.
  CHECK(c.Get("/api/v1/webhooks", cookie)->status == 200);
  CHECK(c.Get("/api/v1/alerts",
              Cookie("theme=dark; pggit_session=" + reader + "; x=1"))
            ->status == 200);
  StreamStart s = OpenStream(d, cookie);
  CHECK(s.status == 200);
  CHECK(absl::StartsWith(s.content_type, "text/event-stream"));
  CHECK_FALSE(s.first.empty());
  CHECK(OpenStream(d, {}).status == 401);

  // Anything but GET with only the cookie: 401, whatever the key's scope.
  const std::string alert =
      R"({"operation_type":"commit","severity":"INFO","message":"m"})";
  r = c.Post("/api/v1/alerts", cookie, alert, "application/json");
  CheckErrorBody(r, 401, "GET requests only");
  r = c.Post("/api/v1/alerts", Cookie("pggit_session=" + writer), alert,
             "application/json");
  CheckErrorBody(r, 401, "GET requests only");
  r = c.Delete("/api/v1/webhooks/1", Cookie("pggit_session=" + writer));
  CheckErrorBody(r, 401, "GET requests only");
  CHECK(d.Sql("SELECT count(*) FROM pggit.alerts") == "0");
  // The same POST with the key as a bearer header goes through.
  r = c.Post("/api/v1/alerts", Bearer(writer), alert, "application/json");
  CHECK_MESSAGE(r->status == 201, r->body);

  // An Authorization header decides when present: a bad one is not
  // rescued by a good cookie.
  httplib::Headers both = cookie;
  both.emplace("Authorization", "Bearer pggit_wrong");
  CHECK(c.Get("/api/v1/webhooks", both)->status == 401);
  // A bad cookie is 401 like a bad key.
  CheckErrorBody(c.Get("/api/v1/webhooks", Cookie("pggit_session=pggit_no")),
                 401, "cookie is not valid");

  // Revoked: the cookie stops working within API_KEY_CACHE_SECONDS.
  REQUIRE(Keys(d, {"revoke", "page"}).code == 0);
  CHECK(harness::WaitForHttp(d.port(), "/api/v1/webhooks", 401,
                             std::chrono::seconds(5), cookie));
  CHECK(OpenStream(d, cookie).status == 401);
  r = PostJson(c, "/dashboard/session", {{"key", reader}});
  CheckErrorBody(r, 401, "not valid");

  // Logout clears the cookie.
  r = c.Delete("/dashboard/session");
  REQUIRE(r);
  CHECK(r->status == 204);
  CHECK(r->get_header_value("Set-Cookie") ==
        "pggit_session=; Path=/; Max-Age=0; HttpOnly; SameSite=Strict");
}

TEST_CASE("Session route: rate-limited like /api, the page is not") {
  Daemon d("dashboard_rate",
           Env({{"RATE_LIMIT_PER_MINUTE", "60"}, {"RATE_LIMIT_BURST", "2"}}));
  httplib::Client c = d.Client();
  for (int i = 0; i < 2; ++i) {
    auto r = PostJson(c, "/dashboard/session", {{"key", "pggit_guess"}});
    REQUIRE(r);
    CHECK(r->status == 401);
    CHECK(r->get_header_value("X-RateLimit-Limit") == "60");
  }
  auto r = PostJson(c, "/dashboard/session", {{"key", "pggit_guess"}});
  if (r->status == 401) {  // a token came back meanwhile: spend it
    r = PostJson(c, "/dashboard/session", {{"key", "pggit_guess"}});
  }
  CheckErrorBody(r, 429, "rate limit");
  CHECK(r->has_header("Retry-After"));
  for (int i = 0; i < 5; ++i) {
    auto page = c.Get("/dashboard");
    REQUIRE(page);
    CHECK(page->status == 200);
    CHECK_FALSE(page->has_header("X-RateLimit-Limit"));
  }
}

// Debian's Chromium, which scripts/install-deps installs (package
// chromium). Missing, the test fails: a browser test never skips.
std::string Chromium() {
  for (const char* name : {"chromium", "chromium-browser"}) {
    std::string path;
    if (harness::Run(std::string("command -v ") + name, &path) == 0) {
      return std::string(absl::StripAsciiWhitespace(path));
    }
  }
  return "";
}

TEST_CASE("Browser: the page renders the daemon's figures, escaped") {
  const std::string chromium = Chromium();
  REQUIRE_MESSAGE(!chromium.empty(),
                  "chromium is not installed (scripts/install-deps installs "
                  "it)");
  // --dump-dom waits for the page's network to go quiet, which an open
  // event stream never does: streams are refused here (503), and the page
  // runs on what it fetched (it then shows the stream "offline").
  Daemon d("dashboard_browser", Env({{"SSE_MAX_STREAMS", "0"}}));
  httplib::Client c = d.Client();
  auto r = PostJson(c, "/api/v1/alerts",
                    {{"operation_type", "commit"},
                     {"severity", "CRITICAL"},
                     {"message", "<b id=\"injected\">bold</b> & co"}});
  REQUIRE(r);
  REQUIRE_MESSAGE(r->status == 201, r->body);

  testing::TempDir dir("pggit-chromium-");
  harness::Process browser(
      {chromium, "--headless", "--no-sandbox", "--disable-gpu",
       "--no-first-run", "--disable-extensions", "--disable-dev-shm-usage",
       "--user-data-dir=" + dir.path(), "--virtual-time-budget=5000",
       "--timeout=20000", "--dump-dom",
       "http://127.0.0.1:" + std::to_string(d.port()) + "/dashboard"});
  int code = browser.Wait(90000);
  const std::string out = browser.Output();
  REQUIRE_MESSAGE(code == 0, out);
  // The recent alerts table holds the message as text, not as markup.
  CHECK_MESSAGE(absl::StrContains(
                    out, "&lt;b id=\"injected\"&gt;bold&lt;/b&gt; &amp; co"),
                out);
  CHECK_FALSE(absl::StrContains(out, "<b id=\"injected\">"));
  CHECK(absl::StrContains(out, "CRITICAL"));
  CHECK(absl::StrContains(out, "<span id=\"live\" class=\"pill bad\">offline"));
  // The summary of GET /api/v1/dashboard was shown (the element's text,
  // not the script that writes it).
  CHECK_MESSAGE(absl::StrContains(
                    out, "<span id=\"generated\" class=\"sys\">summary of "),
                out);
}

}  // namespace
}  // namespace pggitops
