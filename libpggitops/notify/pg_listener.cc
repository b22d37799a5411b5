// PgListener: one libpqxx session LISTENing for every subscriber, on a
// thread of its own that waits with poll() on the session's socket and an
// eventfd (so Subscribe and Stop wake it at once).
#include "pggitops/pg_listener.h"

#include <poll.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <map>
#include <memory>
#include <pqxx/pqxx>
#include <set>
#include <thread>
#include <utility>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"
#include "libpggitops/notify/listener_session.h"
#include "pggitops/log.h"

namespace pggitops {
namespace internal {
namespace {

bool ValidChannel(const std::string& c) {
  if (c.empty() || c.size() > 63 || absl::ascii_isdigit(c[0])) return false;
  return std::all_of(c.begin(), c.end(), [](char ch) {
    return absl::ascii_isalnum(ch) || ch == '_';
  });
}

int PollTimeoutMs(absl::Duration d) {
  if (d <= absl::ZeroDuration()) return 0;
  return static_cast<int>(
      std::min<int64_t>(absl::ToInt64Milliseconds(d) + 1, 60'000));
}

struct Metrics {
  Gauge* connected = nullptr;
  Counter* reconnects = nullptr;
  Counter* notifications = nullptr;
};

Metrics RegisterMetrics(MetricsRegistry* r) {
  Metrics m;
  if (r == nullptr) return m;
  m.connected =
      &r->AddGauge("pg_listener_connected", "1 while the LISTEN session is up")
           .WithLabels({});
  m.reconnects = &r->AddCounter("pg_listener_reconnects_total",
                                "LISTEN sessions opened after the first")
                      .WithLabels({});
  m.notifications =
      &r->AddCounter("pg_listener_notifications_total",
                     "notifications received on the LISTEN session")
           .WithLabels({});
  return m;
}

class PgListenerImpl final : public PgListener {
 public:
  PgListenerImpl(PgListenerOptions options, std::string conninfo, int wake_fd)
      : options_(std::move(options)),
        env_(options_.env != nullptr ? options_.env : Env::Default()),
        conninfo_(std::move(conninfo)),
        wake_fd_(wake_fd),
        metrics_(RegisterMetrics(options_.metrics)) {}

  ~PgListenerImpl() override {
    Shutdown();
    close(wake_fd_);
  }

  absl::StatusOr<int> Subscribe(const std::string& channel,
                                NotificationCallback callback) override;
  void Unsubscribe(int id) override;
  int AddReconnectCallback(ReconnectCallback callback) override;
  void RemoveReconnectCallback(int id) override;
  absl::Status Start() override;
  void Shutdown() override;
  bool WaitUntilListening(absl::Duration timeout) override;
  PgListenerStats Stats() const override;
  HealthCheck ListenerHealthCheck() override;

 private:
  struct Subscriber {
    std::string channel;
    std::shared_ptr<NotificationCallback> callback;
  };

  void Wake();
  void DrainWake();
  void Run();
  // One connected session's life: returns when it breaks or Shutdown() is
  // called.
  void Serve(ListenerSession* session);
  bool SyncChannels(ListenerSession* session);
  // Reads and dispatches what arrived; false when the session is lost.
  bool ReceiveAndDispatch(ListenerSession* session);
  // Records a lost session (returns false) unless `status` is ok.
  bool Lost(const absl::Status& status, absl::string_view what);
  void Dispatch(std::vector<Notification> batch);
  void CallReconnectCallbacks();
  // Waits for the callbacks in flight on the listener thread to return,
  // unless called from that thread.
  void WaitForDispatch() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void WaitOnWakeFd(absl::Duration timeout);
  std::set<std::string> WantedChannels() const
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void SetConnected(bool connected);

  const PgListenerOptions options_;
  Env* const env_;
  const std::string conninfo_;
  const int wake_fd_;
  const Metrics metrics_;

  mutable absl::Mutex mu_;
  std::map<int, Subscriber> subscribers_ ABSL_GUARDED_BY(mu_);
  std::map<int, std::shared_ptr<ReconnectCallback>> reconnect_callbacks_
      ABSL_GUARDED_BY(mu_);
  int next_id_ ABSL_GUARDED_BY(mu_) = 1;
  bool started_ ABSL_GUARDED_BY(mu_) = false;
  bool stopping_ ABSL_GUARDED_BY(mu_) = false;
  // True while callbacks copied under mu_ may still be running.
  bool dispatching_ ABSL_GUARDED_BY(mu_) = false;
  // Connected, with `listening_` equal to the wanted channels.
  bool listening_all_ ABSL_GUARDED_BY(mu_) = false;
  bool channels_changed_ ABSL_GUARDED_BY(mu_) = false;
  PgListenerStats stats_ ABSL_GUARDED_BY(mu_);
  absl::Mutex join_mu_;  // serializes joining thread_ in Shutdown()
  std::thread thread_;
  std::thread::id thread_id_ ABSL_GUARDED_BY(mu_);
};

absl::StatusOr<int> PgListenerImpl::Subscribe(const std::string& channel,
                                              NotificationCallback callback) {
  if (!ValidChannel(channel)) {
    return absl::InvalidArgumentError(absl::StrCat(
        "channel: must be 1 to 63 letters, digits or underscores, not "
        "starting with a digit (got \"",
        channel.substr(0, 80), "\")"));
  }
  if (!callback) return absl::InvalidArgumentError("callback: must be set");
  int id;
  {
    absl::MutexLock lock(&mu_);
    id = next_id_++;
    const bool known = WantedChannels().count(channel) != 0;
    subscribers_[id] = {
        channel, std::make_shared<NotificationCallback>(std::move(callback))};
    if (!known) {
      channels_changed_ = true;
      listening_all_ = false;
    }
  }
  Wake();
  return id;
}

void PgListenerImpl::Unsubscribe(int id) {
  {
    absl::MutexLock lock(&mu_);
    auto it = subscribers_.find(id);
    if (it == subscribers_.end()) return;
    const std::string channel = it->second.channel;
    subscribers_.erase(it);
    if (WantedChannels().count(channel) == 0) channels_changed_ = true;
    WaitForDispatch();
  }
  Wake();
}

int PgListenerImpl::AddReconnectCallback(ReconnectCallback callback) {
  absl::MutexLock lock(&mu_);
  const int id = next_id_++;
  reconnect_callbacks_[id] =
      std::make_shared<ReconnectCallback>(std::move(callback));
  return id;
}

void PgListenerImpl::RemoveReconnectCallback(int id) {
  absl::MutexLock lock(&mu_);
  if (reconnect_callbacks_.erase(id) == 0) return;
  WaitForDispatch();
}

void PgListenerImpl::WaitForDispatch() {
  if (std::this_thread::get_id() == thread_id_) return;
  mu_.Await(absl::Condition(
      +[](bool* dispatching) { return !*dispatching; }, &dispatching_));
}

std::set<std::string> PgListenerImpl::WantedChannels() const {
  std::set<std::string> out;
  for (const auto& [id, s] : subscribers_) out.insert(s.channel);
  return out;
}

absl::Status PgListenerImpl::Start() {
  absl::MutexLock lock(&mu_);
  if (started_ || stopping_) {
    return absl::FailedPreconditionError(
        "PgListener::Start: already started or stopped");
  }
  started_ = true;
  stats_.running = true;
  thread_ = std::thread([this] { Run(); });
  thread_id_ = thread_.get_id();
  return absl::OkStatus();
}

void PgListenerImpl::Shutdown() {
  {
    absl::MutexLock lock(&mu_);
    stopping_ = true;
    stats_.running = false;
    if (std::this_thread::get_id() == thread_id_) {
      Wake();
      return;  // the thread ends after the current callback
    }
  }
  Wake();
  absl::MutexLock lock(&join_mu_);
  if (thread_.joinable()) thread_.join();
}

bool PgListenerImpl::WaitUntilListening(absl::Duration timeout) {
  absl::MutexLock lock(&mu_);
  return mu_.AwaitWithTimeout(
      absl::Condition(
          +[](bool* all) { return *all; }, &listening_all_),
      timeout);
}

PgListenerStats PgListenerImpl::Stats() const {
  absl::MutexLock lock(&mu_);
  return stats_;
}

HealthCheck PgListenerImpl::ListenerHealthCheck() {
  HealthCheck check;
  check.name = "listener";
  check.criticality = Criticality::kNonCritical;
  check.run = [this] {
    CheckResult r;
    size_t channels;
    PgListenerStats s;
    {
      absl::MutexLock lock(&mu_);
      s = stats_;
      channels = WantedChannels().size();
    }
    r.status = !s.running    ? "stopped"
               : s.connected ? "connected"
                             : "connecting";
    r.ok = s.running && s.connected;
    if (!r.ok && !s.last_error.empty()) r.message = s.last_error;
    r.details_json =
        absl::StrCat(R"({"channels": )", channels, R"(, "reconnects": )",
                     std::max<int64_t>(s.connects_total - 1, 0), "}");
    return r;
  };
  return check;
}

void PgListenerImpl::Wake() {
  const uint64_t one = 1;
  // A full counter (impossible in practice) already means "wake up".
  ssize_t n = write(wake_fd_, &one, sizeof(one));
  (void)n;
}

void PgListenerImpl::DrainWake() {
  uint64_t value;
  ssize_t n = read(wake_fd_, &value, sizeof(value));
  (void)n;
}

void PgListenerImpl::WaitOnWakeFd(absl::Duration timeout) {
  pollfd p{wake_fd_, POLLIN, 0};
  if (poll(&p, 1, PollTimeoutMs(timeout)) > 0) DrainWake();
}

void PgListenerImpl::SetConnected(bool connected) {
  absl::MutexLock lock(&mu_);
  stats_.connected = connected;
  if (!connected) listening_all_ = false;
  if (metrics_.connected != nullptr) metrics_.connected->Set(connected);
}

void PgListenerImpl::Run() {
  absl::Duration backoff = options_.reconnect_min;
  while (true) {
    {
      absl::MutexLock lock(&mu_);
      if (stopping_) break;
    }
    absl::StatusOr<std::unique_ptr<ListenerSession>> session =
        ListenerSession::Open(conninfo_);
    if (!session.ok()) {
      {
        absl::MutexLock lock(&mu_);
        ++stats_.connect_failures_total;
        stats_.last_error = std::string(session.status().message());
      }
      Log::Debug("listener: connect failed",
                 {{"error", std::string(session.status().message())},
                  {"retry_in", absl::FormatDuration(backoff)}});
      WaitOnWakeFd(backoff);
      backoff = std::min(backoff * 2, options_.reconnect_max);
      continue;
    }
    backoff = options_.reconnect_min;
    Serve(session->get());
    SetConnected(false);
  }
  SetConnected(false);
}

void PgListenerImpl::Serve(ListenerSession* session) {
  {
    absl::MutexLock lock(&mu_);
    channels_changed_ = true;
  }
  if (!SyncChannels(session)) return;
  bool first;
  {
    absl::MutexLock lock(&mu_);
    first = stats_.connects_total == 0;
    ++stats_.connects_total;
    stats_.connected = true;
  }
  if (metrics_.connected != nullptr) metrics_.connected->Set(1);
  if (!first && metrics_.reconnects != nullptr) metrics_.reconnects->Inc();
  Log::Info(first ? "listener: connected" : "listener: reconnected");
  CallReconnectCallbacks();

  absl::Time last_activity = env_->MonotonicNow();
  while (true) {
    {
      absl::MutexLock lock(&mu_);
      if (stopping_) return;
    }
    // Round trips (LISTEN, ping) may leave notifications in libpq's
    // buffer without the socket turning readable: read before polling.
    if (!SyncChannels(session) || !ReceiveAndDispatch(session)) return;
    const absl::Duration idle = env_->MonotonicNow() - last_activity;
    pollfd fds[2] = {{session->socket(), POLLIN, 0}, {wake_fd_, POLLIN, 0}};
    const int n = poll(fds, 2, PollTimeoutMs(options_.ping_interval - idle));
    if (n < 0 && errno != EINTR) return;
    if (n > 0 && (fds[1].revents & POLLIN) != 0) DrainWake();
    if (n > 0 && fds[0].revents != 0) {
      last_activity = env_->MonotonicNow();
    } else if (env_->MonotonicNow() - last_activity >= options_.ping_interval) {
      if (!Lost(session->Ping(), "ping failed")) return;
      last_activity = env_->MonotonicNow();
    }
  }
}

bool PgListenerImpl::Lost(const absl::Status& status, absl::string_view what) {
  if (status.ok()) return true;
  absl::MutexLock lock(&mu_);
  stats_.last_error = std::string(status.message());
  ++stats_.disconnects_total;
  Log::Warning(absl::StrCat("listener: ", what, "; reconnecting"),
               {{"error", stats_.last_error}});
  return false;
}

bool PgListenerImpl::ReceiveAndDispatch(ListenerSession* session) {
  absl::StatusOr<std::vector<Notification>> batch = session->Receive();
  if (!Lost(batch.status(), "session lost")) return false;
  if (!batch->empty()) Dispatch(*std::move(batch));
  return true;
}

bool PgListenerImpl::SyncChannels(ListenerSession* session) {
  std::set<std::string> wanted;
  {
    absl::MutexLock lock(&mu_);
    if (!channels_changed_) return true;
    channels_changed_ = false;
    wanted = WantedChannels();
  }
  if (!Lost(session->SetChannels(wanted), "LISTEN failed")) return false;
  absl::MutexLock lock(&mu_);
  // Subscribers may have changed meanwhile: then another round follows.
  listening_all_ = !channels_changed_ && WantedChannels() == wanted;
  return true;
}

void PgListenerImpl::Dispatch(std::vector<Notification> batch) {
  if (metrics_.notifications != nullptr) {
    metrics_.notifications->Inc(static_cast<double>(batch.size()));
  }
  for (Notification& n : batch) {
    std::vector<std::shared_ptr<NotificationCallback>> targets;
    {
      absl::MutexLock lock(&mu_);
      ++stats_.notifications_total;
      if (stopping_) return;
      for (const auto& [id, s] : subscribers_) {
        if (s.channel == n.channel) targets.push_back(s.callback);
      }
      dispatching_ = !targets.empty();
    }
    for (const auto& callback : targets) (*callback)(n.payload);
    absl::MutexLock lock(&mu_);
    dispatching_ = false;
  }
}

void PgListenerImpl::CallReconnectCallbacks() {
  std::vector<std::shared_ptr<ReconnectCallback>> targets;
  {
    absl::MutexLock lock(&mu_);
    if (stopping_) return;
    for (const auto& [id, cb] : reconnect_callbacks_) targets.push_back(cb);
    dispatching_ = !targets.empty();
  }
  for (const auto& callback : targets) (*callback)();
  absl::MutexLock lock(&mu_);
  dispatching_ = false;
}

}  // namespace
}  // namespace internal

absl::Status PgListenerOptions::Validate() const {
  auto range = [](absl::string_view field, absl::Duration v, absl::Duration lo,
                  absl::Duration hi) {
    if (v >= lo && v <= hi) return absl::OkStatus();
    return absl::InvalidArgumentError(
        absl::StrCat("PgListenerOptions.", field, ": must be from ",
                     absl::FormatDuration(lo), " to ", absl::FormatDuration(hi),
                     " (got ", absl::FormatDuration(v), ")"));
  };
  const absl::Status checks[] = {
      range("connect_timeout", connect_timeout, absl::Seconds(1),
            absl::Hours(1)),
      range("reconnect_min", reconnect_min, absl::Milliseconds(1),
            absl::Hours(1)),
      range("reconnect_max", reconnect_max, reconnect_min, absl::Hours(1)),
      range("ping_interval", ping_interval, absl::Milliseconds(100),
            absl::Hours(1)),
  };
  for (const absl::Status& s : checks) {
    if (!s.ok()) return s;
  }
  if (application_name.size() > 63) {
    return absl::InvalidArgumentError(
        "PgListenerOptions.application_name: at most 63 characters");
  }
  return internal::ListenerConninfo(*this).status();
}

absl::StatusOr<std::unique_ptr<PgListener>> PgListener::Create(
    PgListenerOptions options) {
  if (absl::Status s = options.Validate(); !s.ok()) return s;
  absl::StatusOr<std::string> conninfo = internal::ListenerConninfo(options);
  if (!conninfo.ok()) return conninfo.status();
  const int fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
  if (fd < 0) {
    return absl::InternalError(
        absl::StrCat("PgListener: eventfd failed, errno ", errno));
  }
  return std::unique_ptr<PgListener>(new internal::PgListenerImpl(
      std::move(options), *std::move(conninfo), fd));
}

PgListenerOptions PgListenerOptionsFromConfig(const Config& config) {
  PgListenerOptions options;
  options.dsn = config.database_url;
  options.connect_timeout = config.database_connect_timeout;
  return options;
}

}  // namespace pggitops
