// deliver_webhook: embed the pggitops delivery engine in a program.
//
//   deliver_webhook --dsn postgresql://pggit:pggit@127.0.0.1/pggit
//       [--migrate] [--webhook-url URL] [--alerts N]
//       [--allow-private-targets] [--lease-seconds S] [--poll-ms MS]
//       [--max-in-flight N] [--per-endpoint N] [--workers N]
//       [--shutdown-seconds S]
//
// With --webhook-url it registers a webhook (named after the URL) and with
// --alerts N inserts N alerts through EnqueueAlert; then it delivers until
// SIGTERM or SIGINT, and shuts down cleanly (attempts in flight finish for
// up to --shutdown-seconds, 10 by default; unfinished rows go back to the
// queue). It prints "ready" once
// the engine runs. The tests use it as the process they kill -9.
#include <signal.h>

#include <cstdio>
#include <cstdlib>
#include <memory>
#include <string>

#include "absl/time/clock.h"
#include "pggitops/connection_pool.h"
#include "pggitops/delivery_queue.h"
#include "pggitops/pg_listener.h"
#include "pggitops/schema.h"

namespace {

struct Args {
  std::string dsn;
  std::string webhook_url;
  bool migrate = false;
  bool allow_private = false;
  int alerts = 0;
  double lease_seconds = 30;
  int poll_ms = 5000;
  int max_in_flight = 256;
  int per_endpoint = 8;
  int workers = 2;
  double shutdown_seconds = 10;
};

bool Parse(int argc, char** argv, Args* a) {
  for (int i = 1; i < argc; ++i) {
    const std::string arg = argv[i];
    auto value = [&]() -> const char* {
      return i + 1 < argc ? argv[++i] : nullptr;
    };
    const char* v = nullptr;
    if (arg == "--migrate") {
      a->migrate = true;
    } else if (arg == "--allow-private-targets") {
      a->allow_private = true;
    } else if ((v = (arg == "--dsn" ? value() : nullptr))) {
      a->dsn = v;
    } else if ((v = (arg == "--webhook-url" ? value() : nullptr))) {
      a->webhook_url = v;
    } else if ((v = (arg == "--alerts" ? value() : nullptr))) {
      a->alerts = std::atoi(v);
    } else if ((v = (arg == "--lease-seconds" ? value() : nullptr))) {
      a->lease_seconds = std::atof(v);
    } else if ((v = (arg == "--poll-ms" ? value() : nullptr))) {
      a->poll_ms = std::atoi(v);
    } else if ((v = (arg == "--max-in-flight" ? value() : nullptr))) {
      a->max_in_flight = std::atoi(v);
    } else if ((v = (arg == "--per-endpoint" ? value() : nullptr))) {
      a->per_endpoint = std::atoi(v);
    } else if ((v = (arg == "--workers" ? value() : nullptr))) {
      a->workers = std::atoi(v);
    } else if ((v = (arg == "--shutdown-seconds" ? value() : nullptr))) {
      a->shutdown_seconds = std::atof(v);
    } else {
      std::fprintf(stderr,
                   "deliver_webhook: unknown or incomplete argument %s\n",
                   arg.c_str());
      return false;
    }
  }
  if (a->dsn.empty()) {
    std::fprintf(stderr, "deliver_webhook: --dsn is required\n");
    return false;
  }
  return true;
}

int Fail(const char* what, const absl::Status& s) {
  std::fprintf(stderr, "deliver_webhook: %s: %s\n", what, s.ToString().c_str());
  return 1;
}

// Registers a webhook for `url` (the library has no webhook CRUD: that is
// the HTTP API's job; plain SQL through the pool is enough here).
absl::Status AddWebhook(pggitops::ConnectionPool* pool,
                        const std::string& url) {
  absl::StatusOr<pggitops::PooledConnection> lease = pool->Acquire();
  if (!lease.ok()) return lease.status();
  return lease
      ->Query(
          "INSERT INTO pggit.webhooks (name, url, secret) VALUES ($1, $1, "
          "'whsec_ZXhhbXBsZS1zZWNyZXQtMjQtYnl0ZXMh')",
          {url})
      .status();
}

}  // namespace

int main(int argc, char** argv) {
  Args args;
  if (!Parse(argc, argv, &args)) return 2;
  // Signals are taken with sigwait below; block them before any thread.
  sigset_t stop_signals;
  sigemptyset(&stop_signals);
  sigaddset(&stop_signals, SIGTERM);
  sigaddset(&stop_signals, SIGINT);
  pthread_sigmask(SIG_BLOCK, &stop_signals, nullptr);

  if (args.migrate) {
    absl::StatusOr<pggitops::MigrateResult> m = pggitops::Migrate(args.dsn);
    if (!m.ok()) return Fail("migrate", m.status());
  }
  pggitops::PoolOptions pool_options;
  pool_options.dsn = args.dsn;
  pool_options.size = 4;
  auto pool = pggitops::ConnectionPool::Create(pool_options);
  if (!pool.ok()) return Fail("pool", pool.status());

  if (!args.webhook_url.empty()) {
    absl::Status s = AddWebhook(pool->get(), args.webhook_url);
    if (!s.ok()) return Fail("add webhook", s);
  }
  for (int i = 0; i < args.alerts; ++i) {
    pggitops::AlertInput alert;
    alert.operation_type = "example";
    alert.severity = "INFO";
    alert.message = "alert " + std::to_string(i);
    absl::StatusOr<int64_t> id = pggitops::EnqueueAlert(pool->get(), alert);
    if (!id.ok()) return Fail("enqueue", id.status());
  }

  // One listener per process; other components would subscribe to it too.
  pggitops::PgListenerOptions listener_options;
  listener_options.dsn = args.dsn;
  auto listener = pggitops::PgListener::Create(listener_options);
  if (!listener.ok()) return Fail("listener", listener.status());

  pggitops::DeliveryOptions options;
  options.listener = listener->get();
  options.allow_private_targets = args.allow_private;
  options.lease = absl::Seconds(args.lease_seconds);
  options.poll_interval = absl::Milliseconds(args.poll_ms);
  options.max_in_flight = args.max_in_flight;
  options.max_in_flight_per_endpoint = args.per_endpoint;
  options.workers = args.workers;
  auto engine = pggitops::DeliveryEngine::Create(pool->get(), options);
  if (!engine.ok()) return Fail("engine", engine.status());
  if (absl::Status s = (*engine)->Start(); !s.ok()) return Fail("start", s);
  if (absl::Status s = (*listener)->Start(); !s.ok()) return Fail("listen", s);
  std::printf("ready\n");
  std::fflush(stdout);

  int sig = 0;
  sigwait(&stop_signals, &sig);
  (*engine)->Shutdown(absl::Now() + absl::Seconds(args.shutdown_seconds));
  (*listener)->Shutdown();
  const pggitops::DeliveryStats stats = (*engine)->Stats();
  std::printf("stopped: delivered=%lld failed=%lld handed_back=%lld\n",
              static_cast<long long>(stats.delivered_total),
              static_cast<long long>(stats.failed_total),
              static_cast<long long>(stats.handed_back_total));
  return 0;
}
