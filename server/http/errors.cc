#include "server/http/errors.h"

#include <algorithm>
#include <atomic>
#include <random>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/time/clock.h"
#include "nlohmann/json.hpp"
#include "pggitops/health.h"
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
    case 408:
      return "REQUEST_TIMEOUT";
    case 414:
      return "URI_TOO_LONG";
    case 417:
      return "EXPECTATION_FAILED";
    case 431:
      return "HEADERS_TOO_LARGE";
    case 501:
      return "NOT_IMPLEMENTED";
    case 505:
      return "HTTP_VERSION_NOT_SUPPORTED";
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

namespace {

// At most one line per 10 s: during an outage every request fails the same
// way.
void LogDependencyError(const std::string& message) {
  static std::atomic<int64_t> last{0};
  int64_t now = absl::ToUnixSeconds(absl::Now());
  int64_t seen = last.load(std::memory_order_relaxed);
  if (now - seen < 10 ||
      !last.compare_exchange_strong(seen, now, std::memory_order_relaxed)) {
    return;
  }
  Log::Warning("dependency unavailable", {{"error", message}});
}

}  // namespace

HttpError FromStatus(const absl::Status& status) {
  std::string message(status.message());
  switch (status.code()) {
    case absl::StatusCode::kDeadlineExceeded: {
      HttpError e(503, "POOL_TIMEOUT", message);
      e.headers.emplace_back("Retry-After", "1");
      return e;
    }
    case absl::StatusCode::kUnavailable: {
      // A dependency's raw error names hosts, ports and users: the client
      // gets a stable code, the log the words (CONTRACT section 8).
      const std::string code = FailureCode("unavailable", message);
      LogDependencyError(message);
      HttpError e =
          Unavailable(absl::StrCat("a dependency is unavailable (", code,
                                   "); the daemon's log has the details"));
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

int64_t ParseResourceId(const std::string& text, const std::string& what) {
  int64_t id = 0;
  bool digits = !text.empty() && text.size() <= 19 &&
                std::all_of(text.begin(), text.end(),
                            [](char c) { return c >= '0' && c <= '9'; });
  if (!digits || !absl::SimpleAtoi(text, &id)) {
    std::string shown = text.size() > 40 ? text.substr(0, 40) + "..." : text;
    throw Validation(absl::StrCat("id: must be a positive integer ", what,
                                  " id (got \"", shown, "\")"));
  }
  return id;
}

const char* EdgeErrorCode(int status) {
  return status == 400 ? "BAD_REQUEST" : DefaultErrorCode(status);
}

std::string NewRequestId() {
  thread_local std::mt19937_64 rng(
      std::random_device{}() ^
      static_cast<uint64_t>(absl::GetCurrentTimeNanos()));
  uint64_t a = rng(), b = rng();
  // RFC 4122 version 4 layout: xxxxxxxx-xxxx-4xxx-[89ab]xxx-xxxxxxxxxxxx.
  a = (a & 0xffffffffffff0fffULL) | 0x0000000000004000ULL;
  b = (b & 0x3fffffffffffffffULL) | 0x8000000000000000ULL;
  static constexpr char kHex[] = "0123456789abcdef";
  std::string id(36, '-');
  int pos = 0;
  auto put = [&](uint64_t v, int digits) {
    for (int i = digits - 1; i >= 0; --i)
      id[pos + i] = kHex[(v >> (4 * (digits - 1 - i))) & 0xf];
    pos += digits + 1;
  };
  put(a >> 32, 8);
  put((a >> 16) & 0xffff, 4);
  put(a & 0xffff, 4);
  put(b >> 48, 4);
  put(b & 0xffffffffffffULL, 12);
  return id;
}

const char* ReasonPhrase(int status) {
  switch (status) {
    case 200:
      return "OK";
    case 400:
      return "Bad Request";
    case 408:
      return "Request Timeout";
    case 413:
      return "Payload Too Large";
    case 414:
      return "URI Too Long";
    case 415:
      return "Unsupported Media Type";
    case 417:
      return "Expectation Failed";
    case 431:
      return "Request Header Fields Too Large";
    case 501:
      return "Not Implemented";
    case 503:
      return "Service Unavailable";
    case 505:
      return "HTTP Version Not Supported";
    default:
      return "Error";
  }
}

std::string RawErrorResponse(
    int status, const std::string& error_code, const std::string& detail,
    const std::vector<std::pair<std::string, std::string>>& headers) {
  std::string id = NewRequestId();
  std::string body = ErrorBody(detail, error_code, id);
  std::string out = absl::StrCat(
      "HTTP/1.1 ", status, " ", ReasonPhrase(status),
      "\r\nContent-Type: application/json\r\nContent-Length: ", body.size(),
      "\r\nConnection: close\r\nX-Request-ID: ", id, "\r\n");
  for (const auto& [k, v] : headers) absl::StrAppend(&out, k, ": ", v, "\r\n");
  absl::StrAppend(&out, "\r\n", body);
  return out;
}

}  // namespace pggitops::server
