// HttpServer: cpp-httplib configured for pggit-api, dispatching every
// request through the Router with the cross-cutting behaviour of CONTRACT
// sections 5, 8 and 10: request ids, response time, the one error body,
// body limits and content types, CORS, HTTP metrics, the request-latency
// window and access logs.
#ifndef PGGITOPS_SERVER_HTTP_HTTP_SERVER_H_
#define PGGITOPS_SERVER_HTTP_HTTP_SERVER_H_

#include <cstddef>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/time/time.h"
#include "pggitops/latency_window.h"
#include "pggitops/metrics.h"
#include "server/http/request_context.h"
#include "server/http/router.h"

namespace pggitops::server {

struct HttpServerOptions {
  std::string host = "127.0.0.1";
  int port = 8000;  // 0 picks a free port
  int workers = 64;
  absl::Duration keepalive_timeout = absl::Seconds(2);
  int keepalive_max = 1000;
  size_t max_body_bytes = 1 << 20;
  absl::Duration read_timeout = absl::Seconds(5);
  absl::Duration write_timeout = absl::Seconds(5);
  // CORS_ORIGINS: the origins whose pages may call the API from a browser,
  // each exactly as a browser sends Origin; "*" allows any origin. Default:
  // empty, no CORS headers at all.
  std::vector<std::string> cors_origins;
};

// Runs before the handler of every matched route; may throw HttpError
// (authentication, rate limiting). CORS preflights are answered before any
// middleware runs: a browser sends them without credentials.
using Middleware = std::function<void(RequestContext&, const Route&)>;

// Thread-safe: Stop may be called from any thread while Serve runs.
class HttpServer {
 public:
  // *router, *metrics and *latency must outlive the server; routes must not
  // change once Serve has started.
  HttpServer(HttpServerOptions options, const Router* router,
             MetricsRegistry* metrics, LatencyWindow* latency);
  ~HttpServer();
  HttpServer(const HttpServer&) = delete;
  HttpServer& operator=(const HttpServer&) = delete;

  void AddMiddleware(Middleware m);

  // Binds the listening socket. Error: kUnavailable naming the address.
  absl::Status Bind();
  // The bound port (after Bind).
  int port() const { return port_; }
  // Accepts and serves until Stop; returns when every worker has finished
  // its current request.
  void Serve();
  // Closes the listener; connections finish their current request.
  void Stop();

  // Requests being handled right now.
  int in_flight() const;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
  int port_ = 0;
};

}  // namespace pggitops::server

#endif  // PGGITOPS_SERVER_HTTP_HTTP_SERVER_H_
