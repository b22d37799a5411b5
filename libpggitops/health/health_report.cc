// HealthStatusName and HealthReport::ToJson (the /health/deep body).
#include <string>
#include <utility>

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

// {<details members>, "status": ..., "error": ...}; "status" first.
Json CheckEntry(const CheckResult& result) {
  Json entry = Json::object();
  entry[kStatusKey] = result.status;
  if (!result.details_json.empty()) {
    Json details = Json::parse(result.details_json, /*cb=*/nullptr,
                               /*allow_exceptions=*/false);
    if (details.is_object()) {
      for (auto& [key, value] : details.items()) {
        if (key == kStatusKey || key == "error") continue;
        entry[key] = std::move(value);
      }
    } else {
      entry["details_error"] = result.details_json;
    }
  }
  if (!result.ok) {
    entry["error"] = result.message.empty() ? result.status : result.message;
  }
  return entry;
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

std::string HealthReport::ToJson() const {
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
    out[name] = CheckEntry(result);
  }
  return out.dump(-1, ' ', false, Json::error_handler_t::replace);
}

}  // namespace pggitops
