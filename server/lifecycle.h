// Process lifecycle for pggit-api (CONTRACT section 9): signal handling,
// readiness state and systemd notification.
#ifndef PGGITOPS_SERVER_LIFECYCLE_H_
#define PGGITOPS_SERVER_LIFECYCLE_H_

#include <atomic>
#include <string>

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

// Waits up to `d` for SIGTERM or SIGINT (a second one cuts the grace period
// short). Returns true if one arrived.
bool WaitForSignalFor(absl::Duration d);

// sd_notify(3) wrappers; no-ops when not started by systemd.
void NotifyReady();
void NotifyStopping();
void NotifyStatus(const std::string& status);

}  // namespace pggitops::server

#endif  // PGGITOPS_SERVER_LIFECYCLE_H_
