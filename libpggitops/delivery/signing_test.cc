// Standard Webhooks signing against the specification's published vector,
// the webhook-id rule, the bodies and response excerpts.
#include "libpggitops/delivery/signing.h"

#include <string>

#include "doctest/doctest.h"
#include "nlohmann/json.hpp"

namespace pggitops::internal {
namespace {

TEST_CASE("Signing: the Standard Webhooks test vector") {
  // From the Standard Webhooks specification and reference libraries.
  const std::string key = SigningKey("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw");
  CHECK(key.size() == 24);
  CHECK(Sign(key, "msg_p5jXN8AQM9LWM0D4loKWxJek", 1614265330,
             R"({"test": 2432232314})") ==
        "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=");
  // The prefix is optional, as in the reference implementations.
  CHECK(SigningKey("MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw") == key);
}

TEST_CASE("Signing: any change to id, timestamp, body or key changes it") {
  const std::string key = SigningKey("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw");
  const std::string base = Sign(key, "msg_1_2", 100, "{}");
  CHECK(Sign(key, "msg_1_3", 100, "{}") != base);
  CHECK(Sign(key, "msg_1_2", 101, "{}") != base);
  CHECK(Sign(key, "msg_1_2", 100, "{ }") != base);
  CHECK(Sign(SigningKey("whsec_AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"), "msg_1_2",
             100, "{}") != base);
}

TEST_CASE("Signing: a secret that is not base64 is used as raw bytes") {
  CHECK(SigningKey("whsec_x") == "x");
  CHECK(SigningKey("whsec_not base64!") == "not base64!");
  CHECK(Sign("x", "m", 1, "b").rfind("v1,", 0) == 0);
}

TEST_CASE("Signing: webhook-id is stable per (alert, webhook) and distinct") {
  CHECK(MessageId(12, 3) == "msg_12_3");
  CHECK(MessageId(12, 3) == MessageId(12, 3));
  CHECK(MessageId(1, 23) != MessageId(12, 3));
  const auto headers = SignatureHeaders("k", "msg_1_2", 1700000000, "{}");
  REQUIRE(headers.size() == 3);
  CHECK(headers[0] ==
        std::make_pair(std::string("webhook-id"), std::string("msg_1_2")));
  CHECK(headers[1].second == "1700000000");
  CHECK(headers[2].second == Sign("k", "msg_1_2", 1700000000, "{}"));
}

TEST_CASE("Body: alert.created carries the alert") {
  AlertRecord a;
  a.id = 42;
  a.operation_type = "commit";
  a.severity = "CRITICAL";
  a.message = "disk \"full\"";
  a.status = "pending";
  a.context_json = R"({"repo": "main", "n": 3})";
  a.created_at = "2024-01-02T03:04:05.678Z";
  const nlohmann::json j = nlohmann::json::parse(AlertEventBody(a));
  CHECK(j["type"] == "alert.created");
  CHECK(j["timestamp"] == "2024-01-02T03:04:05.678Z");
  CHECK(j["data"]["id"] == 42);
  CHECK(j["data"]["severity"] == "CRITICAL");
  CHECK(j["data"]["message"] == "disk \"full\"");
  CHECK(j["data"]["context"]["repo"] == "main");
  CHECK(j["data"]["context"]["n"] == 3);
  CHECK(j["data"]["acknowledged_at"].is_null());
  a.context_json = "not json";
  CHECK(nlohmann::json::parse(AlertEventBody(a))["data"]["context"] ==
        nlohmann::json::object());
}

TEST_CASE("Body: webhook.test") {
  const nlohmann::json j = nlohmann::json::parse(
      TestEventBody(7, "ops", absl::FromUnixSeconds(1700000000)));
  CHECK(j["type"] == "webhook.test");
  CHECK(j["timestamp"] == "2023-11-14T22:13:20.000Z");
  CHECK(j["data"]["webhook_id"] == 7);
  CHECK(j["data"]["name"] == "ops");
}

TEST_CASE("Excerpt: at most 1 KiB of valid UTF-8 without NUL") {
  CHECK(SanitizeExcerpt("ok") == "ok");
  CHECK(SanitizeExcerpt(std::string(5000, 'a')).size() == 1024);
  CHECK(SanitizeExcerpt(std::string("a\0b", 3)) == "ab");
  CHECK(SanitizeExcerpt("\xff") == "\xEF\xBF\xBD");
  CHECK(SanitizeExcerpt("caf\xc3\xa9") == "caf\xc3\xa9");
  CHECK(SanitizeExcerpt("\xc3") == "\xEF\xBF\xBD");  // truncated
  CHECK(SanitizeExcerpt("\xc0\xaf") == "\xEF\xBF\xBD\xEF\xBF\xBD");  // overlong
  CHECK(SanitizeExcerpt("\xed\xa0\x80").find("\xed") == std::string::npos);
  // A multi-byte character that would cross the limit is dropped whole.
  const std::string s = std::string(1023, 'a') + "\xc3\xa9";
  CHECK(SanitizeExcerpt(s) == std::string(1023, 'a'));
}

}  // namespace
}  // namespace pggitops::internal
