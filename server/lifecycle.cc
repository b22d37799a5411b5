#include "server/lifecycle.h"

#include <signal.h>
#include <sys/resource.h>
#include <systemd/sd-daemon.h>
#include <time.h>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "pggitops/log.h"

namespace pggitops::server {
namespace {

sigset_t ShutdownSet() {
  sigset_t set;
  sigemptyset(&set);
  sigaddset(&set, SIGTERM);
  sigaddset(&set, SIGINT);
  sigaddset(&set, SIGHUP);
  return set;
}

void ReopenLogs() {
  absl::Status s = Log::ReopenFile();
  if (s.ok()) {
    Log::Info("log file reopened (SIGHUP)");
  } else {
    Log::Error("log file reopen failed", {{"error", std::string(s.message())}});
  }
}

}  // namespace

const char* PhaseName(Phase p) {
  switch (p) {
    case Phase::kStarting:
      return "starting";
    case Phase::kServing:
      return "serving";
    case Phase::kDraining:
      return "draining";
  }
  return "unknown";
}

void BlockShutdownSignals() {
  sigset_t set = ShutdownSet();
  pthread_sigmask(SIG_BLOCK, &set, nullptr);
  signal(SIGPIPE, SIG_IGN);
}

int WaitForShutdownSignal() {
  sigset_t set = ShutdownSet();
  for (;;) {
    int sig = 0;
    if (sigwait(&set, &sig) != 0) continue;
    if (sig == SIGHUP) {
      ReopenLogs();
      continue;
    }
    return sig;
  }
}

void WaitOutGracePeriod(absl::Duration d) {
  sigset_t set = ShutdownSet();
  absl::Time deadline = absl::Now() + d;
  for (;;) {
    absl::Duration left = deadline - absl::Now();
    if (left <= absl::ZeroDuration()) return;
    timespec ts = absl::ToTimespec(left);
    int sig = sigtimedwait(&set, nullptr, &ts);
    if (sig == SIGHUP) {
      ReopenLogs();
    } else if (sig == SIGTERM || sig == SIGINT) {
      Log::Info("already draining; the signal changes nothing",
                {{"signal", sig == SIGINT ? "SIGINT" : "SIGTERM"}});
    }
  }
}

absl::Status RaiseOpenFileLimit(int connections, int other_files) {
  rlimit rl{};
  if (getrlimit(RLIMIT_NOFILE, &rl) != 0) {
    return absl::InternalError("getrlimit(RLIMIT_NOFILE) failed");
  }
  if (rl.rlim_cur < rl.rlim_max) {
    rlim_t was = rl.rlim_cur;
    rl.rlim_cur = rl.rlim_max;
    if (setrlimit(RLIMIT_NOFILE, &rl) != 0) rl.rlim_cur = was;
  }
  const rlim_t needed =
      static_cast<rlim_t>(connections) + static_cast<rlim_t>(other_files);
  if (rl.rlim_cur < needed) {
    return absl::FailedPreconditionError(absl::StrCat(
        "API_MAX_CONNECTIONS=", connections,
        " needs an open-file limit of at "
        "least ",
        needed, " but the hard limit is ", rl.rlim_max,
        ": raise it (LimitNOFILE= in the systemd unit, ulimit -Hn in a "
        "shell) or lower API_MAX_CONNECTIONS"));
  }
  return absl::OkStatus();
}

void NotifyReady() { sd_notify(0, "READY=1\nSTATUS=serving"); }
void NotifyStopping() { sd_notify(0, "STOPPING=1\nSTATUS=draining"); }
void NotifyStatus(const std::string& status) {
  sd_notify(0, ("STATUS=" + status).c_str());
}

}  // namespace pggitops::server
