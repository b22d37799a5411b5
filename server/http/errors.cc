#include "server/http/errors.h"

#include "absl/time/clock.h"
#include "nlohmann/json.hpp"
#include "pggitops/log.h"
#include "server/http/json_util.h"

namespace pggitops::server {

const char* DefaultErrorCode(int status) {
  switch (status) {
    case 400:
      return "MALFORMED_JSON";
    case 401:
      return "UNAUTHORIZED";
    case 403:
      return "FORBIDDEN";
    case 404:
      return "RESOURCE_NOT_FOUND";
    case 405:
      return "METHOD_NOT_ALLOWED";
    case 409:
      return "CONFLICT";
    case 413:
      return "PAYLOAD_TOO_LARGE";
    case 415:
      return "UNSUPPORTED_MEDIA_TYPE";
    case 422:
      return "VALIDATION_ERROR";
    case 429:
      return "RATE_LIMITED";
    case 503:
      return "SERVICE_UNAVAILABLE";
    default:
      return status >= 500 ? "INTERNAL_ERROR" : "BAD_REQUEST";
  }
}

HttpError BadRequest(const std::string& detail) {
  return HttpError(400, "MALFORMED_JSON", detail);
}
HttpError NotFound(const std::string& detail) {
  return HttpError(404, "RESOURCE_NOT_FOUND", detail);
}
HttpError Validation(const std::string& detail) {
  return HttpError(422, "VALIDATION_ERROR", detail);
}
HttpError Conflict(const std::string& detail) {
  return HttpError(409, "CONFLICT", detail);
}
HttpError Unavailable(const std::string& detail) {
  return HttpError(503, "SERVICE_UNAVAILABLE", detail);
}

HttpError FromStatus(const absl::Status& status) {
  std::string message(status.message());
  switch (status.code()) {
    case absl::StatusCode::kDeadlineExceeded: {
      HttpError e(503, "POOL_TIMEOUT", message);
      e.headers.emplace_back("Retry-After", "1");
      return e;
    }
    case absl::StatusCode::kUnavailable: {
      HttpError e = Unavailable(message);
      e.headers.emplace_back("Retry-After", "5");
      return e;
    }
    case absl::StatusCode::kInvalidArgument:
      return Validation(message);
    case absl::StatusCode::kNotFound:
      return NotFound(message);
    case absl::StatusCode::kAlreadyExists:
      return Conflict(message);
    default:
      // The client sees no internals; the log keeps what happened.
      Log::Error("internal error answered 500",
                 {{"status", status.ToString()}});
      return HttpError(500, "INTERNAL_ERROR", "internal error");
  }
}

std::string ErrorBody(const std::string& detail, const std::string& error_code,
                      const std::string& request_id) {
  nlohmann::json body = {{"detail", detail},
                         {"error_code", error_code},
                         {"timestamp", Rfc3339(absl::Now())},
                         {"request_id", request_id}};
  return DumpJson(body);
}

}  // namespace pggitops::server
