// Option validation, Config mapping and small public helpers of
// delivery_queue.h.
#include <string>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "nlohmann/json.hpp"
#include "pggitops/delivery_queue.h"
#include "pggitops/text.h"

namespace pggitops {
namespace {

absl::Status IntRange(absl::string_view field, int value, int lo, int hi) {
  if (value >= lo && value <= hi) return absl::OkStatus();
  return absl::InvalidArgumentError(absl::StrFormat(
      "%s: must be from %d to %d (got %d)", field, lo, hi, value));
}

absl::Status DurationRange(absl::string_view field, absl::Duration value,
                           absl::Duration lo, absl::Duration hi) {
  if (value >= lo && value <= hi) return absl::OkStatus();
  return absl::InvalidArgumentError(absl::StrCat(
      field, ": must be from ", absl::FormatDuration(lo), " to ",
      absl::FormatDuration(hi), " (got ", absl::FormatDuration(value), ")"));
}

}  // namespace

const char* TransportErrorName(TransportError e) {
  switch (e) {
    case TransportError::kNone:
      return "none";
    case TransportError::kTimeout:
      return "timeout";
    case TransportError::kConnect:
      return "connect";
    case TransportError::kDns:
      return "dns";
    case TransportError::kTls:
      return "tls";
    case TransportError::kRefusedTarget:
      return "refused_target";
    case TransportError::kInvalidRequest:
      return "invalid_request";
    case TransportError::kShutdown:
      return "shutdown";
    case TransportError::kOther:
      break;
  }
  return "other";
}

absl::Status AlertInput::Validate() const {
  const size_t op_chars = Utf8CharCount(operation_type);
  if (op_chars == 0 || op_chars > 255) {
    return absl::InvalidArgumentError(absl::StrCat(
        "operation_type: must be 1 to 255 characters (got ", op_chars, ")"));
  }
  if (severity != "INFO" && severity != "WARNING" && severity != "CRITICAL") {
    return absl::InvalidArgumentError(
        absl::StrCat("severity: must be INFO, WARNING or CRITICAL (got \"",
                     severity.substr(0, 32), "\")"));
  }
  if (operation_type.find('\0') != std::string::npos ||
      message.find('\0') != std::string::npos) {
    return absl::InvalidArgumentError(
        "operation_type and message: must not contain NUL characters");
  }
  if (!context_json.empty()) {
    nlohmann::json context = nlohmann::json::parse(context_json, nullptr,
                                                   /*allow_exceptions=*/false);
    if (!context.is_object()) {
      return absl::InvalidArgumentError("context_json: must be a JSON object");
    }
  }
  return absl::OkStatus();
}

absl::Status HttpTransportOptions::Validate() const {
  absl::Status s =
      IntRange("HttpTransportOptions.max_in_flight", max_in_flight, 1, 100000);
  if (s.ok()) {
    s = IntRange("HttpTransportOptions.max_in_flight_per_endpoint",
                 max_in_flight_per_endpoint, 1, 10000);
  }
  return s;
}

absl::Status DeliveryOptions::Validate() const {
  const absl::Duration ms = absl::Milliseconds(1);
  const absl::Status checks[] = {
      IntRange("DeliveryOptions.workers", workers, 1, 64),
      IntRange("DeliveryOptions.max_in_flight", max_in_flight, 1, 100000),
      IntRange("DeliveryOptions.max_in_flight_per_endpoint",
               max_in_flight_per_endpoint, 1, 10000),
      IntRange("DeliveryOptions.batch_size", batch_size, 1, 10000),
      DurationRange("DeliveryOptions.poll_interval", poll_interval, 10 * ms,
                    absl::Hours(1)),
      DurationRange("DeliveryOptions.lease", lease, 100 * ms, absl::Hours(24)),
      IntRange("DeliveryOptions.retention_days", retention_days, 1, 3650),
      DurationRange("DeliveryOptions.disable_after", disable_after, ms,
                    absl::Hours(24 * 3650)),
      IntRange("DeliveryOptions.breaker_threshold", breaker_threshold, 1, 1000),
      DurationRange("DeliveryOptions.breaker_open", breaker_open, 10 * ms,
                    absl::Hours(24)),
      DurationRange("DeliveryOptions.breaker_max_open", breaker_max_open,
                    breaker_open, absl::Hours(24)),
      DurationRange("DeliveryOptions.purge_interval", purge_interval,
                    absl::Seconds(1), absl::Hours(24 * 7)),
      IntRange("DeliveryOptions.purge_batch", purge_batch, 1, 100000),
      DurationRange("DeliveryOptions.metrics_interval", metrics_interval,
                    10 * ms, absl::Hours(1)),
      DurationRange("DeliveryOptions.park_interval", park_interval,
                    absl::Seconds(1), absl::Hours(24 * 7)),
  };
  for (const absl::Status& s : checks) {
    if (!s.ok()) return s;
  }
  return absl::OkStatus();
}

DeliveryOptions DeliveryOptionsFromConfig(const Config& c) {
  DeliveryOptions o;
  o.workers = c.webhook_workers;
  o.max_in_flight = c.webhook_max_in_flight;
  o.max_in_flight_per_endpoint = c.webhook_max_in_flight_per_endpoint;
  o.batch_size = c.webhook_batch_size;
  o.poll_interval = c.webhook_poll_interval;
  o.lease = c.webhook_lease;
  o.retention_days = c.webhook_retention_days;
  o.purge_interval = c.webhook_purge_interval;
  o.disable_after = c.webhook_disable_after;
  o.allow_private_targets = c.webhook_allow_private_targets;
  o.breaker_threshold = c.webhook_breaker_threshold;
  o.breaker_open = c.webhook_breaker_open;
  o.breaker_max_open = c.webhook_breaker_max_open;
  o.dsn = c.database_url;
  return o;
}

}  // namespace pggitops
