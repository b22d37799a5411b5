// Tests of RegisterProcessMetrics and its /proc readers.
#include "libpggitops/metrics/process_metrics.h"

#include <fcntl.h>
#include <unistd.h>

#include <map>

#include "doctest/doctest.h"
#include "libpggitops/metrics/exposition_checker_for_test.h"
#include "pggitops/env.h"
#include "pggitops/metrics.h"
#include "pggitops/version.h"

namespace pggitops {
namespace {

constexpr const char kStat[] =
    "15941 (my (odd) proc) R 15939 15939 4627 0 -1 4194304 99 0 0 0 "
    "250 50 0 0 20 0 1 0 75890 3133440 362 18446744073709551615 9451 0\n";

TEST_CASE("ProcessMetrics: ParseProcStat reads fields after the command") {
  absl::StatusOr<internal::ProcStat> s = internal::ParseProcStat(kStat);
  REQUIRE(s.ok());
  CHECK(s->utime_ticks == 250);
  CHECK(s->stime_ticks == 50);
  CHECK(s->start_time_ticks == 75890);
  CHECK(s->vsize_bytes == 3133440);
  CHECK(s->rss_pages == 362);
}

TEST_CASE("ProcessMetrics: ParseProcStat rejects malformed text") {
  CHECK_FALSE(internal::ParseProcStat("").ok());
  CHECK_FALSE(internal::ParseProcStat("1 (cmd R 1 2 3").ok());
  CHECK_FALSE(internal::ParseProcStat("1 (cmd) R 1 2 3 4 5").ok());
  std::string bad = kStat;
  bad.replace(bad.find("250"), 3, "2x0");
  absl::StatusOr<internal::ProcStat> s = internal::ParseProcStat(bad);
  CHECK(s.status().code() == absl::StatusCode::kInvalidArgument);
}

TEST_CASE("ProcessMetrics: ParseBootTime finds the btime line") {
  absl::StatusOr<uint64_t> b =
      internal::ParseBootTime("cpu  1 2 3\nintr 5\nbtime 1795937668\nx 1\n");
  REQUIRE(b.ok());
  CHECK(*b == 1795937668u);
  CHECK_FALSE(internal::ParseBootTime("cpu 1\n").ok());
  CHECK_FALSE(internal::ParseBootTime("btime soon\n").ok());
}

// Scrapes `r` and returns sample name (with labels) -> value.
std::map<std::string, double> Scrape(MetricsRegistry& r) {
  absl::StatusOr<std::vector<testing::ParsedFamily>> parsed =
      testing::ParseExposition(r.Serialize());
  REQUIRE_MESSAGE(parsed.ok(), parsed.status().ToString());
  std::map<std::string, double> values;
  for (const testing::ParsedFamily& f : *parsed) {
    for (const testing::ParsedSample& s : f.samples) {
      std::string key = s.name;
      for (const auto& [k, v] : s.labels) key += "|" + k + "=" + v;
      values[key] = s.value;
    }
  }
  return values;
}

TEST_CASE("ProcessMetrics: present with plausible values") {
  MetricsRegistry r;
  RegisterProcessMetrics(&r);
  RegisterProcessMetrics(&r);  // harmless twice
  std::map<std::string, double> v = Scrape(r);
  CHECK(v.size() == 7);
  CHECK(v["process_resident_memory_bytes"] > 100e3);
  CHECK(v["process_virtual_memory_bytes"] >=
        v["process_resident_memory_bytes"]);
  CHECK(v["process_cpu_seconds_total"] >= 0);
  CHECK(v["process_cpu_seconds_total"] < 1e5);
  CHECK(v["process_open_fds"] >= 1);
  CHECK(v["process_max_fds"] >= v["process_open_fds"]);
  double now = absl::ToUnixSeconds(Env::Default()->Now());
  CHECK(v["process_start_time_seconds"] > now - 86400);
  CHECK(v["process_start_time_seconds"] <= now + 1);
  CHECK(v[std::string("pggit_build_info|version=") + kVersionString] == 1);
}

TEST_CASE("ProcessMetrics: refreshed on every scrape") {
  MetricsRegistry r;
  RegisterProcessMetrics(&r);
  std::map<std::string, double> before = Scrape(r);
  int fd = open("/dev/null", O_RDONLY | O_CLOEXEC);
  REQUIRE(fd >= 0);
  std::map<std::string, double> after = Scrape(r);
  close(fd);
  CHECK(after["process_open_fds"] == before["process_open_fds"] + 1);
  // CPU time moves in clock ticks (10 ms): burn until one passes.
  volatile double burn = 0;
  for (int round = 0; round < 100; ++round) {
    for (int i = 0; i < 1000000; ++i) burn = burn + i * 0.5;
    after = Scrape(r);
    if (after["process_cpu_seconds_total"] >
        before["process_cpu_seconds_total"]) {
      break;
    }
  }
  CHECK(after["process_cpu_seconds_total"] >
        before["process_cpu_seconds_total"]);
  CHECK(Scrape(r)["process_open_fds"] == before["process_open_fds"]);
}

}  // namespace
}  // namespace pggitops
