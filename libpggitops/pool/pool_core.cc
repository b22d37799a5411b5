#include "libpggitops/pool/pool_core.h"

#include <algorithm>
#include <string>
#include <utility>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "pggitops/log.h"

namespace pggitops::internal {

// A caller blocked in Checkout(). Lives on the caller's stack; the thread
// that serves it sets `done` (under mu_) after filling in the grant.
struct PoolCore::Waiter {
  bool done = false;
  std::unique_ptr<PoolSlot> slot;
  bool reserved = false;
  absl::Status status;
};

PoolCore::PoolCore(const PoolOptions& options,
                   std::unique_ptr<PgConnector> connector)
    : options_(options),
      env_(options.env != nullptr ? options.env : Env::Default()),
      connector_(std::move(connector)),
      own_metrics_(options.metrics != nullptr
                       ? nullptr
                       : std::make_unique<MetricsRegistry>()),
      metrics_(options.metrics != nullptr ? options.metrics
                                          : own_metrics_.get()) {
  metrics_.size.Set(options_.size);
  PoolLock lock(&mu_);
  PublishLocked();
}

PoolCore::~PoolCore() { Shutdown(); }

absl::StatusOr<PooledConnection> PoolCore::Acquire(absl::Duration timeout) {
  const absl::Time start = env_->MonotonicNow();
  Grant grant;
  absl::Status status = Checkout(timeout, &grant);
  if (!status.ok()) {
    if (absl::IsDeadlineExceeded(status)) {
      metrics_.wait.ObserveDuration(env_->MonotonicNow() - start);
    }
    return status;
  }
  absl::StatusOr<std::unique_ptr<PoolSlot>> slot = Prepare(std::move(grant));
  if (!slot.ok()) {
    CancelReservation();
    return slot.status();
  }
  metrics_.wait.ObserveDuration(env_->MonotonicNow() - start);
  return PooledConnection(shared_from_this(), *std::move(slot));
}

absl::Status PoolCore::Checkout(absl::Duration timeout, Grant* grant) {
  PoolLock lock(&mu_);
  if (closed_) return absl::FailedPreconditionError("connection pool closed");
  if (waiters_.empty()) {
    if (!idle_.empty()) {
      grant->slot = std::move(idle_.back());
      idle_.pop_back();
      ++checked_out_;
      PublishLocked();
      return absl::OkStatus();
    }
    if (open_ < capacity()) {
      const absl::Time now = env_->MonotonicNow();
      if (DownLocked(now)) return DownErrorLocked(now);
      ++open_;
      ++checked_out_;
      grant->reserved = true;
      PublishLocked();
      return absl::OkStatus();
    }
  }
  Waiter waiter;
  waiters_.push_back(&waiter);
  PublishLocked();
  if (!lock.AwaitWithTimeout(&waiter.done, timeout)) {
    waiters_.erase(std::find(waiters_.begin(), waiters_.end(), &waiter));
    timeouts_.fetch_add(1, std::memory_order_relaxed);
    metrics_.timeouts.Inc();
    PublishLocked();
    return TimeoutErrorLocked(timeout);
  }
  if (!waiter.status.ok()) return waiter.status;
  grant->slot = std::move(waiter.slot);
  grant->reserved = waiter.reserved;
  return absl::OkStatus();
}

absl::StatusOr<std::unique_ptr<PoolSlot>> PoolCore::Prepare(Grant grant) {
  if (grant.slot != nullptr) {
    switch (Check(*grant.slot)) {
      case Verdict::kReady:
        return std::move(grant.slot);
      case Verdict::kRecycle:
        recycled_.fetch_add(1, std::memory_order_relaxed);
        break;
      case Verdict::kDead:
        dead_replaced_.fetch_add(1, std::memory_order_relaxed);
        NoteDeadConnection();
        break;
    }
    grant.slot.reset();  // closes it; its place is kept for the new one
  }
  return Open();
}

PoolCore::Verdict PoolCore::Check(PoolSlot& slot) {
  const absl::Time now = env_->MonotonicNow();
  if (now - slot.created >= options_.recycle) return Verdict::kRecycle;
  if (!slot.conn->CheckAlive()) return Verdict::kDead;
  if (options_.pre_ping &&
      (slot.needs_ping || now - slot.returned >= options_.pre_ping_idle)) {
    pings_.fetch_add(1, std::memory_order_relaxed);
    if (!slot.conn->Ping().ok()) return Verdict::kDead;
    slot.needs_ping = false;
  }
  return Verdict::kReady;
}

absl::StatusOr<std::unique_ptr<PoolSlot>> PoolCore::Open() {
  absl::Duration connect_timeout = options_.connect_timeout;
  bool probe = false;
  {
    PoolLock lock(&mu_);
    const absl::Time now = env_->MonotonicNow();
    if (DownLocked(now)) return DownErrorLocked(now);
    if (down_) {
      probing_ = probe = true;
      connect_timeout = ProbeConnectTimeout();
    }
  }
  absl::StatusOr<std::unique_ptr<PgConnection>> conn =
      connector_->Connect(connect_timeout);
  const absl::Time now = env_->MonotonicNow();
  bool was_down;
  {
    PoolLock lock(&mu_);
    if (probe) probing_ = false;
    was_down = down_;
    down_ = !conn.ok();
    if (!conn.ok()) {
      retry_at_ = now + options_.down_retry_interval;
      last_error_ = conn.status();
    }
  }
  if (!conn.ok()) {
    connect_failures_.fetch_add(1, std::memory_order_relaxed);
    std::string message(conn.status().message());
    if (!was_down) {
      Log::Warning("database unreachable", {{"error", message}});
    }
    return absl::UnavailableError(
        absl::StrCat("database unavailable: ", message));
  }
  if (was_down) Log::Info("database reachable again");
  connects_.fetch_add(1, std::memory_order_relaxed);
  auto slot = std::make_unique<PoolSlot>();
  slot->conn = *std::move(conn);
  slot->id = next_id_.fetch_add(1, std::memory_order_relaxed);
  slot->created = slot->returned = now;
  return slot;
}

void PoolCore::CancelReservation() {
  PoolLock lock(&mu_);
  --open_;
  --checked_out_;
  if (!closed_) GrantCapacityLocked();
  PublishLocked();
}

void PoolCore::Return(std::unique_ptr<PoolSlot> slot, bool discard) {
  if (slot->broken) discard = true;
  if (!discard && !ResetForReuse(*slot->conn)) discard = true;
  if (discard) discarded_.fetch_add(1, std::memory_order_relaxed);
  slot->returned = env_->MonotonicNow();
  std::vector<std::unique_ptr<PoolSlot>> to_close;
  {
    PoolLock lock(&mu_);
    --checked_out_;
    if (closed_ || discard ||
        (waiters_.empty() && open_ - closing_ > options_.size)) {
      // Broken, dirty, or overflow returned above size: close it.
      ++closing_;
      to_close.push_back(std::move(slot));
    } else if (!waiters_.empty()) {
      HandToWaiterLocked(std::move(slot));
    } else {
      idle_.push_back(std::move(slot));
    }
    PublishLocked();
  }
  CloseSlots(std::move(to_close));
}

void PoolCore::CloseSlots(std::vector<std::unique_ptr<PoolSlot>> slots) {
  if (slots.empty()) return;
  const int n = static_cast<int>(slots.size());
  slots.clear();  // closes the sessions, without the lock
  PoolLock lock(&mu_);
  closing_ -= n;
  open_ -= n;  // only now: the server never sees more than the capacity
  if (!closed_) GrantCapacityLocked();
  PublishLocked();
}

void PoolCore::NoteDeadConnection() {
  PoolLock lock(&mu_);
  for (auto& slot : idle_) slot->needs_ping = true;
}

void PoolCore::Shutdown() {
  std::vector<std::unique_ptr<PoolSlot>> to_close;
  {
    PoolLock lock(&mu_);
    if (closed_) return;
    closed_ = true;
    to_close.swap(idle_);
    closing_ += static_cast<int>(to_close.size());
    for (Waiter* w : waiters_) {
      w->status = absl::FailedPreconditionError("connection pool closed");
      w->done = true;
    }
    waiters_.clear();
    PublishLocked();
  }
  CloseSlots(std::move(to_close));
}

PoolStats PoolCore::Stats() const {
  PoolStats s;
  {
    PoolLock lock(&mu_);
    s.checked_out = checked_out_;
    s.open = open_;
    s.idle = static_cast<int>(idle_.size());
    s.waiting = static_cast<int>(waiters_.size());
    s.database_down = down_;
  }
  s.size = options_.size;
  s.max_overflow = options_.max_overflow;
  s.overflow = std::max(0, s.open - s.size);
  s.available = capacity() - s.checked_out;
  s.connects_total = connects_.load(std::memory_order_relaxed);
  s.connect_failures_total = connect_failures_.load(std::memory_order_relaxed);
  s.timeouts_total = timeouts_.load(std::memory_order_relaxed);
  s.recycled_total = recycled_.load(std::memory_order_relaxed);
  s.dead_replaced_total = dead_replaced_.load(std::memory_order_relaxed);
  s.discarded_total = discarded_.load(std::memory_order_relaxed);
  s.pings_total = pings_.load(std::memory_order_relaxed);
  return s;
}

void PoolCore::RecordQuery(absl::Duration elapsed, absl::string_view what) {
  metrics_.query.ObserveDuration(elapsed);
  if (elapsed < options_.slow_query) return;
  metrics_.slow.Inc();
  constexpr size_t kMaxShown = 200;
  std::string shown(what.substr(0, kMaxShown));
  if (what.size() > kMaxShown) shown += "...";
  Log::Warning("slow query",
               {{"duration_ms",
                 absl::StrFormat("%.1f", absl::ToDoubleMilliseconds(elapsed))},
                {"query", shown}});
}

absl::Duration PoolCore::ProbeConnectTimeout() const {
  return std::min(options_.connect_timeout,
                  std::max(absl::Seconds(2), options_.timeout / 10));
}

bool PoolCore::DownLocked(absl::Time now) const {
  return down_ && (probing_ || now < retry_at_);
}

absl::Status PoolCore::DownErrorLocked(absl::Time now) const {
  std::string when =
      probing_ ? "a reconnection attempt is in progress"
               : absl::StrCat("next attempt in ",
                              absl::FormatDuration(absl::Ceil(
                                  retry_at_ - now, absl::Milliseconds(1))));
  return absl::UnavailableError(absl::StrCat(
      "database unavailable: ", last_error_.message(), " (", when, ")"));
}

absl::Status PoolCore::TimeoutErrorLocked(absl::Duration timeout) const {
  return absl::DeadlineExceededError(absl::StrFormat(
      "pool timeout: no database connection free within %s (size=%d, "
      "max_overflow=%d, checked_out=%d, waiting=%d)",
      absl::FormatDuration(timeout), options_.size, options_.max_overflow,
      checked_out_, static_cast<int>(waiters_.size())));
}

void PoolCore::GrantCapacityLocked() {
  if (waiters_.empty() || open_ >= capacity()) return;
  Waiter* w = waiters_.front();
  waiters_.pop_front();
  ++open_;
  ++checked_out_;
  w->reserved = true;
  w->done = true;
}

void PoolCore::HandToWaiterLocked(std::unique_ptr<PoolSlot> slot) {
  Waiter* w = waiters_.front();
  waiters_.pop_front();
  ++checked_out_;
  w->slot = std::move(slot);
  w->done = true;
}

void PoolCore::PublishLocked() {
  metrics_.checked_out.Set(checked_out_);
  metrics_.available.Set(capacity() - checked_out_);
  metrics_.overflow.Set(std::max(0, open_ - options_.size));
  metrics_.waiting.Set(static_cast<double>(waiters_.size()));
}

bool ResetForReuse(PgConnection& conn) {
  switch (conn.GetTransactionState()) {
    case TransactionState::kIdle:
      return true;
    case TransactionState::kInTransaction:
    case TransactionState::kInFailedTransaction:
      return conn.Execute("ROLLBACK", {}).ok() &&
             conn.GetTransactionState() == TransactionState::kIdle;
    case TransactionState::kActive:
    case TransactionState::kBroken:
      return false;
  }
  return false;
}

}  // namespace pggitops::internal
