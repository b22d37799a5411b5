#include "server/routes/domain_json.h"

#include <cmath>
#include <cstdint>

#include "server/http/json_util.h"

namespace pggitops::server {

using nlohmann::json;

namespace {

template <typename T>
json OrNull(const std::optional<T>& v) {
  return v.has_value() ? json(*v) : json(nullptr);
}

}  // namespace

json PgNumber(double v) {
  if (std::isfinite(v) && std::floor(v) == v && std::fabs(v) < 1e15) {
    return json(static_cast<int64_t>(v));
  }
  return json(v);
}

json PgNumber(const std::optional<double>& v) {
  return v.has_value() ? PgNumber(*v) : json(nullptr);
}

json TimeJson(const std::optional<absl::Time>& t) {
  return t.has_value() ? json(Rfc3339(*t)) : json(nullptr);
}

json WebhookJson(const Webhook& w) {
  return {{"id", w.id},
          {"name", w.name},
          {"url", w.url},
          {"description", OrNull(w.description)},
          {"is_active", w.is_active},
          {"status", w.status},
          {"filters",
           {{"severities", w.filter_severities},
            {"operation_types", w.filter_operation_types}}},
          {"retry_policy",
           {{"max_retries", w.max_retries},
            {"backoff_base", PgNumber(w.backoff_base)},
            {"max_backoff", w.max_backoff}}},
          {"timeout_seconds", w.timeout_seconds},
          {"ssl_verify", w.ssl_verify},
          {"created_at", Rfc3339(w.created_at)},
          {"updated_at", Rfc3339(w.updated_at)},
          {"last_used_at", TimeJson(w.last_used_at)},
          {"health",
           {{"consecutive_failures", w.consecutive_failures},
            {"success_rate", PgNumber(w.success_rate)},
            {"last_success_at", TimeJson(w.last_success_at)},
            {"last_failure_at", TimeJson(w.last_failure_at)}}}};
}

json DeliveryJson(const Delivery& d) {
  json attempts = json::array();
  for (const DeliveryAttempt& a : d.attempts) {
    attempts.push_back({{"attempt", a.attempt},
                        {"started_at", Rfc3339(a.started_at)},
                        {"duration_ms", PgNumber(a.duration_ms)},
                        {"http_status", OrNull(a.http_status)},
                        {"error", OrNull(a.error)}});
  }
  return {{"id", d.id},
          {"alert_id", d.alert_id},
          {"webhook_id", d.webhook_id},
          {"delivery_status", d.status},
          {"attempt_count", d.attempt_count},
          {"next_attempt_at", Rfc3339(d.next_attempt_at)},
          {"last_http_status", OrNull(d.last_http_status)},
          {"last_error", OrNull(d.last_error)},
          {"created_at", Rfc3339(d.created_at)},
          {"delivered_at", TimeJson(d.delivered_at)},
          {"attempts", attempts}};
}

json AlertJson(const Alert& a) {
  json context;
  if (a.context_omitted_bytes.has_value()) {
    context = {{"truncated", true}, {"bytes", *a.context_omitted_bytes}};
  } else {
    context = json::parse(a.context_json, nullptr, /*allow_exceptions=*/false);
    if (context.is_discarded()) context = json::object();
  }
  const AlertDeliveryCounts& d = a.deliveries;
  return {{"id", a.id},
          {"operation_type", a.operation_type},
          {"severity", a.severity},
          {"message", a.message},
          {"status", a.status},
          {"context", std::move(context)},
          {"created_at", Rfc3339(a.created_at)},
          {"updated_at", Rfc3339(a.updated_at)},
          {"acknowledged_at", TimeJson(a.acknowledged_at)},
          {"resolved_at", TimeJson(a.resolved_at)},
          {"deliveries",
           {{"pending", d.pending},
            {"in_progress", d.in_progress},
            {"delivered", d.delivered},
            {"failed", d.failed},
            {"cancelled", d.cancelled}}}};
}

}  // namespace pggitops::server
