// RegisterProcessMetrics: process_* gauges from /proc, refreshed by a
// collect hook, and pggit_build_info.
#include "libpggitops/metrics/process_metrics.h"

#include <dirent.h>
#include <fcntl.h>
#include <sys/resource.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <limits>
#include <string>
#include <vector>

#include "absl/base/attributes.h"
#include "absl/base/const_init.h"
#include "absl/status/status.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "pggitops/metrics.h"
#include "pggitops/version.h"

namespace pggitops {
namespace internal {
namespace {

absl::StatusOr<std::string> ReadSmallFile(const char* path) {
  int fd = open(path, O_RDONLY | O_CLOEXEC);
  if (fd < 0) {
    return absl::UnavailableError(
        absl::StrCat("open ", path, ": errno ", errno));
  }
  std::string data;
  char buf[4096];
  while (true) {
    ssize_t n = read(fd, buf, sizeof(buf));
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) break;
    data.append(buf, static_cast<size_t>(n));
  }
  close(fd);
  return data;
}

}  // namespace

absl::StatusOr<ProcStat> ParseProcStat(absl::string_view contents) {
  size_t close_paren = contents.rfind(')');
  if (close_paren == absl::string_view::npos) {
    return absl::InvalidArgumentError("proc stat: no ')' after the command");
  }
  std::vector<absl::string_view> f =
      absl::StrSplit(contents.substr(close_paren + 1), ' ', absl::SkipEmpty());
  // f[0] is field 3 (state), so field k is f[k - 3].
  constexpr size_t kNeeded = 24 - 3 + 1;
  if (f.size() < kNeeded) {
    return absl::InvalidArgumentError(
        absl::StrCat("proc stat: ", f.size(), " fields after the command, ",
                     "need ", kNeeded));
  }
  ProcStat s;
  bool ok = absl::SimpleAtoi(f[14 - 3], &s.utime_ticks) &&
            absl::SimpleAtoi(f[15 - 3], &s.stime_ticks) &&
            absl::SimpleAtoi(f[22 - 3], &s.start_time_ticks) &&
            absl::SimpleAtoi(f[23 - 3], &s.vsize_bytes) &&
            absl::SimpleAtoi(f[24 - 3], &s.rss_pages);
  if (!ok) return absl::InvalidArgumentError("proc stat: non-numeric field");
  return s;
}

absl::StatusOr<uint64_t> ParseBootTime(absl::string_view contents) {
  for (absl::string_view line : absl::StrSplit(contents, '\n')) {
    if (!absl::ConsumePrefix(&line, "btime ")) continue;
    uint64_t btime = 0;
    if (!absl::SimpleAtoi(line, &btime)) break;
    return btime;
  }
  return absl::InvalidArgumentError("proc stat: no valid btime line");
}

absl::StatusOr<int> CountOpenFds() {
  DIR* dir = opendir("/proc/self/fd");
  if (dir == nullptr) {
    return absl::UnavailableError(
        absl::StrCat("opendir /proc/self/fd: errno ", errno));
  }
  const int own_fd = dirfd(dir);
  int count = 0;
  while (struct dirent* entry = readdir(dir)) {
    int fd = 0;
    if (!absl::SimpleAtoi(entry->d_name, &fd) || fd == own_fd) continue;
    ++count;
  }
  closedir(dir);
  return count;
}

namespace {

struct ProcessGauges {
  Gauge* rss;
  Gauge* vsize;
  Counter* cpu;
  Gauge* open_fds;
  Gauge* max_fds;
};

ABSL_CONST_INIT absl::Mutex cpu_mu(absl::kConstInit);

void Refresh(const ProcessGauges& g) {
  absl::StatusOr<std::string> text = ReadSmallFile("/proc/self/stat");
  absl::StatusOr<ProcStat> stat = text.ok()
                                      ? ParseProcStat(*text)
                                      : absl::StatusOr<ProcStat>(text.status());
  if (stat.ok()) {
    g.rss->Set(static_cast<double>(stat->rss_pages) * sysconf(_SC_PAGESIZE));
    g.vsize->Set(static_cast<double>(stat->vsize_bytes));
    double cpu = static_cast<double>(stat->utime_ticks + stat->stime_ticks) /
                 sysconf(_SC_CLK_TCK);
    // A counter only goes up: add the difference. The lock keeps it exact
    // when several hooks (or scrapes) refresh the same counter at once.
    absl::MutexLock lock(&cpu_mu);
    double delta = cpu - g.cpu->Value();
    if (delta > 0) g.cpu->Inc(delta);
  }
  if (absl::StatusOr<int> fds = CountOpenFds(); fds.ok()) g.open_fds->Set(*fds);
  struct rlimit limit;
  if (getrlimit(RLIMIT_NOFILE, &limit) == 0) {
    g.max_fds->Set(limit.rlim_cur == RLIM_INFINITY
                       ? std::numeric_limits<double>::infinity()
                       : static_cast<double>(limit.rlim_cur));
  }
}

// Unix seconds at which this process started, or 0 if /proc is unreadable.
double StartTimeSeconds() {
  absl::StatusOr<std::string> self = ReadSmallFile("/proc/self/stat");
  absl::StatusOr<std::string> sys = ReadSmallFile("/proc/stat");
  if (!self.ok() || !sys.ok()) return 0;
  absl::StatusOr<ProcStat> stat = ParseProcStat(*self);
  absl::StatusOr<uint64_t> boot = ParseBootTime(*sys);
  if (!stat.ok() || !boot.ok()) return 0;
  return static_cast<double>(*boot) +
         static_cast<double>(stat->start_time_ticks) / sysconf(_SC_CLK_TCK);
}

}  // namespace
}  // namespace internal

void RegisterProcessMetrics(MetricsRegistry* registry) {
  internal::ProcessGauges g;
  g.rss = &registry
               ->AddGauge("process_resident_memory_bytes",
                          "Resident memory size in bytes.")
               .WithLabels({});
  g.vsize = &registry
                 ->AddGauge("process_virtual_memory_bytes",
                            "Virtual memory size in bytes.")
                 .WithLabels({});
  g.cpu = &registry
               ->AddCounter("process_cpu_seconds_total",
                            "Total user and system CPU time spent in seconds.")
               .WithLabels({});
  g.open_fds =
      &registry
           ->AddGauge("process_open_fds", "Number of open file descriptors.")
           .WithLabels({});
  g.max_fds = &registry
                   ->AddGauge("process_max_fds",
                              "Maximum number of open file descriptors.")
                   .WithLabels({});
  registry
      ->AddGauge("process_start_time_seconds",
                 "Start time of the process since unix epoch in seconds.")
      .WithLabels({})
      .Set(internal::StartTimeSeconds());
  registry
      ->AddGauge("pggit_build_info",
                 "A metric with a constant '1' value labeled by the pggitops "
                 "version.",
                 {"version"})
      .WithLabels({kVersionString})
      .Set(1);
  internal::Refresh(g);
  registry->AddCollectHook([g] { internal::Refresh(g); });
}

}  // namespace pggitops
