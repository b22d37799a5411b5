#include "server/http/http_server.h"

#include <sys/socket.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <cstring>
#include <random>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "absl/time/clock.h"
#include "pggitops/log.h"
#include "server/http/errors.h"
#include "server/http/json_util.h"

namespace pggitops::server {
namespace {

constexpr int kMaxJsonDepth = 64;

// CORS: the response headers a page may read, the request headers it may
// send, and how long a browser may reuse a preflight answer.
constexpr char kCorsExposeHeaders[] =
    "X-Request-ID, X-Response-Time, X-RateLimit-Limit, X-RateLimit-Remaining, "
    "X-RateLimit-Reset, Retry-After, Location";
constexpr char kCorsAllowHeaders[] =
    "Authorization, Content-Type, X-Request-ID";
constexpr char kCorsMaxAgeSeconds[] = "600";

// The request being served by this worker thread. cpp-httplib runs the
// pre-routing handler, the route handler, the error handler and the
// post-routing handler of one request on one thread, in that order.
struct CurrentRequest {
  bool active = false;
  absl::Time start;
  std::string request_id;
  std::string route = "unmatched";
};
thread_local CurrentRequest t_req;

bool IsValidRequestId(const std::string& id) {
  if (id.empty() || id.size() > 128) return false;
  for (char c : id) {
    if (!absl::ascii_isalnum(c) && c != '-' && c != '_' && c != '.' &&
        c != ':') {
      return false;
    }
  }
  return true;
}

std::string NewRequestId() {
  thread_local std::mt19937_64 rng(
      std::random_device{}() ^
      static_cast<uint64_t>(absl::GetCurrentTimeNanos()));
  uint64_t a = rng(), b = rng();
  // RFC 4122 version 4 layout.
  a = (a & 0xffffffffffff0fffULL) | 0x0000000000004000ULL;
  b = (b & 0x3fffffffffffffffULL) | 0x8000000000000000ULL;
  return absl::StrFormat("%08x-%04x-%04x-%04x-%012x", a >> 32,
                         (a >> 16) & 0xffff, a & 0xffff, b >> 48,
                         b & 0xffffffffffffULL);
}

void Begin(const httplib::Request& req) {
  t_req.active = true;
  t_req.start = absl::Now();
  t_req.route = "unmatched";
  std::string given = req.get_header_value("X-Request-ID");
  t_req.request_id = IsValidRequestId(given) ? given : NewRequestId();
}

const char* MethodLabel(const std::string& m) {
  static const char* const kKnown[] = {"GET",   "HEAD",   "POST",   "PUT",
                                       "PATCH", "DELETE", "OPTIONS"};
  for (const char* k : kKnown) {
    if (m == k) return k;
  }
  return "OTHER";
}

void WriteError(httplib::Response& res, const HttpError& e) {
  res.status = e.status();
  for (const auto& [k, v] : e.headers) res.set_header(k, v);
  res.set_content(ErrorBody(e.what(), e.error_code(), t_req.request_id),
                  "application/json");
}

// Rejects nesting deeper than kMaxJsonDepth before parsing, so no input can
// exhaust the stack.
bool JsonDepthOk(const std::string& s) {
  int depth = 0;
  bool in_string = false;
  for (size_t i = 0; i < s.size(); ++i) {
    char c = s[i];
    if (in_string) {
      if (c == '\\') {
        ++i;
      } else if (c == '"') {
        in_string = false;
      }
    } else if (c == '"') {
      in_string = true;
    } else if (c == '[' || c == '{') {
      if (++depth > kMaxJsonDepth) return false;
    } else if (c == ']' || c == '}') {
      --depth;
    }
  }
  return true;
}

void ParseBody(RequestContext& ctx, const Route& route) {
  if (route.body == BodyPolicy::kNone) return;
  const std::string& body = ctx.req.body;
  if (body.empty()) {
    if (route.body == BodyPolicy::kRequiredJson) {
      throw BadRequest("request body must be a JSON object");
    }
    return;
  }
  std::string type = ctx.req.get_header_value("Content-Type");
  type = absl::AsciiStrToLower(
      absl::StripAsciiWhitespace(type.substr(0, type.find(';'))));
  if (type != "application/json") {
    throw HttpError(415, "UNSUPPORTED_MEDIA_TYPE",
                    "Content-Type must be application/json, got '" +
                        (type.empty() ? std::string("none") : type) + "'");
  }
  if (!JsonDepthOk(body)) {
    throw BadRequest("request body nests deeper than 64 levels");
  }
  try {
    ctx.body = nlohmann::json::parse(body);
  } catch (const nlohmann::json::exception& e) {
    throw BadRequest(
        absl::StrCat("request body is not valid JSON: ", e.what()));
  }
  if (!ctx.body.is_object()) {
    throw BadRequest("request body must be a JSON object");
  }
}

}  // namespace

void RequestContext::Json(int status, const nlohmann::json& j) {
  res.status = status;
  res.set_content(DumpJson(j), "application/json");
}

std::optional<std::string> RequestContext::Query(const std::string& key) const {
  if (!req.has_param(key)) return std::nullopt;
  return req.get_param_value(key);
}

struct HttpServer::Impl {
  HttpServerOptions options;
  const Router* router;
  LatencyWindow* latency;
  httplib::Server svr;
  std::vector<Middleware> middlewares;
  std::atomic<int> in_flight{0};
  Family<Counter>* requests_total;
  Family<Histogram>* duration;
  Family<Histogram>* size;

  bool cors_any_origin = false;  // cors_origins holds "*"

  void Dispatch(const httplib::Request& req, httplib::Response& res);
  void Handle(const httplib::Request& req, httplib::Response& res);
  bool IsPreflight(const httplib::Request& req) const;
  void AnswerPreflight(const httplib::Request& req, httplib::Response& res);
  bool OriginAllowed(const std::string& origin) const;
  void AddCorsHeaders(const httplib::Request& req,
                      httplib::Response& res) const;
  void Finish(const httplib::Request& req, httplib::Response& res);
  httplib::Server::HandlerResponse PreRoute(const httplib::Request& req,
                                            httplib::Response& res);
  void Configure();
};

void HttpServer::Impl::Dispatch(const httplib::Request& req,
                                httplib::Response& res) {
  in_flight.fetch_add(1, std::memory_order_relaxed);
  ScopedLogRequestId log_id(t_req.request_id);
  try {
    if (IsPreflight(req)) {
      AnswerPreflight(req, res);
    } else {
      Handle(req, res);
    }
  } catch (const HttpError& e) {
    WriteError(res, e);
  } catch (const std::exception& e) {
    Log::Error("request handler failed",
               {{"route", t_req.route}, {"error", e.what()}});
    WriteError(res, HttpError(500, "INTERNAL_ERROR", "internal error"));
  } catch (...) {
    Log::Error("request handler failed", {{"route", t_req.route}});
    WriteError(res, HttpError(500, "INTERNAL_ERROR", "internal error"));
  }
  in_flight.fetch_sub(1, std::memory_order_relaxed);
}

// Routes the request and runs the middlewares, the body checks and the
// handler. Throws HttpError.
void HttpServer::Impl::Handle(const httplib::Request& req,
                              httplib::Response& res) {
  Router::Match m = router->Find(req.method, req.path);
  if (m.route == nullptr) {
    if (m.allowed_methods.empty()) {
      throw NotFound("no resource at " + req.path);
    }
    HttpError e(
        405, "METHOD_NOT_ALLOWED",
        absl::StrCat("method ", req.method, " is not allowed on ", req.path,
                     "; allowed: ", absl::StrJoin(m.allowed_methods, ", ")));
    e.headers.emplace_back("Allow", absl::StrJoin(m.allowed_methods, ", "));
    throw e;
  }
  t_req.route = m.route->path_template;
  RequestContext ctx{req,
                     res,
                     t_req.request_id,
                     m.route->path_template,
                     std::move(m.params),
                     nullptr};
  for (const Middleware& mw : middlewares) mw(ctx, *m.route);
  ParseBody(ctx, *m.route);
  m.route->handler(ctx);
}

// A CORS preflight: OPTIONS naming the method the page wants to send. With
// CORS off it is a plain OPTIONS (405 on a known path).
bool HttpServer::Impl::IsPreflight(const httplib::Request& req) const {
  return !options.cors_origins.empty() && req.method == "OPTIONS" &&
         req.has_header("Origin") &&
         req.has_header("Access-Control-Request-Method");
}

// Answers a preflight without authentication (browsers send none) from the
// route table: 204 with the path's methods, 403 for an origin not in
// CORS_ORIGINS, 404 for a path with no routes. Throws HttpError.
void HttpServer::Impl::AnswerPreflight(const httplib::Request& req,
                                       httplib::Response& res) {
  std::vector<const Route*> routes = router->RoutesAt(req.path);
  if (routes.empty()) throw NotFound("no resource at " + req.path);
  t_req.route = routes.front()->path_template;
  std::string origin = req.get_header_value("Origin");
  if (!OriginAllowed(origin)) {
    throw HttpError(
        403, "FORBIDDEN",
        absl::StrCat("origin '", origin, "' is not allowed: see CORS_ORIGINS"));
  }
  std::vector<std::string> methods;
  for (const Route* r : routes) methods.push_back(r->method);
  std::sort(methods.begin(), methods.end());
  methods.erase(std::unique(methods.begin(), methods.end()), methods.end());
  res.status = 204;
  res.set_header("Access-Control-Allow-Methods", absl::StrJoin(methods, ", "));
  res.set_header("Access-Control-Allow-Headers", kCorsAllowHeaders);
  res.set_header("Access-Control-Max-Age", kCorsMaxAgeSeconds);
}

bool HttpServer::Impl::OriginAllowed(const std::string& origin) const {
  const std::vector<std::string>& allowed = options.cors_origins;
  return !origin.empty() &&
         (cors_any_origin ||
          std::find(allowed.begin(), allowed.end(), origin) != allowed.end());
}

// On every response, errors included, while CORS is on. Vary: Origin goes
// on responses to any origin (and to none), so a shared cache never hands
// one origin's answer to another.
void HttpServer::Impl::AddCorsHeaders(const httplib::Request& req,
                                      httplib::Response& res) const {
  if (options.cors_origins.empty()) return;
  res.set_header("Vary", "Origin");
  std::string origin = req.get_header_value("Origin");
  if (!OriginAllowed(origin)) return;
  res.set_header("Access-Control-Allow-Origin",
                 cors_any_origin ? std::string("*") : origin);
  res.set_header("Access-Control-Expose-Headers", kCorsExposeHeaders);
}

httplib::Server::HandlerResponse HttpServer::Impl::PreRoute(
    const httplib::Request& req, httplib::Response& res) {
  Begin(req);
  bool has_length = req.has_header("Content-Length");
  bool chunked = req.has_header("Transfer-Encoding");
  if (has_length) {
    uint64_t length = 0;
    if (!absl::SimpleAtoi(req.get_header_value("Content-Length"), &length)) {
      res.set_header("Connection", "close");
      WriteError(res, BadRequest("invalid Content-Length"));
      return httplib::Server::HandlerResponse::Handled;
    }
    if (length > options.max_body_bytes) {
      // The body is not read, so the connection cannot be reused.
      res.set_header("Connection", "close");
      WriteError(res,
                 HttpError(413, "PAYLOAD_TOO_LARGE",
                           absl::StrCat("request body exceeds ",
                                        options.max_body_bytes, " bytes")));
      return httplib::Server::HandlerResponse::Handled;
    }
    has_length = length > 0;
  }
  bool may_have_body = req.method == "POST" || req.method == "PUT" ||
                       req.method == "PATCH" || req.method == "DELETE";
  if (may_have_body && (has_length || chunked)) {
    // cpp-httplib reads the body, then calls the catch-all handlers below.
    return httplib::Server::HandlerResponse::Unhandled;
  }
  // No body: answer now. (cpp-httplib would otherwise wait for a body that
  // never comes on a POST without Content-Length, as `curl -X POST` sends.)
  Dispatch(req, res);
  return httplib::Server::HandlerResponse::Handled;
}

void HttpServer::Impl::Finish(const httplib::Request& req,
                              httplib::Response& res) {
  if (!t_req.active) Begin(req);
  absl::Duration elapsed = absl::Now() - t_req.start;
  res.set_header("X-Request-ID", t_req.request_id);
  res.set_header(
      "X-Response-Time",
      absl::StrFormat("%.3fms", absl::ToDoubleMilliseconds(elapsed)));
  AddCorsHeaders(req, res);
  std::string method = MethodLabel(req.method);
  std::string status = absl::StrCat(res.status);
  requests_total->WithLabels({method, t_req.route, status}).Inc();
  duration->WithLabels({method, t_req.route}).ObserveDuration(elapsed);
  size->WithLabels({method, t_req.route})
      .Observe(static_cast<double>(req.body.size()));
  if (latency != nullptr) latency->Record(elapsed, res.status >= 500);
  bool quiet =
      absl::StartsWith(t_req.route, "/health") || t_req.route == "/metrics";
  // 503 is back-pressure (draining, pool timeout), not a bug: a warning,
  // and only informational for health probes, which report it by design.
  LogLevel level = LogLevel::kInfo;
  if (res.status == 503) {
    level = quiet ? LogLevel::kInfo : LogLevel::kWarning;
  } else if (res.status >= 500) {
    level = LogLevel::kError;
  } else if (quiet) {
    level = LogLevel::kDebug;
  }
  if (Log::Enabled(level)) {
    ScopedLogRequestId log_id(t_req.request_id);
    Log::Write(level, "request",
               {{"method", req.method},
                {"path", req.path},
                {"route", t_req.route},
                {"status", status},
                {"duration_ms",
                 absl::StrFormat("%.3f", absl::ToDoubleMilliseconds(elapsed))},
                {"remote_addr", req.remote_addr}});
  }
  t_req.active = false;
}

void HttpServer::Impl::Configure() {
  int workers = options.workers;
  svr.new_task_queue = [workers] { return new httplib::ThreadPool(workers); };
  svr.set_tcp_nodelay(true);
  // cpp-httplib's default also sets SO_REUSEPORT, which would let a second
  // daemon bind the same port silently. Only SO_REUSEADDR here.
  svr.set_socket_options([](socket_t sock) {
    int yes = 1;
    setsockopt(sock, SOL_SOCKET, SO_REUSEADDR, &yes, sizeof(yes));
  });
  int64_t keepalive_s =
      std::max<int64_t>(1, absl::ToInt64Seconds(absl::Ceil(
                               options.keepalive_timeout, absl::Seconds(1))));
  svr.set_keep_alive_timeout(static_cast<time_t>(keepalive_s));
  svr.set_keep_alive_max_count(static_cast<size_t>(options.keepalive_max));
  svr.set_read_timeout(absl::ToChronoSeconds(options.read_timeout));
  svr.set_write_timeout(absl::ToChronoSeconds(options.write_timeout));
  svr.set_payload_max_length(options.max_body_bytes);

  svr.set_pre_routing_handler(
      [this](const httplib::Request& req, httplib::Response& res) {
        return PreRoute(req, res);
      });
  auto with_body = [this](const httplib::Request& req, httplib::Response& res) {
    Dispatch(req, res);
  };
  svr.Post(".*", with_body);
  svr.Put(".*", with_body);
  svr.Patch(".*", with_body);
  svr.Delete(".*", with_body);
  svr.set_error_handler(httplib::Server::HandlerWithResponse(
      [](const httplib::Request& req, httplib::Response& res) {
        if (!res.body.empty())
          return httplib::Server::HandlerResponse::Unhandled;
        if (!t_req.active) Begin(req);
        std::string detail;
        switch (res.status) {
          case 413:
            detail = "request body exceeds the 1 MiB limit";
            break;
          case 414:
            detail = "request URI too long";
            break;
          case 400:
            detail = "malformed HTTP request";
            break;
          default:
            detail = absl::StrCat("HTTP ", res.status);
        }
        res.set_content(
            ErrorBody(detail, DefaultErrorCode(res.status), t_req.request_id),
            "application/json");
        return httplib::Server::HandlerResponse::Handled;
      }));
  svr.set_exception_handler(
      [](const httplib::Request&, httplib::Response& res, std::exception_ptr) {
        WriteError(res, HttpError(500, "INTERNAL_ERROR", "internal error"));
      });
  svr.set_post_routing_handler(
      [this](const httplib::Request& req, httplib::Response& res) {
        Finish(req, res);
      });
}

HttpServer::HttpServer(HttpServerOptions options, const Router* router,
                       MetricsRegistry* metrics, LatencyWindow* latency)
    : impl_(std::make_unique<Impl>()) {
  impl_->options = std::move(options);
  const std::vector<std::string>& origins = impl_->options.cors_origins;
  impl_->cors_any_origin =
      std::find(origins.begin(), origins.end(), "*") != origins.end();
  impl_->router = router;
  impl_->latency = latency;
  impl_->requests_total = &metrics->AddCounter(
      "http_requests_total", "HTTP requests answered, by route template.",
      {"method", "route", "status"});
  impl_->duration = &metrics->AddHistogram(
      "http_request_duration_seconds",
      "Time from request headers read to response ready.", {"method", "route"});
  impl_->size = &metrics->AddHistogram(
      "http_request_size_bytes", "Size of request bodies.", {"method", "route"},
      ExponentialBuckets(64, 4, 9));
  impl_->Configure();
}

HttpServer::~HttpServer() = default;

void HttpServer::AddMiddleware(Middleware m) {
  impl_->middlewares.push_back(std::move(m));
}

absl::Status HttpServer::Bind() {
  const std::string& host = impl_->options.host;
  if (impl_->options.port == 0) {
    int port = impl_->svr.bind_to_any_port(host);
    if (port <= 0) {
      return absl::UnavailableError(
          absl::StrCat("cannot listen on ", host, ": ", std::strerror(errno)));
    }
    port_ = port;
    return absl::OkStatus();
  }
  if (!impl_->svr.bind_to_port(host, impl_->options.port)) {
    return absl::UnavailableError(absl::StrCat("cannot listen on ", host, ":",
                                               impl_->options.port, ": ",
                                               std::strerror(errno)));
  }
  port_ = impl_->options.port;
  return absl::OkStatus();
}

void HttpServer::Serve() { impl_->svr.listen_after_bind(); }

void HttpServer::Stop() { impl_->svr.stop(); }

int HttpServer::in_flight() const {
  return impl_->in_flight.load(std::memory_order_relaxed);
}

}  // namespace pggitops::server
