// File: libpggitops/alerts/alert_rules.h
//
// The checks AlertStore runs before any SQL, and the state rules as the
// lists its transition statement takes.
#ifndef PGGITOPS_LIBPGGITOPS_ALERTS_ALERT_RULES_H_
#define PGGITOPS_LIBPGGITOPS_ALERTS_ALERT_RULES_H_

#include <cstdint>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/string_view.h"
#include "pggitops/alert_store.h"

namespace pggitops::internal {

// pending, acknowledged, resolved.
const std::vector<std::string>& AlertStatuses();

// The statuses AlertTransitionAllowed() lets move to `to`.
std::vector<std::string> AlertStatusesMovableTo(absl::string_view to);

// kInvalidArgument naming the field of a filter out of range.
absl::Status CheckAlertFilter(const AlertFilter& filter);

// kInvalidArgument "alert_ids: ..." for no ids or too many.
absl::Status CheckAlertIds(const std::vector<int64_t>& ids);

}  // namespace pggitops::internal

#endif  // PGGITOPS_LIBPGGITOPS_ALERTS_ALERT_RULES_H_
