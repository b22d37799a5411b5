// The connection pool's logic, independent of the driver (PgConnector).
//
// State machine of one physical connection (a PoolSlot):
//   opened by Open() for a checkout -> leased -> returned: rolled back if in
//   a transaction, then handed to the oldest waiter, or closed when above
//   `size` (overflow) or broken, or kept idle (LIFO, so a busy pool reuses
//   the same warm connections and rarely needs a pre-ping) -> at checkout:
//   closed and replaced when older than `recycle` or found dead.
//
// Accounting: open_ counts every connection that exists, is being opened
// for a checkout (a "reservation") or is being closed, checked_out_ every
// connection handed to or being prepared for a caller. open_ never exceeds
// size + max_overflow, so neither do the server's backends.
// When waiters_ is not empty, idle_ is empty and open_ is at capacity:
// returns hand their connection (or freed capacity) straight to the oldest
// waiter, so waiters are served first come first served.
#ifndef PGGITOPS_LIBPGGITOPS_POOL_POOL_CORE_H_
#define PGGITOPS_LIBPGGITOPS_POOL_POOL_CORE_H_

#include <atomic>
#include <cstdint>
#include <deque>
#include <memory>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "libpggitops/pool/pool_lock.h"
#include "libpggitops/pool/pool_metrics.h"
#include "pggitops/connection_pool.h"

namespace pggitops::internal {

// One physical connection and its bookkeeping. Owned by the idle list, a
// waiter or a lease; only its owner touches it.
struct PoolSlot {
  std::unique_ptr<PgConnection> conn;
  uint64_t id = 0;
  absl::Time created;       // env MonotonicNow() when opened
  absl::Time returned;      // when last returned (idle since)
  bool needs_ping = false;  // another connection was found dead meanwhile
  bool broken = false;      // the lease called MarkBroken()
};

// The pool's shared state; every lease holds a reference, so a lease may
// be returned after the ConnectionPool object is gone. Thread-safe.
class PoolCore : public std::enable_shared_from_this<PoolCore> {
 public:
  // REQUIRES: options.Validate().ok(), connector != nullptr.
  PoolCore(const PoolOptions& options, std::unique_ptr<PgConnector> connector);
  ~PoolCore();
  PoolCore(const PoolCore&) = delete;
  PoolCore& operator=(const PoolCore&) = delete;

  absl::StatusOr<PooledConnection> Acquire(absl::Duration timeout);
  // Takes back a leased connection; closes it when `discard`.
  void Return(std::unique_ptr<PoolSlot> slot, bool discard);
  // A connection was found dead: ping idle ones before their next use.
  void NoteDeadConnection();
  void Shutdown();
  PoolStats Stats() const;

  // Observes a query duration (db_query_duration_seconds, slow queries).
  void RecordQuery(absl::Duration elapsed, absl::string_view what);
  Env* env() const { return env_; }

 private:
  struct Waiter;
  // What a checkout got: an idle connection to check, or a reservation to
  // open a new one (open_ and checked_out_ already count it).
  struct Grant {
    std::unique_ptr<PoolSlot> slot;
    bool reserved = false;
  };
  enum class Verdict { kReady, kRecycle, kDead };

  absl::Status Checkout(absl::Duration timeout, Grant* grant);
  absl::StatusOr<std::unique_ptr<PoolSlot>> Prepare(Grant grant);
  Verdict Check(PoolSlot& slot);
  absl::StatusOr<std::unique_ptr<PoolSlot>> Open();
  void CancelReservation();
  // Closes `slots` (counted in closing_), then frees their capacity.
  void CloseSlots(std::vector<std::unique_ptr<PoolSlot>> slots);

  int capacity() const { return options_.size + options_.max_overflow; }
  absl::Duration ProbeConnectTimeout() const;
  bool DownLocked(absl::Time now) const ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  absl::Status DownErrorLocked(absl::Time now) const
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  absl::Status TimeoutErrorLocked(absl::Duration timeout) const
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void GrantCapacityLocked() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void HandToWaiterLocked(std::unique_ptr<PoolSlot> slot)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void PublishLocked() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);

  // Constant after construction.
  const PoolOptions options_;
  Env* const env_;
  const std::unique_ptr<PgConnector> connector_;
  std::unique_ptr<MetricsRegistry> own_metrics_;  // when options had none
  PoolMetrics metrics_;

  // Counters read by Stats() without the lock.
  std::atomic<int64_t> connects_{0};
  std::atomic<int64_t> connect_failures_{0};
  std::atomic<int64_t> timeouts_{0};
  std::atomic<int64_t> recycled_{0};
  std::atomic<int64_t> dead_replaced_{0};
  std::atomic<int64_t> discarded_{0};
  std::atomic<int64_t> pings_{0};
  std::atomic<uint64_t> next_id_{1};

  // State below is protected by mu_.
  mutable absl::Mutex mu_;
  std::vector<std::unique_ptr<PoolSlot>> idle_ ABSL_GUARDED_BY(mu_);
  std::deque<Waiter*> waiters_ ABSL_GUARDED_BY(mu_);
  int open_ ABSL_GUARDED_BY(mu_) = 0;
  int checked_out_ ABSL_GUARDED_BY(mu_) = 0;
  int closing_ ABSL_GUARDED_BY(mu_) = 0;  // being closed, still in open_
  bool closed_ ABSL_GUARDED_BY(mu_) = false;
  // Down latch: set by a failed connection attempt, cleared by a successful
  // one. While set, new connections are attempted only by one probe per
  // down_retry_interval.
  bool down_ ABSL_GUARDED_BY(mu_) = false;
  bool probing_ ABSL_GUARDED_BY(mu_) = false;
  absl::Time retry_at_ ABSL_GUARDED_BY(mu_);
  absl::Status last_error_ ABSL_GUARDED_BY(mu_);
};

// Rolls back an open or failed transaction. Returns false if the session
// cannot be reused (broken, busy, or the rollback failed).
bool ResetForReuse(PgConnection& conn);

}  // namespace pggitops::internal

#endif  // PGGITOPS_LIBPGGITOPS_POOL_POOL_CORE_H_
