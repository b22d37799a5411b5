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
#include "pggitops/log.h"
#include "pggitops/version.h"
#include "server/http/errors.h"
#include "server/http/json_util.h"
#include "server/http/request_context.h"
#include "server/routes/alert_body.h"
#include "server/routes/cached_read.h"
#include "server/routes/request_figures.h"
#include "server/routes/sse_hub.h"

namespace pggitops::server {
namespace {

using nlohmann::json;
using Params = std::vector<std::optional<std::string>>;

constexpr int64_t kDefaultLimit = 20;
constexpr int64_t kMaxLimit = 100;
constexpr size_t kMaxIds = 1000;
constexpr size_t kMaxMessageChars = 10000;

// ---------------------------------------------------------------------------
// SQL
// ---------------------------------------------------------------------------

// ALERT_CONTEXT_MAX_BYTES, for the SQL below (set once by AddAlertRoutes).
int64_t g_context_max_bytes = 65536;

// One alert `a` as a JSON object, with its delivery counts by status. With
// `bounded`, a context larger than ALERT_CONTEXT_MAX_BYTES (one written by
// SQL: the API refuses them) is shown as {"truncated": true, "bytes": N},
// so a list page or a stream replay stays bounded by its length x the cap.
std::string AlertJsonSql(bool bounded) {
  std::string context =
      bounded ? absl::StrCat(
                    "CASE WHEN octet_length(a.context::text) > ",
                    g_context_max_bytes,
                    " THEN json_build_object('truncated', true, 'bytes', "
                    "octet_length(a.context::text)) ELSE a.context::json END")
              : std::string("a.context");
  return absl::StrCat(
      "json_build_object('id', a.id, 'operation_type', a.operation_type, "
      "'severity', a.severity, 'message', a.message, 'status', a.status, "
      "'context', ",
      context, ", 'created_at', ", Rfc3339Sql("a.created_at"),
      ", 'updated_at', ", Rfc3339Sql("a.updated_at"), ", 'acknowledged_at', ",
      Rfc3339Sql("a.acknowledged_at"), ", 'resolved_at', ",
      Rfc3339Sql("a.resolved_at"),
      ", 'deliveries', (SELECT json_build_object("
      "'pending', count(*) FILTER (WHERE q.delivery_status = 'pending'), "
      "'in_progress', count(*) FILTER (WHERE q.delivery_status = "
      "'in_progress'), "
      "'delivered', count(*) FILTER (WHERE q.delivery_status = 'delivered'), "
      "'failed', count(*) FILTER (WHERE q.delivery_status = 'failed'), "
      "'cancelled', count(*) FILTER (WHERE q.delivery_status = 'cancelled')) "
      "FROM pggit.alert_delivery_queue q WHERE q.alert_id = a.id))");
}

// $1 status, $2 severity, $3 operation_type (NULL: any).
constexpr char kListFilter[] =
    "($1::text IS NULL OR a.status = $1::text)"
    " AND ($2::text IS NULL OR a.severity = $2::text)"
    " AND ($3::text IS NULL OR a.operation_type = $3::text)";

// Total and page in one statement, so both come from one snapshot.
const std::string& ListSql() {
  static const std::string* sql = new std::string(absl::StrCat(
      "SELECT (SELECT count(*) FROM pggit.alerts a WHERE ", kListFilter,
      "), (SELECT coalesce(json_agg(p.item ORDER BY p.created_at DESC, "
      "p.id DESC), '[]') FROM (SELECT a.id, a.created_at, ",
      AlertJsonSql(/*bounded=*/true), " AS item FROM pggit.alerts a WHERE ",
      kListFilter,
      " ORDER BY a.created_at DESC, a.id DESC LIMIT $4::bigint "
      "OFFSET $5::bigint) p)"));
  return *sql;
}

// The alerts `a` that `where` selects, as JSON, in id order.
std::string AlertsWhereSql(absl::string_view where, bool bounded) {
  return absl::StrCat("SELECT ", AlertJsonSql(bounded),
                      " FROM pggit.alerts a WHERE ", where, " ORDER BY a.id");
}

// $1: ids.
const std::string& ByIdsSql(bool bounded) {
  static const std::string* full =
      new std::string(AlertsWhereSql("a.id = ANY($1::bigint[])", false));
  static const std::string* short_context =
      new std::string(AlertsWhereSql("a.id = ANY($1::bigint[])", true));
  return bounded ? *short_context : *full;
}

// At most $2 alerts after $1 (a Last-Event-ID), oldest first.
const std::string& AfterIdSql() {
  static const std::string* sql = new std::string(
      AlertsWhereSql("a.id > $1::bigint", true) + " LIMIT $2::bigint");
  return *sql;
}

// $1 ids, $2 the new status, $3 the statuses it may be reached from.
// Answers (changed rows, ids that name no alert).
constexpr char kTransitionSql[] =
    "WITH ids AS (SELECT DISTINCT unnest($1::bigint[]) AS id),"
    " changed AS (UPDATE pggit.alerts a SET status = $2::text FROM ids"
    " WHERE a.id = ids.id AND a.status = ANY($3::text[]) RETURNING a.id)"
    " SELECT (SELECT count(*) FROM changed),"
    " coalesce((SELECT json_agg(ids.id ORDER BY ids.id) FROM ids"
    " WHERE NOT EXISTS (SELECT 1 FROM pggit.alerts a WHERE a.id = ids.id)),"
    " '[]')";

// Queue depth, failed, pending alerts, active webhooks, pending deliveries.
constexpr char kStatusSql[] =
    "SELECT (SELECT count(*) FROM pggit.alert_delivery_queue"
    " WHERE delivery_status IN ('pending', 'in_progress')),"
    " (SELECT count(*) FROM pggit.alert_delivery_queue"
    " WHERE delivery_status = 'failed'),"
    " (SELECT count(*) FROM pggit.alerts WHERE status = 'pending'),"
    " (SELECT count(*) FROM pggit.webhooks"
    " WHERE status = 'active' AND deleted_at IS NULL),"
    " (SELECT count(*) FROM pggit.alert_delivery_queue"
    " WHERE delivery_status = 'pending')";

absl::StatusOr<QueryResult> Run(
    ConnectionPool* pool, const std::string& sql, const Params& params,
    std::optional<absl::Duration> wait = std::nullopt) {
  absl::StatusOr<PooledConnection> lease =
      wait.has_value() ? pool->Acquire(*wait) : pool->Acquire();
  if (!lease.ok()) return lease.status();
  return lease->Query(sql, params);
}

QueryResult RunOrThrow(ConnectionPool* pool, const std::string& sql,
                       const Params& params) {
  absl::StatusOr<QueryResult> r = Run(pool, sql, params);
  if (!r.ok()) throw FromStatus(r.status());
  return *std::move(r);
}

json JsonCell(const std::optional<std::string>& cell) {
  return cell.has_value() ? json::parse(*cell) : json(nullptr);
}

int64_t IntCell(const std::optional<std::string>& cell) {
  int64_t v = 0;
  if (!cell.has_value() || !absl::SimpleAtoi(*cell, &v)) {
    throw std::runtime_error("unexpected non-integer column");
  }
  return v;
}

// "{1,2,3}": a PostgreSQL array literal.
template <typename T>
std::string ArrayLiteral(const std::vector<T>& values) {
  return absl::StrCat("{", absl::StrJoin(values, ","), "}");
}

// ---------------------------------------------------------------------------
// Input validation (CONTRACT section 10)
// ---------------------------------------------------------------------------

std::string Quoted(const std::string& s) {
  return absl::StrCat("\"", s.substr(0, 64), s.size() > 64 ? "..." : "", "\"");
}

// Well-formed UTF-8 without NUL (query values arrive percent-decoded, so
// they may hold any byte; PostgreSQL refuses the rest).
bool IsCleanUtf8(const std::string& s) {
  static const uint32_t kMin[] = {0, 0x80, 0x800, 0x10000};
  for (size_t i = 0; i < s.size();) {
    const unsigned char c = static_cast<unsigned char>(s[i]);
    size_t extra = 0;
    if (c == 0) {
      return false;
    } else if (c < 0x80) {
      extra = 0;
    } else if ((c & 0xE0) == 0xC0) {
      extra = 1;
    } else if ((c & 0xF0) == 0xE0) {
      extra = 2;
    } else if ((c & 0xF8) == 0xF0) {
      extra = 3;
    } else {
      return false;
    }
    if (s.size() - i <= extra) return false;
    uint32_t cp = c & (0x7F >> extra);
    for (size_t k = 1; k <= extra; ++k) {
      const unsigned char cc = static_cast<unsigned char>(s[i + k]);
      if ((cc & 0xC0) != 0x80) return false;
      cp = (cp << 6) | (cc & 0x3F);
    }
    if (extra > 0 &&
        (cp < kMin[extra] || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF))) {
      return false;
    }
    i += 1 + extra;
  }
  return true;
}

size_t Utf8Chars(const std::string& s) {
  size_t n = 0;
  for (unsigned char c : s) n += (c & 0xC0) != 0x80;
  return n;
}

struct ListQuery {
  std::optional<std::string> status, severity, operation_type;
  int64_t limit = kDefaultLimit;
  int64_t offset = 0;
};

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
ListQuery ParseListQuery(const httplib::Request& req) {
  ListQuery q;
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
      if (!IsCleanUtf8(value)) {
        throw Validation("operation_type: must be UTF-8 text without NUL");
      }
      if (value.empty() || Utf8Chars(value) > 255) {
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

std::string ListKey(const ListQuery& q) {
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
  if (Utf8Chars(in.operation_type) > 255) {
    throw Validation("operation_type: must be 1 to 255 characters");
  }
  if (in.message.empty() || Utf8Chars(in.message) > kMaxMessageChars) {
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

json ListAlerts(ConnectionPool* pool, const ListQuery& q) {
  QueryResult r = RunOrThrow(pool, ListSql(),
                             {q.status, q.severity, q.operation_type,
                              absl::StrCat(q.limit), absl::StrCat(q.offset)});
  return {{"items", JsonCell(r.rows.at(0).at(1))},
          {"total", IntCell(r.rows.at(0).at(0))},
          {"limit", q.limit},
          {"offset", q.offset}};
}

// The alerts among `ids` that exist, in id order (`bounded`: see
// AlertJsonSql).
absl::StatusOr<std::vector<json>> AlertsByIds(
    ConnectionPool* pool, const std::vector<int64_t>& ids, bool bounded,
    std::optional<absl::Duration> wait = std::nullopt) {
  absl::StatusOr<QueryResult> r =
      Run(pool, ByIdsSql(bounded), {ArrayLiteral(ids)}, wait);
  if (!r.ok()) return r.status();
  std::vector<json> out;
  for (const auto& row : r->rows) out.push_back(JsonCell(row.at(0)));
  return out;
}

json GetAlert(ConnectionPool* pool, int64_t id) {
  absl::StatusOr<std::vector<json>> found = AlertsByIds(pool, {id}, false);
  if (!found.ok()) throw FromStatus(found.status());
  if (found->empty()) throw NotFound(absl::StrCat("alert ", id, " not found"));
  return found->front();
}

// ---------------------------------------------------------------------------
// Writes
// ---------------------------------------------------------------------------

void CreateAlert(RequestContext& ctx, AppContext* app) {
  AlertInput in =
      ParseAlertBody(ctx.body, app->config->alert_context_max_bytes);
  absl::StatusOr<int64_t> id = EnqueueAlert(app->pool, in);
  if (!id.ok()) throw FromStatus(id.status());
  app->reads->InvalidateAfterWrite(
      {CacheFamily::kAlerts, CacheFamily::kDashboard});
  // The trigger's NOTIFY wakes every engine; this one needs no round trip.
  if (app->engine != nullptr) app->engine->Wake();
  ctx.res.set_header("Location", absl::StrCat("/api/v1/alerts/", *id));
  absl::StatusOr<std::vector<json>> made = AlertsByIds(app->pool, {*id}, false);
  if (made.ok() && !made->empty()) {
    ctx.Json(201, made->front());
    return;
  }
  // The alert is committed: answer 201 (a retry would create it twice) with
  // what is known, and let the client read the rest from Location.
  Log::Warning("alert created but not read back",
               {{"id", absl::StrCat(*id)},
                {"error", made.ok() ? "not found"
                                    : std::string(made.status().message())}});
  json context =
      in.context_json.empty() ? json::object() : json::parse(in.context_json);
  ctx.Json(201, {{"id", *id},
                 {"operation_type", in.operation_type},
                 {"severity", in.severity},
                 {"message", in.message},
                 {"status", "pending"},
                 {"context", context}});
}

// acknowledge: pending → acknowledged; resolve: pending or acknowledged →
// resolved. An alert already there (or past it) counts as done; ids that
// name no alert count as failed.
void Transition(RequestContext& ctx, AppContext* app, const char* verb,
                const char* to, const std::vector<std::string>& from) {
  std::vector<int64_t> ids = ParseAlertIds(ctx.body);
  QueryResult r =
      RunOrThrow(app->pool, kTransitionSql,
                 {ArrayLiteral(ids), std::string(to), ArrayLiteral(from)});
  int64_t changed = IntCell(r.rows.at(0).at(0));
  json failed_ids = JsonCell(r.rows.at(0).at(1));
  std::vector<int64_t> distinct = ids;
  std::sort(distinct.begin(), distinct.end());
  distinct.erase(std::unique(distinct.begin(), distinct.end()), distinct.end());
  if (changed > 0) {
    app->reads->InvalidateAfterWrite(
        {CacheFamily::kAlerts, CacheFamily::kDashboard});
  }
  int64_t failed = static_cast<int64_t>(failed_ids.size());
  ctx.Json(200, {{verb, static_cast<int64_t>(distinct.size()) - failed},
                 {"failed", failed},
                 {"failed_ids", failed_ids},
                 {"changed", changed}});
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
// The stream's queries wait at most `wait` (SSE_QUERY_TIMEOUT) for a pooled
// connection, so a saturated pool delays events instead of stalling the hub.
absl::StatusOr<std::vector<json>> AlertsAfter(ConnectionPool* pool,
                                              int64_t after,
                                              absl::Duration wait) {
  absl::StatusOr<QueryResult> r =
      Run(pool, AfterIdSql(), {absl::StrCat(after), absl::StrCat(kMaxReplay)},
          wait);
  if (!r.ok()) return r.status();
  std::vector<json> out;
  for (const auto& row : r->rows) out.push_back(JsonCell(row.at(0)));
  return out;
}

// The hub's payloads → one `alert` event per alert, in id order, each once:
//   {"id": N}     a `pggit_alerts` notification (the alerts_fan_out trigger);
//   {"after": N}  the listener reconnected: alerts above N may have been
//                 missed while it was away (at most kMaxReplay are sent).
// When the database cannot be read, a notified alert's event carries its id
// alone (the client can GET /api/v1/alerts/{id}). *last_id is raised to the
// highest id sent.
std::vector<SseEvent> RenderAlertEvents(
    ConnectionPool* pool, absl::Duration wait,
    const std::vector<std::string>& payloads, std::atomic<int64_t>* last_id) {
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
    absl::StatusOr<std::vector<json>> missed = AlertsAfter(pool, *after, wait);
    if (!missed.ok()) {
      Log::Warning("alert stream: missed alerts not read",
                   {{"error", std::string(missed.status().message())}});
    }
    for (json& a : missed.value_or(std::vector<json>{})) {
      const int64_t id = a["id"].get<int64_t>();
      alerts[id] = std::move(a);
    }
  }
  if (!ids.empty()) {
    absl::StatusOr<std::vector<json>> found =
        AlertsByIds(pool, ids, true, wait);
    if (!found.ok()) {
      Log::Warning("alert stream: alerts not read; sending ids only",
                   {{"error", std::string(found.status().message())}});
      for (int64_t id : ids) alerts.emplace(id, json{{"id", id}});
    }
    for (json& a : found.value_or(std::vector<json>{})) {
      const int64_t id = a["id"].get<int64_t>();
      alerts[id] = std::move(a);
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
std::vector<SseEvent> ReplayAlerts(ConnectionPool* pool, absl::Duration wait,
                                   const std::string& last_event_id) {
  std::vector<SseEvent> events;
  int64_t after = 0;
  if (!absl::SimpleAtoi(last_event_id, &after) || after < 0) return events;
  absl::StatusOr<std::vector<json>> missed = AlertsAfter(pool, after, wait);
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
  for (const json& a : *missed) {
    SseEvent e = AlertEvent(a);
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
  absl::StatusOr<QueryResult> r =
      Run(app->pool, kStatusSql, {}, app->config->sse_query_timeout);
  if (r.ok() && !r->rows.empty()) {
    status["database"] = "connected";
    status["queue"] = {{"depth", IntCell(r->rows[0].at(0))},
                       {"failed", IntCell(r->rows[0].at(1))}};
    status["alerts"] = {{"pending", IntCell(r->rows[0].at(2))}};
    status["active_webhooks"] = IntCell(r->rows[0].at(3));
    status["pending_deliveries"] = IntCell(r->rows[0].at(4));
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
      return RenderAlertEvents(app->pool, app->config->sse_query_timeout,
                               payloads, &last_id);
    };
    o.status = [this] { return RenderStatus(app, hub.get()); };
    o.replay = [a](const std::string& last_event_id) {
      return ReplayAlerts(a->pool, a->config->sse_query_timeout, last_event_id);
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
  g_context_max_bytes = app->config->alert_context_max_bytes;
  router->Add({"GET", "/api/v1/alerts", BodyPolicy::kNone, Scope::kRead,
               [app](RequestContext& ctx) {
                 ListQuery q = ParseListQuery(ctx.req);
                 app->reads->Serve(
                     ctx, CacheFamily::kAlerts, ListKey(q),
                     [app, q] { return ListAlerts(app->pool, q); });
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
                 Transition(ctx, app, "acknowledged", "acknowledged",
                            {"pending"});
               }});
  router->Add({"POST", "/api/v1/alerts/resolve", BodyPolicy::kRequiredJson,
               Scope::kWrite, [app](RequestContext& ctx) {
                 Transition(ctx, app, "resolved", "resolved",
                            {"pending", "acknowledged"});
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
          ListQuery first;
          return app->reads->Warm(
              CacheFamily::kAlerts, ListKey(first),
              [app, first] { return ListAlerts(app->pool, first); });
        });
    if (!s.ok()) {
      Log::Error("alerts warmer not registered",
                 {{"error", std::string(s.message())}});
    }
  }
}

}  // namespace pggitops::server
