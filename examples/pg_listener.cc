// pg_listener: PostgreSQL LISTEN/NOTIFY with reconnection, in a program of
// your own.
//
//   pg_listener --dsn postgresql://user:pass@host:5432/db
//               [--channel NAME] [--count N] [--help]
//
// Subscribes to a channel, starts the listener's thread, then sends N
// notifications through a pool (pg_notify) and waits until the callback has
// seen them all. The listener reconnects by itself when the session breaks
// and calls its reconnect callbacks once every channel is listened to again
// (notifications sent meanwhile are lost: that is when to resynchronise).
// Exits 1, saying why, when the notifications do not arrive in 10 s.
#include "pggitops/pg_listener.h"

#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <string>
#include <vector>

#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "pggitops/connection_pool.h"

namespace {

constexpr char kUsage[] =
    "usage: pg_listener --dsn DSN [--channel NAME] [--count N]\n"
    "  DSN: postgresql://user:pass@host:port/db (default: $DATABASE_URL)\n"
    "  NAME: 1 to 63 letters, digits, _ (default example_events); N: 3\n";

// What the callback saw. The callback runs on the listener's thread, so
// the state it shares with main() is guarded.
struct Received {
  absl::Mutex mu;
  std::vector<std::string> payloads ABSL_GUARDED_BY(mu);
};

int Fail(const std::string& what, const absl::Status& s) {
  std::fprintf(stderr, "pg_listener: %s: %s\n", what.c_str(),
               s.ToString().c_str());
  return 1;
}

}  // namespace

int main(int argc, char** argv) {
  std::string dsn, channel = "example_events";
  int count = 3;
  if (const char* url = std::getenv("DATABASE_URL")) dsn = url;
  for (int i = 1; i < argc; ++i) {
    if (std::strcmp(argv[i], "--help") == 0 ||
        std::strcmp(argv[i], "-h") == 0) {
      std::fputs(kUsage, stdout);
      return 0;
    } else if (std::strcmp(argv[i], "--dsn") == 0 && i + 1 < argc) {
      dsn = argv[++i];
    } else if (std::strcmp(argv[i], "--channel") == 0 && i + 1 < argc) {
      channel = argv[++i];
    } else if (std::strcmp(argv[i], "--count") == 0 && i + 1 < argc) {
      count = std::atoi(argv[++i]);
    } else {
      std::fprintf(stderr, "pg_listener: unknown or incomplete argument %s\n%s",
                   argv[i], kUsage);
      return 2;
    }
  }
  if (dsn.empty() || count < 1) {
    std::fprintf(stderr,
                 "pg_listener: --dsn and a --count of at least 1 are "
                 "required\n%s",
                 kUsage);
    return 2;
  }

  // Create validates the options (the dsn is parsed too); nothing connects
  // before Start().
  pggitops::PgListenerOptions options;
  options.dsn = dsn;
  absl::StatusOr<std::unique_ptr<pggitops::PgListener>> listener =
      pggitops::PgListener::Create(options);
  if (!listener.ok()) return Fail("create", listener.status());

  Received received;
  absl::StatusOr<int> id =
      (*listener)->Subscribe(channel, [&received](const std::string& payload) {
        absl::MutexLock lock(&received.mu);
        received.payloads.push_back(payload);
      });
  if (!id.ok()) return Fail("subscribe", id.status());
  (*listener)->AddReconnectCallback(
      [] { std::printf("(re)connected: every channel is listened to\n"); });
  if (absl::Status s = (*listener)->Start(); !s.ok()) return Fail("start", s);
  if (!(*listener)->WaitUntilListening(absl::Seconds(10))) {
    return Fail("listen",
                absl::UnavailableError((*listener)->Stats().last_error));
  }

  // Anyone may notify: here through a pool, as the application's writes
  // would (in a transaction, the notification leaves at COMMIT).
  pggitops::PoolOptions pool_options;
  pool_options.dsn = dsn;
  pool_options.size = 1;
  auto pool = pggitops::ConnectionPool::Create(pool_options);
  if (!pool.ok()) return Fail("pool", pool.status());
  for (int i = 0; i < count; ++i) {
    auto lease = (*pool)->Acquire();
    if (!lease.ok()) return Fail("acquire", lease.status());
    auto r = lease->Query("SELECT pg_notify($1, $2)",
                          {channel, "event " + std::to_string(i + 1)});
    if (!r.ok()) return Fail("notify", r.status());
  }

  // Wait (bounded) until the callback has seen every notification.
  bool all = false;
  {
    absl::MutexLock lock(&received.mu);
    auto done = [&received,
                 count]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(received.mu) {
      return static_cast<int>(received.payloads.size()) >= count;
    };
    all =
        received.mu.AwaitWithTimeout(absl::Condition(&done), absl::Seconds(10));
    for (const std::string& p : received.payloads) {
      std::printf("received on %s: %s\n", channel.c_str(), p.c_str());
    }
  }
  pggitops::PgListenerStats stats = (*listener)->Stats();
  std::printf("notifications %lld, connects %lld\n",
              static_cast<long long>(stats.notifications_total),
              static_cast<long long>(stats.connects_total));

  // No callback runs after Shutdown returns; the destructor would call it.
  (*listener)->Shutdown();
  (*pool)->Shutdown();
  if (!all) {
    std::fprintf(stderr, "pg_listener: not every notification arrived\n");
    return 1;
  }
  std::printf("ok\n");
  return 0;
}
