// PoolLock: an absl::MutexLock that ThreadSanitizer understands.
//
// Debian's Abseil is built without ThreadSanitizer, so TSan cannot see
// absl::Mutex synchronize and reports every access it guards as a race.
// Under -fsanitize=thread, PoolLock restores the happens-before edges with
// TSan's annotations (release before unlocking, acquire after locking, and
// both around the wait in Await); otherwise it is a plain MutexLock.
#ifndef PGGITOPS_LIBPGGITOPS_POOL_POOL_LOCK_H_
#define PGGITOPS_LIBPGGITOPS_POOL_POOL_LOCK_H_

#include "absl/base/thread_annotations.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"

#if defined(__SANITIZE_THREAD__)
#define PGGITOPS_POOL_TSAN 1
#elif defined(__has_feature)
#if __has_feature(thread_sanitizer)
#define PGGITOPS_POOL_TSAN 1
#endif
#endif

#ifdef PGGITOPS_POOL_TSAN
#include <sanitizer/tsan_interface.h>
#endif

namespace pggitops::internal {

class ABSL_SCOPED_LOCKABLE PoolLock {
 public:
  explicit PoolLock(absl::Mutex* mu) ABSL_EXCLUSIVE_LOCK_FUNCTION(mu)
      : mu_(mu) {
    mu_->Lock();
    Acquired();
  }
  ~PoolLock() ABSL_UNLOCK_FUNCTION() {
    Releasing();
    mu_->Unlock();
  }
  PoolLock(const PoolLock&) = delete;
  PoolLock& operator=(const PoolLock&) = delete;

  // Releases the lock until *flag is true (checked under the lock) or
  // `timeout` passes in real time; returns *flag.
  bool AwaitWithTimeout(const bool* flag, absl::Duration timeout) {
    Releasing();
    const bool done = mu_->AwaitWithTimeout(absl::Condition(flag), timeout);
    Acquired();
    return done;
  }

 private:
#ifdef PGGITOPS_POOL_TSAN
  void Acquired() { __tsan_acquire(mu_); }
  void Releasing() { __tsan_release(mu_); }
#else
  void Acquired() {}
  void Releasing() {}
#endif

  absl::Mutex* const mu_;
};

}  // namespace pggitops::internal

#endif  // PGGITOPS_LIBPGGITOPS_POOL_POOL_LOCK_H_
