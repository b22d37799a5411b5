// The real Env: the library's only reader of the system clocks.
#include <chrono>
#include <thread>

#include "absl/time/clock.h"
#include "pggitops/env.h"

namespace pggitops {
namespace {

class PosixEnv final : public Env {
 public:
  absl::Time Now() override { return absl::Now(); }

  absl::Time MonotonicNow() override {
    auto since = std::chrono::steady_clock::now().time_since_epoch();
    return absl::UnixEpoch() + absl::FromChrono(since);
  }

  void SleepFor(absl::Duration d) override { absl::SleepFor(d); }
};

}  // namespace

Env* Env::Default() {
  static PosixEnv* env = new PosixEnv();  // never deleted
  return env;
}

}  // namespace pggitops
