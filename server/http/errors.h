// The one error body of the HTTP API (CONTRACT sections 5 and 10):
//   {"detail": "...", "error_code": "...", "timestamp": "...", "request_id":
//   "..."}
#ifndef PGGITOPS_SERVER_HTTP_ERRORS_H_
#define PGGITOPS_SERVER_HTTP_ERRORS_H_

#include <cstdint>
#include <stdexcept>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/status.h"

namespace pggitops::server {

// The error code that goes with an HTTP status when a handler names none.
const char* DefaultErrorCode(int status);

// Thrown by handlers to answer with an error; the dispatcher renders it.
class HttpError : public std::runtime_error {
 public:
  HttpError(int status, std::string error_code, std::string detail)
      : std::runtime_error(detail),
        status_(status),
        error_code_(std::move(error_code)) {}

  int status() const { return status_; }
  const std::string& error_code() const { return error_code_; }
  // Extra response headers, e.g. {"Retry-After", "1"}.
  std::vector<std::pair<std::string, std::string>> headers;

 private:
  int status_;
  std::string error_code_;
};

HttpError BadRequest(const std::string& detail);   // 400 MALFORMED_JSON
HttpError NotFound(const std::string& detail);     // 404
HttpError Validation(const std::string& detail);   // 422
HttpError Conflict(const std::string& detail);     // 409
HttpError Unavailable(const std::string& detail);  // 503 SERVICE_UNAVAILABLE

// Maps a library status to the HTTP error operators should see:
// kDeadlineExceeded from the pool → 503 POOL_TIMEOUT with Retry-After,
// kUnavailable → 503, kInvalidArgument → 422, kNotFound → 404,
// kAlreadyExists → 409, anything else → 500 (logged with the status; the
// client sees only "internal error").
HttpError FromStatus(const absl::Status& status);

// The code of an error the HTTP edge answers itself: BAD_REQUEST for 400
// (not MALFORMED_JSON: no JSON was read), else DefaultErrorCode.
const char* EdgeErrorCode(int status);

// The reason phrase of `status` ("OK", "Bad Request", ...; "Error" for the
// ones the daemon does not answer itself).
const char* ReasonPhrase(int status);

// A new request id (UUID version 4).
std::string NewRequestId();

// A whole HTTP/1.1 error response with the one error body and a fresh
// request id, closing the connection: for refusals the edge answers
// before cpp-httplib sees a request (431, 408, 503 at a connection cap...).
std::string RawErrorResponse(
    int status, const std::string& error_code, const std::string& detail,
    const std::vector<std::pair<std::string, std::string>>& headers);

// A resource id from a path: decimal digits that fit a bigint ("0" is
// well-formed; no resource has it, so its lookup is 404). Anything else is
// 422 VALIDATION_ERROR "id: must be a positive integer <what> id".
int64_t ParseResourceId(const std::string& text, const std::string& what);

// Renders the error body.
std::string ErrorBody(const std::string& detail, const std::string& error_code,
                      const std::string& request_id);

}  // namespace pggitops::server

#endif  // PGGITOPS_SERVER_HTTP_ERRORS_H_
