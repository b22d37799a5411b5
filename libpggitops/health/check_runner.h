// Private machinery of HealthRegistry: one registered check (CheckSlot), one
// invocation of it on its own thread (CheckRun), and the count of such
// threads still alive (RunningChecks).
//
// Ownership: a check's thread holds shared_ptrs to its slot, its run and the
// RunningChecks counter, never to the registry, so the registry can be
// destroyed (or the check unregistered) while a hung check is still running;
// the thread finishes on its own and releases the shared state.
//
// Time: deadlines here are real time (absl::Now), because a thread blocked on
// a mutex can only be woken by a real deadline. The registry's Env is used
// for the cache age only.
#ifndef PGGITOPS_LIBPGGITOPS_HEALTH_CHECK_RUNNER_H_
#define PGGITOPS_LIBPGGITOPS_HEALTH_CHECK_RUNNER_H_

#include <memory>
#include <optional>

#include "absl/base/thread_annotations.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "pggitops/health.h"

namespace pggitops::internal {

// Counts the check threads that have not returned yet. Thread-safe.
class RunningChecks {
 public:
  void Add();
  void Done();
  // Waits up to `timeout` (real time) for the count to reach zero. Returns
  // true if it did.
  bool WaitUntilNone(absl::Duration timeout);

 private:
  absl::Mutex mu_;
  int running_ ABSL_GUARDED_BY(mu_) = 0;
};

// One invocation of a check, shared by the thread running it and every
// evaluation waiting for it. Thread-safe.
class CheckRun {
 public:
  explicit CheckRun(absl::Time deadline) : deadline_(deadline) {}

  // Real-time instant after which waiters stop waiting.
  absl::Time deadline() const { return deadline_; }

  void Finish(CheckResult result);
  bool IsDone();
  // Waits until the run finishes or its deadline passes. Returns the result,
  // or nullopt if the deadline passed first.
  std::optional<CheckResult> Await();

 private:
  const absl::Time deadline_;
  absl::Mutex mu_;
  bool done_ ABSL_GUARDED_BY(mu_) = false;
  CheckResult result_ ABSL_GUARDED_BY(mu_);
};

// A registered check and its run in flight, if any. Thread-safe. The check
// itself is constant after construction.
class CheckSlot : public std::enable_shared_from_this<CheckSlot> {
 public:
  // An evaluation's handle on the run it waits for.
  struct Pending {
    std::shared_ptr<CheckRun> run;
    // The run was already past its deadline when this evaluation found it
    // (a hung check from an earlier evaluation).
    bool hung = false;
  };

  // REQUIRES: `running` is not null.
  CheckSlot(HealthCheck check, std::shared_ptr<RunningChecks> running);

  const HealthCheck& check() const { return check_; }

  // Starts a run on a new thread, unless one is still in flight: then
  // returns that one instead, so the check never runs concurrently with
  // itself. Never blocks on the check.
  Pending Start();

  // Waits for `pending` (at most until its deadline) and returns its result,
  // or a "timeout" result.
  CheckResult Await(const Pending& pending) const;

 private:
  // Runs the check on a detached thread that finishes `run`.
  void Launch(const std::shared_ptr<CheckRun>& run);
  // Called by the thread once `run` is finished.
  void Retire(const std::shared_ptr<CheckRun>& run);

  const HealthCheck check_;
  const std::shared_ptr<RunningChecks> running_;
  absl::Mutex mu_;
  std::shared_ptr<CheckRun> in_flight_ ABSL_GUARDED_BY(mu_);
};

// Calls check.run, turning exceptions and an empty function into failed
// results.
CheckResult InvokeCheck(const HealthCheck& check);

}  // namespace pggitops::internal

#endif  // PGGITOPS_LIBPGGITOPS_HEALTH_CHECK_RUNNER_H_
