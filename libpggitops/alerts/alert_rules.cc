// The pure part of alert_store.h: the state rules and filter checks.
#include "libpggitops/alerts/alert_rules.h"

#include <string>

#include "absl/strings/str_cat.h"
#include "pggitops/alert_store.h"

namespace pggitops {

bool AlertTransitionAllowed(absl::string_view from, absl::string_view to) {
  if (to == "acknowledged") return from == "pending";
  if (to == "resolved") return from == "pending" || from == "acknowledged";
  return false;
}

namespace internal {

const std::vector<std::string>& AlertStatuses() {
  static const auto* statuses =
      new std::vector<std::string>{"pending", "acknowledged", "resolved"};
  return *statuses;
}

std::vector<std::string> AlertStatusesMovableTo(absl::string_view to) {
  std::vector<std::string> from;
  for (const std::string& s : AlertStatuses()) {
    if (AlertTransitionAllowed(s, to)) from.push_back(s);
  }
  return from;
}

absl::Status CheckAlertFilter(const AlertFilter& f) {
  if (f.status && *f.status != "pending" && *f.status != "acknowledged" &&
      *f.status != "resolved") {
    return absl::InvalidArgumentError(
        "status: must be pending, acknowledged, resolved");
  }
  if (f.severity && *f.severity != "INFO" && *f.severity != "WARNING" &&
      *f.severity != "CRITICAL") {
    return absl::InvalidArgumentError(
        "severity: must be INFO, WARNING, CRITICAL");
  }
  if (f.operation_type &&
      (f.operation_type->empty() || f.operation_type->size() > 4 * 255 ||
       f.operation_type->find('\0') != std::string::npos)) {
    return absl::InvalidArgumentError(
        "operation_type: must be 1 to 255 characters");
  }
  if (f.limit < 1 || f.limit > 100) {
    return absl::InvalidArgumentError(
        absl::StrCat("limit: must be from 1 to 100 (got ", f.limit, ")"));
  }
  if (f.offset < 0) {
    return absl::InvalidArgumentError(
        absl::StrCat("offset: must be at least 0 (got ", f.offset, ")"));
  }
  return absl::OkStatus();
}

absl::Status CheckAlertIds(const std::vector<int64_t>& ids) {
  if (ids.empty() || ids.size() > kMaxAlertIdsPerCall) {
    return absl::InvalidArgumentError(
        absl::StrCat("alert_ids: must hold 1 to ", kMaxAlertIdsPerCall,
                     " ids (got ", ids.size(), ")"));
  }
  return absl::OkStatus();
}

}  // namespace internal
}  // namespace pggitops
