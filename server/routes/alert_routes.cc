#include "server/routes/alert_routes.h"

#include <algorithm>
#include <atomic>
#include <cstdint>
#include <limits>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "absl/strings/ascii.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/string_view.h"
#include "absl/time/clock.h"
#include "nlohmann/json.hpp"
#include "pggitops/alert_store.h"
#include "pggitops/dashboard.h"
#include "pggitops/log.h"
#include "pggitops/text.h"
#include "pggitops/version.h"
#include "server/http/errors.h"
#include "server/http/json_util.h"
#include "server/http/request_context.h"
#include "server/routes/alert_body.h"
#include "server/routes/cached_read.h"
#include "server/routes/domain_json.h"
#include "server/routes/request_figures.h"
#include "server/routes/sse_hub.h"

namespace pggitops::server {
namespace {

using nlohmann::json;

constexpr int64_t kMaxLimit = 100;
constexpr size_t kMaxIds = 1000;
constexpr size_t kMaxMessageChars = 10000;

// ---------------------------------------------------------------------------
// Input validation (CONTRACT section 10)
// ---------------------------------------------------------------------------

std::string Quoted(const std::string& s) {
  return absl::StrCat("\"", s.substr(0, 64), s.size() > 64 ? "..." : "", "\"");
}

int64_t IntParam(const std::string& name, const std::string& value, int64_t min,
                 int64_t max, const std::string& range) {
  int64_t v = 0;
  if (!absl::SimpleAtoi(value, &v) || v < min || v > max) {
    throw Validation(
        absl::StrCat(name, ": must be ", range, " (got ", Quoted(value), ")"));
  }
  return v;
}

std::string OneOf(const std::string& name, const std::string& value,
                  const std::vector<std::string>& allowed) {
  for (const std::string& a : allowed) {
    if (value == a) return value;
  }
  throw Validation(absl::StrCat(name, ": must be ",
                                absl::StrJoin(allowed, ", "), " (got ",
                                Quoted(value), ")"));
}

const std::vector<std::string> kStatuses = {"pending", "acknowledged",
                                            "resolved"};
const std::vector<std::string> kSeverities = {"INFO", "WARNING", "CRITICAL"};

// Unknown and repeated parameters are refused, so a typo such as `sevrity`
// does not silently list everything.
AlertFilter ParseListQuery(const httplib::Request& req) {
  AlertFilter q;
  for (const auto& [name, value] : req.params) {
    if (name != "status" && name != "severity" && name != "operation_type" &&
        name != "limit" && name != "offset") {
      throw Validation(absl::StrCat(
          "unknown query parameter ", Quoted(name),
          ": expected status, severity, operation_type, limit or offset"));
    }
    if (req.get_param_value_count(name.c_str()) > 1) {
      throw Validation(absl::StrCat(name, ": given more than once"));
    }
    if (name == "status") {
      q.status = OneOf(name, value, kStatuses);
    } else if (name == "severity") {
      q.severity = OneOf(name, value, kSeverities);
    } else if (name == "operation_type") {
      if (!IsUtf8Text(value)) {
        throw Validation("operation_type: must be UTF-8 text without NUL");
      }
      if (value.empty() || Utf8CharCount(value) > 255) {
        throw Validation("operation_type: must be 1 to 255 characters");
      }
      q.operation_type = value;
    } else if (name == "limit") {
      q.limit = IntParam(name, value, 1, kMaxLimit,
                         absl::StrCat("an integer from 1 to ", kMaxLimit));
    } else {  // offset
      q.offset = IntParam(name, value, 0, std::numeric_limits<int64_t>::max(),
                          "an integer of at least 0");
    }
  }
  return q;
}

// Percent-encodes all but [A-Za-z0-9_.-], so any filter value makes a valid,
// unambiguous cache key part.
std::string KeyPart(const std::optional<std::string>& v) {
  if (!v.has_value()) return "";
  std::string out;
  for (unsigned char c : *v) {
    if (absl::ascii_isalnum(c) || c == '_' || c == '.' || c == '-') {
      out += static_cast<char>(c);
    } else {
      absl::StrAppend(&out, "%", absl::Hex(c, absl::kZeroPad2));
    }
  }
  return out;
}

std::string ListKey(const AlertFilter& q) {
  const std::string status = "status=" + KeyPart(q.status);
  const std::string severity = "severity=" + KeyPart(q.severity);
  const std::string op = "operation_type=" + KeyPart(q.operation_type);
  const std::string limit = absl::StrCat("limit=", q.limit);
  const std::string offset = absl::StrCat("offset=", q.offset);
  return CacheKey(CacheFamily::kAlerts,
                  {"list", status, severity, op, limit, offset});
}

// The path parameter: digits (else 422); ids that name no alert are 404.
int64_t ParseId(const std::string& text) {
  if (text == "acknowledge" || text == "resolve") {
    HttpError e(405, "METHOD_NOT_ALLOWED",
                absl::StrCat("method GET is not allowed on /api/v1/alerts/",
                             text, "; allowed: POST"));
    e.headers.emplace_back("Allow", "POST");
    throw e;
  }
  return ParseResourceId(text, "alert");
}

// A JSON value without NUL characters anywhere (PostgreSQL's jsonb cannot
// store them).
bool HasNul(const json& v) {
  if (v.is_string()) {
    return v.get_ref<const std::string&>().find('\0') != std::string::npos;
  }
  if (v.is_object()) {
    for (const auto& [k, e] : v.items()) {
      if (k.find('\0') != std::string::npos || HasNul(e)) return true;
    }
  } else if (v.is_array()) {
    for (const json& e : v) {
      if (HasNul(e)) return true;
    }
  }
  return false;
}

std::string StringField(const std::string& name, const json& v) {
  if (!v.is_string()) throw Validation(name + ": must be a string");
  return v.get<std::string>();
}

}  // namespace

AlertInput ParseAlertBody(const json& body, int64_t context_max_bytes) {
  AlertInput in;
  bool has_op = false, has_severity = false, has_message = false;
  for (const auto& [name, value] : body.items()) {
    if (name == "operation_type") {
      in.operation_type = StringField(name, value);
      has_op = true;
    } else if (name == "severity") {
      in.severity = StringField(name, value);
      has_severity = true;
    } else if (name == "message") {
      in.message = StringField(name, value);
      has_message = true;
    } else if (name == "context") {
      if (!value.is_object())
        throw Validation("context: must be a JSON object");
      if (HasNul(value)) {
        throw Validation("context: must not contain NUL characters");
      }
      in.context_json = DumpJson(value);
      if (static_cast<int64_t>(in.context_json.size()) > context_max_bytes) {
        throw Validation(absl::StrCat(
            "context: ", in.context_json.size(),
            " bytes serialized, more than ALERT_CONTEXT_MAX_BYTES (",
            context_max_bytes, ")"));
      }
    } else {
      throw Validation(absl::StrCat(
          "unknown field '", name,
          "': expected operation_type, severity, message and context"));
    }
  }
  if (!has_op) throw Validation("operation_type: required");
  if (!has_severity) throw Validation("severity: required");
  if (!has_message) throw Validation("message: required");
  if (Utf8CharCount(in.operation_type) > 255) {
    throw Validation("operation_type: must be 1 to 255 characters");
  }
  if (in.message.empty() || Utf8CharCount(in.message) > kMaxMessageChars) {
    throw Validation(absl::StrCat("message: must be 1 to ", kMaxMessageChars,
                                  " characters"));
  }
  if (absl::Status s = in.Validate(); !s.ok()) throw FromStatus(s);
  return in;
}

std::vector<int64_t> ParseAlertIds(const json& body) {
  for (const auto& [name, value] : body.items()) {
    if (name != "alert_ids") {
      throw Validation(
          absl::StrCat("unknown field '", name, "': expected alert_ids"));
    }
  }
  if (!body.contains("alert_ids")) throw Validation("alert_ids: required");
  const json& ids = body["alert_ids"];
  if (!ids.is_array()) {
    throw Validation("alert_ids: must be an array of alert ids (integers)");
  }
  if (ids.empty() || ids.size() > kMaxIds) {
    throw Validation(absl::StrCat("alert_ids: must hold 1 to ", kMaxIds,
                                  " ids (got ", ids.size(), ")"));
  }
  std::vector<int64_t> out;
  out.reserve(ids.size());
  for (size_t i = 0; i < ids.size(); ++i) {
    const json& v = ids[i];
    if (!v.is_number_integer() ||
        (v.is_number_unsigned() &&
         v.get<uint64_t>() >
             static_cast<uint64_t>(std::numeric_limits<int64_t>::max()))) {
      throw Validation(
          absl::StrCat("alert_ids[", i, "]: must be an integer alert id"));
    }
    out.push_back(v.get<int64_t>());
  }
  return out;
}

namespace {

// ---------------------------------------------------------------------------
// Reads
// ---------------------------------------------------------------------------

template <typename T>
T OrThrow(absl::StatusOr<T> r) {
  if (!r.ok()) throw FromStatus(r.status());
  return *std::move(r);
}

json ListAlerts(ConnectionPool* pool, int64_t context_max_bytes,
                const AlertFilter& q) {
  AlertStoreOptions o;
  o.context_max_bytes = context_max_bytes;
  AlertPage page = OrThrow(AlertStore(pool, o).List(q));
  json items = json::array();
  for (const Alert& a : page.items) items.push_back(AlertJson(a));
  return {{"items", std::move(items)},
          {"total", page.total},
          {"limit", q.limit},
          {"offset", q.offset}};
}

json GetAlert(ConnectionPool* pool, int64_t id) {
  return AlertJson(OrThrow(AlertStore(pool).Get(id)));
}

// The stream's store: contexts bounded by ALERT_CONTEXT_MAX_BYTES, waiting
// at most `wait` (SSE_QUERY_TIMEOUT) for a pooled connection, so a
// saturated pool delays events instead of stalling the hub.
AlertStore StreamStore(const AppContext* app) {
  AlertStoreOptions o;
  o.context_max_bytes = app->config->alert_context_max_bytes;
  o.acquire_timeout = app->config->sse_query_timeout;
  return AlertStore(app->pool, o);
}

// ---------------------------------------------------------------------------
// Writes
// ---------------------------------------------------------------------------

void CreateAlert(RequestContext& ctx, AppContext* app) {
  AlertInput in =
      ParseAlertBody(ctx.body, app->config->alert_context_max_bytes);
  AlertStore store(app->pool);
  absl::StatusOr<int64_t> id = store.Create(in);
  if (!id.ok()) throw FromStatus(id.status());
  app->reads->InvalidateAfterWrite(
      {CacheFamily::kAlerts, CacheFamily::kDashboard});
  // The trigger's NOTIFY wakes every engine; this one needs no round trip.
  if (app->engine != nullptr) app->engine->Wake();
  ctx.res.set_header("Location", absl::StrCat("/api/v1/alerts/", *id));
  absl::StatusOr<Alert> made = store.Get(*id);
  if (made.ok()) {
    ctx.Json(201, AlertJson(*made));
    return;
  }
  // The alert is committed: answer 201 (a retry would create it twice) with
  // what is known, and let the client read the rest from Location.
  Log::Warning("alert created but not read back",
               {{"id", absl::StrCat(*id)},
                {"error", std::string(made.status().message())}});
  json context =
      in.context_json.empty() ? json::object() : json::parse(in.context_json);
  ctx.Json(201, {{"id", *id},
                 {"operation_type", in.operation_type},
                 {"severity", in.severity},
                 {"message", in.message},
                 {"status", "pending"},
                 {"context", context}});
}

// acknowledge and resolve (the state rules are the library's: an alert
// already there or past it counts as done; ids that name no alert count as
// failed).
void Transition(RequestContext& ctx, AppContext* app, const char* verb) {
  std::vector<int64_t> ids = ParseAlertIds(ctx.body);
  AlertStore store(app->pool);
  AlertTransition t =
      OrThrow(std::string(verb) == "acknowledged" ? store.Acknowledge(ids)
                                                  : store.Resolve(ids));
  if (t.changed > 0) {
    app->reads->InvalidateAfterWrite(
        {CacheFamily::kAlerts, CacheFamily::kDashboard});
  }
  ctx.Json(200, {{verb, t.done},
                 {"failed", static_cast<int64_t>(t.not_found.size())},
                 {"failed_ids", t.not_found},
                 {"changed", t.changed}});
}

// ---------------------------------------------------------------------------
// The stream
// ---------------------------------------------------------------------------

// The alert with `timestamp`, when the event was sent (CONTRACT 10: every
// event carries one; the alert's own time is created_at).
SseEvent AlertEvent(const json& alert) {
  json data = alert;
  data["timestamp"] = Rfc3339(absl::Now());
  return {"alert", DumpJson(data), absl::StrCat(alert["id"].get<int64_t>())};
}

// At most kMaxReplay alerts with an id above `after`, oldest first.
constexpr int64_t kMaxReplay = 100;
constexpr size_t kMaxReplayBytes = 1 << 20;

// The hub's payloads → one `alert` event per alert, in id order, each once:
//   {"id": N}     a `pggit_alerts` notification (the alerts_fan_out trigger);
//   {"after": N}  the listener reconnected: alerts above N may have been
//                 missed while it was away (at most kMaxReplay are sent).
// When the database cannot be read, a notified alert's event carries its id
// alone (the client can GET /api/v1/alerts/{id}). *last_id is raised to the
// highest id sent.
std::vector<SseEvent> RenderAlertEvents(
    AlertStore store, const std::vector<std::string>& payloads,
    std::atomic<int64_t>* last_id) {
  std::vector<int64_t> ids;
  std::optional<int64_t> after;
  for (const std::string& p : payloads) {
    json j = json::parse(p, nullptr, /*allow_exceptions=*/false);
    if (j.is_object() && j.contains("id") && j["id"].is_number_integer()) {
      ids.push_back(j["id"].get<int64_t>());
    } else if (j.is_object() && j.contains("after") &&
               j["after"].is_number_integer()) {
      after = std::min(after.value_or(j["after"]), j["after"].get<int64_t>());
    } else {
      Log::Warning("alert stream: ignored notification", {{"payload", p}});
    }
  }
  std::map<int64_t, json> alerts;
  if (after.has_value()) {
    absl::StatusOr<std::vector<Alert>> missed = store.After(*after, kMaxReplay);
    if (!missed.ok()) {
      Log::Warning("alert stream: missed alerts not read",
                   {{"error", std::string(missed.status().message())}});
    }
    for (const Alert& a : missed.value_or(std::vector<Alert>{})) {
      alerts[a.id] = AlertJson(a);
    }
  }
  if (!ids.empty()) {
    absl::StatusOr<std::vector<Alert>> found =
        store.GetMany(ids, /*bounded=*/true);
    if (!found.ok()) {
      Log::Warning("alert stream: alerts not read; sending ids only",
                   {{"error", std::string(found.status().message())}});
      for (int64_t id : ids) alerts.emplace(id, json{{"id", id}});
    }
    for (const Alert& a : found.value_or(std::vector<Alert>{})) {
      alerts[a.id] = AlertJson(a);
    }
  }
  std::vector<SseEvent> events;
  for (const auto& [id, a] : alerts) {
    events.push_back(AlertEvent(a));
    int64_t seen = last_id->load();
    while (id > seen && !last_id->compare_exchange_weak(seen, id)) {
    }
  }
  return events;
}

// The alerts after a reconnecting client's Last-Event-ID (an alert id), at
// most kMaxReplay of them, oldest first. Anything else in the header
// replays nothing.
std::vector<SseEvent> ReplayAlerts(AlertStore store,
                                   const std::string& last_event_id) {
  std::vector<SseEvent> events;
  int64_t after = 0;
  if (!absl::SimpleAtoi(last_event_id, &after) || after < 0) return events;
  absl::StatusOr<std::vector<Alert>> missed = store.After(after, kMaxReplay);
  if (!missed.ok()) {
    Log::Warning("alert stream: replay not read",
                 {{"error", std::string(missed.status().message())}});
    return events;
  }
  // Bounded in events (kMaxReplay) and bytes (kMaxReplayBytes, contexts
  // over ALERT_CONTEXT_MAX_BYTES already shown as markers): a client
  // reconnecting with an old id gets the oldest of what it missed up to
  // those bounds; GET /api/v1/alerts has the rest.
  size_t bytes = 0;
  for (const Alert& a : *missed) {
    SseEvent e = AlertEvent(AlertJson(a));
    bytes += e.data.size();
    if (bytes > kMaxReplayBytes) break;
    events.push_back(std::move(e));
  }
  return events;
}

SseEvent RenderStatus(AppContext* app, const SseHub* hub) {
  absl::Time now = absl::Now();
  RequestFigures w = SummarizeRequests(*app->latency, now - app->started_at);
  PoolStats pool = app->pool->Stats();
  json status = {
      {"timestamp", Rfc3339(now)},
      {"status", PhaseName(app->phase.load())},
      {"version", kVersionString},
      {"uptime_seconds", absl::ToDoubleSeconds(now - app->started_at)},
      {"open_streams", hub->open_streams()},
      {"requests",
       {{"count", w.count},
        {"error_rate", w.error_rate},
        {"p50_ms", w.p50_ms},
        {"p95_ms", w.p95_ms},
        {"p99_ms", w.p99_ms},
        {"requests_per_second", w.requests_per_second},
        {"window_seconds", kRequestWindowSeconds}}},
      {"pool",
       {{"size", pool.size},
        {"checked_out", pool.checked_out},
        {"available", pool.available},
        {"waiting", pool.waiting}}}};
  // The seed's reference API names (CONTRACT 10) beside ours.
  status["cache_hit_rate"] = 0.0;
  if (app->cache != nullptr) {
    CacheStats c = app->cache->Stats();
    status["cache"] = {{"hit_rate", c.hit_rate},
                       {"entries", c.entries},
                       {"size_bytes", c.bytes}};
    status["cache_hit_rate"] = c.hit_rate;
  }
  absl::StatusOr<QueueStatus> q =
      ReadQueueStatus(app->pool, app->config->sse_query_timeout);
  if (q.ok()) {
    status["database"] = "connected";
    status["queue"] = {{"depth", q->queue_depth},
                       {"failed", q->failed_deliveries}};
    status["alerts"] = {{"pending", q->pending_alerts}};
    status["active_webhooks"] = q->active_webhooks;
    status["pending_deliveries"] = q->pending_deliveries;
  } else {
    status["database"] = "unavailable";
    status["queue"] = nullptr;
    status["alerts"] = nullptr;
    status["active_webhooks"] = nullptr;
    status["pending_deliveries"] = nullptr;
  }
  return {"system_status", DumpJson(status), ""};
}

// The stream's hub and its subscription to the daemon's listener; owned by
// the stream route, so it lives as long as the router.
struct AlertStream {
  AppContext* app = nullptr;
  std::unique_ptr<SseHub> hub;
  int subscription = -1;
  int reconnect_callback = -1;
  // The highest alert id the streams were sent (0: none yet).
  std::atomic<int64_t> last_id{0};

  explicit AlertStream(AppContext* a) : app(a) {
    SseHubOptions o;
    o.max_streams = app->config->sse_max_streams;
    o.status_interval = app->config->sse_status_interval;
    o.keepalive_interval = app->config->sse_keepalive_interval;
    o.render = [this](std::vector<std::string> payloads) {
      return RenderAlertEvents(StreamStore(app), payloads, &last_id);
    };
    o.status = [this] { return RenderStatus(app, hub.get()); };
    o.replay = [a](const std::string& last_event_id) {
      return ReplayAlerts(StreamStore(a), last_event_id);
    };
    o.ending = [a] { return a->phase.load() == Phase::kDraining; };
    hub = std::make_unique<SseHub>(std::move(o));
    if (app->listener != nullptr) {
      absl::StatusOr<int> id = app->listener->Subscribe(
          "pggit_alerts",
          [h = hub.get()](const std::string& payload) { h->Notify(payload); });
      if (id.ok()) {
        subscription = *id;
      } else {
        Log::Error("alert stream: cannot subscribe to pggit_alerts",
                   {{"error", std::string(id.status().message())}});
      }
      // Notifications sent while the listener was away are lost: look for
      // alerts above the last one sent (dropped when no stream is open).
      reconnect_callback = app->listener->AddReconnectCallback([this] {
        int64_t after = last_id.load();
        if (after > 0) hub->Notify(absl::StrCat("{\"after\":", after, "}"));
      });
    }
  }
  ~AlertStream() {
    // No notification reaches the hub once it is gone.
    if (subscription >= 0) app->listener->Unsubscribe(subscription);
    if (reconnect_callback >= 0) {
      app->listener->RemoveReconnectCallback(reconnect_callback);
    }
    hub.reset();
  }
};

}  // namespace

void AddAlertRoutes(Router* router, AppContext* app) {
  router->Add({"GET", "/api/v1/alerts", BodyPolicy::kNone, Scope::kRead,
               [app](RequestContext& ctx) {
                 AlertFilter q = ParseListQuery(ctx.req);
                 app->reads->Serve(
                     ctx, CacheFamily::kAlerts, ListKey(q), [app, q] {
                       return ListAlerts(
                           app->pool, app->config->alert_context_max_bytes, q);
                     });
               }});
  router->Add({"POST", "/api/v1/alerts", BodyPolicy::kRequiredJson,
               Scope::kWrite,
               [app](RequestContext& ctx) { CreateAlert(ctx, app); }});
  router->Add({"GET", "/api/v1/alerts/{id}", BodyPolicy::kNone, Scope::kRead,
               [app](RequestContext& ctx) {
                 int64_t id = ParseId(ctx.params.at("id"));
                 app->reads->Serve(
                     ctx, CacheFamily::kAlerts,
                     CacheKey(CacheFamily::kAlerts, {"item", absl::StrCat(id)}),
                     [app, id] { return GetAlert(app->pool, id); });
               }});
  router->Add({"POST", "/api/v1/alerts/acknowledge", BodyPolicy::kRequiredJson,
               Scope::kWrite, [app](RequestContext& ctx) {
                 Transition(ctx, app, "acknowledged");
               }});
  router->Add({"POST", "/api/v1/alerts/resolve", BodyPolicy::kRequiredJson,
               Scope::kWrite, [app](RequestContext& ctx) {
                 Transition(ctx, app, "resolved");
               }});
  auto stream = std::make_shared<AlertStream>(app);
  app->stream_hub = stream->hub.get();
  router->Add({"GET", "/api/v1/alerts/stream", BodyPolicy::kNone, Scope::kRead,
               [stream](RequestContext& ctx) { stream->hub->Serve(ctx); },
               /*streaming=*/true});

  // CONTRACT 10: the first page of alerts is a warm set.
  if (app->cache != nullptr) {
    absl::Status s =
        app->cache->RegisterWarmer("alerts first page", [app](Cache&) {
          AlertFilter first;
          return app->reads->Warm(
              CacheFamily::kAlerts, ListKey(first), [app, first] {
                return ListAlerts(app->pool,
                                  app->config->alert_context_max_bytes, first);
              });
        });
    if (!s.ok()) {
      Log::Error("alerts warmer not registered",
                 {{"error", std::string(s.message())}});
    }
  }
}

}  // namespace pggitops::server
