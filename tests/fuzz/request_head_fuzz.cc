// libFuzzer target: ScanRequestHead (server/http/request_head.h), the head
// gathering of the HTTP edge. Checks what must hold for any input:
//   - every span of a complete head lies inside the head, hidden lines in
//     order, and the framing rules the parser promises (no body on GET, no
//     Content-Length with chunked, lengths within the limit);
//   - scanning the bytes as they would arrive, in two pieces with the
//     saved search position, gives the same verdict as scanning them whole.
// Seeds: tests/fuzz/request_head/. Run: scripts/fuzz (see docs/TESTING.md).
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string>

#include "server/http/request_head.h"

using pggitops::server::ByteSpan;
using pggitops::server::HeadLimits;
using pggitops::server::HeadResult;
using pggitops::server::HeadVerdict;
using pggitops::server::RequestHead;
using pggitops::server::ScanRequestHead;

namespace {

void Require(bool ok) {
  if (!ok) std::abort();
}

bool Inside(const ByteSpan& s, size_t size) {
  return s.offset <= size && s.size <= size - s.offset;
}

void CheckHead(const std::string& data, const RequestHead& h,
               const HeadLimits& limits) {
  Require(h.size >= 4 && h.size <= data.size());
  Require(h.size <= limits.max_head_bytes);
  Require(data.compare(h.size - 4, 4, "\r\n\r\n") == 0);
  Require(Inside(h.method, h.size) && Inside(h.target, h.size));
  uint32_t last = 0;
  for (const ByteSpan& s : h.hidden) {
    Require(Inside(s, h.size - 2));
    Require(s.offset >= last);
    last = s.offset + s.size;
    Require(data.compare(s.offset + s.size - 2, 2, "\r\n") == 0);
  }
  for (const auto& [name, value] : h.fields) {
    Require(Inside(name, h.size) && Inside(value, h.size));
    Require(name.size > 0);
  }
  const std::string method = std::string(h.method.In(data));
  if (method == "GET" || method == "HEAD" || method == "DELETE" ||
      method == "OPTIONS" || method == "TRACE") {
    Require(!h.has_body());
  }
  if (h.chunked) Require(h.content_length == 0);
  Require(h.content_length <= limits.max_body_bytes);
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* bytes, size_t n) {
  if (n == 0) return 0;
  HeadLimits limits;
  limits.max_head_bytes = 4096;  // small, so the fuzzer reaches the limits
  limits.max_target_bytes = 1024;
  limits.max_fields = 32;
  limits.max_body_bytes = 1 << 16;
  // The first byte chooses where the bytes are split, as they might arrive.
  const size_t split = bytes[0] % n;
  const std::string data(reinterpret_cast<const char*>(bytes) + 1, n - 1);
  size_t scanned = 0;
  HeadResult whole = ScanRequestHead(data, limits, &scanned);
  if (whole.verdict == HeadVerdict::kComplete) {
    CheckHead(data, whole.head, limits);
  } else if (whole.verdict == HeadVerdict::kRejected) {
    Require(whole.status >= 400 && whole.status <= 505);
    Require(!whole.detail.empty());
  }
  size_t pos = 0;
  HeadResult first =
      ScanRequestHead(absl::string_view(data).substr(0, split), limits, &pos);
  if (first.verdict == HeadVerdict::kIncomplete) {
    HeadResult second = ScanRequestHead(data, limits, &pos);
    Require(second.verdict == whole.verdict);
    Require(second.status == whole.status);
    if (second.verdict == HeadVerdict::kComplete) {
      Require(second.head.size == whole.head.size);
      Require(second.head.content_length == whole.head.content_length);
      Require(second.head.chunked == whole.head.chunked);
    }
  }
  return 0;
}
