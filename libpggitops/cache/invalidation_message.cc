#include "libpggitops/cache/invalidation_message.h"

#include "libpggitops/cache/glob.h"
#include "nlohmann/json.hpp"

namespace pggitops::internal {

std::string EncodeInvalidation(const InvalidationMessage& m) {
  nlohmann::json j = {{"i", m.instance}};
  switch (m.kind) {
    case InvalidationMessage::Kind::kKeys:
      j["k"] = m.keys;
      break;
    case InvalidationMessage::Kind::kPattern:
      j["p"] = m.pattern;
      break;
    case InvalidationMessage::Kind::kAll:
      j["a"] = true;
      break;
  }
  return j.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
}

absl::StatusOr<InvalidationMessage> DecodeInvalidation(absl::string_view text) {
  nlohmann::json j = nlohmann::json::parse(text.begin(), text.end(), nullptr,
                                           /*allow_exceptions=*/false);
  if (!j.is_object() || j.size() != 2 || !j.contains("i") ||
      !j["i"].is_string()) {
    return absl::InvalidArgumentError("not an invalidation message");
  }
  InvalidationMessage m;
  m.instance = j["i"].get<std::string>();
  if (j.contains("a") && j["a"] == true) {
    m.kind = InvalidationMessage::Kind::kAll;
  } else if (j.contains("p") && j["p"].is_string()) {
    m.kind = InvalidationMessage::Kind::kPattern;
    m.pattern = j["p"].get<std::string>();
    absl::Status s = ValidateGlob(m.pattern);
    if (!s.ok()) return s;
  } else if (j.contains("k") && j["k"].is_array()) {
    m.kind = InvalidationMessage::Kind::kKeys;
    for (const auto& k : j["k"]) {
      if (!k.is_string()) return absl::InvalidArgumentError("key not a string");
      m.keys.push_back(k.get<std::string>());
      absl::Status s = ValidateKey(m.keys.back());
      if (!s.ok()) return s;
    }
  } else {
    return absl::InvalidArgumentError("not an invalidation message");
  }
  return m;
}

}  // namespace pggitops::internal
