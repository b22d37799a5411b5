// delivery_bench: end-to-end webhook delivery against a real PostgreSQL 15
// (the harness's, or PGGITOPS_TEST_* services) and receivers on 127.0.0.1,
// with pgbench on the same cluster in the same run as the yardstick.
//
//   http      the transport alone to one receiver (no database): the
//             ceiling of the HTTP side on this machine;
//   one       1 receiver, N alerts (default 10 000) inserted in one
//             statement while an engine with default settings waits;
//             deliveries/s from the commit to the last receipt;
//   ten       10 receivers, N alerts fanned out to 10 webhooks (10 N
//             deliveries);
//   live      1 receiver, N alerts inserted 100 per statement as fast as
//             possible while the engine delivers (the old benchmark's
//             pattern; the insert time counts);
//   latency   1 000 alerts at a steady 200/s to 1 receiver: enqueue (just
//             before INSERT) to receipt, p50/p99;
//   scale     1, 2 and 3 engines, each in its own process (this program
//             with --engine-child), 10 receivers, N/5 alerts: deliveries/s
//             and duplicate receipts.
// For each delivery case: the ratio to pgbench TPC-B TPS (mean of a run
// before and one after the cases), and per delivery the WAL bytes,
// statements, commits and rows the delivery wrote (enqueue excluded), and
// the CPU time of the PostgreSQL cluster and of this process (engine and
// receivers).
//
// Run: meson test -C <build> --benchmark delivery_bench --verbose, or
// <build>/bench/delivery_bench [--alerts N] [--pgbench-seconds S]
//                              [--cases http,one,ten,live,latency,scale]
#include <signal.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <map>
#include <memory>
#include <pqxx/pqxx>
#include <string>
#include <thread>
#include <vector>

#include "bench/bench_receiver.h"
#include "bench/delivery_bench_util.h"
#include "pggitops/connection_pool.h"
#include "pggitops/delivery_queue.h"
#include "pggitops/log.h"
#include "pggitops/schema.h"
#include "tests/harness/harness.h"

namespace {

using Clock = std::chrono::steady_clock;
using pggitops::bench::BenchReceiver;
using pggitops::bench::CostPerDelivery;
using pggitops::bench::DbCounters;

double Seconds(Clock::duration d) {
  return std::chrono::duration<double>(d).count();
}

std::string Database(const std::string& name) {
  const std::string dsn = pggitops::harness::FreshDatabase(name);
  absl::StatusOr<pggitops::MigrateResult> m = pggitops::Migrate(dsn);
  if (!m.ok()) {
    std::fprintf(stderr, "migrate: %s\n", m.status().ToString().c_str());
    std::exit(1);
  }
  return dsn;
}

std::unique_ptr<pggitops::ConnectionPool> Pool(const std::string& dsn) {
  pggitops::PoolOptions o;
  o.dsn = dsn;
  o.size = 8;
  return *pggitops::ConnectionPool::Create(o);
}

std::unique_ptr<pggitops::DeliveryEngine> Engine(pggitops::ConnectionPool* pool,
                                                 const std::string& dsn,
                                                 const std::string& id = "") {
  pggitops::DeliveryOptions o;  // defaults, as CONTRACT section 3
  o.dsn = dsn;
  o.instance_id = id;
  o.allow_private_targets = true;  // the receivers are on loopback
  auto e = pggitops::DeliveryEngine::Create(pool, o);
  if (!e.ok() || !(*e)->Start().ok()) {
    std::fprintf(stderr, "engine failed to start\n");
    std::exit(1);
  }
  return *std::move(e);
}

struct Receivers {
  explicit Receivers(int n) {
    for (int i = 0; i < n; ++i)
      all.push_back(std::make_unique<BenchReceiver>());
  }
  size_t distinct() const {
    size_t n = 0;
    for (const auto& r : all) n += r->distinct();
    return n;
  }
  size_t requests() const {
    size_t n = 0;
    for (const auto& r : all) n += r->requests();
    return n;
  }
  // Waits until `total` distinct deliveries arrived (or 5 minutes).
  bool WaitFor(size_t total) const {
    const auto deadline = Clock::now() + std::chrono::minutes(5);
    while (distinct() < total && Clock::now() < deadline) {
      std::this_thread::sleep_for(std::chrono::milliseconds(2));
    }
    return distinct() >= total;
  }
  std::vector<std::unique_ptr<BenchReceiver>> all;
};

void AddWebhooks(const std::string& dsn, const Receivers& rx) {
  pqxx::connection c(dsn);
  pqxx::nontransaction tx(c);
  for (size_t i = 0; i < rx.all.size(); ++i) {
    tx.exec_params(
        "INSERT INTO pggit.webhooks (name, url, secret) VALUES "
        "($1, $2, 'whsec_YmVuY2htYXJrLXNlY3JldC0yNC1ieXRlcyE=')",
        "sink" + std::to_string(i), rx.all[i]->url());
  }
}

void InsertAlerts(pqxx::connection& c, int n) {
  pqxx::nontransaction tx(c);
  tx.exec_params(
      "INSERT INTO pggit.alerts (operation_type, severity, message) "
      "SELECT 'bench', 'INFO', 'm' FROM generate_series(1, $1)",
      n);
}

// Waits until the engine listens for notifications (it is ready).
void WaitForListener(const pggitops::DeliveryEngine& engine) {
  for (int i = 0; i < 1000 && !engine.Stats().listener_connected; ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
}

// A fresh database with one webhook per receiver, and an engine with
// default settings, started and listening.
struct Setup {
  Setup(const std::string& name, int receivers)
      : db(name), dsn(Database(name)), rx(receivers) {
    AddWebhooks(dsn, rx);
    pool = Pool(dsn);
    engine = Engine(pool.get(), dsn);
    WaitForListener(*engine);
  }
  // Stops the engine and closes its sessions, which flushes their table
  // statistics.
  void Stop() {
    engine->Shutdown(absl::Now() + absl::Seconds(5));
    engine.reset();
    pool.reset();
    std::this_thread::sleep_for(std::chrono::milliseconds(500));
  }
  std::string db, dsn;
  Receivers rx;
  std::unique_ptr<pggitops::ConnectionPool> pool;
  std::unique_ptr<pggitops::DeliveryEngine> engine;
};

struct Outcome {
  std::string name;
  size_t deliveries = 0;
  double seconds = 0;
  double rate = 0;
  double enqueue_wal = 0;  // per delivery
  CostPerDelivery cost;
};

void PrintOutcome(const Outcome& o, double pgbench_tps) {
  std::printf(
      "| %s | %zu | %.2f s | **%.0f/s** | %.2f x | %.0f B | %.2f | %.3f | "
      "%.2f (%.0f %% HOT) | %.0f us | %.0f us | %.0f B |\n",
      o.name.c_str(), o.deliveries, o.seconds, o.rate,
      pgbench_tps > 0 ? o.rate / pgbench_tps : 0, o.cost.wal, o.cost.statements,
      o.cost.commits, o.cost.rows, 100 * o.cost.hot_share, o.cost.db_cpu_us,
      o.cost.own_cpu_us, o.enqueue_wal);
}

// Waits for every delivery of `o`, stops the engine and fills in `o`, with
// costs counted from `from` on.
void Finish(Setup* b, Clock::time_point start, const DbCounters& from,
            Outcome* o) {
  const bool all = b->rx.WaitFor(o->deliveries);
  o->seconds = Seconds(Clock::now() - start);
  b->Stop();
  const DbCounters after = DbCounters::Read(b->db);
  if (!all) o->name += " (INCOMPLETE)";
  o->rate = static_cast<double>(b->rx.distinct()) / o->seconds;
  o->cost = CostPerDelivery::Between(from, after, o->deliveries);
}

// Alerts inserted in one statement while the engine waits; timed from the
// commit to the last receipt.
Outcome Burst(const std::string& name, int alerts, int receivers) {
  Setup b("bench_delivery_" + name, receivers);
  Outcome o;
  o.name = name;
  o.deliveries = static_cast<size_t>(alerts) * receivers;
  const DbCounters before = DbCounters::Read(b.db);
  // The enqueue's rows, WAL and CPU are not the delivery's: count from the
  // commit of the insert on.
  DbCounters from = before;
  auto start = Clock::now();
  {
    pqxx::connection c(b.dsn);
    InsertAlerts(c, alerts);
    start = Clock::now();
    from.cluster_cpu = pggitops::bench::ClusterCpuSeconds();
    from.own_cpu = pggitops::bench::OwnCpuSeconds();
    pqxx::nontransaction tx(c);
    from.wal_bytes =
        tx.exec1(
              "SELECT pg_wal_lsn_diff(pg_current_wal_lsn(), '0/0')::float8")[0]
            .as<double>();
    from.statements += 2;  // the INSERT and this SELECT
    from.commits += 2;
  }
  Finish(&b, start, from, &o);
  o.enqueue_wal = (from.wal_bytes - before.wal_bytes) / o.deliveries;
  return o;
}

// Alerts inserted 100 per statement, as fast as possible, while the engine
// delivers; timed from the first insert to the last receipt.
Outcome Live(int alerts) {
  Setup b("bench_delivery_live", 1);
  Outcome o;
  o.name = "live: 1 receiver, inserts while delivering";
  o.deliveries = static_cast<size_t>(alerts);
  DbCounters from = DbCounters::Read(b.db);
  from.statements += (alerts + 99) / 100;  // the INSERTs
  const auto start = Clock::now();
  {
    pqxx::connection c(b.dsn);
    for (int done = 0; done < alerts; done += 100) {
      InsertAlerts(c, std::min(100, alerts - done));
    }
  }
  Finish(&b, start, from, &o);
  o.enqueue_wal = -1;  // included in cost.wal
  return o;
}

void Http(int requests) {
  BenchReceiver rx;
  pggitops::HttpTransportOptions t;  // defaults: 8 per endpoint
  t.allow_private_targets = true;
  auto transport = *pggitops::NewHttpTransport(t);
  std::atomic<int> done{0};
  const double cpu0 = pggitops::bench::OwnCpuSeconds();
  const auto start = Clock::now();
  for (int i = 0; i < requests; ++i) {
    pggitops::WebhookRequest r;
    r.url = rx.url();
    r.body = std::string(300, 'x');
    r.endpoint_key = "1";
    r.headers = {{"webhook-id", "msg_" + std::to_string(i)}};
    transport->Send(std::move(r),
                    [&done](pggitops::WebhookResponse) { done.fetch_add(1); });
  }
  while (done.load() < requests) {
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
  }
  const double s = Seconds(Clock::now() - start);
  std::printf(
      "| HTTP only: transport to 1 receiver, 8 at once, no database | %d | "
      "%.2f s | %.0f/s | CPU %.0f us per request (sender and receiver) |\n\n",
      requests, s, requests / s,
      1e6 * (pggitops::bench::OwnCpuSeconds() - cpu0) / requests);
}

void Latency(int alerts, int per_second) {
  Setup b("bench_delivery_latency", 1);
  pqxx::connection c(b.dsn);
  std::map<std::string, Clock::time_point> sent;
  const auto step = std::chrono::microseconds(1'000'000 / per_second);
  auto next = Clock::now();
  for (int i = 0; i < alerts; ++i) {
    std::this_thread::sleep_until(next);
    next += step;
    const auto before = Clock::now();
    pqxx::nontransaction tx(c);
    const pqxx::result r = tx.exec(
        "INSERT INTO pggit.alerts (operation_type, severity, message) VALUES "
        "('bench', 'INFO', 'm') RETURNING id");
    sent["msg_" + r[0][0].as<std::string>() + "_1"] = before;
  }
  b.rx.WaitFor(sent.size());
  const auto receipts = b.rx.all[0]->receipts();
  b.Stop();
  std::vector<double> ms;
  for (const auto& [id, receipt] : receipts) {
    auto it = sent.find(id);
    if (it != sent.end()) {
      ms.push_back(1000 * Seconds(receipt.first - it->second));
    }
  }
  std::sort(ms.begin(), ms.end());
  if (ms.empty()) {
    std::printf("| latency | no deliveries |\n");
    return;
  }
  auto pct = [&](double p) {
    return ms[std::min(ms.size() - 1, static_cast<size_t>(p * ms.size()))];
  };
  std::printf(
      "| enqueue to receipt, %d alerts at %d/s, 1 receiver | p50 %.1f ms | "
      "p99 %.1f ms | max %.1f ms | received %zu |\n\n",
      alerts, per_second, pct(0.50), pct(0.99), ms.back(), ms.size());
}

std::string SelfPath() {
  char path[4096] = {0};
  const ssize_t n = readlink("/proc/self/exe", path, sizeof(path) - 1);
  return n > 0 ? std::string(path, static_cast<size_t>(n)) : "delivery_bench";
}

// 1, 2 and 3 engines, each in a process of its own, on one database.
void ScaleOut(int alerts) {
  std::printf(
      "| engines (processes) | deliveries | time | deliveries/s | duplicate "
      "receipts |\n| --- | --- | --- | --- | --- |\n");
  for (int engines = 1; engines <= 3; ++engines) {
    const std::string db = "bench_delivery_scale" + std::to_string(engines);
    const std::string dsn = Database(db);
    Receivers rx(10);
    AddWebhooks(dsn, rx);
    std::vector<std::unique_ptr<pggitops::harness::Process>> children;
    for (int i = 0; i < engines; ++i) {
      children.push_back(std::make_unique<pggitops::harness::Process>(
          std::vector<std::string>{SelfPath(), "--engine-child", dsn,
                                   "engine-" + std::to_string(i)}));
    }
    for (auto& child : children) {  // each says "ready" once it listens
      for (int i = 0;
           i < 1000 && child->Output().find("ready") == std::string::npos;
           ++i) {
        std::this_thread::sleep_for(std::chrono::milliseconds(5));
      }
    }
    const size_t total = static_cast<size_t>(alerts) * 10;
    {
      pqxx::connection c(dsn);
      InsertAlerts(c, alerts);
    }
    const auto start = Clock::now();
    const bool all = rx.WaitFor(total);
    const double s = Seconds(Clock::now() - start);
    for (auto& child : children) child->Signal(SIGTERM);
    for (auto& child : children) {
      if (child->Wait(30000) != 0) {
        std::fprintf(stderr, "engine child: %s\n", child->Output().c_str());
      }
    }
    std::printf("| %d | %zu%s | %.2f s | **%.0f/s** | %zu |\n", engines, total,
                all ? "" : " (INCOMPLETE)", s,
                static_cast<double>(rx.distinct()) / s,
                rx.requests() - rx.distinct());
  }
  std::printf("\n");
}

// --engine-child DSN ID: one engine with default settings until SIGTERM.
int EngineChild(const std::string& dsn, const std::string& id) {
  sigset_t set;
  sigemptyset(&set);
  sigaddset(&set, SIGTERM);
  pthread_sigmask(SIG_BLOCK, &set, nullptr);  // before any thread starts
  auto pool = Pool(dsn);
  auto engine = Engine(pool.get(), dsn, id);
  WaitForListener(*engine);
  std::printf("ready\n");
  std::fflush(stdout);
  int sig = 0;
  sigwait(&set, &sig);
  engine->Shutdown(absl::Now() + absl::Seconds(5));
  return 0;
}

bool Has(const std::string& cases, const std::string& name) {
  return ("," + cases + ",").find("," + name + ",") != std::string::npos;
}

}  // namespace

int main(int argc, char** argv) {
  pggitops::Log::SetLevel(pggitops::LogLevel::kWarning);
  if (argc == 4 && std::string(argv[1]) == "--engine-child") {
    return EngineChild(argv[2], argv[3]);
  }
  int alerts = 10000;
  int pgbench_seconds = 10;
  std::string cases = "http,one,ten,live,latency,scale";
  for (int i = 1; i + 1 < argc; i += 2) {
    const std::string flag = argv[i];
    if (flag == "--alerts") alerts = std::atoi(argv[i + 1]);
    if (flag == "--pgbench-seconds") pgbench_seconds = std::atoi(argv[i + 1]);
    if (flag == "--cases") cases = argv[i + 1];
  }
  std::setvbuf(stdout, nullptr, _IOLBF, 0);
  std::printf("delivery_bench: %d hardware threads\n\n",
              static_cast<int>(std::thread::hardware_concurrency()));
  pggitops::bench::PgbenchInit();
  const auto first = pggitops::bench::PgbenchRun(pgbench_seconds);
  if (Has(cases, "http")) Http(alerts);
  std::vector<Outcome> outcomes;
  if (Has(cases, "one")) outcomes.push_back(Burst("one", alerts, 1));
  if (Has(cases, "ten")) outcomes.push_back(Burst("ten", alerts, 10));
  if (Has(cases, "live")) outcomes.push_back(Live(alerts));
  if (Has(cases, "latency")) Latency(1000, 200);
  if (Has(cases, "scale")) ScaleOut(std::max(1, alerts / 5));
  const auto last = pggitops::bench::PgbenchRun(pgbench_seconds);
  const double tps = (first.tps + last.tps) / 2;
  std::printf(
      "| case | deliveries | time | rate | x pgbench | WAL | statements | "
      "commits | rows written | DB CPU | engine+receiver CPU | enqueue WAL "
      "|\n| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- "
      "| --- |\n");
  for (const Outcome& o : outcomes) PrintOutcome(o, tps);
  std::printf(
      "\n| pgbench TPC-B-like, scale 10, 8 clients, %d s | before %.0f TPS "
      "| after %.0f TPS | mean **%.0f TPS** | WAL %.0f B/txn | DB CPU %.0f "
      "us/txn | pgbench CPU %.0f us/txn |\n",
      pgbench_seconds, first.tps, last.tps, tps,
      (first.wal_per_txn + last.wal_per_txn) / 2,
      (first.db_cpu_us + last.db_cpu_us) / 2,
      (first.client_cpu_us + last.client_cpu_us) / 2);
  pggitops::harness::AdminQuery("postgres",
                                "DROP DATABASE IF EXISTS bench_pgbench");
  return 0;
}
