// Standard Webhooks signing (https://www.standardwebhooks.com) and the
// bodies the engine sends (CONTRACT section 10).
#ifndef PGGITOPS_LIBPGGITOPS_DELIVERY_SIGNING_H_
#define PGGITOPS_LIBPGGITOPS_DELIVERY_SIGNING_H_

#include <cstdint>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "absl/strings/string_view.h"
#include "absl/time/time.h"

namespace pggitops::internal {

// The HMAC key of a webhook secret: "whsec_" is removed if present and the
// rest base64-decoded (the Standard Webhooks rule). A secret whose rest is
// not base64 (possible only when written by hand with SQL) is used as raw
// bytes, so the engine still signs; stock verifiers reject such secrets.
std::string SigningKey(absl::string_view secret);

// "v1,<base64 HMAC-SHA256(key, msg_id + "." + timestamp + "." + body)>".
std::string Sign(absl::string_view key, absl::string_view msg_id,
                 int64_t timestamp, absl::string_view body);

// The webhook-id of the delivery of alert `alert_id` to webhook
// `webhook_id`: the same for every attempt, distinct per pair.
std::string MessageId(int64_t alert_id, int64_t webhook_id);

// webhook-id, webhook-timestamp and webhook-signature headers.
std::vector<std::pair<std::string, std::string>> SignatureHeaders(
    absl::string_view key, absl::string_view msg_id, int64_t timestamp,
    absl::string_view body);

// An alert as the database holds it; timestamps already RFC 3339.
struct AlertRecord {
  int64_t id = 0;
  std::string operation_type;
  std::string severity;
  std::string message;
  std::string status;
  std::string context_json = "{}";  // a JSON object
  std::string created_at;
  std::optional<std::string> acknowledged_at;
  std::optional<std::string> resolved_at;
};

// {"type":"alert.created","timestamp":<created_at>,"data":{<alert>}}. A
// context that is not valid JSON is sent as {} (the schema forbids it).
std::string AlertEventBody(const AlertRecord& alert);

// {"type":"webhook.test","timestamp":<now>,"data":{"webhook_id":..,
// "name":..,"message":..}}.
std::string TestEventBody(int64_t webhook_id, absl::string_view name,
                          absl::Time now);

// RFC 3339 UTC with milliseconds: "2024-01-02T03:04:05.678Z".
std::string FormatRfc3339(absl::Time t);

// The first `max_bytes` bytes of `bytes` as valid UTF-8 without NUL: bad
// sequences become U+FFFD and a character that would cross the limit is
// dropped, so the result is at most `max_bytes` long.
std::string SanitizeExcerpt(absl::string_view bytes, size_t max_bytes = 1024);

}  // namespace pggitops::internal

#endif  // PGGITOPS_LIBPGGITOPS_DELIVERY_SIGNING_H_
