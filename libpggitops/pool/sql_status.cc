#include "libpggitops/pool/sql_status.h"

#include <string>

#include "absl/strings/cord.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/types/optional.h"
#include "pggitops/connection_pool.h"

namespace pggitops {
namespace internal {

absl::StatusCode CodeForSqlState(absl::string_view s) {
  using absl::StatusCode;
  if (s == "23505") return StatusCode::kAlreadyExists;
  if (s == "57014") return StatusCode::kUnavailable;  // statement timeout
  if (s == "40001" || s == "40P01" || s == "55P03") return StatusCode::kAborted;
  if (s == "42501") return StatusCode::kPermissionDenied;
  if (absl::StartsWith(s, "08") || absl::StartsWith(s, "57P")) {
    return StatusCode::kUnavailable;
  }
  if (absl::StartsWith(s, "23")) return StatusCode::kFailedPrecondition;
  if (absl::StartsWith(s, "22")) return StatusCode::kInvalidArgument;
  if (absl::StartsWith(s, "53")) return StatusCode::kResourceExhausted;
  return StatusCode::kInternal;
}

absl::Status SqlError(absl::string_view sqlstate, absl::string_view message) {
  if (sqlstate.empty()) return absl::UnavailableError(message);
  absl::Status status(CodeForSqlState(sqlstate),
                      absl::StrCat("SQLSTATE ", sqlstate, ": ", message));
  status.SetPayload(kSqlStatePayload, absl::Cord(sqlstate));
  return status;
}

bool IsConnectionFailure(const absl::Status& status) {
  if (!absl::IsUnavailable(status)) return false;
  std::string sqlstate = SqlStateOf(status);
  if (sqlstate.empty()) return true;
  return absl::StartsWith(sqlstate, "08") || sqlstate == "57P01" ||
         sqlstate == "57P02" || sqlstate == "57P03";
}

}  // namespace internal

std::string SqlStateOf(const absl::Status& status) {
  absl::optional<absl::Cord> payload =
      status.GetPayload(internal::kSqlStatePayload);
  return payload.has_value() ? std::string(*payload) : std::string();
}

}  // namespace pggitops
