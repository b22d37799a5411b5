// Measuring helpers of delivery_bench: what a stretch of work cost the
// database (WAL bytes, statements, commits, rows written, CPU time of the
// cluster's processes) and pgbench as the ceiling.
#ifndef PGGITOPS_BENCH_DELIVERY_BENCH_UTIL_H_
#define PGGITOPS_BENCH_DELIVERY_BENCH_UTIL_H_

#include <dirent.h>
#include <sys/resource.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <pqxx/pqxx>
#include <regex>
#include <sstream>
#include <string>

#include "tests/harness/harness.h"

namespace pggitops::bench {

// CPU seconds (user + system) of a /proc/<pid>/stat line's process; with
// `children`, also of its children that it has waited for.
inline double ProcCpuSeconds(int pid, bool children) {
  std::ifstream f("/proc/" + std::to_string(pid) + "/stat");
  std::string line;
  if (!std::getline(f, line)) return 0;
  const size_t close = line.rfind(')');
  if (close == std::string::npos) return 0;
  std::istringstream rest(line.substr(close + 2));
  std::string field;
  double ticks = 0;
  // Fields after the name: state(3) ... utime(14) stime(15) cutime(16)
  // cstime(17); `rest` starts at field 3.
  for (int i = 3; i <= 17 && rest >> field; ++i) {
    if (i == 14 || i == 15 || (children && (i == 16 || i == 17))) {
      ticks += std::atof(field.c_str());
    }
  }
  return ticks / static_cast<double>(sysconf(_SC_CLK_TCK));
}

inline int ParentPid(int pid) {
  std::ifstream f("/proc/" + std::to_string(pid) + "/stat");
  std::string line;
  if (!std::getline(f, line)) return -1;
  const size_t close = line.rfind(')');
  if (close == std::string::npos) return -1;
  std::istringstream rest(line.substr(close + 2));
  std::string state;
  int ppid = -1;
  rest >> state >> ppid;
  return ppid;
}

// CPU seconds used by the PostgreSQL cluster so far: the postmaster, its
// live children, and the children it has reaped.
inline double ClusterCpuSeconds() {
  std::ifstream pidfile(harness::Get().pgdata + "/postmaster.pid");
  int postmaster = 0;
  if (!(pidfile >> postmaster)) return 0;
  double total = ProcCpuSeconds(postmaster, /*children=*/true);
  DIR* proc = opendir("/proc");
  if (proc == nullptr) return total;
  while (dirent* e = readdir(proc)) {
    const int pid = std::atoi(e->d_name);
    if (pid > 0 && ParentPid(pid) == postmaster) {
      total += ProcCpuSeconds(pid, false);
    }
  }
  closedir(proc);
  return total;
}

// CPU seconds of this process and of the children it has waited for.
inline double OwnCpuSeconds() {
  double total = 0;
  for (int who : {RUSAGE_SELF, RUSAGE_CHILDREN}) {
    rusage u{};
    getrusage(who, &u);
    total += static_cast<double>(u.ru_utime.tv_sec + u.ru_stime.tv_sec) +
             static_cast<double>(u.ru_utime.tv_usec + u.ru_stime.tv_usec) / 1e6;
  }
  return total;
}

// Cumulative counters of one database of the cluster, read through the
// provisioned main database (which has pg_stat_statements). Table
// counters reach the statistics when a backend ends or every second while
// it works, so read them after the sessions of interest have closed.
struct DbCounters {
  double wal_bytes = 0;   // pg_current_wal_lsn(), cluster-wide
  double statements = 0;  // pg_stat_statements calls in the database
  double commits = 0;     // pg_stat_database.xact_commit
  double inserted = 0;    // rows, tables of schema pggit
  double updated = 0;
  double hot_updated = 0;
  double deleted = 0;
  double enqueue_rows = 0;  // inserted into alerts and the queue
  double cluster_cpu = 0;   // seconds
  double own_cpu = 0;       // seconds, this process and reaped children

  static DbCounters Read(const std::string& db) {
    DbCounters c;
    pqxx::connection conn(harness::Get().admin_dsn);
    pqxx::nontransaction tx(conn);
    const pqxx::row r = tx.exec_params1(
        "SELECT pg_wal_lsn_diff(pg_current_wal_lsn(), '0/0')::float8, "
        "(SELECT xact_commit FROM pg_stat_database WHERE datname = $1)::float8",
        db);
    c.wal_bytes = r[0].as<double>();
    c.commits = r[1].as<double>();
    pqxx::connection main(harness::Get().dsn);
    pqxx::nontransaction mtx(main);
    c.statements = mtx.exec_params1(
                          "SELECT coalesce(sum(calls), 0)::float8 FROM "
                          "pg_stat_statements s JOIN pg_database d ON d.oid = "
                          "s.dbid WHERE d.datname = $1",
                          db)[0]
                       .as<double>();
    pqxx::connection own(harness::Get().admin_dsn.substr(
                             0, harness::Get().admin_dsn.rfind('/') + 1) +
                         db);
    pqxx::nontransaction otx(own);
    const pqxx::row t = otx.exec1(
        "SELECT coalesce(sum(n_tup_ins), 0)::float8, "
        "coalesce(sum(n_tup_upd), 0)::float8, "
        "coalesce(sum(n_tup_hot_upd), 0)::float8, "
        "coalesce(sum(n_tup_del), 0)::float8, "
        "coalesce(sum(n_tup_ins) FILTER (WHERE relname IN ('alerts', "
        "'alert_delivery_queue')), 0)::float8 "
        "FROM pg_stat_user_tables WHERE schemaname = 'pggit'");
    c.inserted = t[0].as<double>();
    c.updated = t[1].as<double>();
    c.hot_updated = t[2].as<double>();
    c.deleted = t[3].as<double>();
    c.enqueue_rows = t[4].as<double>();
    c.cluster_cpu = ClusterCpuSeconds();
    c.own_cpu = OwnCpuSeconds();
    return c;
  }
};

// What a case cost per delivery: the difference of two DbCounters.
struct CostPerDelivery {
  double wal = 0, statements = 0, commits = 0, rows = 0, hot_share = 0;
  double db_cpu_us = 0, own_cpu_us = 0;

  static CostPerDelivery Between(const DbCounters& a, const DbCounters& b,
                                 double deliveries) {
    CostPerDelivery c;
    c.wal = (b.wal_bytes - a.wal_bytes) / deliveries;
    c.statements = (b.statements - a.statements) / deliveries;
    c.commits = (b.commits - a.commits) / deliveries;
    // Rows the delivery wrote: everything but the enqueue's inserts.
    const double written = (b.inserted - a.inserted) -
                           (b.enqueue_rows - a.enqueue_rows) +
                           (b.updated - a.updated) + (b.deleted - a.deleted);
    c.rows = written / deliveries;
    const double updated = b.updated - a.updated;
    c.hot_share = updated > 0 ? (b.hot_updated - a.hot_updated) / updated : 0;
    c.db_cpu_us = 1e6 * (b.cluster_cpu - a.cluster_cpu) / deliveries;
    c.own_cpu_us = 1e6 * (b.own_cpu - a.own_cpu) / deliveries;
    return c;
  }
};

// pgbench on a scratch database of the same cluster.
struct PgbenchResult {
  double tps = 0;
  double wal_per_txn = 0;
  double db_cpu_us = 0;      // cluster CPU per transaction
  double client_cpu_us = 0;  // pgbench's own CPU per transaction
};

inline void PgbenchInit() {
  harness::AdminQuery("postgres", "DROP DATABASE IF EXISTS bench_pgbench");
  harness::AdminQuery("postgres", "CREATE DATABASE bench_pgbench");
  std::string out;
  const auto& s = harness::Get();
  const std::string url =
      "postgresql://postgres@127.0.0.1:" + std::to_string(s.pgport) +
      "/bench_pgbench";
  if (harness::Run(s.pgbin + "/pgbench -q -i -s 10 '" + url + "'", &out) != 0) {
    std::fprintf(stderr, "pgbench -i failed: %s\n", out.c_str());
    std::exit(1);
  }
}

inline PgbenchResult PgbenchRun(int seconds) {
  const auto& s = harness::Get();
  const std::string url =
      "postgresql://postgres@127.0.0.1:" + std::to_string(s.pgport) +
      "/bench_pgbench";
  const DbCounters before = DbCounters::Read("bench_pgbench");
  std::string out;
  harness::Run(s.pgbin + "/pgbench -c 8 -j 2 -T " + std::to_string(seconds) +
                   " '" + url + "'",
               &out);
  const DbCounters after = DbCounters::Read("bench_pgbench");
  PgbenchResult r;
  std::smatch m;
  static const std::regex kTps(
      "tps = ([0-9.]+) \\(without initial connection time\\)");
  static const std::regex kTxns(
      "number of transactions actually processed: "
      "([0-9]+)");
  double txns = 0;
  if (std::regex_search(out, m, kTps)) r.tps = std::stod(m[1].str());
  if (std::regex_search(out, m, kTxns)) txns = std::stod(m[1].str());
  if (txns > 0) {
    r.wal_per_txn = (after.wal_bytes - before.wal_bytes) / txns;
    r.db_cpu_us = 1e6 * (after.cluster_cpu - before.cluster_cpu) / txns;
    r.client_cpu_us = 1e6 * (after.own_cpu - before.own_cpu) / txns;
  } else {
    std::fprintf(stderr, "pgbench gave no result: %s\n", out.c_str());
  }
  return r;
}

}  // namespace pggitops::bench

#endif  // PGGITOPS_BENCH_DELIVERY_BENCH_UTIL_H_
