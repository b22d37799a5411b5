// File: chunked_body.h
//
// The body framing of `Transfer-Encoding: chunked` (RFC 9112 section 7.1),
// decoded incrementally as bytes arrive, so the connection layer knows where
// a chunked request ends and counts its decoded bytes against the body limit
// as they come (CONTRACT section 8): a chunked body can neither grow past
// the limit nor make anything read past its end. cpp-httplib is then handed
// the decoded body with a Content-Length, and never parses chunks itself.
//
// Not thread-safe; one decoder per request. Unit-tested and fuzzed.
#ifndef PGGITOPS_SERVER_HTTP_CHUNKED_BODY_H_
#define PGGITOPS_SERVER_HTTP_CHUNKED_BODY_H_

#include <cstddef>
#include <cstdint>
#include <string>

#include "absl/strings/string_view.h"

namespace pggitops::server {

class ChunkedDecoder {
 public:
  // `max_body` bounds the decoded body (413 beyond); `max_line` a chunk-size
  // line with its extensions; `max_trailers` the trailer section.
  explicit ChunkedDecoder(uint64_t max_body = 1 << 20, size_t max_line = 1024,
                          size_t max_trailers = 16384)
      : max_body_(max_body), max_line_(max_line), max_trailers_(max_trailers) {}

  // Decodes from `in`, appending chunk data to *out; returns how many bytes
  // of `in` it consumed. Stops at the end of the body (done()): bytes after
  // it belong to the next request. Consumes nothing once done or failed.
  size_t Feed(absl::string_view in, std::string* out);

  bool done() const { return state_ == State::kDone; }
  bool failed() const { return state_ == State::kFailed; }
  // For a failed body: 413 (too large) or 400 (malformed), and why.
  int error_status() const { return error_status_; }
  const std::string& error() const { return error_; }
  // Decoded bytes so far.
  uint64_t decoded() const { return decoded_; }

 private:
  enum class State {
    kSize,       // chunk-size hex digits
    kSizeBws,    // whitespace after the digits, before ';' or CR
    kExtension,  // after ';' up to CR
    kSizeLf,     // CR seen after the size line
    kData,       // chunk data
    kDataCr,     // CR expected after data
    kDataLf,     // LF expected after data
    kTrailer,    // trailer lines, until an empty one
    kTrailerLf,  // CR seen in the trailer section
    kDone,
    kFailed,
  };
  void Fail(int status, std::string why);
  // Ends the size line: a chunk follows, or the trailer section.
  void EndSizeLine();

  uint64_t max_body_;
  size_t max_line_;
  size_t max_trailers_;
  State state_ = State::kSize;
  uint64_t chunk_left_ = 0;  // data bytes left in this chunk, or its size
  size_t size_digits_ = 0;
  size_t line_bytes_ = 0;     // bytes of the current size line
  size_t trailer_bytes_ = 0;  // bytes of the trailer section
  size_t trailer_line_ = 0;   // bytes of the current trailer line
  uint64_t decoded_ = 0;
  int error_status_ = 0;
  std::string error_;
};

}  // namespace pggitops::server

#endif  // PGGITOPS_SERVER_HTTP_CHUNKED_BODY_H_
