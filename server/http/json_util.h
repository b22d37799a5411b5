// JSON helpers shared by the HTTP handlers.
#ifndef PGGITOPS_SERVER_HTTP_JSON_UTIL_H_
#define PGGITOPS_SERVER_HTTP_JSON_UTIL_H_

#include <string>

#include "absl/time/time.h"
#include "nlohmann/json.hpp"

namespace pggitops::server {

// RFC 3339 UTC with microseconds, e.g. 2026-11-29T07:35:07.123456Z.
std::string Rfc3339(absl::Time t);

// Compact JSON; invalid UTF-8 replaced rather than thrown on.
std::string DumpJson(const nlohmann::json& j);

}  // namespace pggitops::server

#endif  // PGGITOPS_SERVER_HTTP_JSON_UTIL_H_
