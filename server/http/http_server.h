// HttpServer: pggit-api's HTTP server. The connection layer
// (connection_layer.h) owns the sockets and the limits of CONTRACT section
// 8, "The HTTP edge"; cpp-httplib parses each request it is handed, and
// every request is dispatched through the Router with the cross-cutting
// behaviour of CONTRACT sections 5, 8 and 10: request ids, response time,
// the one error body, body limits and content types, CORS, HTTP metrics,
// the request-latency window, the access log and the compression rule.
#ifndef PGGITOPS_SERVER_HTTP_HTTP_SERVER_H_
#define PGGITOPS_SERVER_HTTP_HTTP_SERVER_H_

#include <cstddef>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "pggitops/latency_window.h"
#include "pggitops/metrics.h"
#include "server/http/request_context.h"
#include "server/http/router.h"

namespace pggitops::server {

struct HttpServerOptions {
  std::string host = "127.0.0.1";
  int port = 8000;  // 0 picks a free port
  int workers = 4;  // API_WORKERS
  // API_MAX_CONNECTIONS, API_MAX_CONNECTIONS_PER_CLIENT (loopback peers
  // and `exempt_peer` ones are not capped per client; an IPv6 client is
  // its /ipv6_client_prefix).
  int max_connections = 10000;
  int max_connections_per_client = 256;
  int ipv6_client_prefix = 64;
  std::function<bool(absl::string_view peer_ip)> exempt_peer;
  absl::Duration header_timeout = absl::Seconds(10);  // API_HEADER_TIMEOUT
  absl::Duration body_timeout = absl::Seconds(30);    // API_BODY_TIMEOUT
  size_t max_header_bytes = 16384;                    // API_MAX_HEADER_BYTES
  absl::Duration keepalive_timeout = absl::Seconds(15);
  int keepalive_max = 10000;
  size_t max_body_bytes = 1 << 20;
  absl::Duration write_timeout = absl::Seconds(30);
  // Responses of at least this many bytes are gzip-compressed (level 1)
  // when the request accepts gzip and the type is JSON or text; 0 turns
  // compression off.
  size_t compress_min_bytes = 8192;
  // CORS_ORIGINS: the origins whose pages may call the API from a browser,
  // each exactly as a browser sends Origin; "*" allows any origin. Default:
  // empty, no CORS headers at all.
  std::vector<std::string> cors_origins;
  // Whether CORS is answered right now (false while protected mode is on);
  // default: always.
  std::function<bool()> cors_enabled;
};

// Runs first on every request, matched or not, before routing and before a
// body byte is read; may throw HttpError and set response headers (protected
// mode's Host and Origin checks, the rate limit of /api/*). Must not block
// (it may run on the connection layer's loop).
using Screen = std::function<void(const httplib::Request&, httplib::Response&)>;

// Runs before the handler of every matched route; may throw HttpError
// (authentication, rate limiting). CORS preflights are answered before any
// middleware runs: a browser sends them without credentials. A request
// with a body that has not fully arrived is decided before its body is
// read, on the connection layer's loop: a middleware must not block.
using Middleware = std::function<void(RequestContext&, const Route&)>;

// Thread-safe: Drain may be called from any thread while Serve runs.
class HttpServer {
 public:
  // *router, *metrics and *latency must outlive the server; routes must not
  // change once Serve has started.
  HttpServer(HttpServerOptions options, const Router* router,
             MetricsRegistry* metrics, LatencyWindow* latency);
  ~HttpServer();
  HttpServer(const HttpServer&) = delete;
  HttpServer& operator=(const HttpServer&) = delete;

  // REQUIRES: before Bind. Screens run in the order added, then CORS
  // preflights are answered, then routing, then middlewares.
  void AddScreen(Screen s);
  void AddMiddleware(Middleware m);

  // Binds the listening socket. Error: kUnavailable naming the address.
  absl::Status Bind();
  // The bound port (after Bind).
  int port() const { return port_; }
  // Serves until a drain has finished. REQUIRES: Bind succeeded.
  void Serve();
  // Stops accepting, closes idle and half-received connections, lets
  // requests in flight finish; Serve returns when no connection is left or
  // at `deadline`.
  void Drain(absl::Time deadline);
  // Drain with a deadline 5 s away (tests).
  void Shutdown() { Drain(absl::Now() + absl::Seconds(5)); }

  // Requests being handled right now.
  int in_flight() const;
  int open_connections() const;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
  int port_ = 0;
};

}  // namespace pggitops::server

#endif  // PGGITOPS_SERVER_HTTP_HTTP_SERVER_H_
