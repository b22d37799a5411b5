// Process lifecycle for pggit-api (CONTRACT section 9): signal handling,
// readiness state and systemd notification.
#ifndef PGGITOPS_SERVER_LIFECYCLE_H_
#define PGGITOPS_SERVER_LIFECYCLE_H_

#include <atomic>
#include <string>

#include "absl/status/status.h"
#include "absl/time/time.h"

namespace pggitops::server {

enum class Phase { kStarting, kServing, kDraining };
const char* PhaseName(Phase p);

// Blocks SIGTERM, SIGINT and SIGHUP in the calling thread (and so in every
// thread it starts later) and ignores SIGPIPE. Call first thing in main().
void BlockShutdownSignals();

// Waits for SIGTERM or SIGINT, reopening log files on every SIGHUP
// meanwhile. Returns the signal number.
int WaitForShutdownSignal();

// Waits out the grace period `d` of a drain: SIGHUP still reopens log
// files; a further SIGTERM or SIGINT (Ctrl-C in a terminal sends SIGINT to
// the whole process group, and a wrapper script may add a SIGTERM) is
// logged and changes nothing (CONTRACT section 8).
void WaitOutGracePeriod(absl::Duration d);

// Raises the soft open-file limit to the hard one and checks that it leaves
// room for `connections` sockets plus the daemon's other files. Error:
// kFailedPrecondition naming API_MAX_CONNECTIONS and both limits.
absl::Status RaiseOpenFileLimit(int connections, int other_files);

// sd_notify(3) wrappers; no-ops when not started by systemd.
void NotifyReady();
void NotifyStopping();
void NotifyStatus(const std::string& status);

}  // namespace pggitops::server

#endif  // PGGITOPS_SERVER_LIFECYCLE_H_
