// delivery_bench: end-to-end webhook delivery against a real PostgreSQL 15
// (the harness's, or PGGITOPS_TEST_* services) and receivers on 127.0.0.1.
//
//   1. throughput: N alerts (default 10 000) inserted as fast as possible
//      (100 per INSERT) while an engine with default settings delivers them
//      to 1 receiver, then to 10 receivers (N deliveries each: N/10 alerts
//      x 10 webhooks, so both runs move the same number of deliveries);
//      deliveries/s from the first insert to the last receipt;
//   2. latency: 1 000 alerts at a steady 200/s to 1 receiver; enqueue (just
//      before INSERT) to receipt p50/p99, with no backlog;
//   3. ceiling: pgbench TPS (TPC-B-like, 8 clients, 10 s) on the same
//      cluster in the same run.
//
// Run: meson test -C <build> --benchmark delivery_bench --verbose, or
// <build>/bench/delivery_bench [--alerts N] [--pgbench-seconds S].
#include <httplib.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <map>
#include <memory>
#include <mutex>
#include <pqxx/pqxx>
#include <regex>
#include <string>
#include <thread>
#include <vector>

#include "pggitops/connection_pool.h"
#include "pggitops/delivery_queue.h"
#include "pggitops/log.h"
#include "pggitops/schema.h"
#include "tests/harness/harness.h"

namespace {

using Clock = std::chrono::steady_clock;
using pggitops::harness::Get;

// Records when each webhook-id first arrived.
class Sink {
 public:
  Sink() {
    server_.new_task_queue = [] { return new httplib::ThreadPool(32); };
    // Real receivers answer without Nagle delays; httplib defaults to them.
    server_.set_tcp_nodelay(true);
    server_.Post(".*",
                 [this](const httplib::Request& req, httplib::Response& res) {
                   const auto now = Clock::now();
                   {
                     std::lock_guard<std::mutex> lock(mu_);
                     arrived_.emplace(req.get_header_value("webhook-id"), now);
                   }
                   res.set_content("ok", "text/plain");
                 });
    port_ = server_.bind_to_any_port("127.0.0.1");
    thread_ = std::thread([this] { server_.listen_after_bind(); });
    while (!server_.is_running()) {
      std::this_thread::sleep_for(std::chrono::milliseconds(1));
    }
  }
  ~Sink() {
    server_.stop();
    thread_.join();
  }
  std::string url() const {
    return "http://127.0.0.1:" + std::to_string(port_) + "/hook";
  }
  size_t count() {
    std::lock_guard<std::mutex> lock(mu_);
    return arrived_.size();
  }
  std::map<std::string, Clock::time_point> arrived() {
    std::lock_guard<std::mutex> lock(mu_);
    return arrived_;
  }

 private:
  httplib::Server server_;
  int port_ = 0;
  std::thread thread_;
  std::mutex mu_;
  std::map<std::string, Clock::time_point> arrived_;
};

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
                                                 const std::string& dsn) {
  pggitops::DeliveryOptions o;  // defaults, as CONTRACT section 3
  o.dsn = dsn;
  o.allow_private_targets = true;  // the receivers are on loopback
  auto e = pggitops::DeliveryEngine::Create(pool, o);
  if (!e.ok() || !(*e)->Start().ok()) {
    std::fprintf(stderr, "engine failed to start\n");
    std::exit(1);
  }
  return *std::move(e);
}

void AddWebhooks(const std::string& dsn, const std::vector<Sink*>& sinks) {
  pqxx::connection c(dsn);
  pqxx::nontransaction tx(c);
  for (size_t i = 0; i < sinks.size(); ++i) {
    tx.exec_params(
        "INSERT INTO pggit.webhooks (name, url, secret) VALUES "
        "($1, $2, 'whsec_YmVuY2htYXJrLXNlY3JldC0yNC1ieXRlcyE=')",
        "sink" + std::to_string(i), sinks[i]->url());
  }
}

double Seconds(Clock::duration d) {
  return std::chrono::duration<double>(d).count();
}

// Inserts `alerts` alerts, 100 per statement, as fast as possible, and
// returns deliveries/s once every sink has all of them.
double Throughput(int alerts, int receivers) {
  const std::string dsn =
      Database("bench_delivery_" + std::to_string(receivers));
  std::vector<std::unique_ptr<Sink>> sinks;
  std::vector<Sink*> raw;
  for (int i = 0; i < receivers; ++i) {
    sinks.push_back(std::make_unique<Sink>());
    raw.push_back(sinks.back().get());
  }
  AddWebhooks(dsn, raw);
  auto pool = Pool(dsn);
  auto engine = Engine(pool.get(), dsn);
  const size_t total = static_cast<size_t>(alerts) * receivers;
  pqxx::connection c(dsn);
  const auto start = Clock::now();
  for (int done = 0; done < alerts; done += 100) {
    pqxx::nontransaction tx(c);
    tx.exec_params(
        "INSERT INTO pggit.alerts (operation_type, severity, message) "
        "SELECT 'bench', 'INFO', 'm' FROM generate_series(1, $1)",
        std::min(100, alerts - done));
  }
  const double insert_s = Seconds(Clock::now() - start);
  const auto deadline = start + std::chrono::minutes(3);
  auto received = [&] {
    size_t n = 0;
    for (Sink* s : raw) n += s->count();
    return n;
  };
  while (received() < total && Clock::now() < deadline) {
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
  const double took = Seconds(Clock::now() - start);
  engine->Shutdown(absl::Now() + absl::Seconds(5));
  if (received() < total) {
    std::printf(
        "| %d receiver(s) | %zu deliveries | INCOMPLETE: %zu in %.1f s |\n",
        receivers, total, received(), took);
    return 0;
  }
  const double rate = static_cast<double>(total) / took;
  std::printf(
      "| %d receiver(s) | %zu deliveries (%d alerts) | %.1f s (inserts "
      "took %.1f s) | %.0f deliveries/s |\n",
      receivers, total, alerts, took, insert_s, rate);
  return rate;
}

void Latency(int alerts, int per_second) {
  const std::string dsn = Database("bench_delivery_latency");
  Sink sink;
  AddWebhooks(dsn, {&sink});
  const int64_t webhook = 1;
  auto pool = Pool(dsn);
  auto engine = Engine(pool.get(), dsn);
  std::this_thread::sleep_for(std::chrono::milliseconds(300));
  pqxx::connection c(dsn);
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
    sent["msg_" + r[0][0].as<std::string>() + "_" + std::to_string(webhook)] =
        before;
  }
  const auto deadline = Clock::now() + std::chrono::seconds(30);
  while (sink.count() < sent.size() && Clock::now() < deadline) {
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
  engine->Shutdown(absl::Now() + absl::Seconds(5));
  std::vector<double> ms;
  for (const auto& [id, at] : sink.arrived()) {
    auto it = sent.find(id);
    if (it != sent.end()) ms.push_back(1000 * Seconds(at - it->second));
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
      "| enqueue-to-receipt, %d alerts at %d/s | p50 %.1f ms | p99 "
      "%.1f ms | max %.1f ms | received %zu |\n",
      alerts, per_second, pct(0.50), pct(0.99), ms.back(), ms.size());
}

void Pgbench(int seconds) {
  const auto& s = Get();
  pggitops::harness::AdminQuery("postgres",
                                "DROP DATABASE IF EXISTS bench_pgbench");
  pggitops::harness::AdminQuery("postgres", "CREATE DATABASE bench_pgbench");
  const std::string url =
      "postgresql://postgres@127.0.0.1:" + std::to_string(s.pgport) +
      "/bench_pgbench";
  const std::string pgbench = s.pgbin + "/pgbench";
  std::string out;
  if (pggitops::harness::Run(pgbench + " -q -i -s 10 '" + url + "'", &out) !=
      0) {
    std::printf("| pgbench | init failed: %s |\n", out.c_str());
    return;
  }
  out.clear();
  pggitops::harness::Run(
      pgbench + " -c 8 -j 2 -T " + std::to_string(seconds) + " '" + url + "'",
      &out);
  std::smatch m;
  const std::regex tps("tps = ([0-9.]+) \\(without initial connection time\\)");
  std::printf(
      "| pgbench TPC-B-like, scale 10, 8 clients, %d s | %s TPS |\n", seconds,
      std::regex_search(out, m, tps) ? m[1].str().c_str() : "(no result)");
  pggitops::harness::AdminQuery("postgres",
                                "DROP DATABASE IF EXISTS bench_pgbench");
}

}  // namespace

int main(int argc, char** argv) {
  int alerts = 10000;
  int pgbench_seconds = 10;
  for (int i = 1; i + 1 < argc; i += 2) {
    const std::string flag = argv[i];
    if (flag == "--alerts") alerts = std::atoi(argv[i + 1]);
    if (flag == "--pgbench-seconds") pgbench_seconds = std::atoi(argv[i + 1]);
  }
  pggitops::Log::SetLevel(pggitops::LogLevel::kWarning);
  std::printf("delivery_bench: %d hardware threads\n\n",
              static_cast<int>(std::thread::hardware_concurrency()));
  Throughput(alerts, 1);
  Throughput(alerts / 10, 10);
  Latency(1000, 200);
  Pgbench(pgbench_seconds);
  return 0;
}
