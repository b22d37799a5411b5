// The engine-independent queue functions of delivery_queue.h: enqueueing,
// retry-pending and the webhooks/queue health checks.
#include <arpa/inet.h>
#include <netinet/in.h>

#include <string>
#include <utility>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "libpggitops/delivery/address_policy.h"
#include "libpggitops/delivery/store_util.h"
#include "libpggitops/webhooks/failing.h"
#include "pggitops/delivery_queue.h"

namespace pggitops {
namespace {

using internal::store::Int;
using internal::store::Txn;

constexpr char kInsertAlert[] =
    "INSERT INTO pggit.alerts (operation_type, severity, message, context) "
    "VALUES ($1, $2, $3, $4::jsonb) RETURNING id";

}  // namespace

absl::StatusOr<int64_t> EnqueueAlert(ConnectionPool* pool,
                                     const AlertInput& alert) {
  if (absl::Status s = alert.Validate(); !s.ok()) return s;
  absl::StatusOr<PooledConnection> lease = pool->Acquire();
  if (!lease.ok()) return lease.status();
  return EnqueueAlert(*lease, alert);
}

absl::StatusOr<int64_t> EnqueueAlert(PooledConnection& lease,
                                     const AlertInput& alert) {
  if (absl::Status s = alert.Validate(); !s.ok()) return s;
  absl::StatusOr<QueryResult> r = lease.Query(
      kInsertAlert,
      {alert.operation_type, alert.severity, alert.message,
       alert.context_json.empty() ? std::string("{}") : alert.context_json});
  if (!r.ok()) return r.status();
  if (r->rows.empty()) return absl::InternalError("INSERT returned no id");
  return Int(r->rows[0][0]);
}

absl::Status CheckWebhookTargetHost(absl::string_view url,
                                    bool allow_private_targets) {
  if (allow_private_targets) return absl::OkStatus();
  size_t scheme = url.find("://");
  absl::string_view rest =
      scheme == absl::string_view::npos ? url : url.substr(scheme + 3);
  absl::string_view authority = rest.substr(0, rest.find_first_of("/?#"));
  size_t at = authority.rfind('@');
  absl::string_view host =
      at == absl::string_view::npos ? authority : authority.substr(at + 1);
  if (!host.empty() && host.front() == '[') {
    host = host.substr(0, host.find(']') + 1);
  } else {
    host = host.substr(0, host.rfind(':'));
  }
  std::string name = absl::AsciiStrToLower(host);
  while (!name.empty() && name.back() == '.') name.pop_back();
  if (name == "localhost" || absl::EndsWith(name, ".localhost")) {
    return absl::InvalidArgumentError(
        "url: localhost is not a public host (WEBHOOK_ALLOW_PRIVATE_TARGETS "
        "is off)");
  }
  internal::AddressClass c = internal::ClassifyAddressText(name);
  if (c == internal::AddressClass::kInvalid) {
    // The IPv4 forms inet_aton (and libcurl) accept: "127.1", "0x7f.1",
    // "2130706433". A name that is none of them is checked at connect time.
    in_addr a{};
    if (inet_aton(name.c_str(), &a) == 0) return absl::OkStatus();
    c = internal::ClassifyIpv4(ntohl(a.s_addr));
  }
  if (internal::AddressAllowed(c, false)) return absl::OkStatus();
  return absl::InvalidArgumentError(
      absl::StrCat("url: ", name, " is a ", internal::AddressClassName(c),
                   " address (WEBHOOK_ALLOW_PRIVATE_TARGETS is off)"));
}

absl::StatusOr<int> RetryPending(ConnectionPool* pool,
                                 std::optional<int64_t> webhook_id) {
  absl::StatusOr<PooledConnection> lease = pool->Acquire();
  if (!lease.ok()) return lease.status();
  std::optional<std::string> id;
  if (webhook_id.has_value()) id = absl::StrCat(*webhook_id);
  Txn txn(*lease);
  if (absl::Status s = txn.Begin(); !s.ok()) return s;
  if (id.has_value()) {
    absl::StatusOr<QueryResult> found = lease->Query(
        "SELECT 1 FROM pggit.webhooks WHERE id = $1 AND deleted_at IS NULL",
        {id});
    if (!found.ok()) return found.status();
    if (found->rows.empty()) {
      return absl::NotFoundError(
          absl::StrCat("webhook ", *webhook_id, " not found"));
    }
  }
  // Webhooks first, locked in id order (the dispatchers' lock order, so
  // no deadlock with a completing batch): close the breakers.
  static const std::string* close_breakers = new std::string(absl::StrCat(
      "UPDATE pggit.webhooks"
      " SET breaker_state = 'closed', consecutive_failures = 0,"
      " breaker_open_until = NULL, breaker_open_seconds = NULL"
      " WHERE id IN (SELECT id FROM pggit.webhooks"
      " WHERE deleted_at IS NULL AND ($1::bigint IS NULL OR id = $1::bigint)"
      " AND ",
      internal::FailingWebhookSql(), " ORDER BY id FOR UPDATE)"));
  absl::Status s = lease->Query(*close_breakers, {id}).status();
  if (!s.ok()) return s;
  absl::StatusOr<QueryResult> r = lease->Query(
      R"sql(
UPDATE pggit.alert_delivery_queue q
   SET delivery_status = 'pending', next_attempt_at = now(),
       attempt_count = 0
  FROM pggit.webhooks w
 WHERE w.id = q.webhook_id AND w.status = 'active' AND w.deleted_at IS NULL
   AND ($1::bigint IS NULL OR w.id = $1::bigint)
   AND q.delivery_status IN ('pending', 'failed'))sql",
      {id});
  if (!r.ok()) return r.status();
  if (r->affected_rows > 0) {
    s = lease->Query("SELECT pg_notify('pggit_deliveries', '')").status();
    if (!s.ok()) return s;
  }
  if (s = txn.Commit(); !s.ok()) return s;
  return static_cast<int>(r->affected_rows);
}

namespace {

CheckResult QueryFailed(const absl::Status& s) {
  CheckResult r;
  r.ok = false;
  r.status = "unavailable";
  r.message = std::string(s.message());
  return r;
}

}  // namespace

HealthCheck WebhooksHealthCheck(ConnectionPool* pool, absl::Duration timeout) {
  HealthCheck check;
  check.name = "webhooks";
  check.criticality = Criticality::kNonCritical;
  check.timeout = timeout;
  check.run = [pool, timeout] {
    absl::StatusOr<PooledConnection> lease = pool->Acquire(timeout / 2);
    if (!lease.ok()) return QueryFailed(lease.status());
    static const std::string* counts = new std::string(
        absl::StrCat("SELECT count(*) FILTER (WHERE status = 'active'),"
                     " count(*) FILTER (WHERE ",
                     internal::FailingWebhookSql(),
                     "), count(*) FILTER (WHERE status = 'disabled'),"
                     " count(*) FILTER (WHERE status = 'inactive')"
                     " FROM pggit.webhooks WHERE deleted_at IS NULL"));
    absl::StatusOr<QueryResult> q = lease->Query(*counts);
    if (!q.ok()) return QueryFailed(q.status());
    const auto& row = q->rows[0];
    const int64_t failing = Int(row[1]);
    CheckResult r;
    r.ok = failing == 0;
    r.status = r.ok ? "healthy" : "degraded";
    if (!r.ok) r.message = absl::StrCat(failing, " webhook(s) failing");
    r.details_json = absl::StrFormat(
        R"({"active_count": %d, "failing_count": %d, "disabled_count": %d, )"
        R"("inactive_count": %d})",
        Int(row[0]), failing, Int(row[2]), Int(row[3]));
    return r;
  };
  return check;
}

HealthCheck QueueHealthCheck(ConnectionPool* pool, absl::Duration timeout) {
  HealthCheck check;
  check.name = "queue";
  check.criticality = Criticality::kNonCritical;
  check.timeout = timeout;
  check.run = [pool, timeout] {
    absl::StatusOr<PooledConnection> lease = pool->Acquire(timeout / 2);
    if (!lease.ok()) return QueryFailed(lease.status());
    // Each part reads one partial or (status, created_at) index.
    absl::StatusOr<QueryResult> q = lease->Query(R"sql(
SELECT (SELECT count(*) FROM pggit.alert_delivery_queue
         WHERE delivery_status = 'pending')
     + (SELECT count(*) FROM pggit.alert_delivery_queue
         WHERE delivery_status = 'in_progress'),
       coalesce(extract(epoch FROM now() - least(
         (SELECT min(created_at) FROM pggit.alert_delivery_queue
           WHERE delivery_status = 'pending'),
         (SELECT min(created_at) FROM pggit.alert_delivery_queue
           WHERE delivery_status = 'in_progress'))), 0))sql");
    if (!q.ok()) return QueryFailed(q.status());
    const auto& row = q->rows[0];
    CheckResult r;
    r.status = "ok";
    double oldest = 0;
    if (row[1].has_value() && !absl::SimpleAtod(*row[1], &oldest)) oldest = 0;
    r.details_json =
        absl::StrFormat(R"({"depth": %d, "oldest_pending_seconds": %.3f})",
                        Int(row[0]), std::max(oldest, 0.0));
    return r;
  };
  return check;
}

}  // namespace pggitops
