#include "server/http/json_util.h"

#include "absl/strings/str_cat.h"

namespace pggitops::server {

std::string Rfc3339(absl::Time t) {
  return absl::FormatTime("%Y-%m-%dT%H:%M:%E6SZ", t, absl::UTCTimeZone());
}

std::string Rfc3339Sql(absl::string_view column) {
  return absl::StrCat("to_char(", column,
                      " AT TIME ZONE 'UTC', "
                      "'YYYY-MM-DD\"T\"HH24:MI:SS.US\"Z\"')");
}

std::string DumpJson(const nlohmann::json& j) {
  return j.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
}

}  // namespace pggitops::server
