// libFuzzer target: the bodies of POST /api/v1/alerts (ParseAlertBody) and
// of POST /api/v1/alerts/acknowledge and /resolve (ParseAlertIds),
// server/routes/alert_body.h. For any JSON value:
//   - each parser returns or throws HttpError 422 with a detail; nothing
//     else escapes;
//   - an accepted alert passes AlertInput::Validate, has a message, and a
//     context that is a JSON object without NUL of at most the size limit;
//     written back as a body it parses to the same alert;
//   - accepted ids are 1 to 1000 bigints that, written back, parse to the
//     same list.
// Input: the first byte picks the context size limit; the rest is the body.
// Seeds: tests/fuzz/alert_body/. See docs/TESTING.md.
#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "nlohmann/json.hpp"
#include "pggitops/delivery_queue.h"
#include "server/http/errors.h"
#include "server/routes/alert_body.h"
#include "tests/fuzz/fuzz_util.h"

using nlohmann::json;
using pggitops::AlertInput;
using pggitops::fuzz::Require;
using pggitops::server::HttpError;

namespace {

void Refused(const HttpError& e) {
  Require(e.status() == 422, "a refusal that is not 422");
  Require(e.what()[0] != '\0', "a refusal without detail");
}

std::optional<AlertInput> Alert(const json& body, int64_t max_bytes) {
  try {
    return pggitops::server::ParseAlertBody(body, max_bytes);
  } catch (const HttpError& e) {
    Refused(e);
    return std::nullopt;
  }
}

void CheckAlert(const json& body, int64_t max_bytes) {
  std::optional<AlertInput> a = Alert(body, max_bytes);
  if (!a.has_value()) return;
  Require(a->Validate().ok(), "an accepted alert does not validate");
  Require(!a->message.empty(), "an accepted alert without a message");
  json back = {{"operation_type", a->operation_type},
               {"severity", a->severity},
               {"message", a->message}};
  if (!a->context_json.empty()) {
    Require(static_cast<int64_t>(a->context_json.size()) <= max_bytes,
            "a context over the limit");
    Require(a->context_json.find('\0') == std::string::npos,
            "a context with NUL");
    json context = json::parse(a->context_json, nullptr, false);
    Require(context.is_object(), "a context that is not an object");
    back["context"] = context;
  }
  std::optional<AlertInput> again = Alert(back, max_bytes);
  Require(again.has_value(), "an accepted alert written back is refused");
  Require(again->operation_type == a->operation_type &&
              again->severity == a->severity && again->message == a->message &&
              again->context_json == a->context_json,
          "an alert written back parses differently");
}

void CheckIds(const json& body) {
  std::vector<int64_t> ids;
  try {
    ids = pggitops::server::ParseAlertIds(body);
  } catch (const HttpError& e) {
    Refused(e);
    return;
  }
  Require(!ids.empty() && ids.size() <= 1000, "1 to 1000 ids");
  Require(pggitops::server::ParseAlertIds(json{{"alert_ids", ids}}) == ids,
          "ids written back parse differently");
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size == 0) return 0;
  const int64_t max_bytes = 2 + data[0] * 4;
  const json body = json::parse(reinterpret_cast<const char*>(data) + 1,
                                reinterpret_cast<const char*>(data) + size,
                                nullptr, /*allow_exceptions=*/false);
  // The routes answer 400 before these for text that is not a JSON object.
  if (!body.is_object()) return 0;
  CheckAlert(body, max_bytes);
  CheckIds(body);
  return 0;
}
