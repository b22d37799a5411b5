// AlertStore: the SQL of pggit.alerts.
#include "pggitops/alert_store.h"

#include <algorithm>
#include <string>
#include <utility>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "libpggitops/alerts/alert_counts_sql.h"
#include "libpggitops/alerts/alert_rules.h"
#include "libpggitops/pool/query_cells.h"
#include "nlohmann/json.hpp"

namespace pggitops {
namespace {

using internal::Cell;
using internal::IntArrayLiteral;
using internal::IntCell;
using internal::MicrosSql;
using internal::OptIntCell;
using internal::OptTimeCell;
using internal::TimeCell;
using Params = std::vector<std::optional<std::string>>;
using Row = std::vector<Cell>;

// The columns ReadAlert() reads, over `a` (an alerts row) joined with `d`
// (DeliveryCountsSql). With a `max_param` ("$2"), a context larger than
// that many bytes is left out (NULL) and its size kept.
std::string AlertColumnsSql(absl::string_view max_param) {
  const std::string context =
      max_param.empty()
          ? std::string("a.context::text")
          : absl::StrCat("CASE WHEN octet_length(a.context::text) > ",
                         max_param,
                         "::bigint THEN NULL ELSE a.context::text END");
  return absl::StrCat(
      "a.id, a.operation_type, a.severity, a.message, a.status, ", context,
      ", octet_length(a.context::text), ", MicrosSql("a.created_at"), ", ",
      MicrosSql("a.updated_at"), ", ", MicrosSql("a.acknowledged_at"), ", ",
      MicrosSql("a.resolved_at"),
      ", d.pending, d.in_progress, d.delivered, d.failed, d.cancelled");
}

// `a`'s deliveries by status, as the lateral subquery `d`.
constexpr char kDeliveryCountsSql[] =
    "CROSS JOIN LATERAL (SELECT"
    " count(*) FILTER (WHERE q.delivery_status = 'pending') AS pending,"
    " count(*) FILTER (WHERE q.delivery_status = 'in_progress')"
    " AS in_progress,"
    " count(*) FILTER (WHERE q.delivery_status = 'delivered') AS delivered,"
    " count(*) FILTER (WHERE q.delivery_status = 'failed') AS failed,"
    " count(*) FILTER (WHERE q.delivery_status = 'cancelled') AS cancelled"
    " FROM pggit.alert_delivery_queue q WHERE q.alert_id = a.id) d";

Alert ReadAlert(const Row& row, size_t at = 0) {
  auto c = [&](size_t i) -> const Cell& { return row.at(at + i); };
  Alert a;
  a.id = IntCell(c(0));
  a.operation_type = c(1).value_or("");
  a.severity = c(2).value_or("");
  a.message = c(3).value_or("");
  a.status = c(4).value_or("");
  if (c(5).has_value()) {
    a.context_json = *c(5);
  } else {
    a.context_omitted_bytes = IntCell(c(6));
  }
  a.created_at = TimeCell(c(7));
  a.updated_at = TimeCell(c(8));
  a.acknowledged_at = OptTimeCell(c(9));
  a.resolved_at = OptTimeCell(c(10));
  a.deliveries.pending = IntCell(c(11));
  a.deliveries.in_progress = IntCell(c(12));
  a.deliveries.delivered = IntCell(c(13));
  a.deliveries.failed = IntCell(c(14));
  a.deliveries.cancelled = IntCell(c(15));
  return a;
}

// $1 status, $2 severity, $3 operation_type (NULL: any).
constexpr char kListFilter[] =
    "($1::text IS NULL OR a.status = $1::text)"
    " AND ($2::text IS NULL OR a.severity = $2::text)"
    " AND ($3::text IS NULL OR a.operation_type = $3::text)";

// Total and page in one statement (one snapshot): the first cell of every
// row is the total; a page past the end is one row of NULLs after it.
// $4 limit, $5 offset, $6 context_max_bytes.
const std::string& ListSql() {
  static const std::string* sql = new std::string(absl::StrCat(
      "WITH page AS (SELECT * FROM pggit.alerts a WHERE ", kListFilter,
      " ORDER BY a.created_at DESC, a.id DESC"
      " LIMIT $4::bigint OFFSET $5::bigint)"
      " SELECT (SELECT count(*) FROM pggit.alerts a WHERE ",
      kListFilter, "), ", AlertColumnsSql("$6"),
      " FROM (SELECT 1) one LEFT JOIN (page a ", kDeliveryCountsSql,
      ") ON true ORDER BY a.created_at DESC, a.id DESC"));
  return *sql;
}

// The alerts `where` selects, by id; $1 is the context bound, unless
// `max_param` is empty.
std::string AlertsWhereSql(absl::string_view where,
                           absl::string_view max_param) {
  return absl::StrCat("SELECT ", AlertColumnsSql(max_param),
                      " FROM pggit.alerts a ", kDeliveryCountsSql, " WHERE ",
                      where, " ORDER BY a.id");
}

// $1 ids, $2 the new status, $3 the statuses it may be reached from.
// Answers (changed rows, ids that name no alert as a JSON array).
constexpr char kTransitionSql[] =
    "WITH ids AS (SELECT DISTINCT unnest($1::bigint[]) AS id),"
    " changed AS (UPDATE pggit.alerts a SET status = $2::text FROM ids"
    " WHERE a.id = ids.id AND a.status = ANY($3::text[]) RETURNING a.id)"
    " SELECT (SELECT count(*) FROM changed),"
    " coalesce((SELECT json_agg(ids.id ORDER BY ids.id) FROM ids"
    " WHERE NOT EXISTS (SELECT 1 FROM pggit.alerts a WHERE a.id = ids.id)),"
    " '[]')::text";

absl::StatusOr<std::vector<Alert>> Alerts(
    const absl::StatusOr<QueryResult>& r) {
  if (!r.ok()) return r.status();
  std::vector<Alert> out;
  out.reserve(r->rows.size());
  for (const Row& row : r->rows) out.push_back(ReadAlert(row));
  return out;
}

}  // namespace

namespace internal {

const char* AlertCountsSql() {
  return "SELECT count(*) AS total,"
         " count(*) FILTER (WHERE severity = 'INFO') AS info,"
         " count(*) FILTER (WHERE severity = 'WARNING') AS warning,"
         " count(*) FILTER (WHERE severity = 'CRITICAL') AS critical,"
         " count(*) FILTER (WHERE status = 'pending') AS pending,"
         " count(*) FILTER (WHERE status = 'acknowledged') AS acknowledged,"
         " count(*) FILTER (WHERE status = 'resolved') AS resolved"
         " FROM pggit.alerts";
}

AlertCounts ReadAlertCounts(const Row& row, size_t at) {
  AlertCounts c;
  c.total = IntCell(row.at(at));
  c.info = IntCell(row.at(at + 1));
  c.warning = IntCell(row.at(at + 2));
  c.critical = IntCell(row.at(at + 3));
  c.pending = IntCell(row.at(at + 4));
  c.acknowledged = IntCell(row.at(at + 5));
  c.resolved = IntCell(row.at(at + 6));
  return c;
}

}  // namespace internal

namespace {

absl::StatusOr<QueryResult> Run(ConnectionPool* pool,
                                const AlertStoreOptions& o,
                                const std::string& sql, const Params& params) {
  absl::StatusOr<PooledConnection> lease =
      o.acquire_timeout ? pool->Acquire(*o.acquire_timeout) : pool->Acquire();
  if (!lease.ok()) return lease.status();
  return lease->Query(sql, params);
}

}  // namespace

absl::StatusOr<int64_t> AlertStore::Create(const AlertInput& alert) {
  return EnqueueAlert(pool_, alert);
}

absl::StatusOr<Alert> AlertStore::Get(int64_t id) {
  static const std::string* sql =
      new std::string(AlertsWhereSql("a.id = $1::bigint", ""));
  absl::StatusOr<std::vector<Alert>> found =
      Alerts(Run(pool_, options_, *sql, {absl::StrCat(id)}));
  if (!found.ok()) return found.status();
  if (found->empty()) {
    return absl::NotFoundError(absl::StrCat("alert ", id, " not found"));
  }
  return std::move(found->front());
}

absl::StatusOr<std::vector<Alert>> AlertStore::GetMany(
    const std::vector<int64_t>& ids, bool bounded) {
  static const std::string* full =
      new std::string(AlertsWhereSql("a.id = ANY($1::bigint[])", ""));
  static const std::string* short_context =
      new std::string(AlertsWhereSql("a.id = ANY($1::bigint[])", "$2"));
  if (!bounded)
    return Alerts(Run(pool_, options_, *full, {IntArrayLiteral(ids)}));
  return Alerts(
      Run(pool_, options_, *short_context,
          {IntArrayLiteral(ids), absl::StrCat(options_.context_max_bytes)}));
}

absl::StatusOr<std::vector<Alert>> AlertStore::After(int64_t after_id,
                                                     int64_t limit) {
  static const std::string* sql = new std::string(
      AlertsWhereSql("a.id > $1::bigint", "$2") + " LIMIT $3::bigint");
  return Alerts(
      Run(pool_, options_, *sql,
          {absl::StrCat(after_id), absl::StrCat(options_.context_max_bytes),
           absl::StrCat(std::max<int64_t>(limit, 0))}));
}

absl::StatusOr<AlertPage> AlertStore::List(const AlertFilter& f) {
  if (absl::Status s = internal::CheckAlertFilter(f); !s.ok()) return s;
  absl::StatusOr<QueryResult> r =
      Run(pool_, options_, ListSql(),
          {f.status, f.severity, f.operation_type, absl::StrCat(f.limit),
           absl::StrCat(f.offset), absl::StrCat(options_.context_max_bytes)});
  if (!r.ok()) return r.status();
  AlertPage page;
  for (const Row& row : r->rows) {
    page.total = IntCell(row.at(0));
    if (row.at(1).has_value()) page.items.push_back(ReadAlert(row, 1));
  }
  return page;
}

absl::StatusOr<AlertTransition> AlertStore::Acknowledge(
    const std::vector<int64_t>& ids) {
  return Transition(ids, "acknowledged");
}

absl::StatusOr<AlertTransition> AlertStore::Resolve(
    const std::vector<int64_t>& ids) {
  return Transition(ids, "resolved");
}

absl::StatusOr<AlertTransition> AlertStore::Transition(
    const std::vector<int64_t>& ids, absl::string_view to) {
  if (absl::Status s = internal::CheckAlertIds(ids); !s.ok()) return s;
  const std::vector<std::string> from = internal::AlertStatusesMovableTo(to);
  absl::StatusOr<QueryResult> r =
      Run(pool_, options_, kTransitionSql,
          {IntArrayLiteral(ids), std::string(to),
           absl::StrCat("{", absl::StrJoin(from, ","), "}")});
  if (!r.ok()) return r.status();
  if (r->rows.empty()) return absl::InternalError("transition returned no row");
  AlertTransition t;
  t.changed = IntCell(r->rows[0].at(0));
  nlohmann::json missing =
      nlohmann::json::parse(r->rows[0].at(1).value_or("[]"), nullptr, false);
  if (missing.is_array()) {
    for (const nlohmann::json& id : missing) {
      if (id.is_number_integer()) t.not_found.push_back(id.get<int64_t>());
    }
  }
  std::vector<int64_t> distinct = ids;
  std::sort(distinct.begin(), distinct.end());
  distinct.erase(std::unique(distinct.begin(), distinct.end()), distinct.end());
  t.done = static_cast<int64_t>(distinct.size() - t.not_found.size());
  return t;
}

absl::StatusOr<AlertCounts> AlertStore::Counts() {
  absl::StatusOr<QueryResult> r =
      Run(pool_, options_, internal::AlertCountsSql(), {});
  if (!r.ok()) return r.status();
  if (r->rows.empty()) return absl::InternalError("count returned no row");
  return internal::ReadAlertCounts(r->rows[0]);
}

}  // namespace pggitops
