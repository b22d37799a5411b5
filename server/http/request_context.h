// What a route handler sees of a request, and how it answers.
#ifndef PGGITOPS_SERVER_HTTP_REQUEST_CONTEXT_H_
#define PGGITOPS_SERVER_HTTP_REQUEST_CONTEXT_H_

#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>

#include "httplib.h"
#include "nlohmann/json.hpp"

namespace pggitops::server {

class StreamSocket;  // server/http/connection_layer.h

// Takes over the socket of an event stream once its response head is final:
// `head` is the response head (status line, headers, Transfer-Encoding:
// chunked) that the new owner writes first.
using StreamAdopter =
    std::function<void(std::unique_ptr<StreamSocket> socket, std::string head)>;

struct RequestContext {
  const httplib::Request& req;
  httplib::Response& res;
  const std::string& request_id;
  const std::string& route;                   // the matched template
  std::map<std::string, std::string> params;  // path parameters
  // The parsed body: a JSON object, or null when the request had none.
  nlohmann::json body;
  // The caller may see details (raw dependency errors, URL credentials,
  // resolved addresses): it holds an admin key, or it is a client on this
  // host while protected mode is on. Set by the authentication middleware.
  bool admin = false;

  // Answers `status` with `j` as JSON.
  void Json(int status, const nlohmann::json& j);
  // A query parameter, or nullopt when absent.
  std::optional<std::string> Query(const std::string& key) const;
  // For an event stream: after the handler returns with the response's
  // status and headers set, the connection goes to `adopter` and holds no
  // worker. False when it cannot (then answer an error instead).
  bool HandOffStream(StreamAdopter adopter);
};

// Test seam: while it lives, HandOffStream on this thread calls `hand_off`
// instead of the HTTP edge.
class ScopedStreamHandOffForTesting {
 public:
  explicit ScopedStreamHandOffForTesting(
      std::function<bool(StreamAdopter)> hand_off);
  ~ScopedStreamHandOffForTesting();
  ScopedStreamHandOffForTesting(const ScopedStreamHandOffForTesting&) = delete;
  ScopedStreamHandOffForTesting& operator=(
      const ScopedStreamHandOffForTesting&) = delete;

 private:
  std::function<bool(StreamAdopter)> previous_;
};

}  // namespace pggitops::server

#endif  // PGGITOPS_SERVER_HTTP_REQUEST_CONTEXT_H_
