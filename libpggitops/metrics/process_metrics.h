// Private: readers of /proc for RegisterProcessMetrics, split out so tests
// can feed them fixed text.
#ifndef PGGITOPS_LIBPGGITOPS_METRICS_PROCESS_METRICS_H_
#define PGGITOPS_LIBPGGITOPS_METRICS_PROCESS_METRICS_H_

#include <cstdint>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

namespace pggitops::internal {

// The fields of /proc/<pid>/stat that the process metrics use, in the
// units of that file.
struct ProcStat {
  uint64_t utime_ticks = 0;       // field 14, clock ticks
  uint64_t stime_ticks = 0;       // field 15, clock ticks
  uint64_t start_time_ticks = 0;  // field 22, clock ticks after boot
  uint64_t vsize_bytes = 0;       // field 23
  uint64_t rss_pages = 0;         // field 24
};

// Parses the contents of /proc/<pid>/stat. The command name (field 2) may
// hold spaces and parentheses; fields are read after its last ')'.
absl::StatusOr<ProcStat> ParseProcStat(absl::string_view contents);

// Returns the boot time in Unix seconds from the contents of /proc/stat
// (its "btime" line).
absl::StatusOr<uint64_t> ParseBootTime(absl::string_view contents);

// Returns the number of open file descriptors of this process (entries of
// /proc/self/fd, not counting the one used to list them).
absl::StatusOr<int> CountOpenFds();

}  // namespace pggitops::internal

#endif  // PGGITOPS_LIBPGGITOPS_METRICS_PROCESS_METRICS_H_
