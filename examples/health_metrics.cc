// health_metrics: health checks and Prometheus metrics in a program of
// your own.
//
//   health_metrics --dsn postgresql://user:pass@host:5432/db [--help]
//
// Registers the pool's database check and a check of its own with a
// HealthRegistry, runs them and prints the /health/deep-style JSON report,
// then prints the Prometheus text exposition of the registry the pool and
// the process metrics write to (what a /metrics endpoint would serve).
// Exits 1, saying why, when the database check fails.
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <sstream>
#include <string>
#include <vector>

#include "absl/time/time.h"
#include "pggitops/connection_pool.h"
#include "pggitops/health.h"
#include "pggitops/metrics.h"

namespace {

constexpr char kUsage[] =
    "usage: health_metrics --dsn DSN\n"
    "  DSN: postgresql://user:pass@host:port/db (default: $DATABASE_URL)\n";

}  // namespace

int main(int argc, char** argv) {
  std::string dsn;
  if (const char* url = std::getenv("DATABASE_URL")) dsn = url;
  for (int i = 1; i < argc; ++i) {
    if (std::strcmp(argv[i], "--help") == 0 ||
        std::strcmp(argv[i], "-h") == 0) {
      std::fputs(kUsage, stdout);
      return 0;
    } else if (std::strcmp(argv[i], "--dsn") == 0 && i + 1 < argc) {
      dsn = argv[++i];
    } else {
      std::fprintf(stderr,
                   "health_metrics: unknown or incomplete argument %s\n%s",
                   argv[i], kUsage);
      return 2;
    }
  }
  if (dsn.empty()) {
    std::fprintf(stderr, "health_metrics: --dsn is required\n%s", kUsage);
    return 2;
  }

  // One registry for the whole process; components are given it and add
  // their own series (hot paths are atomics only).
  pggitops::MetricsRegistry metrics;
  pggitops::RegisterProcessMetrics(&metrics);  // process_* and build info
  pggitops::Counter& requests =
      metrics.AddCounter("example_requests_total", "Requests handled")
          .WithLabels(std::vector<std::string>{});
  requests.Inc();

  pggitops::PoolOptions pool_options;
  pool_options.dsn = dsn;
  pool_options.size = 2;
  pool_options.metrics = &metrics;  // db_connection_pool_*, db_query_*
  auto pool = pggitops::ConnectionPool::Create(pool_options);
  if (!pool.ok()) {
    std::fprintf(stderr, "health_metrics: pool: %s\n",
                 pool.status().ToString().c_str());
    return 1;
  }

  // Checks run concurrently on registry-owned threads, each bounded by its
  // timeout; a report is cached for cache_ttl (HEALTH_CACHE_SECONDS).
  pggitops::HealthRegistry health(pggitops::HealthOptions{});
  absl::Status s = health.Register(
      pggitops::DatabaseHealthCheck(pool->get(), absl::Seconds(2)));
  if (s.ok()) {
    pggitops::HealthCheck disk;
    disk.name = "scratch_space";
    disk.criticality = pggitops::Criticality::kNonCritical;  // degraded only
    disk.timeout = absl::Seconds(1);
    disk.run = [] {
      pggitops::CheckResult r;
      r.status = "available";
      r.details_json = R"({"path": "/tmp"})";
      return r;
    };
    s = health.Register(disk);
  }
  if (!s.ok()) {
    std::fprintf(stderr, "health_metrics: %s\n", s.ToString().c_str());
    return 1;
  }
  pggitops::HealthReport report = health.Run();
  std::printf("health: %s\n%s\n", pggitops::HealthStatusName(report.status),
              report.ToJson().c_str());

  // The Prometheus text format 0.0.4; print the pool's and our own series.
  std::istringstream exposition(metrics.Serialize());
  std::string line;
  while (std::getline(exposition, line)) {
    if (line.rfind("db_connection_pool_size", 0) == 0 ||
        line.rfind("example_requests_total", 0) == 0 ||
        line.rfind("process_open_fds", 0) == 0) {
      std::printf("%s\n", line.c_str());
    }
  }

  (*pool)->Shutdown();
  if (report.status == pggitops::HealthStatus::kUnhealthy) {
    std::fprintf(stderr, "health_metrics: the database check failed\n");
    return 1;
  }
  std::printf("ok\n");
  return 0;
}
