// ScanRequestHead: where a head ends, the limits, and the framing rules
// that keep one request from being read as two (CONTRACT section 8).
#include "server/http/request_head.h"

#include <string>

#include "doctest/doctest.h"

namespace pggitops::server {
namespace {

HeadResult Scan(const std::string& data, HeadLimits limits = {}) {
  size_t scanned = 0;
  return ScanRequestHead(data, limits, &scanned);
}

int StatusOf(const std::string& data, HeadLimits limits = {}) {
  HeadResult r = Scan(data, limits);
  return r.verdict == HeadVerdict::kRejected   ? r.status
         : r.verdict == HeadVerdict::kComplete ? 200
                                               : 0;
}

const std::string kHost = "Host: localhost\r\n";

TEST_CASE("RequestHead: a plain GET, its fields and its size") {
  std::string req = "GET /api/v1/webhooks?limit=5 HTTP/1.1\r\n" + kHost +
                    "X-Request-ID: abc\r\n\r\nNEXT";
  HeadResult r = Scan(req);
  REQUIRE(r.verdict == HeadVerdict::kComplete);
  CHECK(r.head.method.In(req) == "GET");
  CHECK(r.head.target.In(req) == "/api/v1/webhooks?limit=5");
  CHECK(r.head.minor_version == 1);
  CHECK(r.head.size == req.size() - 4);
  CHECK(r.head.keep_alive);
  CHECK_FALSE(r.head.has_body());
  CHECK(r.head.Field(req, "x-request-id") == "abc");
  CHECK(r.head.Field(req, "Missing").empty());
}

TEST_CASE("RequestHead: incomplete until the blank line, searched once") {
  std::string req = "GET / HTTP/1.1\r\n" + kHost + "\r\n";
  size_t scanned = 0;
  for (size_t n = 1; n < req.size(); ++n) {
    HeadResult r = ScanRequestHead(req.substr(0, n), {}, &scanned);
    CHECK(r.verdict == HeadVerdict::kIncomplete);
    CHECK(scanned == n);
  }
  CHECK(ScanRequestHead(req, {}, &scanned).verdict == HeadVerdict::kComplete);
}

TEST_CASE("RequestHead: keep-alive per version and Connection") {
  CHECK_FALSE(Scan("GET / HTTP/1.0\r\n\r\n").head.keep_alive);
  CHECK(
      Scan("GET / HTTP/1.0\r\nConnection: Keep-Alive\r\n\r\n").head.keep_alive);
  CHECK_FALSE(Scan("GET / HTTP/1.1\r\n" + kHost + "Connection: Close\r\n\r\n")
                  .head.keep_alive);
  CHECK_FALSE(Scan("GET / HTTP/1.1\r\n" + kHost +
                   "Connection: keep-alive, close\r\n\r\n")
                  .head.keep_alive);
}

TEST_CASE("RequestHead: limits give 414 for the line, 431 for the head") {
  HeadLimits small;
  small.max_head_bytes = 1024;
  small.max_target_bytes = 512;
  // A request line that never ends: 414 as soon as it is too long.
  CHECK(StatusOf("GET /" + std::string(600, 'a'), small) == 414);
  CHECK(StatusOf(
            "GET /" + std::string(600, 'a') + " HTTP/1.1\r\n" + kHost + "\r\n",
            small) == 414);
  // Headers that never end: 431 at the limit, not later.
  std::string many = "GET / HTTP/1.1\r\n" + kHost;
  while (many.size() < 1100) many += "X-A: b\r\n";
  CHECK(StatusOf(many, small) == 431);
  CHECK(StatusOf(many + "\r\n", small) == 431);
  HeadLimits few;
  few.max_fields = 3;
  CHECK(StatusOf("GET / HTTP/1.1\r\n" + kHost + "A: 1\r\nB: 2\r\nC: 3\r\n\r\n",
                 few) == 431);
}

TEST_CASE("RequestHead: request lines that are refused") {
  CHECK(StatusOf("GET  / HTTP/1.1\r\n" + kHost + "\r\n") == 400);
  CHECK(StatusOf("GET /\r\n\r\n") == 400);
  CHECK(StatusOf("GET http://evil/ HTTP/1.1\r\n" + kHost + "\r\n") == 400);
  CHECK(StatusOf("GET /a\x01 HTTP/1.1\r\n" + kHost + "\r\n") == 400);
  CHECK(StatusOf("GET / HTTP/2.0\r\n" + kHost + "\r\n") == 505);
  CHECK(StatusOf("GET / HTTP/1.x\r\n" + kHost + "\r\n") == 400);
  CHECK(StatusOf("BREW / HTTP/1.1\r\n" + kHost + "\r\n") == 501);
  CHECK(StatusOf("CONNECT / HTTP/1.1\r\n" + kHost + "\r\n") == 501);
  CHECK(StatusOf("OPTIONS * HTTP/1.1\r\n" + kHost + "\r\n") == 200);
}

TEST_CASE("RequestHead: header lines that are refused") {
  CHECK(StatusOf("GET / HTTP/1.1\r\n\r\n") == 400);  // no Host
  CHECK(StatusOf("GET / HTTP/1.1\r\n" + kHost + kHost + "\r\n") == 400);
  CHECK(StatusOf("GET / HTTP/1.1\r\n" + kHost + "X-A : b\r\n\r\n") == 400);
  CHECK(StatusOf("GET / HTTP/1.1\r\n" + kHost + "X-A: b\r\n c\r\n\r\n") == 400);
  CHECK(StatusOf("GET / HTTP/1.1\r\n" + kHost + "X-A: b\nX-B: c\r\n\r\n") ==
        400);
  CHECK(StatusOf("GET / HTTP/1.1\r\n" + kHost + "X-A: b\rX\r\n\r\n") == 400);
  CHECK(StatusOf("GET / HTTP/1.1\r\n" + kHost + "X-A: b\x7f\r\n\r\n") == 400);
  CHECK(StatusOf("GET / HTTP/1.1\r\n" + kHost + "NoColon\r\n\r\n") == 400);
  CHECK(StatusOf("GET / HTTP/1.0\r\n\r\n") == 200);  // 1.0 needs no Host
}

TEST_CASE("RequestHead: Content-Length must be one clear number") {
  std::string post = "POST /x HTTP/1.1\r\n" + kHost;
  HeadResult r = Scan(post + "Content-Length: 5\r\n\r\n");
  REQUIRE(r.verdict == HeadVerdict::kComplete);
  CHECK(r.head.content_length == 5);
  CHECK(Scan(post + "Content-Length: 5, 5\r\n\r\n").head.content_length == 5);
  CHECK(Scan(post + "Content-Length: 5\r\nContent-Length: 5\r\n\r\n")
            .head.content_length == 5);
  CHECK(StatusOf(post + "Content-Length: 5\r\nContent-Length: 6\r\n\r\n") ==
        400);
  CHECK(StatusOf(post + "Content-Length: 5, 6\r\n\r\n") == 400);
  CHECK(StatusOf(post + "Content-Length: -1\r\n\r\n") == 400);
  CHECK(StatusOf(post + "Content-Length: +5\r\n\r\n") == 400);
  CHECK(StatusOf(post + "Content-Length: 0x10\r\n\r\n") == 400);
  CHECK(StatusOf(post + "Content-Length: 99999999999999999999\r\n\r\n") == 400);
  CHECK(StatusOf(post + "Content-Length: 1048577\r\n\r\n") == 413);
  CHECK(StatusOf(post + "Content-Length: 1048576\r\n\r\n") == 200);
}

TEST_CASE("RequestHead: Transfer-Encoding is exactly chunked, and alone") {
  std::string post = "POST /x HTTP/1.1\r\n" + kHost;
  HeadResult r = Scan(post + "Transfer-Encoding: chunked\r\n\r\n");
  REQUIRE(r.verdict == HeadVerdict::kComplete);
  CHECK(r.head.chunked);
  CHECK(r.head.has_body());
  REQUIRE(r.head.hidden.size() == 1);  // cpp-httplib never sees it
  CHECK(StatusOf(post + "Transfer-Encoding: Chunked\r\n\r\n") == 200);
  CHECK(StatusOf(post + "Transfer-Encoding: gzip, chunked\r\n\r\n") == 501);
  CHECK(StatusOf(post + "Transfer-Encoding: chunked, chunked\r\n\r\n") == 501);
  CHECK(StatusOf(post + "Transfer-Encoding: chunked\r\nTransfer-Encoding: "
                        "chunked\r\n\r\n") == 501);
  CHECK(StatusOf(post + "Transfer-Encoding: identity\r\n\r\n") == 501);
  CHECK(StatusOf(post +
                 "Transfer-Encoding: chunked\r\nContent-Length: 3\r\n\r\n") ==
        400);
  CHECK(StatusOf("POST /x HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n") ==
        400);
}

TEST_CASE("RequestHead: bodies on methods that take none are refused") {
  for (const char* m : {"GET", "HEAD", "OPTIONS", "DELETE", "TRACE"}) {
    CAPTURE(m);
    CHECK(StatusOf(std::string(m) + " /x HTTP/1.1\r\n" + kHost +
                   "Content-Length: 3\r\n\r\n") == 400);
    CHECK(StatusOf(std::string(m) + " /x HTTP/1.1\r\n" + kHost +
                   "Transfer-Encoding: chunked\r\n\r\n") == 400);
    CHECK(StatusOf(std::string(m) + " /x HTTP/1.1\r\n" + kHost +
                   "Content-Length: 0\r\n\r\n") == 200);
  }
}

TEST_CASE("RequestHead: encodings, Expect, and what is hidden") {
  std::string post = "POST /x HTTP/1.1\r\n" + kHost;
  CHECK(StatusOf(post + "Content-Encoding: gzip\r\n\r\n") == 415);
  CHECK(StatusOf(post + "Content-Encoding: identity\r\n\r\n") == 200);
  CHECK(StatusOf(post + "Expect: something\r\n\r\n") == 417);
  std::string req = "GET / HTTP/1.1\r\n" + kHost +
                    "Range: bytes=0-,0-\r\nAccept-Encoding: br, gzip\r\n"
                    "Expect: 100-continue\r\nREMOTE_ADDR: 1.2.3.4\r\n\r\n";
  HeadResult r = Scan(req);
  REQUIRE(r.verdict == HeadVerdict::kComplete);
  CHECK(r.head.accepts_gzip);
  CHECK(r.head.expect_continue);
  REQUIRE(r.head.hidden.size() == 4);
  CHECK(r.head.hidden[0].In(req) == "Range: bytes=0-,0-\r\n");
  CHECK(r.head.hidden[3].In(req) == "REMOTE_ADDR: 1.2.3.4\r\n");
}

TEST_CASE("RequestHead: Accept-Encoding q-values") {
  auto gzip = [](const std::string& v) {
    return Scan("GET / HTTP/1.1\r\n" + kHost + "Accept-Encoding: " + v +
                "\r\n\r\n")
        .head.accepts_gzip;
  };
  CHECK(gzip("gzip"));
  CHECK(gzip("GZIP;q=0.5"));
  CHECK(gzip("*"));
  CHECK_FALSE(gzip("br"));
  CHECK_FALSE(gzip("gzip;q=0"));
  CHECK_FALSE(gzip("gzip;q=0.0, *"));
  CHECK_FALSE(gzip("*;q=0"));
}

}  // namespace
}  // namespace pggitops::server
