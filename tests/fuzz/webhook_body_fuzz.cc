// libFuzzer target: the webhook body of POST /api/v1/webhooks and of PUT
// and PATCH /api/v1/webhooks/{id} (ParseWebhookBody,
// server/routes/webhook_json.h), and the masking of URL credentials for
// callers below admin (MaskForNonAdmin). For any JSON object:
//   - the parser returns or throws HttpError 422 (400 for a non-object) with
//     a detail; nothing else escapes;
//   - a body accepted for create is accepted for update with the same
//     fields, and must name `name` and `url`; a body accepted with private
//     targets refused is accepted with them allowed, with the same fields;
//   - what the route accepts, the library's WebhookFields::Validate()
//     accepts; no filter item twice, no text holds NUL;
// and for any text, masking is idempotent, the in-place form agrees with
// the copy, and a password in "https://user:PASSWORD@host" inside a JSON
// string is gone, as is a token in "https://TOKEN@host".
// Input: the body (the first byte chooses the masking check's password
// length). Seeds: tests/fuzz/webhook_body/. See docs/TESTING.md.
#include <cstddef>
#include <cstdint>
#include <optional>
#include <set>
#include <string>

#include "nlohmann/json.hpp"
#include "pggitops/webhook_store.h"
#include "server/http/errors.h"
#include "server/routes/webhook_json.h"
#include "tests/fuzz/fuzz_util.h"

using pggitops::fuzz::Require;
using pggitops::server::HttpError;
using pggitops::server::WebhookBodyMode;
using pggitops::server::WebhookWrite;

namespace {

// The fields a write sets, with their values as text, comparable.
using Columns = std::set<std::pair<std::string, std::optional<std::string>>>;

void Text(Columns* out, const char* name, const std::string& value) {
  Require(value.find('\0') == std::string::npos, "a parameter holds NUL");
  out->insert({name, value});
}

Columns ColumnsOf(const pggitops::WebhookFields& f) {
  Columns out;
  if (f.name) Text(&out, "name", *f.name);
  if (f.url) Text(&out, "url", *f.url);
  if (f.description) {
    if (*f.description) {
      Text(&out, "description", **f.description);
    } else {
      out.insert({"description", std::nullopt});
    }
  }
  if (f.is_active) out.insert({"is_active", *f.is_active ? "t" : "f"});
  for (const auto& [name, list] :
       {std::pair{"filter_severities", &f.filter_severities},
        std::pair{"filter_operation_types", &f.filter_operation_types}}) {
    if (!*list) continue;
    std::set<std::string> distinct;
    std::string joined;
    for (const std::string& item : **list) {
      Require(distinct.insert(item).second, "a filter item twice");
      Require(item.find('\0') == std::string::npos, "a filter item holds NUL");
      joined += item + '\n';
    }
    out.insert({name, joined});
  }
  if (f.max_retries)
    out.insert({"max_retries", std::to_string(*f.max_retries)});
  if (f.backoff_base) {
    out.insert({"backoff_base", std::to_string(*f.backoff_base)});
  }
  if (f.max_backoff)
    out.insert({"max_backoff", std::to_string(*f.max_backoff)});
  if (f.timeout_seconds) {
    out.insert({"timeout_seconds", std::to_string(*f.timeout_seconds)});
  }
  if (f.ssl_verify) out.insert({"ssl_verify", *f.ssl_verify ? "t" : "f"});
  return out;
}

std::optional<Columns> Parse(const nlohmann::json& body, WebhookBodyMode mode,
                             bool allow_private) {
  try {
    WebhookWrite w =
        pggitops::server::ParseWebhookBody(body, mode, allow_private);
    // What the daemon accepts, the library's store accepts too.
    Require(w.fields.Validate().ok(), "accepted by the route, not the store");
    if (mode == WebhookBodyMode::kCreate) {
      Require(w.names("name") && w.names("url"), "create without name or url");
      Require(w.fields.name.has_value() && w.fields.url.has_value(),
              "create without name or url fields");
    }
    return ColumnsOf(w.fields);
  } catch (const HttpError& e) {
    Require(e.status() == (body.is_object() ? 422 : 400),
            "a refusal that is not 422 (400 for a non-object)");
    Require(e.what()[0] != '\0', "a refusal without detail");
    return std::nullopt;
  }
}

void CheckMasking(const std::string& text, size_t password_size) {
  const std::string masked = pggitops::server::MaskForNonAdmin(text);
  std::string in_place = text;
  const bool changed = pggitops::server::MaskForNonAdminInPlace(&in_place);
  Require(in_place == masked, "in-place masking differs from the copy");
  // False means nothing was masked; true may still leave the same text
  // (a password that was "***").
  Require(changed || masked == text, "in-place masking misreports");
  Require(pggitops::server::MaskForNonAdmin(masked) == masked,
          "masking is not idempotent");

  // A password made of the input's own characters, minus those that end
  // a URL's authority or a JSON string (and spaces and control characters,
  // which a webhook URL never holds).
  std::string password;
  for (char c : text) {
    if (password.size() == password_size) break;
    if (static_cast<unsigned char>(c) > 0x20 && c != '"' && c != '/' &&
        c != '?' && c != '#' && c != '@' && c != ':') {
      password += c;
    }
  }
  if (password.empty()) return;
  const std::string body =
      text + "\"https://user:" + password + "@example.com/hook\"";
  const std::string out = pggitops::server::MaskForNonAdmin(body);
  const std::string want = "\"https://user:***@example.com/hook\"";
  Require(out.size() >= want.size() &&
              out.compare(out.size() - want.size(), want.size(), want) == 0,
          "a URL's password was not masked");
  // A userinfo without a password is a token: none of it shows.
  const std::string token_out = pggitops::server::MaskForNonAdmin(
      text + "\"https://" + password + "@example.com/hook\"");
  const std::string token_want = "\"https://***@example.com/hook\"";
  Require(token_out.size() >= token_want.size() &&
              token_out.compare(token_out.size() - token_want.size(),
                                token_want.size(), token_want) == 0,
          "a URL's token was not masked");
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size == 0) return 0;
  const std::string text(reinterpret_cast<const char*>(data) + 1, size - 1);
  CheckMasking(text, data[0] % 16);
  const nlohmann::json body =
      nlohmann::json::parse(text, nullptr, /*allow_exceptions=*/false);
  if (body.is_discarded()) return 0;  // the route answers 400 before this
  for (bool allow_private : {false, true}) {
    std::optional<Columns> create =
        Parse(body, WebhookBodyMode::kCreate, allow_private);
    std::optional<Columns> update =
        Parse(body, WebhookBodyMode::kUpdate, allow_private);
    if (create.has_value()) {
      Require(update == create, "create accepts what update refuses");
    }
    if (!allow_private && update.has_value()) {
      Require(Parse(body, WebhookBodyMode::kUpdate, true) == update,
              "allowing private targets refused a body or changed it");
    }
  }
  return 0;
}
