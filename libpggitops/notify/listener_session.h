// The listener's database session: the only libpqxx user of the notify
// component. Not thread-safe: used by the listener thread alone.
#ifndef PGGITOPS_LIBPGGITOPS_NOTIFY_LISTENER_SESSION_H_
#define PGGITOPS_LIBPGGITOPS_NOTIFY_LISTENER_SESSION_H_

#include <map>
#include <memory>
#include <pqxx/pqxx>
#include <set>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "pggitops/pg_listener.h"

namespace pggitops::internal {

struct Notification {
  std::string channel;
  std::string payload;
};

// The key='value' connection string of the listener's session: the dsn
// with connect_timeout, no statement timeout and the application name.
// InvalidArgument ("PgListenerOptions.dsn: ...") when the dsn does not
// parse.
absl::StatusOr<std::string> ListenerConninfo(const PgListenerOptions& options);

class ListenerSession {
 public:
  // Connects (libpqxx reactivation off, so a lost session shows as an
  // error instead of a silent reconnect without the LISTENs). kUnavailable
  // when the server cannot be reached.
  static absl::StatusOr<std::unique_ptr<ListenerSession>> Open(
      const std::string& conninfo);
  ~ListenerSession();
  ListenerSession(const ListenerSession&) = delete;
  ListenerSession& operator=(const ListenerSession&) = delete;

  // The socket to poll for input.
  int socket() const;

  // LISTENs to the channels in `channels` not yet listened to and
  // UNLISTENs the others, then checks the session with a round trip.
  // kUnavailable when the session is gone.
  absl::Status SetChannels(const std::set<std::string>& channels);

  // Reads what arrived and returns the notifications, in order.
  // kUnavailable when the session is gone (end of file, FATAL message).
  absl::StatusOr<std::vector<Notification>> Receive();

  // SELECT 1; kUnavailable when the session is gone.
  absl::Status Ping();

 private:
  class Receiver;
  class NoticeHandler;
  explicit ListenerSession(std::unique_ptr<pqxx::connection> conn);

  std::unique_ptr<pqxx::connection> conn_;
  std::unique_ptr<NoticeHandler> notices_;
  std::map<std::string, std::unique_ptr<Receiver>> receivers_;
  std::vector<Notification> received_;
  bool fatal_ = false;  // the server announced it is closing the session
};

}  // namespace pggitops::internal

#endif  // PGGITOPS_LIBPGGITOPS_NOTIFY_LISTENER_SESSION_H_
