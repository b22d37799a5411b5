#include "server/http/http_server.h"

#include <zlib.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <cstring>
#include <optional>
#include <tuple>

#include "absl/container/flat_hash_map.h"
#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "absl/time/clock.h"
#include "pggitops/log.h"
#include "server/http/access_log.h"
#include "server/http/connection_layer.h"
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

const std::string kUnmatched = "unmatched";

// What was decided about a request before its body was read
// (RequestHandler::Admit): the route, the headers the middlewares set (rate
// limit), or the error that refuses it.
struct Admitted {
  std::string request_id;
  absl::Time start;
  const Route* route = nullptr;
  bool admin = false;  // RequestContext::admin
  httplib::Headers headers;
  std::optional<HttpError> error;
};

// The request being served by this worker thread. cpp-httplib runs the
// pre-routing handler, the route handler, the error handler and the
// post-routing handler of one request on one thread, in that order.
struct CurrentRequest {
  bool active = false;
  absl::Time start;
  std::string request_id;
  // The matched template (a Route's path_template), or kUnmatched.
  const std::string* route = &kUnmatched;
  bool streaming = false;  // the route is an event stream
  EdgeRequest* edge = nullptr;
  const Admitted* admitted = nullptr;
  Admitted local;  // a decision taken here, before the body was parsed
  bool accepts_gzip = false;
  bool close = false;  // the response says Connection: close
  // An event stream taken over from the edge, handed to `adopter` once
  // cpp-httplib is done with the request.
  std::unique_ptr<StreamSocket> stream;
  StreamAdopter adopter;
  std::string stream_head;
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

void Begin(const httplib::Request& req) {
  t_req.active = true;
  t_req.route = &kUnmatched;
  t_req.streaming = false;
  if (t_req.admitted != nullptr) {
    t_req.start = t_req.admitted->start;
    t_req.request_id = t_req.admitted->request_id;
    return;
  }
  t_req.start = absl::Now();
  std::string given = req.get_header_value("X-Request-ID");
  t_req.request_id = IsValidRequestId(given) ? given : NewRequestId();
}

// "12.345": milliseconds with three decimals, without printf.
std::string Millis(absl::Duration d) {
  int64_t us = std::max<int64_t>(0, absl::ToInt64Microseconds(d));
  return absl::StrCat(us / 1000, ".", absl::Dec(us % 1000, absl::kZeroPad3));
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

// 415 unless a route that reads JSON is sent JSON.
void CheckContentType(const httplib::Request& req, const Route& route,
                      bool has_body) {
  if (route.body == BodyPolicy::kNone || !has_body) return;
  std::string type = req.get_header_value("Content-Type");
  type = absl::AsciiStrToLower(
      absl::StripAsciiWhitespace(type.substr(0, type.find(';'))));
  if (type != "application/json") {
    throw HttpError(415, "UNSUPPORTED_MEDIA_TYPE",
                    "Content-Type must be application/json, got '" +
                        (type.empty() ? std::string("none") : type) + "'");
  }
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
  CheckContentType(ctx.req, route, true);
  if (!JsonDepthOk(body)) {
    throw BadRequest("request body nests deeper than 64 levels");
  }
  try {
    ctx.body = nlohmann::json::parse(body);
  } catch (const nlohmann::json::parse_error& e) {
    // The position only: the library's own wording is not ours to show.
    throw BadRequest(
        absl::StrCat("request body is not valid JSON (at byte ", e.byte, ")"));
  } catch (const nlohmann::json::exception&) {
    throw BadRequest("request body is not valid JSON");
  }
  if (!ctx.body.is_object()) {
    throw BadRequest("request body must be a JSON object");
  }
}

// gzip at level 1: cheap, and most of the gain on JSON.
bool Gzip(const std::string& in, std::string* out) {
  z_stream z{};
  if (deflateInit2(&z, 1, Z_DEFLATED, 15 + 16, 8, Z_DEFAULT_STRATEGY) != Z_OK) {
    return false;
  }
  out->resize(deflateBound(&z, static_cast<uLong>(in.size())) + 32);
  z.next_in = reinterpret_cast<Bytef*>(const_cast<char*>(in.data()));
  z.avail_in = static_cast<uInt>(in.size());
  z.next_out = reinterpret_cast<Bytef*>(&(*out)[0]);
  z.avail_out = static_cast<uInt>(out->size());
  int rc = deflate(&z, Z_FINISH);
  out->resize(z.total_out);
  deflateEnd(&z);
  return rc == Z_STREAM_END;
}

bool Compressible(const std::string& type) {
  return absl::StartsWith(type, "application/json") ||
         absl::StartsWith(type, "text/");
}

// httplib::Stream over a request the connection layer gathered.
class EdgeStream : public httplib::Stream {
 public:
  explicit EdgeStream(EdgeRequest* r) : r_(r) {}
  bool is_readable() const override { return true; }
  bool is_writable() const override { return true; }
  ssize_t read(char* ptr, size_t size) override {
    return static_cast<ssize_t>(r_->Read(ptr, size));
  }
  ssize_t write(const char* ptr, size_t size) override {
    return r_->Write(ptr, size) ? static_cast<ssize_t>(size) : -1;
  }
  void get_remote_ip_and_port(std::string& ip, int& port) const override {
    ip = r_->peer_ip();
    port = r_->peer_port();
  }
  void get_local_ip_and_port(std::string& ip, int& port) const override {
    ip.clear();
    port = 0;
  }
  socket_t socket() const override { return INVALID_SOCKET; }

 private:
  EdgeRequest* r_;
};

// cpp-httplib's request processing, run over our stream.
class EdgeHttplib : public httplib::Server {
 public:
  bool Process(httplib::Stream& strm, bool close, bool& closed) {
    return process_request(strm, close, closed, nullptr);
  }
};

}  // namespace

void RequestContext::Json(int status, const nlohmann::json& j) {
  res.status = status;
  res.set_content(DumpJson(j), "application/json");
}

std::optional<std::string> RequestContext::Query(const std::string& key) const {
  if (!req.has_param(key)) return std::nullopt;
  return req.get_param_value(key);
}

namespace {
thread_local std::function<bool(StreamAdopter)> t_hand_off_for_testing;
}  // namespace

ScopedStreamHandOffForTesting::ScopedStreamHandOffForTesting(
    std::function<bool(StreamAdopter)> hand_off)
    : previous_(std::move(t_hand_off_for_testing)) {
  t_hand_off_for_testing = std::move(hand_off);
}

ScopedStreamHandOffForTesting::~ScopedStreamHandOffForTesting() {
  t_hand_off_for_testing = std::move(previous_);
}

bool RequestContext::HandOffStream(StreamAdopter adopter) {
  if (t_hand_off_for_testing) return t_hand_off_for_testing(std::move(adopter));
  if (t_req.edge == nullptr || t_req.stream != nullptr) return false;
  std::unique_ptr<StreamSocket> socket = t_req.edge->TakeOver();
  if (socket == nullptr) return false;
  t_req.stream = std::move(socket);
  t_req.adopter = std::move(adopter);
  t_req.streaming = true;
  return true;
}

struct HttpServer::Impl : public RequestHandler {
  HttpServerOptions options;
  const Router* router;
  LatencyWindow* latency;
  EdgeHttplib svr;
  std::unique_ptr<ConnectionLayer> edge;
  AccessLog access_log;
  std::vector<Screen> screens;
  std::vector<Middleware> middlewares;
  Family<Counter>* requests_total;
  Family<Histogram>* duration;
  Family<Histogram>* size;
  MetricsRegistry* metrics;

  bool cors_any_origin = false;  // cors_origins holds "*"

  // The HTTP metrics' children of one (method, route, status), looked up
  // once per worker thread instead of through the families' locks on every
  // request.
  struct RouteMetrics {
    Counter* requests;
    Histogram* duration;
    Histogram* size;
  };
  RouteMetrics& MetricsFor(const char* method, const std::string* route,
                           int status);

  // RequestHandler
  Admission Admit(absl::string_view raw_head, const RequestHead& head,
                  const std::string& peer_ip, int peer_port) override;
  bool Serve(EdgeRequest& request) override;

  const Route* Decide(const httplib::Request& req, httplib::Response& res,
                      std::map<std::string, std::string>* params, bool has_body,
                      bool* admin);
  void Dispatch(const httplib::Request& req, httplib::Response& res);
  void Handle(const httplib::Request& req, httplib::Response& res);
  bool CorsOn() const {
    return !options.cors_origins.empty() &&
           (!options.cors_enabled || options.cors_enabled());
  }
  bool IsPreflight(const httplib::Request& req) const;
  void AnswerPreflight(const httplib::Request& req, httplib::Response& res);
  bool OriginAllowed(const std::string& origin) const;
  void AddCorsHeaders(const httplib::Request& req,
                      httplib::Response& res) const;
  void MaybeCompress(httplib::Response& res) const;
  void Finish(const httplib::Request& req, httplib::Response& res);
  void LogRequest(const httplib::Request& req, const httplib::Response& res,
                  absl::Duration elapsed, const std::string& status);
  httplib::Server::HandlerResponse PreRoute(const httplib::Request& req,
                                            httplib::Response& res);
  void Configure();
};

HttpServer::Impl::RouteMetrics& HttpServer::Impl::MetricsFor(
    const char* method, const std::string* route, int status) {
  using Key = std::tuple<const void*, const char*, const std::string*, int>;
  thread_local absl::flat_hash_map<Key, RouteMetrics> cache;
  Key key{this, method, route, status};
  auto it = cache.find(key);
  if (it != cache.end()) return it->second;
  if (cache.size() > 4096) cache.clear();  // bounded: routes x statuses
  std::string code = absl::StrCat(status);
  RouteMetrics m;
  m.requests = &requests_total->WithLabels({method, *route, code});
  m.duration = &duration->WithLabels({method, *route});
  m.size = &size->WithLabels({method, *route});
  return cache.emplace(key, m).first->second;
}

// Everything decided before a body byte is read: the screens (protected
// mode, rate limit), then a CORS preflight (answered as it is: nullptr),
// routing, the middlewares (authentication, scopes) and the content type.
// Throws HttpError.
const Route* HttpServer::Impl::Decide(
    const httplib::Request& req, httplib::Response& res,
    std::map<std::string, std::string>* params, bool has_body, bool* admin) {
  for (const Screen& screen : screens) screen(req, res);
  if (IsPreflight(req)) return nullptr;
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
  *params = std::move(m.params);
  RequestContext ctx{
      req, res, t_req.request_id, m.route->path_template, {}, nullptr, false};
  for (const Middleware& mw : middlewares) mw(ctx, *m.route);
  *admin = ctx.admin;
  CheckContentType(req, *m.route, has_body);
  return m.route;
}

RequestHandler::Admission HttpServer::Impl::Admit(absl::string_view raw_head,
                                                  const RequestHead& head,
                                                  const std::string& peer_ip,
                                                  int peer_port) {
  auto rec = std::make_shared<Admitted>();
  httplib::Request req;
  req.method = std::string(head.method.In(raw_head));
  absl::string_view target = head.target.In(raw_head);
  size_t q = target.find('?');
  req.path =
      httplib::detail::decode_url(std::string(target.substr(0, q)), false);
  for (const auto& [name, value] : head.fields) {
    req.headers.emplace(std::string(name.In(raw_head)),
                        std::string(value.In(raw_head)));
  }
  req.remote_addr = peer_ip;
  req.remote_port = peer_port;
  std::string given = req.get_header_value("X-Request-ID");
  rec->request_id = IsValidRequestId(given) ? given : NewRequestId();
  rec->start = absl::Now();
  // Decide reads the request id from the thread's current request.
  std::string saved_id = std::move(t_req.request_id);
  t_req.request_id = rec->request_id;
  httplib::Response res;
  std::map<std::string, std::string> params;
  try {
    rec->route = Decide(req, res, &params, true, &rec->admin);
  } catch (const HttpError& e) {
    rec->error = e;
  } catch (const std::exception& e) {
    Log::Error("request admission failed", {{"error", e.what()}});
    rec->error = HttpError(500, "INTERNAL_ERROR", "internal error");
  }
  t_req.request_id = std::move(saved_id);
  rec->headers = std::move(res.headers);
  Admission a;
  a.accept = !rec->error.has_value();
  a.record = std::move(rec);
  return a;
}

bool HttpServer::Impl::Serve(EdgeRequest& request) {
  t_req.edge = &request;
  t_req.admitted = static_cast<const Admitted*>(request.admission().get());
  t_req.accepts_gzip = request.head().accepts_gzip;
  t_req.close = false;
  EdgeStream strm(&request);
  bool closed = false;
  svr.Process(strm, request.closing(), closed);
  if (t_req.stream != nullptr) {
    if (t_req.adopter) {
      t_req.adopter(std::move(t_req.stream), std::move(t_req.stream_head));
    }
    t_req.stream.reset();
    t_req.adopter = nullptr;
    t_req.stream_head.clear();
  }
  t_req.edge = nullptr;
  t_req.admitted = nullptr;
  return closed || t_req.close;
}

void HttpServer::Impl::Dispatch(const httplib::Request& req,
                                httplib::Response& res) {
  ScopedLogRequestId log_id(t_req.request_id);
  try {
    Handle(req, res);
  } catch (const HttpError& e) {
    WriteError(res, e);
  } catch (const std::exception& e) {
    Log::Error("request handler failed",
               {{"route", *t_req.route}, {"error", e.what()}});
    WriteError(res, HttpError(500, "INTERNAL_ERROR", "internal error"));
  } catch (...) {
    Log::Error("request handler failed", {{"route", *t_req.route}});
    WriteError(res, HttpError(500, "INTERNAL_ERROR", "internal error"));
  }
  MaybeCompress(res);
}

// Decides the request (unless that was done before its body was read),
// then answers a preflight or runs the body checks and the handler.
// Throws HttpError.
void HttpServer::Impl::Handle(const httplib::Request& req,
                              httplib::Response& res) {
  std::map<std::string, std::string> params;
  const Route* route;
  bool admin = false;
  if (t_req.admitted != nullptr) {
    const Admitted& a = *t_req.admitted;
    admin = a.admin;
    for (const auto& [k, v] : a.headers) res.set_header(k, v);
    if (a.error.has_value()) throw *a.error;
    if (a.route == nullptr) {
      route = nullptr;
    } else {
      Router::Match m = router->Find(req.method, req.path);
      if (m.route != a.route) {
        throw BadRequest("the request changed its route");
      }
      route = m.route;
      params = std::move(m.params);
    }
  } else {
    route = Decide(req, res, &params, !req.body.empty(), &admin);
  }
  if (route == nullptr) {
    AnswerPreflight(req, res);
    return;
  }
  t_req.route = &route->path_template;
  t_req.streaming = route->streaming;
  RequestContext ctx{
      req, res, t_req.request_id, route->path_template, params, nullptr, admin};
  ParseBody(ctx, *route);
  route->handler(ctx);
  if (route->redact_for_non_admin && !ctx.admin && !res.body.empty()) {
    route->redact_for_non_admin(&res.body);
  }
}

// A CORS preflight: OPTIONS naming the method the page wants to send. With
// CORS off it is a plain OPTIONS (405 on a known path).
bool HttpServer::Impl::IsPreflight(const httplib::Request& req) const {
  return CorsOn() && req.method == "OPTIONS" && req.has_header("Origin") &&
         req.has_header("Access-Control-Request-Method");
}

// Answers a preflight without authentication (browsers send none) from the
// route table: 204 with the path's methods, 403 for an origin not in
// CORS_ORIGINS, 404 for a path with no routes. Throws HttpError.
void HttpServer::Impl::AnswerPreflight(const httplib::Request& req,
                                       httplib::Response& res) {
  std::vector<const Route*> routes = router->RoutesAt(req.path);
  if (routes.empty()) throw NotFound("no resource at " + req.path);
  t_req.route = &routes.front()->path_template;
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
  if (!CorsOn()) return;
  res.set_header("Vary", "Origin");
  std::string origin = req.get_header_value("Origin");
  if (!OriginAllowed(origin)) return;
  res.set_header("Access-Control-Allow-Origin",
                 cors_any_origin ? std::string("*") : origin);
  res.set_header("Access-Control-Expose-Headers", kCorsExposeHeaders);
}

// The one compression rule (CONTRACT section 8): gzip at level 1 for JSON
// and text bodies of at least compress_min_bytes, when the request accepts
// gzip. cpp-httplib never compresses on its own (the edge hides
// Accept-Encoding from it).
void HttpServer::Impl::MaybeCompress(httplib::Response& res) const {
  if (!t_req.accepts_gzip || options.compress_min_bytes == 0 ||
      res.body.size() < options.compress_min_bytes ||
      res.has_header("Content-Encoding") ||
      !Compressible(res.get_header_value("Content-Type"))) {
    return;
  }
  std::string gz;
  if (!Gzip(res.body, &gz)) return;
  res.body.swap(gz);
  res.set_header("Content-Encoding", "gzip");
  res.set_header("Vary", "Accept-Encoding");
}

httplib::Server::HandlerResponse HttpServer::Impl::PreRoute(
    const httplib::Request& req, httplib::Response& res) {
  Begin(req);
  // The edge checked the framing and the size; a body is here whole (a
  // chunked one decoded, with a Content-Length).
  uint64_t length = 0;
  bool has_body =
      absl::SimpleAtoi(req.get_header_value("Content-Length"), &length) &&
      length > 0;
  bool refused = t_req.admitted != nullptr && t_req.admitted->error;
  if (!has_body || refused) {
    Dispatch(req, res);
    return httplib::Server::HandlerResponse::Handled;
  }
  if (t_req.admitted == nullptr) {
    // Decided before cpp-httplib parses the body: routing,
    // authentication, rate limit, content type. Recorded so that Handle
    // does not run the middlewares twice.
    t_req.local = Admitted();
    t_req.local.request_id = t_req.request_id;
    t_req.local.start = t_req.start;
    std::map<std::string, std::string> params;
    try {
      ScopedLogRequestId log_id(t_req.request_id);
      t_req.local.route = Decide(req, res, &params, true, &t_req.local.admin);
    } catch (const HttpError& e) {
      WriteError(res, e);
      return httplib::Server::HandlerResponse::Handled;
    }
    t_req.admitted = &t_req.local;
  }
  // cpp-httplib reads the body, then calls the catch-all handlers below.
  return httplib::Server::HandlerResponse::Unhandled;
}

void HttpServer::Impl::LogRequest(const httplib::Request& req,
                                  const httplib::Response& res,
                                  absl::Duration elapsed,
                                  const std::string& status) {
  bool quiet =
      absl::StartsWith(*t_req.route, "/health") || *t_req.route == "/metrics";
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
  if (!Log::Enabled(level)) return;
  std::string ms = Millis(elapsed);
  if (level >= LogLevel::kWarning) {
    ScopedLogRequestId log_id(t_req.request_id);
    Log::Write(level, "request",
               {{"method", req.method},
                {"path", req.path},
                {"route", *t_req.route},
                {"status", status},
                {"duration_ms", ms},
                {"remote_addr", req.remote_addr}});
    return;
  }
  access_log.Write(level, t_req.request_id,
                   {{"method", req.method},
                    {"path", req.path},
                    {"route", *t_req.route},
                    {"status", status},
                    {"duration_ms", ms},
                    {"remote_addr", req.remote_addr}});
}

void HttpServer::Impl::Finish(const httplib::Request& req,
                              httplib::Response& res) {
  if (!t_req.active) Begin(req);
  absl::Duration elapsed = absl::Now() - t_req.start;
  res.set_header("X-Request-ID", t_req.request_id);
  res.set_header("X-Response-Time", absl::StrCat(Millis(elapsed), "ms"));
  AddCorsHeaders(req, res);
  if (t_req.edge != nullptr && t_req.edge->closing() &&
      res.get_header_value("Connection") != "close") {
    // Decided while the request was served (the daemon began to drain).
    res.headers.erase("Keep-Alive");
    res.set_header("Connection", "close");
  }
  if (res.get_header_value("Connection") == "close") t_req.close = true;
  const char* method = MethodLabel(req.method);
  std::string status = absl::StrCat(res.status);
  RouteMetrics& m = MetricsFor(method, t_req.route, res.status);
  m.requests->Inc();
  if (!t_req.streaming) {
    m.duration->ObserveDuration(elapsed);
    if (latency != nullptr) latency->Record(elapsed, res.status >= 500);
  }
  m.size->Observe(static_cast<double>(req.body.size()));
  LogRequest(req, res, elapsed, status);
  if (t_req.stream != nullptr) {
    // The stream's head, written by its new owner: cpp-httplib's own
    // output for this request goes nowhere.
    std::string head = absl::StrCat("HTTP/1.1 ", res.status, " ",
                                    ReasonPhrase(res.status), "\r\n");
    for (const auto& [k, v] : res.headers) {
      if (absl::EqualsIgnoreCase(k, "Content-Length") ||
          absl::EqualsIgnoreCase(k, "Keep-Alive") ||
          absl::EqualsIgnoreCase(k, "Connection")) {
        continue;
      }
      absl::StrAppend(&head, k, ": ", v, "\r\n");
    }
    absl::StrAppend(&head, "Transfer-Encoding: chunked\r\n\r\n");
    t_req.stream_head = std::move(head);
  }
  t_req.active = false;
}

void HttpServer::Impl::Configure() {
  int64_t keepalive_s =
      std::max<int64_t>(1, absl::ToInt64Seconds(absl::Ceil(
                               options.keepalive_timeout, absl::Seconds(1))));
  // Only for the Keep-Alive header cpp-httplib writes: the edge enforces.
  svr.set_keep_alive_timeout(static_cast<time_t>(keepalive_s));
  svr.set_keep_alive_max_count(static_cast<size_t>(options.keepalive_max));
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
            ErrorBody(detail, EdgeErrorCode(res.status), t_req.request_id),
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
  impl_->metrics = metrics;
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

void HttpServer::AddScreen(Screen s) { impl_->screens.push_back(std::move(s)); }

void HttpServer::AddMiddleware(Middleware m) {
  impl_->middlewares.push_back(std::move(m));
}

absl::Status HttpServer::Bind() {
  const HttpServerOptions& o = impl_->options;
  ConnectionLayerOptions e;
  e.host = o.host;
  e.port = o.port;
  e.workers = o.workers;
  e.max_connections = o.max_connections;
  e.max_connections_per_client = o.max_connections_per_client;
  e.ipv6_client_prefix = o.ipv6_client_prefix;
  e.exempt_peer = o.exempt_peer;
  e.header_timeout = o.header_timeout;
  e.body_timeout = o.body_timeout;
  e.keepalive_timeout = o.keepalive_timeout;
  e.keepalive_max = o.keepalive_max;
  e.write_timeout = o.write_timeout;
  e.limits.max_head_bytes = o.max_header_bytes;
  e.limits.max_body_bytes = o.max_body_bytes;
  e.metrics = impl_->metrics;
  // Health probes and scrapes have their own two threads: a database that
  // makes every worker wait must not make the daemon look dead.
  e.priority_workers = 2;
  e.is_priority = [](absl::string_view target) {
    absl::string_view path = target.substr(0, target.find('?'));
    return path == "/metrics" || path == "/health" ||
           absl::StartsWith(path, "/health/");
  };
  absl::StatusOr<std::unique_ptr<ConnectionLayer>> edge =
      ConnectionLayer::Create(std::move(e), impl_.get());
  if (!edge.ok()) return edge.status();
  impl_->edge = *std::move(edge);
  port_ = impl_->edge->port();
  return absl::OkStatus();
}

void HttpServer::Serve() {
  impl_->edge->Run();
  impl_->access_log.Flush();
}

void HttpServer::Drain(absl::Time deadline) {
  if (impl_->edge != nullptr) impl_->edge->Drain(deadline);
}

int HttpServer::in_flight() const {
  return impl_->edge == nullptr ? 0 : impl_->edge->in_flight();
}

int HttpServer::open_connections() const {
  return impl_->edge == nullptr ? 0 : impl_->edge->open_connections();
}

}  // namespace pggitops::server
