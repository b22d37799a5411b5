// Helpers shared by the report renderer and the registry.
#ifndef PGGITOPS_LIBPGGITOPS_HEALTH_HEALTH_REPORT_JSON_H_
#define PGGITOPS_LIBPGGITOPS_HEALTH_HEALTH_REPORT_JSON_H_

#include <string>

namespace pggitops::internal {

// True for the report's own top-level keys ("status", "timestamp",
// "failing"), which no check may use as its name.
bool IsReservedReportKey(const std::string& name);

}  // namespace pggitops::internal

#endif  // PGGITOPS_LIBPGGITOPS_HEALTH_HEALTH_REPORT_JSON_H_
