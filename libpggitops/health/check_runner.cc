#include "libpggitops/health/check_runner.h"

#include <exception>
#include <string>
#include <system_error>
#include <thread>
#include <utility>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"

namespace pggitops::internal {
namespace {

CheckResult Failure(std::string status, std::string message) {
  CheckResult r;
  r.ok = false;
  r.status = std::move(status);
  r.message = std::move(message);
  return r;
}

}  // namespace

void RunningChecks::Add() {
  absl::MutexLock lock(&mu_);
  ++running_;
}

void RunningChecks::Done() {
  absl::MutexLock lock(&mu_);
  --running_;
}

bool RunningChecks::WaitUntilNone(absl::Duration timeout) {
  absl::MutexLock lock(&mu_);
  auto none = [this]()
                  ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) { return running_ == 0; };
  return mu_.AwaitWithTimeout(absl::Condition(&none), timeout);
}

void CheckRun::Finish(CheckResult result) {
  absl::MutexLock lock(&mu_);
  result_ = std::move(result);
  done_ = true;
}

bool CheckRun::IsDone() {
  absl::MutexLock lock(&mu_);
  return done_;
}

std::optional<CheckResult> CheckRun::Await() {
  absl::MutexLock lock(&mu_);
  if (!mu_.AwaitWithDeadline(absl::Condition(&done_), deadline_)) {
    return std::nullopt;
  }
  return result_;
}

CheckSlot::CheckSlot(HealthCheck check, std::shared_ptr<RunningChecks> running)
    : check_(std::move(check)), running_(std::move(running)) {}

CheckSlot::Pending CheckSlot::Start() {
  const absl::Time now = absl::Now();
  std::shared_ptr<CheckRun> run;
  {
    absl::MutexLock lock(&mu_);
    // A finished run whose thread has not retired it yet no longer counts:
    // the check function has returned.
    if (in_flight_ != nullptr && !in_flight_->IsDone()) {
      return Pending{in_flight_, now >= in_flight_->deadline()};
    }
    run = std::make_shared<CheckRun>(now + check_.timeout);
    in_flight_ = run;
  }
  Launch(run);
  return Pending{run, false};
}

void CheckSlot::Launch(const std::shared_ptr<CheckRun>& run) {
  running_->Add();
  std::shared_ptr<CheckSlot> self = shared_from_this();
  try {
    std::thread([self, run] {
      run->Finish(InvokeCheck(self->check_));
      self->Retire(run);
    }).detach();
  } catch (const std::system_error& e) {
    run->Finish(Failure("error",
                        absl::StrCat("cannot start check thread: ", e.what())));
    Retire(run);
  }
}

void CheckSlot::Retire(const std::shared_ptr<CheckRun>& run) {
  {
    absl::MutexLock lock(&mu_);
    if (in_flight_ == run) in_flight_.reset();
  }
  running_->Done();  // last: WaitUntilNone then sees no run in flight
}

CheckResult CheckSlot::Await(const Pending& pending) const {
  if (std::optional<CheckResult> result = pending.run->Await()) {
    return *std::move(result);
  }
  std::string message = absl::StrCat(
      "check exceeded ", absl::ToInt64Milliseconds(check_.timeout), " ms");
  if (pending.hung) {
    absl::StrAppend(&message,
                    " and is still running from an earlier evaluation; not "
                    "restarted");
  }
  return Failure("timeout", std::move(message));
}

CheckResult InvokeCheck(const HealthCheck& check) {
  if (!check.run) return Failure("error", "check has no run function");
  try {
    return check.run();
  } catch (const std::exception& e) {
    return Failure("error", e.what());
  } catch (...) {
    return Failure("error", "check threw a non-standard exception");
  }
}

}  // namespace pggitops::internal
