#include "libpggitops/notify/listener_session.h"

#include <pqxx/pqxx>
#include <utility>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/strip.h"
#include "libpggitops/pool/conninfo.h"
#include "libpggitops/pool/pqxx_status.h"
#include "pggitops/log.h"

namespace pggitops::internal {
namespace {

// Every failure of the listener's session means reconnecting: whatever
// libpqxx threw, the session is reported unavailable.
absl::Status Unavailable(const std::exception& e) {
  return absl::UnavailableError(
      absl::StrCat("listener session: ", OneLine(e.what())));
}

}  // namespace

// Collects notifications of one channel while libpqxx reads them.
class ListenerSession::Receiver final : public pqxx::notification_receiver {
 public:
  Receiver(pqxx::connection_base& c, const std::string& channel,
           std::vector<Notification>* out)
      : pqxx::notification_receiver(c, channel), out_(out) {}
  void operator()(const std::string& payload, int) override {
    out_->push_back({channel(), payload});
  }

 private:
  std::vector<Notification>* const out_;
};

// Routes server notices to the debug log (not stderr) and notes a FATAL
// message: the server is closing the session.
class ListenerSession::NoticeHandler final : public pqxx::errorhandler {
 public:
  NoticeHandler(pqxx::connection_base& c, bool* fatal)
      : pqxx::errorhandler(c), fatal_(fatal) {}
  bool operator()(const char message[]) noexcept override {
    if (absl::StartsWith(message, "FATAL:")) *fatal_ = true;
    Log::Debug("listener: postgres notice", {{"message", OneLine(message)}});
    return false;
  }

 private:
  bool* const fatal_;
};

absl::StatusOr<std::string> ListenerConninfo(const PgListenerOptions& o) {
  absl::StatusOr<ConnParams> params = ParseDsn(o.dsn);
  if (!params.ok()) {
    absl::string_view m = params.status().message();
    absl::ConsumePrefix(&m, "PoolOptions.dsn: ");
    return absl::InvalidArgumentError(
        absl::StrCat("PgListenerOptions.dsn: ", m));
  }
  PoolOptions pool;
  pool.statement_timeout = absl::InfiniteDuration();
  pool.application_name = o.application_name;
  return RenderConninfo(*params, pool, o.connect_timeout);
}

ListenerSession::ListenerSession(std::unique_ptr<pqxx::connection> conn)
    : conn_(std::move(conn)),
      notices_(std::make_unique<NoticeHandler>(*conn_, &fatal_)) {}

ListenerSession::~ListenerSession() {
  // Receivers unregister (UNLISTEN, errors swallowed by libpqxx) before the
  // connection closes.
  receivers_.clear();
  notices_.reset();
  conn_.reset();
}

absl::StatusOr<std::unique_ptr<ListenerSession>> ListenerSession::Open(
    const std::string& conninfo) {
  try {
    auto conn = std::make_unique<pqxx::connection>(conninfo);
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wdeprecated-declarations"
    conn->inhibit_reactivation(true);
#pragma GCC diagnostic pop
    return std::unique_ptr<ListenerSession>(
        new ListenerSession(std::move(conn)));
  } catch (const std::exception& e) {
    return Unavailable(e);
  }
}

int ListenerSession::socket() const { return conn_->sock(); }

absl::Status ListenerSession::SetChannels(
    const std::set<std::string>& channels) {
  try {
    for (auto it = receivers_.begin(); it != receivers_.end();) {
      it = channels.count(it->first) == 0 ? receivers_.erase(it) : ++it;
    }
    for (const std::string& c : channels) {
      if (receivers_.count(c) != 0) continue;
      receivers_[c] = std::make_unique<Receiver>(*conn_, c, &received_);
    }
    // libpqxx swallows a broken connection while issuing LISTEN: make sure
    // the session is still there.
    return Ping();
  } catch (const std::exception& e) {
    return Unavailable(e);
  }
}

absl::StatusOr<std::vector<Notification>> ListenerSession::Receive() {
  try {
    conn_->get_notifs();
  } catch (const std::exception& e) {
    return Unavailable(e);
  }
  if (fatal_ || !conn_->is_open()) {
    return absl::UnavailableError(
        "listener session: the server closed the session");
  }
  std::vector<Notification> out;
  out.swap(received_);
  return out;
}

absl::Status ListenerSession::Ping() {
  if (fatal_) {
    return absl::UnavailableError(
        "listener session: the server closed the session");
  }
  try {
    pqxx::nontransaction tx(*conn_);
    tx.exec("SELECT 1");
    return absl::OkStatus();
  } catch (const std::exception& e) {
    return Unavailable(e);
  }
}

}  // namespace pggitops::internal
