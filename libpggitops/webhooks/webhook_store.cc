// WebhookStore: the SQL of pggit.webhooks and its delivery history.
#include "pggitops/webhook_store.h"

#include <algorithm>
#include <iterator>
#include <string>
#include <utility>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "libpggitops/pool/query_cells.h"
#include "nlohmann/json.hpp"
#include "pggitops/log.h"

namespace pggitops {
namespace {

using internal::BoolCell;
using internal::Cell;
using internal::IntCell;
using internal::MicrosSql;
using internal::OptDoubleCell;
using internal::OptIntCell;
using internal::OptTimeCell;
using internal::TimeCell;
using Params = std::vector<std::optional<std::string>>;
using Row = std::vector<Cell>;

// The columns ReadWebhook() reads, from the webhooks row `w`.
const std::string& WebhookColumnsSql() {
  static const std::string* sql = new std::string(absl::StrCat(
      "w.id, w.name, w.url, w.description, w.is_active, w.status,"
      " array_to_json(w.filter_severities)::text,"
      " array_to_json(w.filter_operation_types)::text,"
      " w.max_retries, w.backoff_base, w.max_backoff, w.timeout_seconds,"
      " w.ssl_verify, w.breaker_state, w.consecutive_failures,"
      " CASE WHEN w.total_deliveries > 0 THEN"
      " round(((w.total_deliveries - w.total_failures)::numeric"
      " / w.total_deliveries), 4)::float8 END, ",
      MicrosSql("w.created_at"), ", ", MicrosSql("w.updated_at"), ", ",
      MicrosSql("w.last_used_at"), ", ", MicrosSql("w.last_success_at"), ", ",
      MicrosSql("w.last_failure_at")));
  return *sql;
}

std::vector<std::string> StringArray(const Cell& c) {
  std::vector<std::string> out;
  if (!c.has_value()) return out;
  nlohmann::json j = nlohmann::json::parse(*c, nullptr, false);
  if (!j.is_array()) return out;
  for (const nlohmann::json& e : j) {
    if (e.is_string()) out.push_back(e.get<std::string>());
  }
  return out;
}

// A webhook from the WebhookColumnsSql() cells of `row` from column `at`.
Webhook ReadWebhook(const Row& row, size_t at = 0) {
  auto c = [&](size_t i) -> const Cell& { return row.at(at + i); };
  Webhook w;
  w.id = IntCell(c(0));
  w.name = c(1).value_or("");
  w.url = c(2).value_or("");
  w.description = c(3);
  w.is_active = BoolCell(c(4));
  w.status = c(5).value_or("");
  w.filter_severities = StringArray(c(6));
  w.filter_operation_types = StringArray(c(7));
  w.max_retries = static_cast<int>(IntCell(c(8)));
  w.backoff_base = OptDoubleCell(c(9)).value_or(0);
  w.max_backoff = static_cast<int>(IntCell(c(10)));
  w.timeout_seconds = static_cast<int>(IntCell(c(11)));
  w.ssl_verify = BoolCell(c(12));
  w.breaker_state = c(13).value_or("");
  w.consecutive_failures = IntCell(c(14));
  w.success_rate = OptDoubleCell(c(15));
  w.created_at = TimeCell(c(16));
  w.updated_at = TimeCell(c(17));
  w.last_used_at = OptTimeCell(c(18));
  w.last_success_at = OptTimeCell(c(19));
  w.last_failure_at = OptTimeCell(c(20));
  return w;
}

absl::Status NotFound(int64_t id) {
  return absl::NotFoundError(absl::StrCat("webhook ", id, " not found"));
}

// A write the database refused, as the caller should see it: a taken name
// is kAlreadyExists naming the field; another constraint or data error is
// kInvalidArgument naming the rule (the database's wording is logged, not
// returned: it quotes the value).
absl::Status WriteError(const absl::Status& s) {
  const std::string state = SqlStateOf(s);
  if (state == "23505") {
    return absl::AlreadyExistsError(
        "name: a webhook with this name already exists");
  }
  if (state.rfind("23", 0) != 0 && state.rfind("22", 0) != 0) return s;
  Log::Info("webhook write refused by the database",
            {{"error", std::string(s.message())}, {"sqlstate", state}});
  const std::string m(s.message());
  size_t c = m.find("constraint \"");
  if (c == std::string::npos) {
    return absl::InvalidArgumentError("a field is out of range");
  }
  return absl::InvalidArgumentError(
      absl::StrCat("a field breaks the rule ",
                   m.substr(c + 12, m.find('"', c + 12) - (c + 12))));
}

absl::StatusOr<QueryResult> Run(ConnectionPool* pool, const std::string& sql,
                                const Params& params) {
  absl::StatusOr<PooledConnection> lease = pool->Acquire();
  if (!lease.ok()) return lease.status();
  return lease->Query(sql, params);
}

// Distinct values in first-seen order, as a JSON array for the SQL below.
std::string DistinctJson(const std::vector<std::string>& values) {
  nlohmann::json out = nlohmann::json::array();
  for (const std::string& v : values) {
    if (std::find(out.begin(), out.end(), v) == out.end()) out.push_back(v);
  }
  return out.dump();
}

// The columns `f` sets, each with its SQL value ("$N::type") and
// parameter, numbering parameters after those already in *params.
struct Assignments {
  std::vector<std::string> columns, values;
};
Assignments Bind(const WebhookFields& f, Params* params) {
  Assignments a;
  auto add = [&](const char* column, const char* type,
                 std::optional<std::string> param) {
    params->push_back(std::move(param));
    a.columns.push_back(column);
    a.values.push_back(absl::StrCat("$", params->size(), "::", type));
  };
  auto add_list = [&](const char* column,
                      const std::vector<std::string>& values) {
    params->push_back(DistinctJson(values));
    a.columns.push_back(column);
    a.values.push_back(absl::StrCat("ARRAY(SELECT json_array_elements_text($",
                                    params->size(), "::json))"));
  };
  auto flag = [](bool b) { return std::string(b ? "true" : "false"); };
  if (f.name) add("name", "text", *f.name);
  if (f.url) add("url", "text", *f.url);
  if (f.description) add("description", "text", *f.description);
  if (f.is_active) add("is_active", "boolean", flag(*f.is_active));
  if (f.filter_severities) add_list("filter_severities", *f.filter_severities);
  if (f.filter_operation_types) {
    add_list("filter_operation_types", *f.filter_operation_types);
  }
  if (f.max_retries)
    add("max_retries", "integer", absl::StrCat(*f.max_retries));
  if (f.backoff_base) {
    add("backoff_base", "double precision",
        nlohmann::json(*f.backoff_base).dump());
  }
  if (f.max_backoff)
    add("max_backoff", "integer", absl::StrCat(*f.max_backoff));
  if (f.timeout_seconds) {
    add("timeout_seconds", "integer", absl::StrCat(*f.timeout_seconds));
  }
  if (f.ssl_verify) add("ssl_verify", "boolean", flag(*f.ssl_verify));
  return a;
}

absl::Status CheckPage(int64_t limit, int64_t offset) {
  if (limit < 1 || limit > 100) {
    return absl::InvalidArgumentError(
        absl::StrCat("limit: must be from 1 to 100 (got ", limit, ")"));
  }
  if (offset < 0) {
    return absl::InvalidArgumentError(
        absl::StrCat("offset: must be at least 0 (got ", offset, ")"));
  }
  return absl::OkStatus();
}

// Total and page in one statement (one snapshot): the first cell of every
// row is the total; a page past the end is one row of NULLs after it.
const std::string& ListSql() {
  static const std::string* sql = new std::string(absl::StrCat(
      "WITH matching AS (SELECT * FROM pggit.webhooks w"
      " WHERE w.deleted_at IS NULL"
      " AND ($1::boolean IS NULL OR w.is_active = $1::boolean)),"
      " page AS (SELECT * FROM matching ORDER BY id"
      " LIMIT $2::bigint OFFSET $3::bigint)"
      " SELECT (SELECT count(*) FROM matching), ",
      WebhookColumnsSql(),
      " FROM (SELECT 1) one LEFT JOIN page w ON true ORDER BY w.id"));
  return *sql;
}

const std::string& DeliveriesSql() {
  static const std::string* sql = new std::string(absl::StrCat(
      "WITH matching AS (SELECT * FROM pggit.alert_delivery_queue q"
      " WHERE q.webhook_id = $1::bigint"
      " AND ($2::text IS NULL OR q.delivery_status = $2::text)),"
      " page AS (SELECT * FROM matching"
      " ORDER BY created_at DESC, id DESC LIMIT $3::bigint OFFSET $4::bigint)"
      " SELECT EXISTS (SELECT 1 FROM pggit.webhooks WHERE id = $1::bigint),"
      " (SELECT count(*) FROM matching),"
      " p.id, p.alert_id, p.webhook_id, p.delivery_status, p.attempt_count, ",
      MicrosSql("p.next_attempt_at"), ", p.last_http_status, p.last_error, ",
      MicrosSql("p.created_at"), ", ", MicrosSql("p.delivered_at"),
      ", (SELECT coalesce(json_agg(json_build_object("
      "'attempt', a.attempt, 'started_at', ",
      MicrosSql("a.started_at"),
      ", 'duration_ms', a.duration_ms, 'http_status', a.http_status,"
      " 'error', a.error) ORDER BY a.started_at, a.id), '[]')::text"
      " FROM pggit.delivery_attempts a WHERE a.delivery_id = p.id)"
      " FROM (SELECT 1) one LEFT JOIN page p ON true"
      " ORDER BY p.created_at DESC, p.id DESC"));
  return *sql;
}

template <typename T>
std::optional<T> JsonOpt(const nlohmann::json& j, const char* key) {
  if (!j.contains(key) || j[key].is_null()) return std::nullopt;
  return j[key].get<T>();
}

std::vector<DeliveryAttempt> ReadAttempts(const Cell& c) {
  std::vector<DeliveryAttempt> out;
  if (!c.has_value()) return out;
  nlohmann::json j = nlohmann::json::parse(*c, nullptr, false);
  if (!j.is_array()) return out;
  for (const nlohmann::json& a : j) {
    DeliveryAttempt d;
    d.attempt = JsonOpt<int>(a, "attempt").value_or(0);
    d.started_at =
        absl::FromUnixMicros(JsonOpt<int64_t>(a, "started_at").value_or(0));
    d.duration_ms = JsonOpt<double>(a, "duration_ms");
    d.http_status = JsonOpt<int>(a, "http_status");
    d.error = JsonOpt<std::string>(a, "error");
    out.push_back(std::move(d));
  }
  return out;
}

Delivery ReadDelivery(const Row& r) {
  Delivery d;
  d.id = IntCell(r[2]);
  d.alert_id = IntCell(r[3]);
  d.webhook_id = IntCell(r[4]);
  d.status = r[5].value_or("");
  d.attempt_count = static_cast<int>(IntCell(r[6]));
  d.next_attempt_at = TimeCell(r[7]);
  std::optional<int64_t> http = OptIntCell(r[8]);
  if (http) d.last_http_status = static_cast<int>(*http);
  d.last_error = r[9];
  d.created_at = TimeCell(r[10]);
  d.delivered_at = OptTimeCell(r[11]);
  d.attempts = ReadAttempts(r[12]);
  return d;
}

}  // namespace

absl::StatusOr<NewWebhook> WebhookStore::Create(const WebhookFields& fields) {
  if (!fields.name) return absl::InvalidArgumentError("name: is required");
  if (!fields.url) return absl::InvalidArgumentError("url: is required");
  if (absl::Status s = fields.Validate(); !s.ok()) return s;
  absl::StatusOr<std::string> secret = GenerateWebhookSecret();
  if (!secret.ok()) return secret.status();
  Params params;
  Assignments a = Bind(fields, &params);
  params.push_back(*secret);
  a.columns.push_back("secret");
  a.values.push_back(absl::StrCat("$", params.size(), "::text"));
  absl::StatusOr<QueryResult> r =
      Run(pool_,
          absl::StrCat("INSERT INTO pggit.webhooks AS w (",
                       absl::StrJoin(a.columns, ", "), ") VALUES (",
                       absl::StrJoin(a.values, ", "), ") RETURNING ",
                       WebhookColumnsSql()),
          params);
  if (!r.ok()) return WriteError(r.status());
  if (r->rows.empty()) return absl::InternalError("INSERT returned no row");
  return NewWebhook{ReadWebhook(r->rows[0]), *std::move(secret)};
}

absl::StatusOr<Webhook> WebhookStore::Get(int64_t id) {
  absl::StatusOr<QueryResult> r =
      Run(pool_,
          absl::StrCat("SELECT ", WebhookColumnsSql(),
                       " FROM pggit.webhooks w"
                       " WHERE w.id = $1::bigint AND w.deleted_at IS NULL"),
          {absl::StrCat(id)});
  if (!r.ok()) return r.status();
  if (r->rows.empty()) return NotFound(id);
  return ReadWebhook(r->rows[0]);
}

absl::StatusOr<WebhookPage> WebhookStore::List(const WebhookFilter& filter) {
  if (absl::Status s = CheckPage(filter.limit, filter.offset); !s.ok()) {
    return s;
  }
  std::optional<std::string> active;
  if (filter.is_active) active = *filter.is_active ? "true" : "false";
  absl::StatusOr<QueryResult> r =
      Run(pool_, ListSql(),
          {active, absl::StrCat(filter.limit), absl::StrCat(filter.offset)});
  if (!r.ok()) return r.status();
  WebhookPage page;
  for (const Row& row : r->rows) {
    page.total = IntCell(row.at(0));
    if (row.at(1).has_value()) page.items.push_back(ReadWebhook(row, 1));
  }
  return page;
}

absl::StatusOr<Webhook> WebhookStore::Update(int64_t id,
                                             const WebhookFields& fields) {
  if (absl::Status s = fields.Validate(); !s.ok()) return s;
  if (fields.empty()) return Get(id);
  Params params = {absl::StrCat(id)};
  Assignments a = Bind(fields, &params);
  std::vector<std::string> sets;
  for (size_t i = 0; i < a.columns.size(); ++i) {
    sets.push_back(absl::StrCat(a.columns[i], " = ", a.values[i]));
  }
  // Only the fields set are named: the is_active trigger fires when
  // is_active is in the SET list, whatever its value.
  absl::StatusOr<QueryResult> r = Run(
      pool_,
      absl::StrCat("UPDATE pggit.webhooks AS w SET ", absl::StrJoin(sets, ", "),
                   " WHERE w.id = $1::bigint AND w.deleted_at IS NULL"
                   " RETURNING ",
                   WebhookColumnsSql()),
      params);
  if (!r.ok()) return WriteError(r.status());
  if (r->rows.empty()) return NotFound(id);
  return ReadWebhook(r->rows[0]);
}

absl::Status WebhookStore::Delete(int64_t id) {
  // The webhooks_cancel_deleted trigger cancels its pending deliveries in
  // the same statement.
  absl::StatusOr<QueryResult> r =
      Run(pool_,
          "UPDATE pggit.webhooks SET deleted_at = now()"
          " WHERE id = $1::bigint AND deleted_at IS NULL RETURNING id",
          {absl::StrCat(id)});
  if (!r.ok()) return r.status();
  if (r->rows.empty()) return NotFound(id);
  return absl::OkStatus();
}

absl::StatusOr<DeliveryPage> WebhookStore::DeliveryHistory(
    int64_t id, const DeliveryFilter& filter) {
  if (absl::Status s = CheckPage(filter.limit, filter.offset); !s.ok()) {
    return s;
  }
  if (filter.status) {
    static const char* const kStatuses[] = {"pending", "in_progress",
                                            "delivered", "failed", "cancelled"};
    if (std::find(std::begin(kStatuses), std::end(kStatuses), *filter.status) ==
        std::end(kStatuses)) {
      return absl::InvalidArgumentError(
          "status: must be one of pending, in_progress, delivered, failed, "
          "cancelled");
    }
  }
  absl::StatusOr<QueryResult> r =
      Run(pool_, DeliveriesSql(),
          {absl::StrCat(id), filter.status, absl::StrCat(filter.limit),
           absl::StrCat(filter.offset)});
  if (!r.ok()) return r.status();
  if (r->rows.empty() || !BoolCell(r->rows[0].at(0))) return NotFound(id);
  DeliveryPage page;
  for (const Row& row : r->rows) {
    page.total = IntCell(row.at(1));
    if (row.at(2).has_value()) page.items.push_back(ReadDelivery(row));
  }
  return page;
}

}  // namespace pggitops
