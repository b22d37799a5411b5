// File: pggitops/env.h
//
// Env is the one seam through which libpggitops reads time and sleeps. Every
// TTL, timeout, backoff and interval in the library is computed from an Env,
// so tests inject a manual clock (testing/fake_env.h) and never sleep.
#ifndef PGGITOPS_INCLUDE_ENV_H_
#define PGGITOPS_INCLUDE_ENV_H_

#include "absl/time/time.h"
#include "pggitops/export.h"

namespace pggitops {

// An Env is safe for concurrent use from multiple threads.
class PGGITOPS_EXPORT Env {
 public:
  virtual ~Env() = default;

  // Returns the wall-clock time, for timestamps shown to people.
  virtual absl::Time Now() = 0;

  // Returns a monotonic time, for measuring intervals and deadlines. Only
  // differences between two values are meaningful.
  virtual absl::Time MonotonicNow() = 0;

  // Blocks the calling thread for `d`.
  virtual void SleepFor(absl::Duration d) = 0;

  // Returns the process-wide real Env. It belongs to the library and must
  // never be deleted.
  static Env* Default();
};

}  // namespace pggitops

#endif  // PGGITOPS_INCLUDE_ENV_H_
