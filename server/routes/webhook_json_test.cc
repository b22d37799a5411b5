// The webhook body checks without a database: what each field becomes, and
// the 422 that names it.
#include "server/routes/webhook_json.h"

#include <string>

#include "doctest/doctest.h"
#include "server/http/errors.h"

namespace pggitops::server {
namespace {

using nlohmann::json;

// The detail of the HttpError `body` raises, or "" when it is accepted.
std::string Refusal(const json& body,
                    WebhookBodyMode mode = WebhookBodyMode::kUpdate,
                    bool allow_private_targets = true) {
  try {
    ParseWebhookBody(body, mode, allow_private_targets);
    return "";
  } catch (const HttpError& e) {
    CHECK(e.status() == 422);
    return e.what();
  }
}

TEST_CASE("create needs name and url; update takes any subset") {
  CHECK(Refusal(json::object(), WebhookBodyMode::kCreate) ==
        "name: is required");
  CHECK(Refusal({{"name", "n"}}, WebhookBodyMode::kCreate) ==
        "url: is required");
  CHECK(Refusal(json::object()).empty());
  WebhookWrite w = ParseWebhookBody({{"retry_policy", {{"max_retries", 4}}}},
                                    WebhookBodyMode::kUpdate);
  CHECK(w.fields.max_retries == 4);
  CHECK(w.names("max_retries"));
  CHECK_FALSE(w.names("name"));
  CHECK_FALSE(w.names("is_active"));  // never SET unless sent
  CHECK_FALSE(w.fields.is_active.has_value());
}

TEST_CASE("values become the library's fields") {
  WebhookWrite w = ParseWebhookBody(
      {{"name", "n"},
       {"url", "HTTPS://user@example.com:8443/x?y#z"},
       {"description", nullptr},
       {"is_active", false},
       {"filters",
        {{"severities", {"INFO", "INFO", "CRITICAL"}},
         {"operation_types", json::array()}}},
       {"retry_policy", {{"backoff_base", 1.25}, {"max_backoff", 60}}},
       {"timeout_seconds", 60},
       {"ssl_verify", true}},
      WebhookBodyMode::kCreate);
  const WebhookFields& f = w.fields;
  REQUIRE(f.description.has_value());  // sent as null: cleared
  CHECK_FALSE(f.description->has_value());
  CHECK(f.is_active == false);
  // Duplicates are the store's to drop.
  CHECK(f.filter_severities ==
        std::vector<std::string>{"INFO", "INFO", "CRITICAL"});
  CHECK(f.filter_operation_types == std::vector<std::string>{});
  CHECK(f.backoff_base == 1.25);
  CHECK(f.max_backoff == 60);
  CHECK_FALSE(f.max_retries.has_value());
  CHECK(f.timeout_seconds == 60);
  CHECK(f.ssl_verify == true);
  CHECK(f.url == "HTTPS://user@example.com:8443/x?y#z");
  CHECK(f.Validate().ok());
}

TEST_CASE("each bad field is named") {
  CHECK(Refusal({{"name", std::string(256, 'a')}}).rfind("name:", 0) == 0);
  // Characters, not bytes: 255 two-byte characters are fine.
  std::string e_acute;
  for (int i = 0; i < 255; ++i) e_acute += "\xc3\xa9";
  CHECK(Refusal({{"name", e_acute}}).empty());
  CHECK(Refusal({{"name", e_acute + "a"}}).rfind("name:", 0) == 0);
  CHECK(Refusal({{"name", std::string("a\0b", 3)}}).rfind("name:", 0) == 0);
  CHECK(Refusal({{"url", "ftp://x"}}).rfind("url:", 0) == 0);
  CHECK(Refusal({{"url", "https://"}}).rfind("url:", 0) == 0);
  CHECK(Refusal({{"url", "https://:80/x"}}).rfind("url:", 0) == 0);
  CHECK(Refusal({{"url", "https://a\tb"}}).rfind("url:", 0) == 0);
  CHECK(Refusal({{"timeout_seconds", true}}).rfind("timeout_seconds:", 0) == 0);
  CHECK(Refusal({{"timeout_seconds", 18446744073709551615ULL}})
            .rfind("timeout_seconds:", 0) == 0);
  CHECK(Refusal({{"retry_policy", {{"backoff_base", "2"}}}})
            .rfind("retry_policy.backoff_base:", 0) == 0);
  CHECK(Refusal({{"retry_policy", {{"backoff_base", 10.5}}}})
            .rfind("retry_policy.backoff_base:", 0) == 0);
  CHECK(Refusal({{"filters", {{"severities", {"INFO", "info"}}}}})
            .rfind("filters.severities[1]:", 0) == 0);
  CHECK(Refusal({{"filters", {{"operation_types", {""}}}}})
            .rfind("filters.operation_types[0]:", 0) == 0);
  CHECK(Refusal({{"active", true}}).rfind("active: unknown field", 0) == 0);
  CHECK(Refusal({{"secret", "whsec_x"}}) == "secret: is read-only");
  CHECK(Refusal({{"health", json::object()}}) == "health: is read-only");
}

TEST_CASE("path ids: positive bigints only, else 404") {
  CHECK(ParseWebhookId("42") == 42);
  CHECK(ParseWebhookId("9223372036854775807") == 9223372036854775807LL);
  CHECK(ParseWebhookId("0") == 0);  // well-formed: its lookup is 404
  for (const char* bad : {"", "-1", "+1", "1.0", "abc", " 1", "1e3",
                          "9223372036854775808", "00000000000000000001"}) {
    CAPTURE(bad);
    try {
      ParseWebhookId(bad);
      FAIL("accepted");
    } catch (const HttpError& e) {
      CHECK(e.status() == 422);  // malformed ids are 422 everywhere
      CHECK(std::string(e.what()).find("id: must be a positive integer") == 0);
    }
  }
}

TEST_CASE("MaskForNonAdmin: URL passwords and refused addresses") {
  const std::string plain =
      R"({"items":[{"url":"https://hooks.example.com/a"}]})";
  CHECK(MaskForNonAdmin(plain) == plain);
  CHECK(MaskForNonAdmin(R"({"url":"https://user:pw@h.example/x","b":1})") ==
        R"({"url":"https://user:***@h.example/x","b":1})");
  CHECK(MaskForNonAdmin(R"({"url":"https://u:p@ss@h.example/x"})") ==
        R"({"url":"https://u:***@h.example/x"})");
  // A userinfo without a password is a token: all of it is hidden.
  CHECK(MaskForNonAdmin(R"({"url":"https://token@h.example/x"})") ==
        R"({"url":"https://***@h.example/x"})");
  // Found by tests/fuzz/webhook_body: an authority whose first '@' has no
  // ':' before it was cut twice, and masking again changed the text.
  CHECK(MaskForNonAdmin(R"({"url":"https://a@b:c@h.example/x"})") ==
        R"({"url":"https://***@h.example/x"})");
  CHECK(MaskForNonAdmin("://@@") == "://***@");
  CHECK(MaskForNonAdmin(MaskForNonAdmin("://@@")) == "://***@");
  // ... and the text a refused address was masked with, read on the
  // second pass as a userinfo.
  const std::string refused = "://target address refused: / is @";
  CHECK(MaskForNonAdmin(MaskForNonAdmin(refused)) == MaskForNonAdmin(refused));
  // ... and the phrase inside a refused address, masked twice over.
  const std::string twice =
      "target address refused: target address refused:  is ";
  CHECK(MaskForNonAdmin(twice) ==
        "target address refused: (address hidden) is ");
  CHECK(MaskForNonAdmin(MaskForNonAdmin(twice)) == MaskForNonAdmin(twice));
  CHECK(MaskForNonAdmin(R"({"url":"https://h.example/a@b"})") ==
        R"({"url":"https://h.example/a@b"})");  // '@' in the path
  CHECK(
      MaskForNonAdmin(
          R"x({"last_error":"refused_target: target address refused: )x"
          R"x(10.1.2.3 is private (WEBHOOK_ALLOW_PRIVATE_TARGETS is off)"})x") ==
      R"x({"last_error":"refused_target: target address refused: )x"
      R"x((address hidden) is private (WEBHOOK_ALLOW_PRIVATE_TARGETS is off)"})x");
  // Both kinds in one body, in either order.
  const std::string both =
      R"({"error":"target address refused: ::1 is loopback",)"
      R"("url":"http://a:b@h.example/"})";
  CHECK(MaskForNonAdmin(both) ==
        R"({"error":"target address refused: (address hidden) is loopback",)"
        R"("url":"http://a:***@h.example/"})");
}

TEST_CASE("ParseWebhookBody: literal private targets refused unless allowed") {
  for (const char* url :
       {"http://127.0.0.1/x", "http://localhost:8080/", "http://10.0.0.1/",
        "http://[::1]/", "http://169.254.169.254/", "http://2130706433/",
        "http://127.1/", "http://x.localhost/", "http://u:p@192.168.1.1/"}) {
    CAPTURE(url);
    json body = {{"name", "n"}, {"url", url}};
    CHECK(Refusal(body, WebhookBodyMode::kCreate, false).find("url:") == 0);
    CHECK_NOTHROW(ParseWebhookBody(body, WebhookBodyMode::kCreate, true));
  }
  CHECK_NOTHROW(
      ParseWebhookBody({{"name", "n"}, {"url", "https://hooks.example.com/x"}},
                       WebhookBodyMode::kCreate, false));
}

}  // namespace
}  // namespace pggitops::server
