// File: connection_layer.h
//
// The HTTP edge (CONTRACT section 8): the daemon's own sockets under
// cpp-httplib. One event-loop thread (epoll) accepts connections, enforces
// the connection caps, holds idle keep-alive connections, gathers each
// request head within API_HEADER_TIMEOUT and API_MAX_HEADER_BYTES, and
// gathers a body once the handler has admitted it; none of this uses a
// worker. A complete request goes to one of `workers` threads, which serves
// exactly that request (RequestHandler::Serve) and hands the connection back.
// An event stream is handed over for good (EdgeRequest::TakeOver), so an
// open stream holds no worker.
//
// Why: cpp-httplib 0.11 serves one connection per thread for the
// connection's whole life and buffers request lines, headers and bodies
// without bound, so one slow or hostile client could hold every thread or
// the daemon's memory. docs/architecture.md has the design and its figures.
//
//   ConnectionLayerOptions o;  // limits from the configuration
//   auto edge = ConnectionLayer::Create(o, &handler);  // binds
//   std::thread loop([&] { (*edge)->Run(); });
//   ...
//   (*edge)->Drain(absl::Now() + absl::Seconds(30));  // SIGTERM
//   loop.join();
//
// Thread-safe: Drain, port(), in_flight() and open_connections() may be
// called from any thread while Run runs.
#ifndef PGGITOPS_SERVER_HTTP_CONNECTION_LAYER_H_
#define PGGITOPS_SERVER_HTTP_CONNECTION_LAYER_H_

#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "pggitops/metrics.h"
#include "server/http/request_head.h"

namespace pggitops::server {

struct ConnectionLayerOptions {
  std::string host = "127.0.0.1";
  int port = 8000;  // 0 picks a free port
  int listen_backlog = 4096;
  // Threads that serve requests (API_WORKERS).
  int workers = 4;
  // Threads that serve only the requests `is_priority` names (health
  // probes, metrics), so they are answered even while every worker waits
  // on a slow database. 0 (or no predicate): one lane for all.
  int priority_workers = 2;
  std::function<bool(absl::string_view target)> is_priority;
  // Open connections overall and per client address (an IPv6 client is its
  // /ipv6_client_prefix); loopback peers and `exempt_peer` ones are not
  // capped per client. At a cap the longest-idle connection is closed,
  // then the one whose head has been arriving longest; a new connection is
  // answered 503 only when every other one is busy.
  int max_connections = 10000;
  int max_connections_per_client = 256;
  int ipv6_client_prefix = 64;
  bool exempt_loopback = true;
  std::function<bool(absl::string_view peer_ip)> exempt_peer;
  absl::Duration header_timeout = absl::Seconds(10);
  absl::Duration body_timeout = absl::Seconds(30);
  absl::Duration keepalive_timeout = absl::Seconds(15);
  int keepalive_max = 10000;  // requests per connection
  // A response a client does not read within this closes the connection.
  absl::Duration write_timeout = absl::Seconds(30);
  // Responses waiting for slow readers, all connections together; beyond
  // it a worker waits (up to write_timeout) instead of buffering more.
  size_t max_pending_output = 64 << 20;
  HeadLimits limits;
  // http_connections_open, http_connections_refused_total{reason}, ...
  // Optional; must outlive the layer.
  MetricsRegistry* metrics = nullptr;
};

// A socket handed over for good (an event stream). Its owner writes to
// fd() (non-blocking) and destroys the object to close the connection; the
// edge closes the socket on its loop and counts the connection as gone.
class StreamSocket {
 public:
  virtual ~StreamSocket() = default;
  virtual int fd() const = 0;
  virtual const std::string& peer_ip() const = 0;
};

// One request as a worker serves it. Valid during RequestHandler::Serve.
class EdgeRequest {
 public:
  virtual ~EdgeRequest() = default;
  // Reads what cpp-httplib should parse: the head without its hidden lines
  // (with Content-Length for a decoded chunked body), then the body; 0 at
  // the end. Never waits: the edge gathered the whole request.
  virtual size_t Read(char* out, size_t n) = 0;
  virtual const RequestHead& head() const = 0;
  virtual absl::string_view raw_head() const = 0;  // as received
  virtual absl::string_view body() const = 0;
  virtual const std::string& peer_ip() const = 0;
  virtual int peer_port() const = 0;
  // What RequestHandler::Admit returned, when it ran for this request.
  virtual const std::shared_ptr<void>& admission() const = 0;
  // True when the connection closes after this response (the client asked,
  // API_KEEPALIVE_MAX was reached, or the daemon drains): the response must
  // say `Connection: close`.
  virtual bool closing() const = 0;
  // Appends to the response; sent when Serve returns (or in parts, for a
  // large one). Returns false once the client is gone.
  virtual bool Write(const char* data, size_t n) = 0;
  // Takes the socket for an event stream: after Serve returns, what was
  // written with Write() is dropped and the edge neither reads nor writes
  // the socket again. Null when the connection cannot be handed over.
  virtual std::unique_ptr<StreamSocket> TakeOver() = 0;
};

// What the daemon does with requests (HttpServer implements it).
class RequestHandler {
 public:
  virtual ~RequestHandler() = default;
  struct Admission {
    bool accept = true;
    std::shared_ptr<void> record;  // given back by EdgeRequest::admission()
  };
  // Decides a request whose body has not fully arrived (or which asks for
  // 100 Continue) before any more of it is read: routing, authentication,
  // rate limit, size. Runs on the event loop: must not block. A refused
  // request is still served (Serve writes the refusal) without its body,
  // and the connection closes after it.
  virtual Admission Admit(absl::string_view raw_head, const RequestHead& head,
                          const std::string& peer_ip, int peer_port) = 0;
  // Serves one whole request on a worker: writes one complete response
  // with request.Write(). Returns true when the connection must close after
  // it (besides request.closing()).
  virtual bool Serve(EdgeRequest& request) = 0;
};

class ConnectionLayer {
 public:
  // Binds and listens. *handler must outlive the layer. Errors:
  // kInvalidArgument for a bad address, kUnavailable when the address
  // cannot be bound.
  static absl::StatusOr<std::unique_ptr<ConnectionLayer>> Create(
      ConnectionLayerOptions options, RequestHandler* handler);
  virtual ~ConnectionLayer() = default;

  virtual int port() const = 0;
  // Runs the event loop and the workers until a drain has finished.
  virtual void Run() = 0;
  // Stops accepting and closes idle and half-received connections at once;
  // requests in flight finish (answered with Connection: close) and their
  // responses are sent; Run returns when no connection is left, or at
  // `deadline`, when whatever is left is closed. Further calls change
  // nothing.
  virtual void Drain(absl::Time deadline) = 0;
  // Requests being served by workers right now.
  virtual int in_flight() const = 0;
  virtual int open_connections() const = 0;
};

}  // namespace pggitops::server

#endif  // PGGITOPS_SERVER_HTTP_CONNECTION_LAYER_H_
