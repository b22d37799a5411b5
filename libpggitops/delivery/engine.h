// DeliveryEngineImpl: the dispatcher behind DeliveryEngine.
//
// Threads:
//   * `workers` worker threads claim due rows (one claim at a time per
//     engine) and record finished attempts in batches;
//   * the transport's thread runs the attempts and reports each through
//     OnAttemptDone, which also starts the next queued attempts at once;
//   * one housekeeping thread renews leases, unparks rows of re-activated
//     webhooks, refreshes the gauges and purges old rows;
//   * the PgListener's thread calls Wake().
// All state below mu_ is shared by them; no lock is held while calling the
// transport, the pool or the listener.
#ifndef PGGITOPS_LIBPGGITOPS_DELIVERY_ENGINE_H_
#define PGGITOPS_LIBPGGITOPS_DELIVERY_ENGINE_H_

#include <cstdint>
#include <deque>
#include <memory>
#include <optional>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/container/flat_hash_map.h"
#include "absl/container/flat_hash_set.h"
#include "absl/random/random.h"
#include "absl/synchronization/mutex.h"
#include "libpggitops/delivery/breaker.h"
#include "libpggitops/delivery/delivery_metrics.h"
#include "libpggitops/delivery/delivery_store.h"
#include "libpggitops/delivery/planner.h"
#include "pggitops/delivery_queue.h"
#include "pggitops/pg_listener.h"

namespace pggitops::internal {

class DeliveryEngineImpl;

// The door through which transport callbacks reach the engine. Callbacks
// may arrive after the engine is gone (a transport the engine does not
// own): Close() waits for the callbacks inside and turns later ones away.
class CallbackGate {
 public:
  explicit CallbackGate(DeliveryEngineImpl* engine) : engine_(engine) {}
  // Returns the engine and counts the caller in, or nullptr when closed.
  DeliveryEngineImpl* Enter();
  void Exit();
  void Close();

 private:
  absl::Mutex mu_;
  DeliveryEngineImpl* engine_ ABSL_GUARDED_BY(mu_);
  int inside_ ABSL_GUARDED_BY(mu_) = 0;
};

class DeliveryEngineImpl final : public DeliveryEngine {
 public:
  DeliveryEngineImpl(ConnectionPool* pool, DeliveryOptions options,
                     std::unique_ptr<WebhookTransport> owned_transport,
                     std::unique_ptr<PgListener> owned_listener);
  ~DeliveryEngineImpl() override;

  absl::Status Start() override;
  void Shutdown(absl::Time deadline) override;
  void Wake() override;
  absl::StatusOr<TestSendResult> SendTest(int64_t webhook_id) override;
  DeliveryStats Stats() const override;
  HealthCheck DispatcherHealthCheck() override;

  // Called through the gate when an attempt ends.
  void OnAttemptDone(Job job, absl::Time started_at, WebhookResponse r);

 private:
  enum class Phase { kCreated, kRunning, kStopping, kStopped };
  struct WebhookLocal {
    std::deque<Job> ready;  // claimed, not started
    int in_flight = 0;
    // ready + in flight: what the per-webhook claim limit counts. A
    // finished attempt frees its place at once, before it is recorded.
    int queued = 0;
    bool in_ring = false;
  };
  using HandBackList =
      std::vector<std::pair<int64_t, std::optional<absl::Time>>>;

  // Workers (engine.cc).
  void WorkerLoop();
  bool ClaimDueNow() const ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // When the queued completions should be recorded (InfiniteFuture: none).
  absl::Time FlushDueAt() const ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  bool CanClaim() const ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // When the workers must look again even if nothing else happens.
  absl::Time NextWakeAt() const ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // Forgets one queued row of `l` (started attempts end in OnAttemptDone).
  void Dequeue(int64_t webhook_id, WebhookLocal* l)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void MaybeForget(int64_t webhook_id) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void Claim();
  // *refill_only: a top-up of webhooks that drained to half, nothing else.
  // *maintenance: probes and expired leases are due too (Maintain).
  ClaimRequest PrepareClaim(bool* refill_only, bool* maintenance)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void Maintain(PooledConnection* lease, const ClaimRequest& req);
  void AfterClaim(const ClaimRequest& req, const ClaimResult& result,
                  bool refill_only) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void Flush(std::vector<Completed> batch);
  void AfterFlush(const std::vector<Completed>& batch,
                  const CompletionPlan& plan, HandBackList* back)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void Release(int64_t delivery_id) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void AddJobs(const std::vector<Job>& jobs) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  HandBackList DropReady(int64_t webhook_id, std::optional<absl::Time> until)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  absl::StatusOr<PooledConnection> Lease(absl::Duration timeout);
  void HandBackRows(const HandBackList& rows, absl::Duration timeout);

  // Attempts (engine_attempts.cc).
  std::vector<Job> TakeStartable() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void StartJobs(std::vector<Job> jobs);
  WebhookRequest BuildRequest(const Job& job, int64_t timestamp) const;

  // Housekeeping (engine_maintenance.cc).
  void MaintenanceLoop();
  void RenewHeldLeases();
  void UnparkActivated();
  void RefreshGauges();
  void Purge(absl::Time* next_purge);
  void StopEverything(absl::Time deadline);

  ConnectionPool* const pool_;
  const DeliveryOptions options_;
  Env* const env_;
  const BreakerParams breaker_;
  const std::string owner_;
  const int per_webhook_held_;  // rows of one webhook queued at most
  const int max_held_;          // rows queued (all webhooks) at most
  std::unique_ptr<PgListener> owned_listener_;
  PgListener* const listener_;
  std::unique_ptr<WebhookTransport> owned_transport_;
  WebhookTransport* const transport_;
  std::unique_ptr<MetricsRegistry> private_metrics_;
  const DeliveryMetrics metrics_;
  std::shared_ptr<CallbackGate> gate_;

  mutable absl::Mutex mu_;
  Phase phase_ ABSL_GUARDED_BY(mu_) = Phase::kCreated;
  bool stop_threads_ ABSL_GUARDED_BY(mu_) = false;
  absl::flat_hash_map<int64_t, WebhookLocal> local_ ABSL_GUARDED_BY(mu_);
  std::deque<int64_t> ring_ ABSL_GUARDED_BY(mu_);  // webhooks with ready
  // Webhooks whose due rows exceeded what we may queue at the last claims.
  absl::flat_hash_set<int64_t> saturated_ ABSL_GUARDED_BY(mu_);
  // Every row this engine leases (queued, in flight, or finished and not
  // yet recorded): delivery id -> webhook id.
  absl::flat_hash_map<int64_t, int64_t> held_ ABSL_GUARDED_BY(mu_);
  int queued_ ABSL_GUARDED_BY(mu_) = 0;  // sum of WebhookLocal::queued
  std::deque<Completed> completions_ ABSL_GUARDED_BY(mu_);
  int in_flight_ ABSL_GUARDED_BY(mu_) = 0;
  int flushing_ ABSL_GUARDED_BY(mu_) = 0;
  bool wake_ ABSL_GUARDED_BY(mu_) = true;  // a notification arrived
  // Saturated webhooks that drained to half their limit: claim ahead.
  absl::flat_hash_set<int64_t> refilling_ ABSL_GUARDED_BY(mu_);
  bool claiming_ ABSL_GUARDED_BY(mu_) = false;
  bool last_claim_full_ ABSL_GUARDED_BY(mu_) = false;
  absl::Time next_poll_ ABSL_GUARDED_BY(mu_);
  // After a claim that found only rows of saturated webhooks, notifications
  // wait until then (each such claim scans their due rows in vain).
  absl::Time quiet_until_ ABSL_GUARDED_BY(mu_);
  // When the next claim also grants probes and reclaims expired leases.
  absl::Time next_maintenance_ ABSL_GUARDED_BY(mu_);
  absl::Time flush_retry_at_ ABSL_GUARDED_BY(mu_);
  absl::Time first_completion_at_ ABSL_GUARDED_BY(mu_);
  int flush_failures_ ABSL_GUARDED_BY(mu_) = 0;
  int claim_failures_ ABSL_GUARDED_BY(mu_) = 0;
  std::optional<absl::Time> last_cycle_ ABSL_GUARDED_BY(mu_);
  DeliveryStats counters_ ABSL_GUARDED_BY(mu_);
  absl::Time unpark_since_ ABSL_GUARDED_BY(mu_) = absl::UnixEpoch();

  int subscription_ = -1;  // listener ids, set by Start()
  int reconnect_callback_ = -1;
  std::vector<std::thread> threads_;
};

}  // namespace pggitops::internal

#endif  // PGGITOPS_LIBPGGITOPS_DELIVERY_ENGINE_H_
