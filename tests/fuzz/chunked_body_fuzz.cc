// libFuzzer target: ChunkedDecoder (server/http/chunked_body.h), the body
// framing of the HTTP edge. For any input: fed whole, or in pieces of a
// size the first byte chooses, the decoder ends at the same byte with the
// same body or the same error; it never consumes past the end of the body
// and never decodes more than its limit.
// Seeds: tests/fuzz/chunked_body/. Run: scripts/fuzz (see docs/TESTING.md).
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string>

#include "server/http/chunked_body.h"

using pggitops::server::ChunkedDecoder;

namespace {

void Require(bool ok) {
  if (!ok) std::abort();
}

struct Outcome {
  std::string body;
  size_t used = 0;
  bool done = false;
  bool failed = false;
  int status = 0;
};

Outcome Decode(const std::string& in, size_t step) {
  ChunkedDecoder d(/*max_body=*/4096, /*max_line=*/64, /*max_trailers=*/256);
  Outcome o;
  for (size_t off = 0; off < in.size() && !d.done() && !d.failed();) {
    std::string piece = in.substr(off, step);
    size_t k = d.Feed(piece, &o.body);
    Require(k <= piece.size());
    o.used += k;
    off += k;
    if (k < piece.size()) break;
  }
  o.done = d.done();
  o.failed = d.failed();
  o.status = d.failed() ? d.error_status() : 0;
  Require(o.body.size() == d.decoded());
  Require(o.body.size() <= 4096);
  Require(!(o.done && o.failed));
  if (o.failed) Require(o.status == 400 || o.status == 413);
  return o;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* bytes, size_t n) {
  if (n == 0) return 0;
  const size_t step = 1 + bytes[0] % 17;
  const std::string in(reinterpret_cast<const char*>(bytes) + 1, n - 1);
  Outcome whole = Decode(in, in.size() + 1);
  Outcome pieces = Decode(in, step);
  Require(whole.done == pieces.done);
  Require(whole.failed == pieces.failed);
  Require(whole.status == pieces.status);
  if (whole.done) {
    Require(whole.used == pieces.used);
    Require(whole.body == pieces.body);
    // Nothing after the end is consumed, whatever follows.
    Outcome again =
        Decode(in.substr(0, whole.used) + "GET / HTTP/1.1\r\n", step);
    Require(again.done && again.used == whole.used);
  }
  return 0;
}
