// HealthStatusName and HealthReport::ToJson (the /health/deep body).
#include <string>
#include <utility>

#include "absl/strings/ascii.h"
#include "absl/time/time.h"
#include "libpggitops/health/health_report_json.h"
#include "nlohmann/json.hpp"
#include "pggitops/health.h"

namespace pggitops {
namespace {

using Json = nlohmann::ordered_json;

constexpr const char* kStatusKey = "status";
constexpr const char* kTimestampKey = "timestamp";
constexpr const char* kFailingKey = "failing";

// {<details members>, "status": ..., "error_code": ..., "error": ...};
// "status" first.
Json CheckEntry(const CheckResult& result, bool with_details) {
  Json entry = Json::object();
  entry[kStatusKey] = result.status;
  if (!result.details_json.empty()) {
    Json details = Json::parse(result.details_json, /*cb=*/nullptr,
                               /*allow_exceptions=*/false);
    if (details.is_object()) {
      for (auto& [key, value] : details.items()) {
        if (key == kStatusKey || key == "error" || key == "error_code") {
          continue;
        }
        entry[key] = std::move(value);
      }
    } else if (with_details) {
      entry["details_error"] = result.details_json;
    }
  }
  if (!result.ok) {
    entry["error_code"] = result.error_code.empty()
                              ? FailureCode(result.status, result.message)
                              : result.error_code;
    if (with_details) {
      entry["error"] = result.message.empty() ? result.status : result.message;
    }
  }
  return entry;
}

bool Has(const std::string& lower, const char* word) {
  return lower.find(word) != std::string::npos;
}

}  // namespace

namespace internal {

bool IsReservedReportKey(const std::string& name) {
  return name == kStatusKey || name == kTimestampKey || name == kFailingKey;
}

}  // namespace internal

const char* HealthStatusName(HealthStatus s) {
  switch (s) {
    case HealthStatus::kHealthy:
      return "healthy";
    case HealthStatus::kDegraded:
      return "degraded";
    case HealthStatus::kUnhealthy:
      return "unhealthy";
  }
  return "unhealthy";
}

std::string FailureCode(const std::string& status_word,
                        const std::string& message) {
  std::string m = absl::AsciiStrToLower(message);
  std::string w = absl::AsciiStrToLower(status_word);
  if (Has(m, "connection refused")) return "CONNECTION_REFUSED";
  if (Has(m, "password authentication failed") ||
      Has(m, "authentication failed") || Has(m, "no pg_hba.conf entry") ||
      Has(m, "noauth") || Has(m, "wrongpass") || Has(m, "invalid password") ||
      Has(m, "invalid username-password") ||
      (Has(m, "role \"") && Has(m, "does not exist"))) {
    return "AUTH_FAILED";
  }
  if (w == "timeout" || Has(m, "timeout") || Has(m, "timed out") ||
      Has(m, "deadline")) {
    return "TIMEOUT";
  }
  if (Has(m, "could not translate host name") ||
      Has(m, "name or service not known") ||
      Has(m, "temporary failure in name resolution") ||
      Has(m, "could not resolve")) {
    return "DNS_FAILED";
  }
  if (Has(m, "permission denied")) return "PERMISSION_DENIED";
  if (Has(m, "does not exist")) return "NOT_FOUND";
  if (w == "unavailable" || w == "disconnected" || Has(m, "unavailable") ||
      Has(m, "could not connect") || Has(m, "connection reset") ||
      Has(m, "server closed the connection")) {
    return "UNAVAILABLE";
  }
  return "CHECK_FAILED";
}

std::string HealthReport::ToJson(bool with_details) const {
  Json out = Json::object();
  out[kStatusKey] = HealthStatusName(status);
  out[kTimestampKey] =
      absl::FormatTime("%Y-%m-%dT%H:%M:%E3SZ", timestamp, absl::UTCTimeZone());
  if (status != HealthStatus::kHealthy) {
    Json failing = Json::array();
    for (const auto& [name, result] : checks) {
      if (!result.ok) failing.push_back(name);
    }
    out[kFailingKey] = std::move(failing);
  }
  for (const auto& [name, result] : checks) {
    // A hand-built report may carry a reserved name; never let it replace
    // the report's own keys.
    if (internal::IsReservedReportKey(name)) continue;
    out[name] = CheckEntry(result, with_details);
  }
  return out.dump(-1, ' ', false, Json::error_handler_t::replace);
}

}  // namespace pggitops
