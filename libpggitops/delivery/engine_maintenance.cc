// Housekeeping, shutdown, the dispatcher health check and the factory.
#include <algorithm>
#include <utility>

#include "absl/container/flat_hash_set.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "libpggitops/delivery/delivery_store.h"
#include "libpggitops/delivery/engine.h"
#include "pggitops/log.h"

namespace pggitops {
namespace internal {

void DeliveryEngineImpl::MaintenanceLoop() {
  const absl::Time start = env_->MonotonicNow();
  absl::Time next_renew = start + options_.lease / 3;
  absl::Time next_unpark = start;
  absl::Time next_gauges = start;
  absl::Time next_purge =
      start + std::min(options_.purge_interval, absl::Seconds(10));
  while (true) {
    {
      absl::MutexLock lock(&mu_);
      const absl::Time now = env_->MonotonicNow();
      const absl::Time next =
          std::min({next_renew, next_unpark, next_gauges, next_purge});
      if (!stop_threads_ && next > now) {
        mu_.AwaitWithTimeout(absl::Condition(&stop_threads_), next - now);
      }
      if (stop_threads_) return;
    }
    const absl::Time now = env_->MonotonicNow();
    if (now >= next_renew) {
      RenewHeldLeases();
      next_renew = env_->MonotonicNow() + options_.lease / 3;
    }
    if (now >= next_unpark) {
      UnparkActivated();
      next_unpark = env_->MonotonicNow() + options_.poll_interval;
    }
    if (now >= next_gauges) {
      RefreshGauges();
      next_gauges = env_->MonotonicNow() + options_.metrics_interval;
    }
    if (now >= next_purge) Purge(&next_purge);
  }
}

void DeliveryEngineImpl::RenewHeldLeases() {
  std::vector<int64_t> ids;
  {
    absl::MutexLock lock(&mu_);
    ids.reserve(held_.size());
    for (const auto& [id, webhook] : held_) ids.push_back(id);
  }
  if (ids.empty()) return;
  absl::StatusOr<PooledConnection> lease = Lease(options_.lease / 3);
  absl::StatusOr<std::vector<int64_t>> lost_ids =
      lease.ok() ? RenewLeases(*lease, owner_, ids, options_.lease)
                 : absl::StatusOr<std::vector<int64_t>>(lease.status());
  if (!lost_ids.ok()) {
    Log::Warning("delivery: lease renewal failed",
                 {{"error", std::string(lost_ids.status().message())}});
    return;
  }
  if (lost_ids->empty()) return;
  const absl::flat_hash_set<int64_t> lost(lost_ids->begin(), lost_ids->end());
  absl::MutexLock lock(&mu_);
  // Rows taken over by another engine (our lease had run out) that have
  // not started here are dropped: the other engine delivers them.
  for (auto& [webhook, l] : local_) {
    std::deque<Job> keep;
    for (Job& j : l.ready) {
      if (lost.count(j.delivery_id) != 0) {
        held_.erase(j.delivery_id);
        Dequeue(webhook, &l);
      } else {
        keep.push_back(std::move(j));
      }
    }
    l.ready.swap(keep);
  }
}

void DeliveryEngineImpl::UnparkActivated() {
  absl::Time since;
  {
    absl::MutexLock lock(&mu_);
    since = unpark_since_;
  }
  absl::StatusOr<PooledConnection> lease = Lease(absl::Seconds(2));
  if (!lease.ok()) return;
  // Overlap by a second so a change committed while we looked is not
  // missed.
  absl::StatusOr<std::pair<int, absl::Time>> r =
      internal::UnparkActivated(*lease, since - absl::Seconds(1));
  if (!r.ok()) return;
  absl::MutexLock lock(&mu_);
  unpark_since_ = r->second;
  if (r->first > 0) wake_ = true;
}

void DeliveryEngineImpl::RefreshGauges() {
  absl::StatusOr<PooledConnection> lease = Lease(absl::Seconds(2));
  if (!lease.ok()) return;
  absl::StatusOr<QueueGauges> g = ReadGauges(*lease);
  if (!g.ok()) return;
  metrics_.queue_depth->Set(static_cast<double>(g->pending + g->in_progress));
  metrics_.breaker_closed->Set(static_cast<double>(g->closed));
  metrics_.breaker_open->Set(static_cast<double>(g->open));
  metrics_.breaker_half_open->Set(static_cast<double>(g->half_open));
}

void DeliveryEngineImpl::Purge(absl::Time* next_purge) {
  // A bounded round of small batches; more work left means another round
  // soon, so lease renewal never waits long.
  constexpr int kBatchesPerRound = 20;
  int deleted = 0;
  for (int i = 0; i < kBatchesPerRound; ++i) {
    {
      absl::MutexLock lock(&mu_);
      if (stop_threads_) return;
    }
    absl::StatusOr<PooledConnection> lease = Lease(absl::Seconds(2));
    if (!lease.ok()) break;
    absl::StatusOr<int> n =
        PurgeBatch(*lease, options_.retention_days, options_.purge_batch);
    if (!n.ok() || *n < 0) break;  // failed, or another engine purges
    deleted += *n;
    if (*n < options_.purge_batch) {
      if (deleted > 0) {
        Log::Info("delivery: purged old deliveries",
                  {{"rows", absl::StrCat(deleted)}});
      }
      *next_purge = env_->MonotonicNow() + options_.purge_interval;
      return;
    }
  }
  *next_purge = env_->MonotonicNow() +
                (deleted > 0 ? absl::Seconds(1) : options_.purge_interval);
}

void DeliveryEngineImpl::Shutdown(absl::Time deadline) {
  {
    absl::MutexLock lock(&mu_);
    if (phase_ == Phase::kCreated) {
      phase_ = Phase::kStopped;
    } else if (phase_ == Phase::kRunning) {
      phase_ = Phase::kStopping;
      counters_.running = false;
    } else {
      mu_.Await(absl::Condition(
          +[](Phase* p) { return *p == Phase::kStopped; }, &phase_));
      return;
    }
  }
  StopEverything(deadline);
  absl::MutexLock lock(&mu_);
  phase_ = Phase::kStopped;
}

void DeliveryEngineImpl::StopEverything(absl::Time deadline) {
  if (listener_ != nullptr && subscription_ >= 0) {
    listener_->Unsubscribe(subscription_);
    listener_->RemoveReconnectCallback(reconnect_callback_);
  }
  if (owned_listener_ != nullptr) owned_listener_->Shutdown();
  {
    absl::MutexLock lock(&mu_);
    // Nothing new starts: queued rows go back (below, with the rest).
    for (auto& [id, l] : local_) l.ready.clear();
    // Attempts in flight may finish until the deadline.
    mu_.AwaitWithDeadline(absl::Condition(
                              +[](int* n) { return *n == 0; }, &in_flight_),
                          deadline);
  }
  if (owned_transport_ != nullptr) owned_transport_->Shutdown(deadline);
  {
    // The workers record what finished (a little past the deadline at most).
    absl::MutexLock lock(&mu_);
    const auto recorded = [this]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
      return completions_.empty() && flushing_ == 0;
    };
    mu_.AwaitWithDeadline(absl::Condition(&recorded),
                          std::max(deadline, absl::Now() + absl::Seconds(1)));
    stop_threads_ = true;
  }
  for (std::thread& t : threads_) t.join();
  threads_.clear();
  gate_->Close();  // late attempts of a foreign transport are ignored
  // Every row still leased here (queued, unfinished, unrecorded) goes back.
  HandBackList back;
  {
    absl::MutexLock lock(&mu_);
    for (const auto& [id, webhook] : held_) back.emplace_back(id, std::nullopt);
    held_.clear();
    local_.clear();
    ring_.clear();
    queued_ = 0;
    completions_.clear();
    in_flight_ = 0;
  }
  if (!back.empty()) {
    const absl::Duration left =
        std::clamp(deadline - absl::Now(), absl::Seconds(1), absl::Seconds(5));
    HandBackRows(back, left);
  }
  Log::Info("delivery engine stopped",
            {{"handed_back", absl::StrCat(back.size())}});
}

HealthCheck DeliveryEngineImpl::DispatcherHealthCheck() {
  HealthCheck check;
  check.name = "dispatcher";
  check.criticality = Criticality::kNonCritical;
  check.run = [this] {
    const DeliveryStats s = Stats();
    const absl::Duration stall_after =
        std::max(3 * options_.poll_interval, absl::Seconds(30));
    const bool stalled = s.running && s.since_last_cycle > stall_after;
    CheckResult r;
    r.status = !s.running ? "stopped" : stalled ? "stalled" : "running";
    r.ok = s.running && !stalled;
    if (stalled) r.message = "no worker has finished a loop recently";
    const double since = s.since_last_cycle == absl::InfiniteDuration()
                             ? -1
                             : absl::ToDoubleSeconds(s.since_last_cycle);
    r.details_json =
        absl::StrFormat(R"({"in_flight": %d, "held": %d, "listener": "%s", )"
                        R"("seconds_since_last_cycle": %.3f})",
                        s.in_flight, s.held,
                        listener_ == nullptr   ? "none"
                        : s.listener_connected ? "connected"
                                               : "disconnected",
                        since);
    return r;
  };
  return check;
}

}  // namespace internal

absl::StatusOr<std::unique_ptr<DeliveryEngine>> DeliveryEngine::Create(
    ConnectionPool* pool, DeliveryOptions options) {
  if (pool == nullptr) {
    return absl::InvalidArgumentError("DeliveryEngine::Create: pool is null");
  }
  if (absl::Status s = options.Validate(); !s.ok()) return s;
  std::unique_ptr<WebhookTransport> transport;
  if (options.transport == nullptr) {
    HttpTransportOptions t;
    t.max_in_flight = options.max_in_flight;
    t.max_in_flight_per_endpoint = options.max_in_flight_per_endpoint;
    t.allow_private_targets = options.allow_private_targets;
    absl::StatusOr<std::unique_ptr<WebhookTransport>> made =
        NewHttpTransport(t);
    if (!made.ok()) return made.status();
    transport = *std::move(made);
  }
  std::unique_ptr<PgListener> listener;
  if (options.listener == nullptr && !options.dsn.empty()) {
    PgListenerOptions l;
    l.dsn = options.dsn;
    l.metrics = options.metrics;
    l.env = options.env;
    absl::StatusOr<std::unique_ptr<PgListener>> made =
        PgListener::Create(std::move(l));
    if (!made.ok()) return made.status();
    listener = *std::move(made);
  }
  return std::unique_ptr<DeliveryEngine>(new internal::DeliveryEngineImpl(
      pool, std::move(options), std::move(transport), std::move(listener)));
}

}  // namespace pggitops
