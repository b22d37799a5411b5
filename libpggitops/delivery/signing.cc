#include "libpggitops/delivery/signing.h"

#include <openssl/evp.h>
#include <openssl/hmac.h>

#include "absl/strings/escaping.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/strip.h"
#include "nlohmann/json.hpp"
#include "pggitops/text.h"

namespace pggitops::internal {

std::string SigningKey(absl::string_view secret) {
  absl::ConsumePrefix(&secret, "whsec_");
  std::string key;
  if (!secret.empty() && absl::Base64Unescape(secret, &key) && !key.empty()) {
    return key;
  }
  return std::string(secret);
}

std::string Sign(absl::string_view key, absl::string_view msg_id,
                 int64_t timestamp, absl::string_view body) {
  const std::string content = absl::StrCat(msg_id, ".", timestamp, ".", body);
  unsigned char mac[EVP_MAX_MD_SIZE];
  unsigned int mac_len = 0;
  HMAC(EVP_sha256(), key.data(), static_cast<int>(key.size()),
       reinterpret_cast<const unsigned char*>(content.data()), content.size(),
       mac, &mac_len);
  return absl::StrCat("v1,", absl::Base64Escape(absl::string_view(
                                 reinterpret_cast<const char*>(mac), mac_len)));
}

std::string MessageId(int64_t alert_id, int64_t webhook_id) {
  return absl::StrCat("msg_", alert_id, "_", webhook_id);
}

std::vector<std::pair<std::string, std::string>> SignatureHeaders(
    absl::string_view key, absl::string_view msg_id, int64_t timestamp,
    absl::string_view body) {
  return {{"webhook-id", std::string(msg_id)},
          {"webhook-timestamp", absl::StrCat(timestamp)},
          {"webhook-signature", Sign(key, msg_id, timestamp, body)}};
}

namespace {

nlohmann::json OptionalString(const std::optional<std::string>& s) {
  return s.has_value() ? nlohmann::json(*s) : nlohmann::json(nullptr);
}

std::string Dump(const nlohmann::json& j) {
  return j.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
}

}  // namespace

std::string AlertEventBody(const AlertRecord& a) {
  nlohmann::json context = nlohmann::json::parse(a.context_json, nullptr,
                                                 /*allow_exceptions=*/false);
  if (!context.is_object()) context = nlohmann::json::object();
  nlohmann::json data = {
      {"id", a.id},
      {"operation_type", a.operation_type},
      {"severity", a.severity},
      {"message", a.message},
      {"status", a.status},
      {"context", std::move(context)},
      {"created_at", a.created_at},
      {"acknowledged_at", OptionalString(a.acknowledged_at)},
      {"resolved_at", OptionalString(a.resolved_at)},
  };
  nlohmann::json body = {{"type", "alert.created"},
                         {"timestamp", a.created_at},
                         {"data", std::move(data)}};
  return Dump(body);
}

std::string TestEventBody(int64_t webhook_id, absl::string_view name,
                          absl::Time now) {
  nlohmann::json body = {{"type", "webhook.test"},
                         {"timestamp", FormatRfc3339(now)},
                         {"data",
                          {{"webhook_id", webhook_id},
                           {"name", std::string(name)},
                           {"message", "Test event from pggitops"}}}};
  return Dump(body);
}

std::string FormatRfc3339(absl::Time t) {
  return absl::FormatTime("%Y-%m-%dT%H:%M:%E3SZ", t, absl::UTCTimeZone());
}

std::string SanitizeExcerpt(absl::string_view bytes, size_t max_bytes) {
  static constexpr absl::string_view kReplacement = "\xEF\xBF\xBD";
  std::string out;
  size_t i = 0;
  while (i < bytes.size()) {
    size_t n = bytes[i] == '\0' ? 0 : Utf8SequenceLength(bytes, i);
    absl::string_view piece = n == 0 ? kReplacement : bytes.substr(i, n);
    if (n == 0 && bytes[i] == '\0') piece = "";  // drop NUL characters
    if (out.size() + piece.size() > max_bytes) break;
    out.append(piece.data(), piece.size());
    i += n == 0 ? 1 : n;
  }
  return out;
}

}  // namespace pggitops::internal
