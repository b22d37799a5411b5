#include "libpggitops/delivery/engine.h"

#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <utility>

#include "absl/strings/str_cat.h"
#include "libpggitops/delivery/delivery_store.h"
#include "pggitops/log.h"

namespace pggitops::internal {
namespace {

std::string DefaultOwner() {
  static std::atomic<int> counter{0};
  char host[256] = {0};
  if (gethostname(host, sizeof(host) - 1) != 0) host[0] = '\0';
  return absl::StrCat(host[0] != '\0' ? host : "localhost", ":", getpid(), ":",
                      ++counter);
}

BreakerParams BreakerFrom(const DeliveryOptions& o) {
  BreakerParams p;
  p.threshold = o.breaker_threshold;
  p.open = o.breaker_open;
  p.max_open = o.breaker_max_open;
  p.disable_after = o.disable_after;
  return p;
}

// How long finished attempts may wait to be recorded together.
constexpr absl::Duration kFlushDelay = absl::Milliseconds(10);
// Notifications wait this long after a claim that found nothing it could
// take (only rows of webhooks at their limit here).
constexpr absl::Duration kQuietAfterIdleClaim = absl::Milliseconds(50);
// Probes and expired leases are looked for at most this often (and on
// every poll when the engine is idle).
constexpr absl::Duration kMaintenanceEvery = absl::Seconds(1);

// Shortest of the time limits the workers wait on.
absl::Duration Until(absl::Time now, absl::Time t) {
  return std::max(t - now, absl::ZeroDuration());
}

}  // namespace

DeliveryEngineImpl* CallbackGate::Enter() {
  absl::MutexLock lock(&mu_);
  if (engine_ != nullptr) ++inside_;
  return engine_;
}

void CallbackGate::Exit() {
  absl::MutexLock lock(&mu_);
  --inside_;
}

void CallbackGate::Close() {
  absl::MutexLock lock(&mu_);
  engine_ = nullptr;
  mu_.Await(absl::Condition(
      +[](int* inside) { return *inside == 0; }, &inside_));
}

DeliveryEngineImpl::DeliveryEngineImpl(
    ConnectionPool* pool, DeliveryOptions options,
    std::unique_ptr<WebhookTransport> owned_transport,
    std::unique_ptr<PgListener> owned_listener)
    : pool_(pool),
      options_(std::move(options)),
      env_(options_.env != nullptr ? options_.env : Env::Default()),
      breaker_(BreakerFrom(options_)),
      owner_(options_.instance_id.empty() ? DefaultOwner()
                                          : options_.instance_id),
      per_webhook_held_(std::max(4 * options_.max_in_flight_per_endpoint,
                                 options_.batch_size)),
      max_held_(options_.max_in_flight + options_.batch_size),
      owned_listener_(std::move(owned_listener)),
      listener_(options_.listener != nullptr ? options_.listener
                                             : owned_listener_.get()),
      owned_transport_(std::move(owned_transport)),
      transport_(options_.transport != nullptr ? options_.transport
                                               : owned_transport_.get()),
      private_metrics_(options_.metrics == nullptr
                           ? std::make_unique<MetricsRegistry>()
                           : nullptr),
      metrics_(DeliveryMetrics::Register(options_.metrics != nullptr
                                             ? options_.metrics
                                             : private_metrics_.get())),
      gate_(std::make_shared<CallbackGate>(this)) {}

DeliveryEngineImpl::~DeliveryEngineImpl() { Shutdown(absl::Now()); }

absl::Status DeliveryEngineImpl::Start() {
  {
    absl::MutexLock lock(&mu_);
    if (phase_ != Phase::kCreated) {
      return absl::FailedPreconditionError(
          "DeliveryEngine::Start: already started or shut down");
    }
  }
  if (listener_ != nullptr) {
    absl::StatusOr<int> id = listener_->Subscribe(
        "pggit_deliveries", [this](const std::string&) { Wake(); });
    if (!id.ok()) return id.status();
    subscription_ = *id;
    // Notifications sent while the listener was away are lost: poll once.
    reconnect_callback_ = listener_->AddReconnectCallback([this] { Wake(); });
    if (owned_listener_ != nullptr) {
      if (absl::Status s = owned_listener_->Start(); !s.ok()) return s;
    }
  }
  absl::MutexLock lock(&mu_);
  phase_ = Phase::kRunning;
  counters_.running = true;
  next_poll_ = env_->MonotonicNow();
  quiet_until_ = next_poll_;
  next_maintenance_ = next_poll_;
  for (int i = 0; i < options_.workers; ++i) {
    threads_.emplace_back([this] { WorkerLoop(); });
  }
  threads_.emplace_back([this] { MaintenanceLoop(); });
  Log::Info("delivery engine started",
            {{"owner", owner_},
             {"workers", absl::StrCat(options_.workers)},
             {"listener", listener_ != nullptr ? "yes" : "polling only"}});
  return absl::OkStatus();
}

void DeliveryEngineImpl::Wake() {
  absl::MutexLock lock(&mu_);
  wake_ = true;
}

bool DeliveryEngineImpl::CanClaim() const {
  if (phase_ != Phase::kRunning || claiming_) return false;
  // Claim when at least half a batch fits, so claims stay batches; and not
  // while many finished attempts wait to be recorded (the database is
  // slow or down).
  const int room = max_held_ - queued_;
  const int unrecorded = static_cast<int>(held_.size()) - queued_;
  return room >= std::max(1, std::min(options_.batch_size, max_held_) / 2) &&
         unrecorded < max_held_;
}

bool DeliveryEngineImpl::ClaimDueNow() const {
  if (!CanClaim()) return false;
  const absl::Time now = env_->MonotonicNow();
  return !refilling_.empty() || last_claim_full_ || now >= next_poll_ ||
         (wake_ && now >= quiet_until_);
}

absl::Time DeliveryEngineImpl::NextWakeAt() const {
  absl::Time t = std::min(next_poll_, FlushDueAt());
  if (wake_) t = std::min(t, quiet_until_);
  return t;
}

absl::Time DeliveryEngineImpl::FlushDueAt() const {
  if (completions_.empty()) return absl::InfiniteFuture();
  // Let a few attempts finish together so one transaction records them,
  // unless there is a full batch, nothing more in flight, or we stop.
  const bool now =
      completions_.size() >= static_cast<size_t>(options_.batch_size) ||
      in_flight_ == 0 || phase_ != Phase::kRunning;
  const absl::Time ready =
      now ? absl::InfinitePast() : first_completion_at_ + kFlushDelay;
  return std::max(ready, flush_retry_at_);
}

void DeliveryEngineImpl::WorkerLoop() {
  while (true) {
    std::vector<Completed> batch;
    bool claim = false;
    {
      absl::MutexLock lock(&mu_);
      const auto has_work = [this]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
        return stop_threads_ || ClaimDueNow() ||
               env_->MonotonicNow() >= FlushDueAt();
      };
      while (!has_work()) {
        const absl::Time now = env_->MonotonicNow();
        const absl::Duration wait =
            std::clamp(Until(now, NextWakeAt()), absl::Milliseconds(1),
                       options_.poll_interval);
        mu_.AwaitWithTimeout(absl::Condition(&has_work), wait);
        last_cycle_ = env_->MonotonicNow();
      }
      last_cycle_ = env_->MonotonicNow();
      if (stop_threads_) return;
      // Claims first: they keep the senders fed; the other workers record.
      if (ClaimDueNow()) {
        claim = true;
        claiming_ = true;
      } else {
        const size_t n =
            std::min<size_t>(completions_.size(), options_.batch_size);
        for (size_t i = 0; i < n; ++i) {
          batch.push_back(std::move(completions_.front()));
          completions_.pop_front();
        }
        first_completion_at_ = env_->MonotonicNow();
        ++flushing_;
      }
    }
    if (claim) {
      Claim();
    } else {
      Flush(std::move(batch));
    }
  }
}

absl::StatusOr<PooledConnection> DeliveryEngineImpl::Lease(
    absl::Duration timeout) {
  return pool_->Acquire(timeout);
}

ClaimRequest DeliveryEngineImpl::PrepareClaim(bool* refill_only_out,
                                              bool* maintenance) {
  ClaimRequest req;
  const absl::Time now = env_->MonotonicNow();
  // A claim only to top up webhooks that drained to half (nothing new was
  // announced, the last claim was not full, no poll is due) asks for just
  // their room, so it does not lock rows it would leave.
  const bool refill_only =
      !last_claim_full_ && now < next_poll_ && !(wake_ && now >= quiet_until_);
  *refill_only_out = refill_only;
  if (!refill_only) {
    wake_ = false;
    next_poll_ = now + options_.poll_interval;
  }
  *maintenance = now >= next_maintenance_;
  if (*maintenance) {
    next_maintenance_ =
        now + std::min(kMaintenanceEvery, options_.poll_interval);
  }
  req.owner = owner_;
  req.lease = options_.lease;
  req.limit = std::min(options_.batch_size, max_held_ - queued_);
  req.per_webhook_limit = per_webhook_held_;
  req.park = options_.park_interval;
  // Webhooks at their limit, and saturated ones not due for a top-up, are
  // skipped: the scan looks past their due rows for other webhooks'.
  for (const auto& [id, l] : local_) {
    if (l.queued >= per_webhook_held_ || saturated_.count(id) != 0) {
      req.skip_webhooks.push_back(id);
    } else if (l.queued > 0) {
      req.room[id] = per_webhook_held_ - l.queued;
    }
  }
  for (int64_t id : saturated_) {
    if (local_.count(id) == 0) req.skip_webhooks.push_back(id);
  }
  if (refill_only) {
    int room = 0;
    for (int64_t id : refilling_) {
      auto it = req.room.find(id);
      room += it != req.room.end() ? it->second : per_webhook_held_;
    }
    req.limit = std::min(req.limit, std::max(room, 1));
  }
  refilling_.clear();
  return req;
}

void DeliveryEngineImpl::AfterClaim(const ClaimRequest& req,
                                    const ClaimResult& result,
                                    bool refill_only) {
  claim_failures_ = 0;
  ++counters_.claim_cycles_total;
  for (int64_t id : req.skip_webhooks) saturated_.insert(id);
  for (int64_t id : result.capped_webhooks) saturated_.insert(id);
  absl::flat_hash_map<int64_t, int> leased;
  for (const Job& j : result.jobs) ++leased[j.webhook_id];
  bool room_left = false;  // a webhook leased from got less than its room
  for (const auto& [id, n] : leased) {
    auto it = req.room.find(id);
    if (n >= (it != req.room.end() ? it->second : req.per_webhook_limit)) {
      saturated_.insert(id);  // filled up: it may well have more due rows
    } else {
      room_left = true;
    }
  }
  // A full claim may have left due rows: claim again at once, unless they
  // are rows of saturated webhooks (then their draining calls for more) or
  // this was a top-up.
  last_claim_full_ = !refill_only && result.examined >= req.limit &&
                     req.limit > 0 && result.capped_webhooks.empty() &&
                     room_left;
  if (result.jobs.empty() && !req.skip_webhooks.empty()) {
    quiet_until_ = env_->MonotonicNow() + kQuietAfterIdleClaim;
  }
  // Saturated webhooks that drained to half while we claimed.
  for (auto it = saturated_.begin(); it != saturated_.end();) {
    auto l = local_.find(*it);
    if (l == local_.end() || l->second.queued <= per_webhook_held_ / 2) {
      refilling_.insert(*it);
      saturated_.erase(it++);
    } else {
      ++it;
    }
  }
  counters_.claimed_total += static_cast<int64_t>(result.jobs.size());
}

void DeliveryEngineImpl::Claim() {
  ClaimRequest req;
  bool refill_only = false;
  bool maintenance = false;
  {
    absl::MutexLock lock(&mu_);
    req = PrepareClaim(&refill_only, &maintenance);
  }
  absl::StatusOr<PooledConnection> lease = Lease(options_.poll_interval);
  absl::StatusOr<ClaimResult> result =
      lease.ok() ? ClaimDue(*lease, req)
                 : absl::StatusOr<ClaimResult>(lease.status());
  std::vector<Job> start;
  HandBackList back;
  {
    absl::MutexLock lock(&mu_);
    claiming_ = false;
    if (!result.ok()) {
      // The database may be back in a moment (a restart, a killed session):
      // retry soon, backing off, rather than at the next poll.
      last_claim_full_ = false;
      const absl::Duration retry = std::min(
          absl::Milliseconds(100) * (1 << std::min(claim_failures_, 6)),
          options_.poll_interval);
      ++claim_failures_;
      next_poll_ = env_->MonotonicNow() + retry;
      Log::Warning("delivery: claim failed; retrying",
                   {{"error", std::string(result.status().message())},
                    {"retry_in", absl::FormatDuration(retry)}});
      return;
    }
    if (phase_ != Phase::kRunning) {
      // Shutdown began while claiming: give the rows straight back.
      for (const Job& j : result->jobs)
        back.emplace_back(j.delivery_id, std::nullopt);
    } else {
      AddJobs(result->jobs);
      AfterClaim(req, *result, refill_only);
      start = TakeStartable();
    }
  }
  StartJobs(std::move(start));
  if (!back.empty()) HandBackRows(back, absl::Seconds(5));
  // After the rows claimed are on their way, so it never delays them.
  if (maintenance && back.empty()) Maintain(&*lease, req);
}

void DeliveryEngineImpl::Maintain(PooledConnection* lease,
                                  const ClaimRequest& req) {
  absl::StatusOr<ClaimResult> result = GrantProbesAndReclaim(*lease, req);
  std::vector<Job> start;
  HandBackList back;
  {
    absl::MutexLock lock(&mu_);
    if (!result.ok()) {
      Log::Warning("delivery: granting probes and reclaiming leases failed",
                   {{"error", std::string(result.status().message())}});
      return;
    }
    if (result->reclaimed > 0) wake_ = true;  // claimable again
    counters_.claimed_total += static_cast<int64_t>(result->jobs.size());
    if (phase_ != Phase::kRunning) {
      for (const Job& j : result->jobs)
        back.emplace_back(j.delivery_id, std::nullopt);
    } else {
      AddJobs(result->jobs);
      start = TakeStartable();
    }
  }
  StartJobs(std::move(start));
  if (!back.empty()) HandBackRows(back, absl::Seconds(5));
}

void DeliveryEngineImpl::AddJobs(const std::vector<Job>& jobs) {
  for (const Job& j : jobs) {
    if (held_.count(j.delivery_id) != 0) continue;  // already ours
    held_[j.delivery_id] = j.webhook_id;
    WebhookLocal& l = local_[j.webhook_id];
    ++l.queued;
    ++queued_;
    l.ready.push_back(j);
    if (!l.in_ring) {
      l.in_ring = true;
      ring_.push_back(l.ready.back().webhook_id);
    }
  }
}

void DeliveryEngineImpl::Dequeue(int64_t webhook_id, WebhookLocal* l) {
  --l->queued;
  --queued_;
  if (l->queued <= per_webhook_held_ / 2 && saturated_.erase(webhook_id) != 0) {
    refilling_.insert(webhook_id);  // it has more due rows: claim ahead
  }
}

void DeliveryEngineImpl::MaybeForget(int64_t webhook_id) {
  auto it = local_.find(webhook_id);
  if (it == local_.end()) return;
  const WebhookLocal& l = it->second;
  if (l.queued <= 0 && l.in_flight == 0 && l.ready.empty() && !l.in_ring) {
    local_.erase(it);
  }
}

void DeliveryEngineImpl::Release(int64_t delivery_id) {
  auto it = held_.find(delivery_id);
  if (it == held_.end()) return;
  const int64_t webhook = it->second;
  held_.erase(it);
  MaybeForget(webhook);
}

DeliveryEngineImpl::HandBackList DeliveryEngineImpl::DropReady(
    int64_t webhook_id, std::optional<absl::Time> until) {
  HandBackList back;
  auto it = local_.find(webhook_id);
  if (it == local_.end()) return back;
  std::deque<Job> ready;
  ready.swap(it->second.ready);
  for (const Job& j : ready) {
    back.emplace_back(j.delivery_id, until);
    held_.erase(j.delivery_id);
    Dequeue(webhook_id, &it->second);
  }
  MaybeForget(webhook_id);
  return back;
}

void DeliveryEngineImpl::Flush(std::vector<Completed> batch) {
  absl::StatusOr<CompletionResult> result = absl::UnavailableError("no lease");
  absl::StatusOr<PooledConnection> lease = Lease(absl::Seconds(5));
  if (lease.ok()) {
    thread_local absl::BitGen gen;  // jitter; one generator per thread
    result = CompleteBatch(*lease, owner_, batch, breaker_, gen);
  } else {
    result = lease.status();
  }
  HandBackList back;
  std::vector<Job> start;
  {
    absl::MutexLock lock(&mu_);
    --flushing_;
    if (!result.ok()) {
      // Keep them, oldest first, and try again after a pause; their
      // leases are renewed meanwhile.
      for (auto it = batch.rbegin(); it != batch.rend(); ++it) {
        completions_.push_front(std::move(*it));
      }
      first_completion_at_ = env_->MonotonicNow();
      ++counters_.completion_errors_total;
      const absl::Duration pause = std::min(
          absl::Milliseconds(100) * (1 << std::min(flush_failures_, 6)),
          absl::Seconds(5));
      ++flush_failures_;
      flush_retry_at_ = env_->MonotonicNow() + pause;
      Log::Warning("delivery: recording attempts failed; will retry",
                   {{"error", std::string(result.status().message())},
                    {"attempts", absl::StrCat(batch.size())}});
      return;
    }
    flush_failures_ = 0;
    AfterFlush(batch, result->plan, &back);
    start = TakeStartable();
  }
  StartJobs(std::move(start));
  if (!back.empty()) HandBackRows(back, absl::Seconds(5));
}

void DeliveryEngineImpl::AfterFlush(const std::vector<Completed>& batch,
                                    const CompletionPlan& plan,
                                    HandBackList* back) {
  for (const Completed& c : batch) Release(c.job.delivery_id);
  counters_.delivered_total += plan.delivered;
  counters_.retried_total += plan.retried;
  counters_.failed_total += plan.failed;
  counters_.handed_back_total += static_cast<int64_t>(plan.hand_back.size());
  metrics_.delivered->Inc(plan.delivered);
  metrics_.retry->Inc(plan.retried);
  metrics_.failed->Inc(plan.failed);
  metrics_.retries->Inc(plan.retry_attempts);
  for (double s : plan.durations_seconds) metrics_.duration->Observe(s);
  // Rows queued here for a webhook that just opened its breaker or was
  // disabled go back now instead of being attempted.
  for (const auto& [id, w] : plan.webhooks) {
    if (w.opened && w.breaker == BreakerState::kOpen) {
      HandBackList b = DropReady(id, w.open_until);
      back->insert(back->end(), b.begin(), b.end());
    } else if (w.disable) {
      HandBackList b = DropReady(id, std::nullopt);
      back->insert(back->end(), b.begin(), b.end());
    }
  }
}

void DeliveryEngineImpl::HandBackRows(const HandBackList& rows,
                                      absl::Duration timeout) {
  absl::StatusOr<PooledConnection> lease = Lease(timeout);
  absl::StatusOr<int> n = lease.ok() ? HandBack(*lease, owner_, rows)
                                     : absl::StatusOr<int>(lease.status());
  absl::MutexLock lock(&mu_);
  if (n.ok()) {
    counters_.handed_back_total += static_cast<int64_t>(rows.size());
  } else {
    Log::Warning("delivery: handing leases back failed; they expire instead",
                 {{"error", std::string(n.status().message())},
                  {"rows", absl::StrCat(rows.size())}});
  }
}

DeliveryStats DeliveryEngineImpl::Stats() const {
  const bool connected = listener_ != nullptr && listener_->Stats().connected;
  absl::MutexLock lock(&mu_);
  DeliveryStats s = counters_;
  s.running = phase_ == Phase::kRunning;
  s.in_flight = in_flight_;
  s.held = static_cast<int>(held_.size());
  s.listener_connected = connected;
  s.since_last_cycle = last_cycle_.has_value()
                           ? env_->MonotonicNow() - *last_cycle_
                           : absl::InfiniteDuration();
  return s;
}

}  // namespace pggitops::internal
