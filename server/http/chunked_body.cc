#include "server/http/chunked_body.h"

#include <algorithm>

#include "absl/strings/str_cat.h"

namespace pggitops::server {
namespace {

int HexValue(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

}  // namespace

void ChunkedDecoder::Fail(int status, std::string why) {
  state_ = State::kFailed;
  error_status_ = status;
  error_ = std::move(why);
}

void ChunkedDecoder::EndSizeLine() {
  if (size_digits_ == 0) {
    Fail(400, "chunked body: a chunk size has no digits");
  } else if (chunk_left_ == 0) {
    state_ = State::kTrailer;  // the last chunk
    trailer_line_ = 0;
  } else if (chunk_left_ > max_body_ - decoded_) {
    Fail(413, absl::StrCat("request body exceeds ", max_body_, " bytes"));
  } else {
    state_ = State::kData;
  }
}

size_t ChunkedDecoder::Feed(absl::string_view in, std::string* out) {
  size_t i = 0;
  while (i < in.size() && state_ != State::kDone && state_ != State::kFailed) {
    const char c = in[i];
    switch (state_) {
      case State::kSize:
      case State::kSizeBws:
      case State::kExtension:
        if (++line_bytes_ > max_line_) {
          Fail(400, "chunked body: chunk-size line too long");
          break;
        }
        if (c == '\r') {
          state_ = State::kSizeLf;
        } else if (state_ == State::kExtension) {
          if (c == '\n' ||
              (static_cast<unsigned char>(c) < 0x20 && c != '\t') ||
              c == 0x7f) {
            Fail(400, "chunked body: malformed chunk extension");
          }
        } else if (c == ';') {
          state_ = State::kExtension;
        } else if (c == ' ' || c == '\t') {
          state_ = State::kSizeBws;  // BWS before ';' or CR only
        } else if (state_ == State::kSizeBws) {
          Fail(400, "chunked body: malformed chunk size");
        } else {
          int v = HexValue(c);
          if (v < 0) {
            Fail(400, "chunked body: malformed chunk size");
          } else if (++size_digits_ > 15) {
            Fail(400, "chunked body: chunk size too large");
          } else {
            chunk_left_ = chunk_left_ * 16 + static_cast<uint64_t>(v);
          }
        }
        ++i;
        break;
      case State::kSizeLf:
        if (c != '\n') {
          Fail(400, "chunked body: CR without LF");
          break;
        }
        ++i;
        EndSizeLine();
        break;
      case State::kData: {
        size_t n =
            static_cast<size_t>(std::min<uint64_t>(chunk_left_, in.size() - i));
        out->append(in.data() + i, n);
        i += n;
        chunk_left_ -= n;
        decoded_ += n;
        if (chunk_left_ == 0) state_ = State::kDataCr;
        break;
      }
      case State::kDataCr:
      case State::kDataLf:
        if (c != (state_ == State::kDataCr ? '\r' : '\n')) {
          Fail(400, "chunked body: chunk data not followed by CRLF");
          break;
        }
        ++i;
        if (state_ == State::kDataLf) {
          state_ = State::kSize;
          size_digits_ = 0;
          line_bytes_ = 0;
          chunk_left_ = 0;
        } else {
          state_ = State::kDataLf;
        }
        break;
      case State::kTrailer:
      case State::kTrailerLf:
        if (++trailer_bytes_ > max_trailers_) {
          Fail(400, "chunked body: trailer section too large");
          break;
        }
        ++i;
        if (state_ == State::kTrailerLf) {
          if (c != '\n') {
            Fail(400, "chunked body: CR without LF in trailers");
          } else if (trailer_line_ == 0) {
            state_ = State::kDone;  // the empty line ends the body
          } else {
            state_ = State::kTrailer;
            trailer_line_ = 0;
          }
        } else if (c == '\r') {
          state_ = State::kTrailerLf;
        } else if (c == '\n') {
          Fail(400, "chunked body: bare LF in trailers");
        } else {
          ++trailer_line_;
        }
        break;
      case State::kDone:
      case State::kFailed:
        break;
    }
  }
  return i;
}

}  // namespace pggitops::server
