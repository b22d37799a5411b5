// A manual clock for unit tests: time moves only when the test says so.
#ifndef PGGITOPS_TESTING_FAKE_ENV_H_
#define PGGITOPS_TESTING_FAKE_ENV_H_

#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "pggitops/env.h"

namespace pggitops::testing {

// Thread-safe. SleepFor advances the clock instead of blocking, so code that
// sleeps in a loop runs instantly under test.
class FakeEnv final : public Env {
 public:
  explicit FakeEnv(absl::Time start = absl::FromUnixSeconds(1'700'000'000))
      : now_(start) {}

  absl::Time Now() override {
    absl::MutexLock lock(&mu_);
    return now_;
  }
  absl::Time MonotonicNow() override { return Now(); }
  void SleepFor(absl::Duration d) override { AdvanceBy(d); }

  void AdvanceBy(absl::Duration d) {
    absl::MutexLock lock(&mu_);
    now_ += d;
  }

 private:
  absl::Mutex mu_;
  absl::Time now_ ABSL_GUARDED_BY(mu_);
};

}  // namespace pggitops::testing

#endif  // PGGITOPS_TESTING_FAKE_ENV_H_
