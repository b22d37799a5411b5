// The daemon's HTTP layer over real sockets: routing, error bodies, body
// limits, request ids, metrics labels, keep-alive. Uses a test route table
// so every error path is reachable; the daemon's own routes are covered by
// daemon_test.cc.
#include "server/http/http_server.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <regex>
#include <string>
#include <thread>

#include "absl/time/clock.h"
#include "doctest/doctest.h"
#include "httplib.h"
#include "nlohmann/json.hpp"
#include "server/http/errors.h"
#include "server/http/request_context.h"

namespace pggitops::server {
namespace {

struct TestServer {
  MetricsRegistry metrics;
  LatencyWindow latency;
  Router router;
  std::unique_ptr<HttpServer> server;
  std::thread thread;

  // Calls of the test middleware, which refuses routes that are not public
  // without an Authorization header, as authentication does.
  std::atomic<int> middleware_calls{0};

  explicit TestServer(absl::Duration keepalive = absl::Seconds(2),
                      std::vector<std::string> cors_origins = {}) {
    router.Add({"GET", "/ok", BodyPolicy::kNone, Scope::kPublic,
                [](RequestContext& c) {
                  c.Json(200, {{"ok", true}});
                }});
    router.Add({"POST", "/echo", BodyPolicy::kRequiredJson, Scope::kPublic,
                [](RequestContext& c) { c.Json(200, c.body); }});
    router.Add({"POST", "/nobody", BodyPolicy::kOptionalJson, Scope::kPublic,
                [](RequestContext& c) {
                  c.Json(200, {{"had_body", !c.body.is_null()}});
                }});
    router.Add(
        {"GET", "/throw", BodyPolicy::kNone, Scope::kPublic,
         [](RequestContext&) -> void { throw std::runtime_error("boom"); }});
    router.Add({"GET", "/items/{id}", BodyPolicy::kNone, Scope::kPublic,
                [](RequestContext& c) {
                  c.Json(200, {{"id", c.params["id"]}});
                }});
    auto private_ok = [](RequestContext& c) { c.Json(200, {{"ok", true}}); };
    router.Add(
        {"GET", "/private", BodyPolicy::kNone, Scope::kRead, private_ok});
    router.Add(
        {"DELETE", "/private", BodyPolicy::kNone, Scope::kWrite, private_ok});
    HttpServerOptions o;
    o.host = "127.0.0.1";
    o.port = 0;
    o.workers = 8;
    o.keepalive_timeout = keepalive;
    o.cors_origins = std::move(cors_origins);
    server = std::make_unique<HttpServer>(o, &router, &metrics, &latency);
    server->AddMiddleware([this](RequestContext& c, const Route& r) {
      middleware_calls.fetch_add(1);
      if (r.scope != Scope::kPublic && !c.req.has_header("Authorization")) {
        throw HttpError(401, "UNAUTHORIZED", "an API key is required");
      }
    });
    REQUIRE(server->Bind().ok());
    thread = std::thread([this] { server->Serve(); });
  }
  ~TestServer() {
    server->Shutdown();
    thread.join();
  }
  httplib::Client Client() {
    httplib::Client c("127.0.0.1", server->port());
    c.set_read_timeout(10, 0);
    return c;
  }
};

nlohmann::json CheckErrorBody(const httplib::Result& r, int status,
                              const std::string& code) {
  REQUIRE(r);
  CHECK(r->status == status);
  nlohmann::json j = nlohmann::json::parse(r->body);
  CHECK(j["error_code"] == code);
  CHECK(j["detail"].is_string());
  CHECK_FALSE(j["detail"].get<std::string>().empty());
  CHECK(j["timestamp"].get<std::string>().back() == 'Z');
  CHECK(j["request_id"] == r->get_header_value("X-Request-ID"));
  CHECK(r->get_header_value("Content-Type") == "application/json");
  return j;
}

// Sends raw bytes and returns what the server answered before `timeout`.
std::string RawExchange(int port, const std::string& request,
                        double* seconds = nullptr) {
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(static_cast<uint16_t>(port));
  inet_pton(AF_INET, "127.0.0.1", &addr.sin_addr);
  REQUIRE(connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) == 0);
  timeval tv{5, 0};
  setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
  auto start = std::chrono::steady_clock::now();
  REQUIRE(send(fd, request.data(), request.size(), 0) ==
          static_cast<ssize_t>(request.size()));
  std::string out;
  char buf[4096];
  for (;;) {
    ssize_t n = recv(fd, buf, sizeof(buf), 0);
    if (n <= 0) break;
    out.append(buf, static_cast<size_t>(n));
    if (out.find("\r\n\r\n") != std::string::npos &&
        out.find("\"had_body\"") != std::string::npos) {
      break;
    }
  }
  if (seconds != nullptr) {
    *seconds =
        std::chrono::duration<double>(std::chrono::steady_clock::now() - start)
            .count();
  }
  close(fd);
  return out;
}

TEST_CASE("HTTP: request ids are generated, echoed, or replaced when invalid") {
  TestServer s;
  auto c = s.Client();
  auto r = c.Get("/ok");
  REQUIRE(r);
  CHECK(r->status == 200);
  std::regex uuid(
      "[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}");
  CHECK(std::regex_match(r->get_header_value("X-Request-ID"), uuid));
  CHECK(std::regex_match(r->get_header_value("X-Response-Time"),
                         std::regex("[0-9]+\\.[0-9]{3}ms")));
  r = c.Get("/ok", {{"X-Request-ID", "trace-abc_123"}});
  REQUIRE(r);
  CHECK(r->get_header_value("X-Request-ID") == "trace-abc_123");
  r = c.Get("/ok", {{"X-Request-ID", "has spaces\"and quotes"}});
  REQUIRE(r);
  CHECK(std::regex_match(r->get_header_value("X-Request-ID"), uuid));
}

TEST_CASE("HTTP: 404 and 405 use the error body; 405 says what is allowed") {
  TestServer s;
  auto c = s.Client();
  CheckErrorBody(c.Get("/nope"), 404, "RESOURCE_NOT_FOUND");
  auto r = c.Put("/ok", "{}", "application/json");
  CheckErrorBody(r, 405, "METHOD_NOT_ALLOWED");
  CHECK(r->get_header_value("Allow") == "GET");
  auto j = CheckErrorBody(c.Get("/echo"), 405, "METHOD_NOT_ALLOWED");
  CHECK(j["detail"].get<std::string>().find("POST") != std::string::npos);
}

TEST_CASE("HTTP: bodies over 1 MiB get 413, exactly 1 MiB is accepted") {
  TestServer s;
  auto c = s.Client();
  std::string prefix = "{\"a\":\"", suffix = "\"}";
  std::string fits =
      prefix + std::string((1 << 20) - prefix.size() - suffix.size(), 'x') +
      suffix;
  REQUIRE(fits.size() == (1u << 20));
  auto r = c.Post("/echo", fits, "application/json");
  REQUIRE(r);
  CHECK(r->status == 200);
  // One byte over: answered from the headers alone, before any body byte
  // is read (a client still sending its body may see the connection reset
  // instead of this answer, so the test sends only the headers).
  std::string answer = RawExchange(
      s.server->port(),
      "POST /echo HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
      "Content-Length: " +
          std::to_string(fits.size() + 1) + "\r\n\r\n");
  CHECK(answer.rfind("HTTP/1.1 413 ", 0) == 0);
  CHECK(answer.find("\"error_code\":\"PAYLOAD_TOO_LARGE\"") !=
        std::string::npos);
  CHECK(answer.find("Connection: close") != std::string::npos);
  // The server keeps serving afterwards.
  r = s.Client().Get("/ok");
  REQUIRE(r);
  CHECK(r->status == 200);
}

TEST_CASE("HTTP: wrong content type 415, malformed or non-object JSON 400") {
  TestServer s;
  auto c = s.Client();
  CheckErrorBody(c.Post("/echo", "a=1", "application/x-www-form-urlencoded"),
                 415, "UNSUPPORTED_MEDIA_TYPE");
  CheckErrorBody(c.Post("/echo", "{\"a\":", "application/json"), 400,
                 "MALFORMED_JSON");
  CheckErrorBody(c.Post("/echo", "[1,2]", "application/json"), 400,
                 "MALFORMED_JSON");
  CheckErrorBody(c.Post("/echo", "", "application/json"), 400,
                 "MALFORMED_JSON");
  std::string deep = std::string(100000, '[') + std::string(100000, ']');
  CheckErrorBody(c.Post("/echo", "{\"a\":" + deep + "}", "application/json"),
                 400, "MALFORMED_JSON");
  auto r = c.Post("/echo", "{\"x\": [1, {\"y\": \"z\"}]}",
                  "application/json; charset=utf-8");
  REQUIRE(r);
  CHECK(r->status == 200);
  CHECK(nlohmann::json::parse(r->body)["x"][1]["y"] == "z");
}

TEST_CASE("HTTP: a throwing handler answers 500 and the server keeps running") {
  TestServer s;
  auto c = s.Client();
  CheckErrorBody(c.Get("/throw"), 500, "INTERNAL_ERROR");
  auto r = c.Get("/ok");
  REQUIRE(r);
  CHECK(r->status == 200);
}

TEST_CASE("HTTP: POST without Content-Length or body is answered at once") {
  TestServer s;
  double seconds = 0;
  std::string out =
      RawExchange(s.server->port(),
                  "POST /nobody HTTP/1.1\r\nHost: localhost\r\n\r\n", &seconds);
  CHECK(out.rfind("HTTP/1.1 200", 0) == 0);
  CHECK(out.find("\"had_body\":false") != std::string::npos);
  CHECK(seconds < 1.0);  // cpp-httplib alone would wait 5 s and answer 400
}

TEST_CASE("HTTP: metrics label routes by template, never by raw path") {
  TestServer s;
  auto c = s.Client();
  REQUIRE(c.Get("/items/123"));
  REQUIRE(c.Get("/items/456"));
  REQUIRE(c.Get("/no/such/thing/789"));
  std::string text = s.metrics.Serialize();
  CHECK(text.find("route=\"/items/{id}\"") != std::string::npos);
  CHECK(text.find("/items/123") == std::string::npos);
  CHECK(text.find("789") == std::string::npos);
  CHECK(text.find("http_requests_total{method=\"GET\",route=\"/items/{id}\","
                  "status=\"200\"} 2") != std::string::npos);
  CHECK(text.find("route=\"unmatched\",status=\"404\"") != std::string::npos);
  CHECK(s.latency.Summarize().count >= 3);
}

TEST_CASE("HTTP: idle keep-alive connections are closed after the timeout") {
  TestServer s(absl::Seconds(1));
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(static_cast<uint16_t>(s.server->port()));
  inet_pton(AF_INET, "127.0.0.1", &addr.sin_addr);
  REQUIRE(connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) == 0);
  std::string req = "GET /ok HTTP/1.1\r\nHost: x\r\n\r\n";
  REQUIRE(send(fd, req.data(), req.size(), 0) > 0);
  timeval tv{15, 0};
  setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
  char buf[4096];
  ssize_t n = recv(fd, buf, sizeof(buf), 0);
  REQUIRE(n > 0);
  auto start = std::chrono::steady_clock::now();
  n = recv(fd, buf, sizeof(buf), 0);  // the server closes the idle connection
  double waited =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - start)
          .count();
  CHECK(n == 0);
  CHECK(waited < 10.0);
  close(fd);
}

constexpr char kExposed[] =
    "X-Request-ID, X-Response-Time, X-RateLimit-Limit, X-RateLimit-Remaining, "
    "X-RateLimit-Reset, Retry-After, Location";

// Checks the CORS headers of a response to a request from `origin`:
// allowed (`allow_origin` is the Access-Control-Allow-Origin expected) or
// not (`allow_origin` empty).
void CheckCors(const httplib::Result& r, const std::string& allow_origin) {
  REQUIRE(r);
  CHECK(r->get_header_value("Vary") == "Origin");
  CHECK(r->get_header_value("Access-Control-Allow-Origin") == allow_origin);
  CHECK(r->get_header_value("Access-Control-Expose-Headers") ==
        (allow_origin.empty() ? "" : kExposed));
}

httplib::Headers Preflight(const std::string& origin,
                           const std::string& method = "GET") {
  return {{"Origin", origin},
          {"Access-Control-Request-Method", method},
          {"Access-Control-Request-Headers", "authorization"}};
}

TEST_CASE("CORS: without CORS_ORIGINS no CORS header is sent") {
  TestServer s;
  auto c = s.Client();
  httplib::Headers from = {{"Origin", "https://a.example"}};
  for (const char* path : {"/ok", "/nope", "/private"}) {
    CAPTURE(path);
    auto r = c.Get(path, from);
    REQUIRE(r);
    for (const char* h :
         {"Vary", "Access-Control-Allow-Origin",
          "Access-Control-Expose-Headers", "Access-Control-Allow-Methods"}) {
      CAPTURE(h);
      CHECK_FALSE(r->has_header(h));
    }
  }
  // A preflight is a plain OPTIONS: 405 as before, no CORS header.
  auto r = c.Options("/ok", Preflight("https://a.example"));
  CheckErrorBody(r, 405, "METHOD_NOT_ALLOWED");
  CHECK_FALSE(r->has_header("Access-Control-Allow-Origin"));
  CHECK_FALSE(r->has_header("Access-Control-Allow-Methods"));
}

TEST_CASE("CORS: an allowed origin gets the headers on every response") {
  TestServer s(absl::Seconds(2), {"https://a.example", "http://b.example:81"});
  auto c = s.Client();
  for (const char* origin : {"https://a.example", "http://b.example:81"}) {
    CAPTURE(origin);
    httplib::Headers from = {{"Origin", origin}};
    auto r = c.Get("/ok", from);
    CheckCors(r, origin);
    CHECK(r->status == 200);
    // Errors too: 404, 405, 401 from a middleware, 400, 500.
    CheckCors(c.Get("/nope", from), origin);
    CheckErrorBody(c.Get("/nope", from), 404, "RESOURCE_NOT_FOUND");
    CheckCors(c.Put("/ok", from, "{}", "application/json"), origin);
    CheckCors(c.Get("/private", from), origin);
    CheckErrorBody(c.Get("/private", from), 401, "UNAUTHORIZED");
    CheckCors(c.Post("/echo", from, "{", "application/json"), origin);
    CheckCors(c.Get("/throw", from), origin);
    CheckErrorBody(c.Get("/throw", from), 500, "INTERNAL_ERROR");
  }
}

TEST_CASE("CORS: other origins get no Allow-Origin; * allows any") {
  TestServer s(absl::Seconds(2), {"https://a.example"});
  auto c = s.Client();
  // Not in the list (exact match: no prefix, scheme or port games).
  for (const char* origin :
       {"https://evil.example", "http://a.example", "https://a.example:443",
        "https://a.example.evil.example", "null"}) {
    CAPTURE(origin);
    auto r = c.Get("/ok", {{"Origin", origin}});
    CheckCors(r, "");
    CHECK(r->status == 200);  // the browser, not the server, blocks the page
  }
  CheckCors(c.Get("/ok"), "");  // no Origin: not a CORS request

  TestServer any(absl::Seconds(2), {"https://a.example", "*"});
  auto a = any.Client();
  CheckCors(a.Get("/ok", {{"Origin", "https://elsewhere.example"}}), "*");
  CheckCors(a.Get("/nope", {{"Origin", "https://a.example"}}), "*");
  CheckCors(a.Get("/ok"), "");
}

TEST_CASE("CORS: a preflight gets the path's methods before any middleware") {
  TestServer s(absl::Seconds(2), {"https://a.example"});
  auto c = s.Client();
  auto r = c.Options("/private", Preflight("https://a.example", "DELETE"));
  REQUIRE(r);
  CHECK(r->status == 204);
  CHECK(r->body.empty());
  CheckCors(r, "https://a.example");
  CHECK(r->get_header_value("Access-Control-Allow-Methods") == "DELETE, GET");
  CHECK(r->get_header_value("Access-Control-Allow-Headers") ==
        "Authorization, Content-Type, X-Request-ID");
  CHECK(r->get_header_value("Access-Control-Max-Age") == "600");
  CHECK_FALSE(r->get_header_value("X-Request-ID").empty());
  // No authentication was asked for: the middleware never ran.
  CHECK(s.middleware_calls.load() == 0);
  r = c.Options("/items/7", Preflight("https://a.example", "GET"));
  REQUIRE(r);
  CHECK(r->status == 204);
  CHECK(r->get_header_value("Access-Control-Allow-Methods") == "GET");
  r = c.Options("/echo", Preflight("https://a.example", "POST"));
  REQUIRE(r);
  CHECK(r->get_header_value("Access-Control-Allow-Methods") == "POST");
  // The real request then goes through the middleware as usual.
  r = c.Delete("/private", {{"Origin", "https://a.example"},
                            {"Authorization", "Bearer k"}});
  REQUIRE(r);
  CHECK(r->status == 200);
  CHECK(s.middleware_calls.load() == 1);
  // Preflights are counted under their route template.
  CHECK(s.metrics.Serialize().find(
            "http_requests_total{method=\"OPTIONS\",route=\"/items/{id}\","
            "status=\"204\"} 1") != std::string::npos);
}

TEST_CASE("CORS: preflight from another origin 403, unknown path 404") {
  TestServer s(absl::Seconds(2), {"https://a.example"});
  auto c = s.Client();
  auto r = c.Options("/private", Preflight("https://evil.example", "DELETE"));
  auto j = CheckErrorBody(r, 403, "FORBIDDEN");
  CHECK(j["detail"].get<std::string>().find("https://evil.example") !=
        std::string::npos);
  CheckCors(r, "");
  CHECK_FALSE(r->has_header("Access-Control-Allow-Methods"));
  r = c.Options("/nope", Preflight("https://a.example"));
  CheckErrorBody(r, 404, "RESOURCE_NOT_FOUND");
  CheckCors(r, "https://a.example");
  CHECK_FALSE(r->has_header("Access-Control-Allow-Methods"));
  // OPTIONS that is not a preflight keeps its 405.
  r = c.Options("/ok", {{"Origin", "https://a.example"}});
  CheckErrorBody(r, 405, "METHOD_NOT_ALLOWED");
  CHECK(r->get_header_value("Allow") == "GET");
  CheckCors(r, "https://a.example");
  CheckErrorBody(c.Options("/ok"), 405, "METHOD_NOT_ALLOWED");
  CHECK(s.middleware_calls.load() == 0);
}

}  // namespace
}  // namespace pggitops::server
