// File: pggitops/connection_pool.h
//
// A PostgreSQL connection pool with the semantics of SQLAlchemy's QueuePool,
// which the operations guide tunes (pool_size, max_overflow, pool_timeout,
// pool_recycle):
//
//   * up to `size` persistent connections, plus up to `max_overflow` extra
//     ones under load, closed as soon as they are returned above `size`;
//   * connections are opened lazily, on the first checkouts that need them;
//   * a checkout that finds no connection waits, first come first served, at
//     most `timeout`, then fails with kDeadlineExceeded ("pool timeout ...");
//   * at checkout, a connection older than `recycle` is replaced, one the
//     server has closed (backend terminated, server restarted) is replaced,
//     and one idle longer than `pre_ping_idle` is pinged first; a dead
//     connection is replaced without the caller seeing an error;
//   * a connection returned inside an open or failed transaction is rolled
//     back, and one returned broken is closed: no lease starts dirty;
//   * when PostgreSQL is unreachable, the checkout that finds out fails with
//     kUnavailable after at most one connect timeout; later checkouts that
//     need a new connection fail at once (kUnavailable) while a single
//     checkout per `down_retry_interval` probes the server again.
//
// Typical use:
//
//   PoolOptions options = PoolOptionsFromConfig(config);
//   options.metrics = &registry;
//   absl::StatusOr<std::unique_ptr<ConnectionPool>> pool =
//       ConnectionPool::Create(options);
//   if (!pool.ok()) return pool.status();
//   absl::StatusOr<PooledConnection> lease = (*pool)->Acquire();
//   if (!lease.ok()) return lease.status();  // 503 POOL_TIMEOUT, ...
//   absl::StatusOr<QueryResult> r =
//       lease->Query("SELECT name FROM webhooks WHERE id = $1", {"42"});
//   // The lease goes back to the pool when it goes out of scope.
//
// Applications that want libpqxx itself include "pggitops/pqxx.h".
#ifndef PGGITOPS_INCLUDE_CONNECTION_POOL_H_
#define PGGITOPS_INCLUDE_CONNECTION_POOL_H_

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "pggitops/config.h"
#include "pggitops/env.h"
#include "pggitops/export.h"
#include "pggitops/health.h"
#include "pggitops/metrics.h"

namespace pggitops {

namespace internal {
class PoolCore;
struct PoolSlot;
}  // namespace internal

struct PGGITOPS_EXPORT PoolOptions {
  // Parameters that affect behavior

  // libpq connection string: a URI ("postgresql://user:pass@host:port/db")
  // or key/value pairs ("host=... dbname=..."). Required by Create(options);
  // unused when a PgConnector is given.
  std::string dsn;

  // Persistent connections kept open once opened. Range: 1 to 1000.
  // Default: 20 (DATABASE_POOL_SIZE).
  int size = 20;

  // Extra connections opened when all `size` are checked out, closed when
  // returned. Range: 0 to 1000. Default: 10 (DATABASE_POOL_MAX_OVERFLOW).
  int max_overflow = 10;

  // Longest wait for a connection before Acquire() fails with
  // kDeadlineExceeded. Range: positive; InfiniteDuration() waits forever.
  // Default: 30 s (DATABASE_POOL_TIMEOUT).
  absl::Duration timeout = absl::Seconds(30);

  // A connection opened longer ago than this is closed and replaced at its
  // next checkout. Range: positive; InfiniteDuration() never recycles.
  // Default: 1 h (DATABASE_POOL_RECYCLE).
  absl::Duration recycle = absl::Seconds(3600);

  // Ping ("SELECT 1") a connection at checkout when it has been idle at
  // least `pre_ping_idle`, or when another connection was found dead since
  // it was last used. A connection the server closed is detected without a
  // round trip whatever this says. Default: true (DATABASE_POOL_PRE_PING).
  bool pre_ping = true;

  // See pre_ping. Range: zero (ping at every checkout) or positive;
  // InfiniteDuration() pings only after a dead connection was seen.
  // Default: 10 s (DATABASE_POOL_PRE_PING_IDLE).
  absl::Duration pre_ping_idle = absl::Seconds(10);

  // Longest time to open one connection. libpq counts whole seconds, at
  // least 2: the value is rounded up. Range: 1 s to 1 h.
  // Default: 5 s (DATABASE_CONNECT_TIMEOUT).
  absl::Duration connect_timeout = absl::Seconds(5);

  // PostgreSQL statement_timeout set on every connection (as a libpq
  // `options=-c statement_timeout=...` startup parameter). Range: 1 ms to
  // 24 h; InfiniteDuration() leaves the server's setting.
  // Default: 30 s (DATABASE_STATEMENT_TIMEOUT).
  absl::Duration statement_timeout = absl::Seconds(30);

  // A query taking at least this long counts in db_slow_queries_total and
  // is logged as a warning. Range: positive; InfiniteDuration() disables.
  // Default: 1 s (DATABASE_SLOW_QUERY_SECONDS).
  absl::Duration slow_query = absl::Seconds(1);

  // After a failed connection attempt, checkouts that need a new
  // connection fail at once for this long; then one checkout probes the
  // server again (with a connect timeout of at most max(2 s, timeout / 10))
  // while the others keep failing at once. Range: 1 ms to 1 h. Default: 1 s.
  absl::Duration down_retry_interval = absl::Seconds(1);

  // application_name of the connections, unless the dsn sets one (shown in
  // pg_stat_activity). Range: up to 63 printable ASCII characters.
  // Default: "pggitops".
  std::string application_name = "pggitops";

  // Environment

  // Registry for the db_connection_pool_* and db_query_* series. One pool
  // per registry: a second pool in the same registry writes the same
  // series. *metrics must outlive the pool and every lease. Default
  // (nullptr): the pool keeps private metrics.
  MetricsRegistry* metrics = nullptr;

  // Clock for connection ages, idle times and durations (the wait for a
  // connection is real time). *env must outlive the pool and every lease.
  // Default (nullptr): Env::Default().
  Env* env = nullptr;

  // Returns InvalidArgument naming the first field out of range, e.g.
  // "PoolOptions.size: must be from 1 to 1000 (got 0)". Does not look at
  // `dsn` (Create(options) checks it).
  absl::Status Validate() const;
};

// Pool options from the DATABASE_* keys of `config` (metrics and env left
// null). A zero or negative DATABASE_POOL_RECYCLE,
// DATABASE_STATEMENT_TIMEOUT or DATABASE_SLOW_QUERY_SECONDS means "never"
// (InfiniteDuration()).
PGGITOPS_EXPORT PoolOptions PoolOptionsFromConfig(const Config& config);

// A snapshot of the pool's counters.
struct PGGITOPS_EXPORT PoolStats {
  int size = 0;          // configured persistent size
  int max_overflow = 0;  // configured overflow
  int checked_out = 0;   // leases out (including ones being connected)
  int overflow = 0;      // open connections above `size`
  int available = 0;     // size + max_overflow - checked_out
  int waiting = 0;       // callers blocked in Acquire()
  int idle = 0;          // open connections in the pool
  int open = 0;  // idle + checked out + being closed (what the server sees)
  bool database_down = false;          // the last connection attempt failed
  int64_t connects_total = 0;          // connections opened
  int64_t connect_failures_total = 0;  // failed connection attempts
  int64_t timeouts_total = 0;          // Acquire() calls that timed out
  int64_t recycled_total = 0;          // closed for age at checkout
  int64_t dead_replaced_total = 0;     // found dead at checkout, replaced
  int64_t discarded_total = 0;  // closed on return (broken, dirty, Discard)
  int64_t pings_total = 0;      // pre-pings sent
};

// Rows of a statement run through PooledConnection::Query, all values as
// PostgreSQL's text representation; NULL is std::nullopt.
struct PGGITOPS_EXPORT QueryResult {
  std::vector<std::string> columns;
  std::vector<std::vector<std::optional<std::string>>> rows;
  // Rows affected by INSERT, UPDATE, DELETE, ... (0 for other commands).
  int64_t affected_rows = 0;
};

// Where a session stands after its last statement.
enum class TransactionState {
  kIdle,                 // no transaction open
  kActive,               // a statement is still running
  kInTransaction,        // inside BEGIN ... (not yet committed)
  kInFailedTransaction,  // inside a transaction that hit an error
  kBroken,               // the session is unusable
};

// The SQLSTATE attached to a status returned by Query() or the libpqxx
// adapter ("23505", ...), or "" if there is none. Status codes for server
// errors: connection failures, admin shutdown and statement timeout or
// cancel -> kUnavailable; unique violation -> kAlreadyExists; other
// integrity violations -> kFailedPrecondition; data exceptions ->
// kInvalidArgument; serialization failure, deadlock, lock not available ->
// kAborted; insufficient resources -> kResourceExhausted; insufficient
// privilege -> kPermissionDenied; anything else -> kInternal. (Only a pool
// wait is kDeadlineExceeded.)
PGGITOPS_EXPORT std::string SqlStateOf(const absl::Status& status);

// One open database session: the seam between the pool and the driver.
// The pool uses a connection from one thread at a time, so implementations
// need not be thread-safe. Destruction closes the session.
class PGGITOPS_EXPORT PgConnection {
 public:
  virtual ~PgConnection() = default;

  // Returns false if the session is known to be unusable without asking
  // the server (e.g. the server closed the socket). Must not block.
  virtual bool CheckAlive() = 0;

  // Runs a trivial statement; an error means the session is dead.
  virtual absl::Status Ping() = 0;

  virtual TransactionState GetTransactionState() = 0;

  // Runs one statement; `params` fill $1, $2, ... as text (nullopt: NULL).
  // Errors as SqlStateOf() describes.
  virtual absl::StatusOr<QueryResult> Execute(
      absl::string_view sql,
      const std::vector<std::optional<std::string>>& params) = 0;
};

// Opens sessions. Connect() is called concurrently from several threads,
// never with a pool lock held.
class PGGITOPS_EXPORT PgConnector {
 public:
  virtual ~PgConnector() = default;

  // Opens a session, giving up after about `connect_timeout`. A server that
  // cannot be reached (or refuses the login) is kUnavailable.
  virtual absl::StatusOr<std::unique_ptr<PgConnection>> Connect(
      absl::Duration connect_timeout) = 0;
};

// A leased connection: RAII, movable, not copyable. Destruction (or
// Release()) returns the connection to its pool, which rolls back an open
// transaction first. Not thread-safe: use a lease from one thread at a time.
// A lease may outlive its ConnectionPool object (the connection is then
// closed on return), but not the pool's `metrics` and `env`.
class PGGITOPS_EXPORT PooledConnection {
 public:
  // An empty lease (valid() is false).
  PooledConnection();
  ~PooledConnection();
  PooledConnection(PooledConnection&& other) noexcept;
  // Returns the connection this lease holds, then takes `other`'s.
  PooledConnection& operator=(PooledConnection&& other) noexcept;
  PooledConnection(const PooledConnection&) = delete;
  PooledConnection& operator=(const PooledConnection&) = delete;

  bool valid() const { return slot_ != nullptr; }

  // Runs one statement (autocommit unless a transaction was begun on this
  // lease), timed in db_query_duration_seconds. Without `params` the text
  // goes through PostgreSQL's simple protocol, so it may hold several
  // statements; the result is the last one's. An error meaning the session
  // is gone (kUnavailable without SQLSTATE, SQLSTATE class 08, or 57P01 to
  // 57P03: server shutting down) marks the lease broken.
  // REQUIRES: valid().
  absl::StatusOr<QueryResult> Query(
      absl::string_view sql,
      const std::vector<std::optional<std::string>>& params = {});

  // Returns the connection to the pool now. No-op on an empty lease.
  void Release();

  // Closes the connection instead of returning it (e.g. after changing
  // session state that must not leak to the next user). No-op on an empty
  // lease.
  void Discard();

  // Marks the connection unusable: it is closed on return, and the pool
  // pings its idle connections before handing them out, in case the
  // server went away for all of them. REQUIRES: valid().
  void MarkBroken();

  // The session. REQUIRES: valid().
  PgConnection& connection();

  // Identifies the physical connection (stable across leases of it).
  // REQUIRES: valid().
  uint64_t connection_id() const;

 private:
  friend class internal::PoolCore;
  friend class ScopedQueryTimer;
  PooledConnection(std::shared_ptr<internal::PoolCore> pool,
                   std::unique_ptr<internal::PoolSlot> slot);

  std::shared_ptr<internal::PoolCore> pool_;
  std::unique_ptr<internal::PoolSlot> slot_;
};

// Times one query run on a lease by other means (e.g. libpqxx) into
// db_query_duration_seconds and db_slow_queries_total, like Query() does.
// `what` names the query in the slow-query log line. REQUIRES: lease.valid()
// for the timer's whole life. Not thread-safe.
class PGGITOPS_EXPORT ScopedQueryTimer {
 public:
  explicit ScopedQueryTimer(const PooledConnection& lease,
                            absl::string_view what = "");
  ~ScopedQueryTimer();
  ScopedQueryTimer(const ScopedQueryTimer&) = delete;
  ScopedQueryTimer& operator=(const ScopedQueryTimer&) = delete;

 private:
  internal::PoolCore* pool_;
  std::string what_;
  absl::Time start_;
};

// Hands out leases. Thread-safe: every method may be called from any
// thread, except that destruction must not race with other calls.
class PGGITOPS_EXPORT ConnectionPool {
 public:
  // Creates a pool connecting with libpqxx to options.dsn. Opens no
  // connection yet. Fails with InvalidArgument naming the field for invalid
  // options or an unparsable dsn.
  static absl::StatusOr<std::unique_ptr<ConnectionPool>> Create(
      const PoolOptions& options);

  // Same with another driver (e.g. a fake in tests). options.dsn is unused.
  // REQUIRES: connector != nullptr.
  static absl::StatusOr<std::unique_ptr<ConnectionPool>> Create(
      const PoolOptions& options, std::unique_ptr<PgConnector> connector);

  // Shuts the pool down (see Shutdown()).
  virtual ~ConnectionPool() = default;
  ConnectionPool(const ConnectionPool&) = delete;
  ConnectionPool& operator=(const ConnectionPool&) = delete;

  // Returns a ready connection, waiting up to options.timeout. Errors:
  //   kDeadlineExceeded "pool timeout: ..."  nothing freed up in time;
  //   kUnavailable "database unavailable: ..."  no connection could be
  //       opened (fast while the database is known to be down);
  //   kFailedPrecondition  the pool is closed.
  virtual absl::StatusOr<PooledConnection> Acquire() = 0;

  // Same, waiting at most `timeout` instead of options.timeout.
  virtual absl::StatusOr<PooledConnection> Acquire(absl::Duration timeout) = 0;

  virtual PoolStats Stats() const = 0;

  // Closes idle connections and fails waiting and later Acquire() calls
  // with kFailedPrecondition; leases still out are closed when returned.
  // Idempotent.
  virtual void Shutdown() = 0;

 protected:
  ConnectionPool() = default;
};

// The "database" check for /health/deep: reads the lock waits (below)
// through the pool (waiting at most half of `timeout` for a connection).
// Status "connected" or "disconnected" (with the reason as message); details
//   {"response_time_ms": 1.23,
//    "pool": {"size", "checked_out", "overflow", "available", "waiting"},
//    "locks": {"waiting": 0, "longest_wait_seconds": 0}}.
// Lock waits never fail the check. Critical. *pool must outlive every run
// of the check.
PGGITOPS_EXPORT HealthCheck DatabaseHealthCheck(
    ConnectionPool* pool, absl::Duration timeout = absl::Seconds(2));

// Lock contention in the pool's database: sessions of it waiting for a
// lock another session holds (pg_locks, not granted), and how long the
// longest of them has waited.
struct PGGITOPS_EXPORT LockWaits {
  int64_t waiting = 0;
  double longest_wait_seconds = 0;
};

// Reads LockWaits with one query on a connection of `pool`, waiting at most
// `timeout` for one. Thread-safe. Errors: the pool's (kDeadlineExceeded,
// kUnavailable) or the query's.
PGGITOPS_EXPORT absl::StatusOr<LockWaits> ReadLockWaits(ConnectionPool* pool,
                                                        absl::Duration timeout);

// Registers the gauges db_lock_waits and db_lock_wait_seconds_max in
// *registry, refreshed by ReadLockWaits on every scrape (a scrape waits at
// most `timeout` for a connection; when none comes, or the query fails, the
// gauges keep their last values). Returns the collect hook's id: call
// registry->RemoveCollectHook(id) before *pool goes away.
PGGITOPS_EXPORT int RegisterLockWaitMetrics(ConnectionPool* pool,
                                            MetricsRegistry* registry,
                                            absl::Duration timeout);

}  // namespace pggitops

#endif  // PGGITOPS_INCLUDE_CONNECTION_POOL_H_
