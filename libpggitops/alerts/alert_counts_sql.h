// File: libpggitops/alerts/alert_counts_sql.h
//
// AlertCounts as SQL, for AlertStore::Counts() and the dashboard's one
// statement: the columns are total, info, warning, critical, pending,
// acknowledged, resolved, in that order.
#ifndef PGGITOPS_LIBPGGITOPS_ALERTS_ALERT_COUNTS_SQL_H_
#define PGGITOPS_LIBPGGITOPS_ALERTS_ALERT_COUNTS_SQL_H_

#include <cstddef>
#include <optional>
#include <string>
#include <vector>

#include "pggitops/alert_store.h"

namespace pggitops::internal {

// "SELECT count(*) AS total, ... FROM pggit.alerts".
const char* AlertCountsSql();

// The seven columns of AlertCountsSql() from row[at].
AlertCounts ReadAlertCounts(const std::vector<std::optional<std::string>>& row,
                            size_t at = 0);

}  // namespace pggitops::internal

#endif  // PGGITOPS_LIBPGGITOPS_ALERTS_ALERT_COUNTS_SQL_H_
