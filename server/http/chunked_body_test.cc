// ChunkedDecoder: decoding, where the body ends, and the limits.
#include "server/http/chunked_body.h"

#include <string>

#include "doctest/doctest.h"

namespace pggitops::server {
namespace {

struct Decoded {
  std::string body;
  size_t used = 0;
  bool done = false;
  int error = 0;
};

// Feeds `in` in pieces of `step` bytes, as a network would deliver it.
Decoded Decode(const std::string& in, size_t step = 1 << 20,
               uint64_t max_body = 1 << 20) {
  ChunkedDecoder d(max_body);
  Decoded r;
  for (size_t off = 0; off < in.size() && !d.done() && !d.failed();) {
    std::string piece = in.substr(off, std::min(step, in.size() - off));
    size_t n = d.Feed(piece, &r.body);
    r.used += n;
    off += n;
    if (n < piece.size()) break;
  }
  r.done = d.done();
  r.error = d.failed() ? d.error_status() : 0;
  return r;
}

TEST_CASE("Chunked: decodes, in one piece or byte by byte") {
  const std::string body = "5\r\nhello\r\n7;ext=1\r\n, world\r\n0\r\n\r\n";
  for (size_t step : {size_t{1}, size_t{3}, size_t{1000}}) {
    CAPTURE(step);
    Decoded r = Decode(body + "GET /next", step);
    CHECK(r.done);
    CHECK(r.body == "hello, world");
    CHECK(r.used == body.size());  // stops where the next request begins
  }
}

TEST_CASE("Chunked: hex sizes, whitespace before extensions, trailers") {
  CHECK(Decode("A\r\n0123456789\r\n0\r\n\r\n").body == "0123456789");
  CHECK(Decode("a \r\n0123456789\r\n0\r\n\r\n").body == "0123456789");
  CHECK(Decode("1 ;x\r\nZ\r\n0\r\n\r\n").body == "Z");
  Decoded t = Decode("1\r\nZ\r\n0\r\nX-Trailer: 1\r\nY: 2\r\n\r\n");
  CHECK(t.done);
  CHECK(t.body == "Z");
}

TEST_CASE("Chunked: malformed framing is 400") {
  CHECK(Decode("\r\nZ\r\n0\r\n\r\n").error == 400);   // no digits
  CHECK(Decode("G\r\nZ\r\n0\r\n\r\n").error == 400);  // not hex
  CHECK(Decode("-1\r\nZ\r\n0\r\n\r\n").error == 400);
  CHECK(Decode("1 2\r\nZ\r\n0\r\n\r\n").error == 400);   // junk after BWS
  CHECK(Decode("1\nZ\r\n0\r\n\r\n").error == 400);       // bare LF
  CHECK(Decode("1\rZ\r\n0\r\n\r\n").error == 400);       // CR without LF
  CHECK(Decode("1\r\nZZ\r\n0\r\n\r\n").error == 400);    // data overruns
  CHECK(Decode("1\r\nZ\r\n0\r\nX\n\r\n").error == 400);  // bare LF trailer
  CHECK(Decode("1000000000000000\r\n").error == 400);    // 16 hex digits
  CHECK(Decode(std::string("1;") + std::string(2000, 'e') + "\r\n").error ==
        400);
}

TEST_CASE("Chunked: the decoded size counts against the limit as it comes") {
  // Announced sizes are refused before their data arrives.
  CHECK(Decode("101\r\n", 1, 256).error == 413);
  CHECK(Decode("80\r\n" + std::string(128, 'a') + "\r\n81\r\n", 1, 256).error ==
        413);
  Decoded ok =
      Decode("100\r\n" + std::string(256, 'a') + "\r\n0\r\n\r\n", 7, 256);
  CHECK(ok.done);
  CHECK(ok.body.size() == 256);
}

TEST_CASE("Chunked: nothing is consumed after the end or a failure") {
  ChunkedDecoder d;
  std::string out;
  CHECK(d.Feed("0\r\n\r\nrest", &out) == 5);
  CHECK(d.done());
  CHECK(d.Feed("more", &out) == 0);
  ChunkedDecoder bad;
  bad.Feed("x", &out);
  CHECK(bad.failed());
  CHECK(bad.Feed("1\r\n", &out) == 0);
}

}  // namespace
}  // namespace pggitops::server
