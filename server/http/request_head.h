// File: request_head.h
//
// The request head as the connection layer gathers it (CONTRACT section 8,
// "The HTTP edge"): where a head ends in the bytes received so far, the
// API_MAX_HEADER_BYTES limit, and a strict check of the request's framing
// before any worker or cpp-httplib sees it. Request smuggling needs two
// parsers that disagree about where a request ends; here one parser decides,
// and what it would not decide the same way as cpp-httplib is refused.
//
// Pure functions, unit-tested (request_head_test.cc) and fuzzed.
#ifndef PGGITOPS_SERVER_HTTP_REQUEST_HEAD_H_
#define PGGITOPS_SERVER_HTTP_REQUEST_HEAD_H_

#include <cstddef>
#include <cstdint>
#include <string>
#include <utility>

#include "absl/container/inlined_vector.h"
#include "absl/strings/string_view.h"

namespace pggitops::server {

// A part of the received bytes.
struct ByteSpan {
  uint32_t offset = 0;
  uint32_t size = 0;
  absl::string_view In(absl::string_view data) const {
    return data.substr(offset, size);
  }
};

struct HeadLimits {
  // API_MAX_HEADER_BYTES: request line plus headers, final CRLF included.
  size_t max_head_bytes = 16384;
  // cpp-httplib answers 414 itself beyond this request-target length.
  size_t max_target_bytes = 8192;
  // Header fields at most (431 beyond).
  size_t max_fields = 128;
  // Content-Length above this is 413 before any body byte is read.
  uint64_t max_body_bytes = 1 << 20;
};

// A well-formed head. Spans point into the bytes given to ScanRequestHead.
struct RequestHead {
  ByteSpan method;
  ByteSpan target;
  int minor_version = 1;        // HTTP/1.minor_version
  size_t size = 0;              // the head's bytes, final CRLF CRLF included
  bool chunked = false;         // Transfer-Encoding: chunked
  uint64_t content_length = 0;  // 0 when chunked
  bool keep_alive = true;       // per version and Connection tokens
  bool expect_continue = false;
  bool accepts_gzip = false;  // Accept-Encoding allows gzip
  // Whole header lines (CRLF included) that cpp-httplib must not see: the
  // edge decides what they mean (Range, If-Range, Accept-Encoding, Expect,
  // Transfer-Encoding, Content-Length of a chunked request, and the
  // REMOTE_ADDR/REMOTE_PORT names cpp-httplib uses for itself).
  absl::InlinedVector<ByteSpan, 4> hidden;
  // Every field as (name, value), value without surrounding whitespace.
  absl::InlinedVector<std::pair<ByteSpan, ByteSpan>, 16> fields;

  bool has_body() const { return chunked || content_length > 0; }
  // The first value of field `name` (case-insensitive), or "".
  absl::string_view Field(absl::string_view data, absl::string_view name) const;
};

enum class HeadVerdict {
  kIncomplete,  // the head has not ended yet and is within the limits
  kComplete,    // a well-formed head: see `head`
  kRejected,    // answer `status` and close the connection
};

struct HeadResult {
  HeadVerdict verdict = HeadVerdict::kIncomplete;
  // For kRejected: 400, 413, 414, 415, 417, 431, 501 or 505, a reason for
  // http_connections_refused_total{reason} ("bad_framing",
  // "header_too_large", ...) and a sentence for the error body.
  int status = 0;
  const char* reason = "";
  std::string detail;
  RequestHead head;
};

// Scans `data`, the bytes received for a request so far (starting with its
// request line). `*scanned` carries how far earlier calls searched for the
// end of the head, so a head arriving a byte at a time is not searched
// again from the start: pass 0 for a new request, then the value left by
// the previous call.
//
// The rules, beyond RFC 9112's grammar: lines end in CRLF (a bare CR or LF
// is 400); methods are GET, HEAD, POST, PUT, PATCH, DELETE, OPTIONS, TRACE
// (others 501); the version is HTTP/1.0 or HTTP/1.1 (HTTP/x.y else 505);
// the target is origin-form or `*`; HTTP/1.1 needs exactly one Host;
// no whitespace before a field's colon and no line folding (400);
// Content-Length values must all agree (400); Transfer-Encoding must be
// exactly `chunked` (501 otherwise, 400 on HTTP/1.0 or together with
// Content-Length); Content-Encoding other than identity is 415; Expect other
// than 100-continue is 417; GET, HEAD, OPTIONS, DELETE and TRACE must carry
// no body (400); Content-Length above max_body_bytes is 413; a request line
// over the limits is 414, a head over them 431.
HeadResult ScanRequestHead(absl::string_view data, const HeadLimits& limits,
                           size_t* scanned);

}  // namespace pggitops::server

#endif  // PGGITOPS_SERVER_HTTP_REQUEST_HEAD_H_
