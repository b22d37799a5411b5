// The webhook rules that need no database: field validation, the failing
// rule and its SQL form, secrets.
#include <cmath>
#include <set>
#include <string>

#include "absl/strings/escaping.h"
#include "absl/strings/match.h"
#include "doctest/doctest.h"
#include "libpggitops/webhooks/failing.h"
#include "pggitops/webhook_store.h"

namespace pggitops {
namespace {

std::string Refusal(const WebhookFields& f) {
  absl::Status s = f.Validate();
  if (s.ok()) return "";
  CHECK(s.code() == absl::StatusCode::kInvalidArgument);
  return std::string(s.message());
}

TEST_CASE("WebhookFields: nothing set is valid and empty") {
  WebhookFields f;
  CHECK(f.empty());
  CHECK(Refusal(f).empty());
  f.ssl_verify = false;
  CHECK_FALSE(f.empty());
}

TEST_CASE("WebhookFields: each bad field is named") {
  WebhookFields f;
  f.name = std::string(256, 'a');
  CHECK(Refusal(f) == "name: must be 1 to 255 characters long (got 256)");
  std::string e_acute;
  for (int i = 0; i < 255; ++i) e_acute += "\xc3\xa9";
  f.name = e_acute;  // characters, not bytes
  CHECK(Refusal(f).empty());
  f.name = std::string("a\0b", 3);
  CHECK(Refusal(f) == "name: must not contain NUL characters");
  f = WebhookFields();
  for (const char* bad : {"ftp://x", "https://", "https://:80/x",
                          "https://a\tb", "http://x.example/a b"}) {
    CAPTURE(bad);
    f.url = bad;
    CHECK(absl::StartsWith(Refusal(f), "url: "));
  }
  f.url = "HTTPS://user@example.com:8443/x?y#z";
  CHECK(Refusal(f).empty());
  f = WebhookFields();
  f.description = std::optional<std::string>();  // clearing is fine
  CHECK(Refusal(f).empty());
  f.description = std::string(1001, 'd');
  CHECK(absl::StartsWith(Refusal(f), "description: "));
  f = WebhookFields();
  f.timeout_seconds = 61;
  CHECK(Refusal(f) == "timeout_seconds: must be from 1 to 60 (got 61)");
  f = WebhookFields();
  f.max_retries = -1;
  CHECK(absl::StartsWith(Refusal(f), "retry_policy.max_retries: "));
  f = WebhookFields();
  f.backoff_base = 0.5;
  CHECK(absl::StartsWith(Refusal(f), "retry_policy.backoff_base: "));
  f.backoff_base = std::nan("");
  CHECK(absl::StartsWith(Refusal(f), "retry_policy.backoff_base: "));
  f = WebhookFields();
  f.max_backoff = 86401;
  CHECK(absl::StartsWith(Refusal(f), "retry_policy.max_backoff: "));
  f = WebhookFields();
  f.filter_severities = std::vector<std::string>{"INFO", "info"};
  CHECK(absl::StartsWith(Refusal(f), "filters.severities[1]: "));
  f = WebhookFields();
  f.filter_operation_types = std::vector<std::string>{"ok", ""};
  CHECK(absl::StartsWith(Refusal(f), "filters.operation_types[1]: "));
}

TEST_CASE("IsFailing: active with a failure run or a breaker not closed") {
  Webhook w;
  w.status = "active";
  w.breaker_state = "closed";
  CHECK_FALSE(IsFailing(w));
  w.consecutive_failures = 1;
  CHECK(IsFailing(w));
  w.consecutive_failures = 0;
  w.breaker_state = "half_open";
  CHECK(IsFailing(w));
  w.status = "disabled";  // switched off: not counted as failing
  CHECK_FALSE(IsFailing(w));
  w.status = "inactive";
  CHECK_FALSE(IsFailing(w));
}

TEST_CASE("FailingWebhookSql: the same rule, qualified or not") {
  CHECK(internal::FailingWebhookSql("w") ==
        "(w.status = 'active' AND (w.breaker_state <> 'closed' OR "
        "w.consecutive_failures > 0))");
  CHECK(internal::FailingWebhookSql() ==
        "(status = 'active' AND (breaker_state <> 'closed' OR "
        "consecutive_failures > 0))");
}

TEST_CASE("GenerateWebhookSecret: whsec_ and 24 fresh bytes") {
  std::set<std::string> seen;
  for (int i = 0; i < 20; ++i) {
    absl::StatusOr<std::string> s = GenerateWebhookSecret();
    REQUIRE(s.ok());
    REQUIRE(absl::StartsWith(*s, "whsec_"));
    std::string raw;
    REQUIRE(absl::Base64Unescape(s->substr(6), &raw));
    CHECK(raw.size() == 24);
    seen.insert(*s);
  }
  CHECK(seen.size() == 20);
}

}  // namespace
}  // namespace pggitops
