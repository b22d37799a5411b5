// ReadDashboardFigures and ReadQueueStatus against known rows: webhooks in
// each state, deliveries in each status (old and recent), alerts.
#include <string>
#include <vector>

#include "doctest/doctest.h"
#include "pggitops/alert_store.h"
#include "pggitops/dashboard.h"
#include "pggitops/webhook_store.h"
#include "tests/integration/store_test_util.h"

namespace pggitops {
namespace {

using store_test::Db;

int64_t AddWebhook(Db& db, const std::string& name) {
  WebhookFields f;
  f.name = name;
  f.url = "https://hooks.example.com/" + name;
  absl::StatusOr<NewWebhook> made = WebhookStore(db.pool.get()).Create(f);
  REQUIRE(made.ok());
  return made->webhook.id;
}

TEST_CASE("dashboard figures: an empty database") {
  Db db("dashboard_figures_empty");
  absl::StatusOr<DashboardFigures> f = ReadDashboardFigures(db.pool.get());
  REQUIRE_MESSAGE(f.ok(), f.status().ToString());
  CHECK(f->overview.deliveries_total == 0);
  CHECK_FALSE(f->overview.success_rate_24h.has_value());
  CHECK(f->overview.oldest_pending_seconds == 0);
  CHECK(f->webhooks.empty());
  CHECK(f->alerts.total == 0);
}

TEST_CASE("dashboard figures: known rows") {
  Db db("dashboard_figures_known");
  const int64_t ok = AddWebhook(db, "ok");
  const int64_t flaky = AddWebhook(db, "flaky");
  const int64_t off = AddWebhook(db, "off");
  const int64_t gone = AddWebhook(db, "gone");
  AlertStore alerts(db.pool.get());
  std::vector<int64_t> alert_ids;
  for (const char* s : {"INFO", "WARNING", "CRITICAL", "CRITICAL"}) {
    AlertInput in;
    in.operation_type = "commit";
    in.severity = s;
    in.message = "m";
    absl::StatusOr<int64_t> id = alerts.Create(in);  // 4 deliveries each
    REQUIRE(id.ok());
    alert_ids.push_back(*id);
  }
  REQUIRE(alerts.Resolve({alert_ids[0]}).ok());
  REQUIRE(alerts.Acknowledge({alert_ids[1]}).ok());
  const std::string a0 = std::to_string(alert_ids[0]);
  const std::string a1 = std::to_string(alert_ids[1]);
  const std::string a2 = std::to_string(alert_ids[2]);
  // ok: 3 delivered today, 1 delivered two days ago.
  db.Scalar(
      "UPDATE pggit.alert_delivery_queue SET delivery_status = "
      "'delivered' WHERE webhook_id = " +
      std::to_string(ok) + " AND alert_id <> " + a0);
  db.Scalar(
      "UPDATE pggit.alert_delivery_queue SET delivery_status = "
      "'delivered', delivered_at = now() - interval '2 days' "
      "WHERE webhook_id = " +
      std::to_string(ok) + " AND alert_id = " + a0);
  // flaky: 1 delivered, 2 failed today, 1 still pending, an open breaker.
  db.Scalar(
      "UPDATE pggit.alert_delivery_queue SET delivery_status = "
      "'delivered' WHERE webhook_id = " +
      std::to_string(flaky) + " AND alert_id = " + a0);
  db.Scalar(
      "UPDATE pggit.alert_delivery_queue SET delivery_status = "
      "'failed' WHERE webhook_id = " +
      std::to_string(flaky) + " AND alert_id IN (" + a1 + ", " + a2 + ")");
  db.Scalar(
      "UPDATE pggit.webhooks SET breaker_state = 'open', "
      "consecutive_failures = 2 WHERE id = " +
      std::to_string(flaky));
  // off: switched off (its 4 rows stay pending, 1 made an hour old); gone:
  // deleted (its pending rows are cancelled).
  db.Scalar("UPDATE pggit.webhooks SET is_active = false WHERE id = " +
            std::to_string(off));
  db.Scalar(
      "UPDATE pggit.alert_delivery_queue SET created_at = now() - "
      "interval '1 hour' WHERE webhook_id = " +
      std::to_string(off) + " AND alert_id = " + a0);
  REQUIRE(WebhookStore(db.pool.get()).Delete(gone).ok());

  absl::StatusOr<DashboardFigures> f = ReadDashboardFigures(db.pool.get());
  REQUIRE_MESSAGE(f.ok(), f.status().ToString());
  const DeliveryOverview& o = f->overview;
  CHECK(o.deliveries_total == 16);  // the deleted webhook's rows count too
  CHECK(o.pending == 5);            // off's 4 and flaky's last
  CHECK(o.in_progress == 0);
  CHECK(o.failed == 2);
  CHECK(o.delivered_24h == 4);  // ok's 3 and flaky's 1
  CHECK(o.failed_24h == 2);
  REQUIRE(o.success_rate_24h.has_value());
  CHECK(*o.success_rate_24h == 0.6667);
  CHECK(o.active_webhooks == 2);
  CHECK(o.degraded_webhooks == 1);  // flaky: IsFailing
  CHECK(o.inactive_webhooks == 1);
  CHECK(o.disabled_webhooks == 0);
  CHECK(o.queue_depth == 5);
  CHECK(o.oldest_pending_seconds >= 3590);
  CHECK(o.oldest_pending_seconds < 3600 + 600);

  REQUIRE(f->webhooks.size() == 3);  // not the deleted one
  CHECK(f->webhooks[0].id == ok);
  CHECK(f->webhooks[0].deliveries_24h == 3);
  CHECK(f->webhooks[0].success_rate_24h == 1.0);
  CHECK(f->webhooks[1].name == "flaky");
  CHECK(f->webhooks[1].breaker_state == "open");
  CHECK(f->webhooks[1].consecutive_failures == 2);
  CHECK(f->webhooks[1].deliveries_24h == 3);
  CHECK(f->webhooks[1].success_rate_24h == 0.3333);
  CHECK(f->webhooks[2].status == "inactive");
  CHECK_FALSE(f->webhooks[2].success_rate_24h.has_value());

  CHECK(f->alerts.total == 4);
  CHECK(f->alerts.critical == 2);
  CHECK(f->alerts.resolved == 1);
  CHECK(f->alerts.acknowledged == 1);
  CHECK(f->alerts.pending == 2);

  absl::StatusOr<QueueStatus> s =
      ReadQueueStatus(db.pool.get(), absl::Seconds(5));
  REQUIRE(s.ok());
  CHECK(s->queue_depth == 5);
  CHECK(s->pending_deliveries == 5);
  CHECK(s->failed_deliveries == 2);
  CHECK(s->pending_alerts == 2);
  CHECK(s->active_webhooks == 2);
}

}  // namespace
}  // namespace pggitops
