// deliver_webhook: embed the pggitops delivery engine in a program.
//
//   deliver_webhook --dsn postgresql://pggit:pggit@127.0.0.1/pggit
//       [--migrate] [--webhook-url URL] [--alerts N]
//       [--allow-private-targets] [--lease-seconds S] [--poll-ms MS]
//       [--max-in-flight N] [--per-endpoint N] [--workers N]
//       [--shutdown-seconds S]
//
// With --webhook-url it registers a webhook (named after the URL) through
// WebhookStore, and with --alerts N inserts N alerts through EnqueueAlert;
// then it delivers until SIGTERM or SIGINT, and shuts down cleanly
// (attempts in flight finish for up to --shutdown-seconds, 10 by default;
// unfinished rows go back to the queue). It prints "ready" once the engine
// runs, and at the end what it delivered and why deliveries failed (from
// the webhooks' delivery history). The tests use it as the process they
// kill -9.
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
#include "pggitops/webhook_store.h"

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

constexpr char kUsage[] = R"(usage: deliver_webhook --dsn DSN [options]

Delivers queued webhook deliveries with the pggitops delivery engine until
SIGTERM or SIGINT, then shuts down cleanly and prints what happened (and
why deliveries failed).

  --dsn DSN                 libpq connection string (required)
  --migrate                 apply the schema migrations first
  --webhook-url URL         register a webhook for URL (named after it;
                            reused when it exists)
  --alerts N                insert N INFO alerts before delivering
  --allow-private-targets   deliver to private, loopback and link-local
                            addresses too (off: such deliveries fail)
  --lease-seconds S         lease of a claimed delivery (default 30)
  --poll-ms MS              polling fallback interval (default 5000)
  --max-in-flight N         attempts at once (default 256)
  --per-endpoint N          attempts at once per webhook (default 8)
  --workers N               dispatcher threads (default 2)
  --shutdown-seconds S      how long attempts in flight may finish at
                            shutdown (default 10)
  --help                    print this and exit
)";

// False (after saying why) for bad arguments; *help for --help.
bool Parse(int argc, char** argv, Args* a, bool* help) {
  for (int i = 1; i < argc; ++i) {
    const std::string arg = argv[i];
    if (arg == "--help" || arg == "-h") {
      *help = true;
      return true;
    }
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
                   "deliver_webhook: unknown or incomplete argument %s "
                   "(--help lists them)\n",
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

// Registers a webhook for `url`, named after it, through the library's
// store; an existing webhook of that name is reused. Returns its id.
absl::StatusOr<int64_t> AddWebhook(pggitops::ConnectionPool* pool,
                                   const std::string& url) {
  pggitops::WebhookStore store(pool);
  pggitops::WebhookFields fields;
  fields.name = url.substr(0, 255);
  fields.url = url;
  absl::StatusOr<pggitops::NewWebhook> made = store.Create(fields);
  if (made.ok()) return made->webhook.id;
  if (made.status().code() != absl::StatusCode::kAlreadyExists) {
    return made.status();
  }
  pggitops::WebhookFilter page;
  page.limit = 100;
  for (;; page.offset += page.limit) {
    absl::StatusOr<pggitops::WebhookPage> found = store.List(page);
    if (!found.ok()) return found.status();
    for (const pggitops::Webhook& w : found->items) {
      if (w.name == *fields.name) return w.id;
    }
    if (found->items.empty()) return made.status();
  }
}

// Prints why the most recent failed deliveries of the first 100 webhooks
// failed: each failed delivery keeps its last error (and every attempt's).
void PrintFailures(pggitops::ConnectionPool* pool) {
  pggitops::WebhookStore store(pool);
  pggitops::WebhookFilter webhooks;
  webhooks.limit = 100;
  absl::StatusOr<pggitops::WebhookPage> page = store.List(webhooks);
  if (!page.ok()) {
    std::printf("why deliveries failed: unknown (%s)\n",
                page.status().ToString().c_str());
    return;
  }
  pggitops::DeliveryFilter failed;
  failed.status = "failed";
  failed.limit = 5;
  for (const pggitops::Webhook& w : page->items) {
    absl::StatusOr<pggitops::DeliveryPage> h =
        store.DeliveryHistory(w.id, failed);
    if (!h.ok() || h->items.empty()) continue;
    std::printf("webhook %lld (%s): %lld failed deliveries, latest:\n",
                static_cast<long long>(w.id), w.url.c_str(),
                static_cast<long long>(h->total));
    for (const pggitops::Delivery& d : h->items) {
      std::printf("  alert %lld after %d attempt(s): %s\n",
                  static_cast<long long>(d.alert_id), d.attempt_count,
                  d.last_error.value_or("(no error recorded)").c_str());
    }
  }
}

}  // namespace

int main(int argc, char** argv) {
  Args args;
  bool help = false;
  if (!Parse(argc, argv, &args, &help)) return 2;
  if (help) {
    std::fputs(kUsage, stdout);
    return 0;
  }
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
    // The engine refuses private targets at connect time unless allowed;
    // say so now rather than only after the deliveries failed.
    absl::Status target =
        pggitops::CheckWebhookTargetHost(args.webhook_url, args.allow_private);
    if (!target.ok()) {
      std::fprintf(stderr,
                   "deliver_webhook: warning: %s: deliveries to it will fail "
                   "(--allow-private-targets allows them)\n",
                   std::string(target.message()).c_str());
    }
    absl::StatusOr<int64_t> id = AddWebhook(pool->get(), args.webhook_url);
    if (!id.ok()) return Fail("add webhook", id.status());
    std::printf("webhook %lld: %s\n", static_cast<long long>(*id),
                args.webhook_url.c_str());
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
  if (stats.failed_total > 0) PrintFailures(pool->get());
  return 0;
}
