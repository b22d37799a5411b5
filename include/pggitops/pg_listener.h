// File: pggitops/pg_listener.h
//
// A PgListener owns one dedicated PostgreSQL session (not from the pool)
// that LISTENs to the channels its subscribers name and hands each
// notification to every subscriber of its channel. One listener serves a
// whole process: the delivery engine (pggit_deliveries), the cache
// (pggit_cache) and the alert stream (pggit_alerts) all subscribe to it.
//
// Notifications sent while the session is down are lost (PostgreSQL keeps
// none for an absent listener). So after every successful connection, the
// first included, once every channel is listened to again, the listener
// calls the reconnect callbacks: the dispatcher polls the queue then, and
// the cache drops everything it might have missed invalidations for.
//
// Reconnection: when the session breaks (server restart,
// pg_terminate_backend, network), the listener reconnects with exponential
// backoff from `reconnect_min` to `reconnect_max`, for ever, until Shutdown().
// An idle session is checked with a "SELECT 1" every `ping_interval`, so a
// silently dead connection is noticed.
//
// Threads: the listener runs one thread of its own (started by Start()).
// Callbacks run on that thread, one at a time, never while the listener
// holds its lock, so a callback may Subscribe/Unsubscribe (itself
// included) or read Stats(). A slow callback delays the others.
//
// Typical use (examples/pg_listener.cc is the whole program), with a
// Config and a Cache* cache of the caller's:
//
//   absl::StatusOr<std::unique_ptr<PgListener>> listener =
//       PgListener::Create(PgListenerOptionsFromConfig(config));
//   if (!listener.ok()) return listener.status();
//   absl::StatusOr<int> id = (*listener)->Subscribe(
//       "pggit_cache", [cache](const std::string& payload) {
//         cache->ApplyDatabaseNotification(payload).IgnoreError();
//       });
//   if (!id.ok()) return id.status();
//   (*listener)->AddReconnectCallback(
//       [cache] { cache->OnDatabaseListenerReconnected(); });
//   if (absl::Status s = (*listener)->Start(); !s.ok()) return s;
//   ...
//   (*listener)->Shutdown();  // also done by the destructor
#ifndef PGGITOPS_INCLUDE_PG_LISTENER_H_
#define PGGITOPS_INCLUDE_PG_LISTENER_H_

#include <cstdint>
#include <functional>
#include <memory>
#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "pggitops/config.h"
#include "pggitops/env.h"
#include "pggitops/export.h"
#include "pggitops/health.h"
#include "pggitops/metrics.h"

namespace pggitops {

struct PGGITOPS_EXPORT PgListenerOptions {
  // libpq connection string (URI or key/value), e.g. DATABASE_URL.
  // Required.
  std::string dsn;
  // Longest time to open the session. Range: 1 s to 1 h. Default: 5 s.
  absl::Duration connect_timeout = absl::Seconds(5);
  // Backoff between reconnection attempts: starts at reconnect_min, doubles
  // up to reconnect_max. Range: 1 ms to 1 h, min <= max.
  // Defaults: 100 ms and 5 s.
  absl::Duration reconnect_min = absl::Milliseconds(100);
  absl::Duration reconnect_max = absl::Seconds(5);
  // An idle session is pinged this often. Range: 100 ms to 1 h.
  // Default: 30 s.
  absl::Duration ping_interval = absl::Seconds(30);
  // application_name of the session. Default: "pggitops-listener".
  std::string application_name = "pggitops-listener";
  // Registry for pg_listener_connected, pg_listener_reconnects_total and
  // pg_listener_notifications_total. Must outlive the listener. Default
  // (nullptr): none.
  MetricsRegistry* metrics = nullptr;
  // Clock for the backoff and ping schedule. Must outlive the listener.
  // Default (nullptr): Env::Default().
  Env* env = nullptr;

  // InvalidArgument naming the first bad field (the dsn is parsed too).
  absl::Status Validate() const;
};

struct PGGITOPS_EXPORT PgListenerStats {
  bool running = false;
  bool connected = false;      // session up and every channel listened
  int64_t connects_total = 0;  // successful (re)connections
  int64_t connect_failures_total = 0;
  int64_t disconnects_total = 0;    // sessions lost while running
  int64_t notifications_total = 0;  // notifications received
  std::string last_error;           // "" when none yet
};

// Thread-safe: every method may be called from any thread (including from
// a callback), except that destruction must not race with other calls.
class PGGITOPS_EXPORT PgListener {
 public:
  using NotificationCallback = std::function<void(const std::string& payload)>;
  using ReconnectCallback = std::function<void()>;

  // Validates the options. Connects nothing yet.
  static absl::StatusOr<std::unique_ptr<PgListener>> Create(
      PgListenerOptions options);

  // Shuts down (see Shutdown()).
  virtual ~PgListener() = default;
  PgListener(const PgListener&) = delete;
  PgListener& operator=(const PgListener&) = delete;

  // Calls `callback` with the payload of every notification on `channel`
  // (an identifier: 1 to 63 characters, letters, digits and underscores,
  // not starting with a digit) from now on. Works before Start(); while
  // running, the channel is listened to within moments (WaitUntilListening
  // says when). Returns a subscription id; InvalidArgument for a bad
  // channel name or an empty callback.
  virtual absl::StatusOr<int> Subscribe(const std::string& channel,
                                        NotificationCallback callback) = 0;
  // After this returns the callback is not running (unless called from
  // the callback itself) and is never called again. Unknown ids are
  // ignored. The channel is unlistened when its last subscriber goes.
  virtual void Unsubscribe(int id) = 0;

  // Calls `callback` after every successful connection, once every
  // subscribed channel is listened to. Returns an id.
  virtual int AddReconnectCallback(ReconnectCallback callback) = 0;
  // Same guarantee as Unsubscribe().
  virtual void RemoveReconnectCallback(int id) = 0;

  // Starts the listener thread, which connects in the background (a
  // database that is down is retried). FailedPrecondition when already
  // started or stopped.
  virtual absl::Status Start() = 0;
  // Stops the thread and closes the session; no callback runs after it
  // returns (unless it is called from a callback). Idempotent. A listener
  // that was shut down cannot be started again.
  virtual void Shutdown() = 0;

  // Waits (real time) until connected with every subscribed channel
  // listened to; returns whether that happened within `timeout`.
  virtual bool WaitUntilListening(absl::Duration timeout) = 0;

  virtual PgListenerStats Stats() const = 0;

  // A "listener" check, non-critical: {"status": "connected"|"connecting"|
  // "stopped", "channels": N, "reconnects": N}; not ok unless connected.
  // The listener must outlive every run of the check.
  virtual HealthCheck ListenerHealthCheck() = 0;

 protected:
  PgListener() = default;
};

// Options from DATABASE_URL (dsn) and DATABASE_CONNECT_TIMEOUT; the rest
// keep their defaults.
PGGITOPS_EXPORT PgListenerOptions
PgListenerOptionsFromConfig(const Config& config);

}  // namespace pggitops

#endif  // PGGITOPS_INCLUDE_PG_LISTENER_H_
