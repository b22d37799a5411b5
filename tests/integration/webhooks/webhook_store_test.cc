// WebhookStore against a real, migrated PostgreSQL: create, get, list with
// filter and paging, partial updates, soft delete, delivery history, and
// that the one "failing" rule agrees with the webhooks health check.
#include "pggitops/webhook_store.h"

#include <string>
#include <vector>

#include "doctest/doctest.h"
#include "pggitops/delivery_queue.h"
#include "tests/integration/store_test_util.h"

namespace pggitops {
namespace {

using store_test::Db;

WebhookFields Named(const std::string& name) {
  WebhookFields f;
  f.name = name;
  f.url = "https://hooks.example.com/" + name;
  return f;
}

TEST_CASE("WebhookStore: create, get, defaults and the secret") {
  Db db("webhook_store_create");
  WebhookStore store(db.pool.get());
  WebhookFields f = Named("ops");
  f.filter_severities = std::vector<std::string>{"CRITICAL", "CRITICAL"};
  f.backoff_base = 1.5;
  absl::StatusOr<NewWebhook> made = store.Create(f);
  REQUIRE_MESSAGE(made.ok(), made.status().ToString());
  CHECK(made->secret.rfind("whsec_", 0) == 0);
  CHECK(db.Scalar("SELECT secret FROM pggit.webhooks") == made->secret);
  const Webhook& w = made->webhook;
  CHECK(w.id > 0);
  CHECK(w.name == "ops");
  CHECK(w.status == "active");
  CHECK(w.is_active);
  CHECK(w.filter_severities == std::vector<std::string>{"CRITICAL"});
  CHECK(w.filter_operation_types.empty());
  CHECK(w.backoff_base == 1.5);
  CHECK(w.max_retries == 3);  // the defaults
  CHECK(w.timeout_seconds == 30);
  CHECK_FALSE(w.description.has_value());
  CHECK_FALSE(w.success_rate.has_value());
  CHECK_FALSE(w.last_used_at.has_value());
  CHECK(absl::Now() - w.created_at < absl::Minutes(5));
  CHECK(w.created_at == w.updated_at);

  absl::StatusOr<Webhook> got = store.Get(w.id);
  REQUIRE(got.ok());
  CHECK(got->name == "ops");
  CHECK(got->created_at == w.created_at);  // microseconds survive

  absl::StatusOr<Webhook> missing = store.Get(w.id + 1000);
  CHECK(missing.status().code() == absl::StatusCode::kNotFound);
  CHECK(missing.status().message() ==
        "webhook " + std::to_string(w.id + 1000) + " not found");
}

TEST_CASE("WebhookStore: refused input writes nothing") {
  Db db("webhook_store_refused");
  WebhookStore store(db.pool.get());
  WebhookFields no_url;
  no_url.name = "n";
  CHECK(store.Create(no_url).status().message() == "url: is required");
  WebhookFields bad = Named("bad");
  bad.timeout_seconds = 0;
  absl::Status s = store.Create(bad).status();
  CHECK(s.code() == absl::StatusCode::kInvalidArgument);
  CHECK(std::string(s.message()).rfind("timeout_seconds:", 0) == 0);
  CHECK(db.Scalar("SELECT count(*) FROM pggit.webhooks") == "0");

  REQUIRE(store.Create(Named("taken")).ok());
  s = store.Create(Named("taken")).status();
  CHECK(s.code() == absl::StatusCode::kAlreadyExists);
  CHECK(std::string(s.message()).rfind("name:", 0) == 0);
  CHECK(db.Scalar("SELECT count(*) FROM pggit.webhooks") == "1");
}

TEST_CASE("WebhookStore: list filters by is_active and pages by id") {
  Db db("webhook_store_list");
  WebhookStore store(db.pool.get());
  std::vector<int64_t> ids;
  for (int i = 0; i < 5; ++i) {
    WebhookFields f = Named("w" + std::to_string(i));
    f.is_active = i % 2 == 0;
    absl::StatusOr<NewWebhook> made = store.Create(f);
    REQUIRE(made.ok());
    ids.push_back(made->webhook.id);
  }
  absl::StatusOr<WebhookPage> all = store.List();
  REQUIRE(all.ok());
  CHECK(all->total == 5);
  REQUIRE(all->items.size() == 5);
  CHECK(all->items[0].id == ids[0]);
  CHECK(all->items[4].id == ids[4]);

  WebhookFilter page;
  page.limit = 2;
  page.offset = 2;
  absl::StatusOr<WebhookPage> second = store.List(page);
  REQUIRE(second.ok());
  CHECK(second->total == 5);
  REQUIRE(second->items.size() == 2);
  CHECK(second->items[0].id == ids[2]);

  page.offset = 10;  // past the end: no items, the total still counted
  absl::StatusOr<WebhookPage> past = store.List(page);
  REQUIRE(past.ok());
  CHECK(past->items.empty());
  CHECK(past->total == 5);

  WebhookFilter inactive;
  inactive.is_active = false;
  absl::StatusOr<WebhookPage> off = store.List(inactive);
  REQUIRE(off.ok());
  CHECK(off->total == 2);
  for (const Webhook& w : off->items) CHECK(w.status == "inactive");

  WebhookFilter bad;
  bad.limit = 101;
  CHECK(store.List(bad).status().code() == absl::StatusCode::kInvalidArgument);
}

TEST_CASE("WebhookStore: update writes only what is set") {
  Db db("webhook_store_update");
  WebhookStore store(db.pool.get());
  WebhookFields f = Named("u");
  f.description = std::optional<std::string>("first");
  absl::StatusOr<NewWebhook> made = store.Create(f);
  REQUIRE(made.ok());
  const int64_t id = made->webhook.id;

  WebhookFields change;
  change.max_retries = 7;
  absl::StatusOr<Webhook> w = store.Update(id, change);
  REQUIRE(w.ok());
  CHECK(w->max_retries == 7);
  CHECK(w->description == "first");  // untouched
  CHECK(w->name == "u");

  // A disabled webhook stays disabled unless is_active is named.
  db.Scalar(
      "UPDATE pggit.webhooks SET status = 'disabled', "
      "consecutive_failures = 9 WHERE id = " +
      std::to_string(id));
  change = WebhookFields();
  change.description = std::optional<std::string>();  // cleared
  w = store.Update(id, change);
  REQUIRE(w.ok());
  CHECK_FALSE(w->description.has_value());
  CHECK(w->status == "disabled");
  change = WebhookFields();
  change.is_active = true;  // re-enables, with a fresh failure count
  w = store.Update(id, change);
  REQUIRE(w.ok());
  CHECK(w->status == "active");
  CHECK(w->consecutive_failures == 0);

  // No field: the webhook as it is; bad input and unknown ids change nothing.
  w = store.Update(id, WebhookFields());
  REQUIRE(w.ok());
  CHECK(w->max_retries == 7);
  change = WebhookFields();
  change.max_retries = 21;
  CHECK(store.Update(id, change).status().code() ==
        absl::StatusCode::kInvalidArgument);
  REQUIRE(store.Create(Named("other")).ok());
  change = WebhookFields();
  change.name = "other";
  CHECK(store.Update(id, change).status().code() ==
        absl::StatusCode::kAlreadyExists);
  CHECK(store.Update(id + 1000, change).status().code() ==
        absl::StatusCode::kNotFound);
  CHECK(db.Scalar("SELECT name || max_retries FROM pggit.webhooks WHERE id = " +
                  std::to_string(id)) == "u7");
}

TEST_CASE("WebhookStore: delete hides, cancels and keeps history") {
  Db db("webhook_store_delete");
  WebhookStore store(db.pool.get());
  absl::StatusOr<NewWebhook> made = store.Create(Named("d"));
  REQUIRE(made.ok());
  const int64_t id = made->webhook.id;
  AlertInput alert;
  alert.operation_type = "commit";
  alert.severity = "INFO";
  alert.message = "m";
  REQUIRE(EnqueueAlert(db.pool.get(), alert).ok());
  REQUIRE(store.Delete(id).ok());
  CHECK(store.Get(id).status().code() == absl::StatusCode::kNotFound);
  CHECK(store.Delete(id).code() == absl::StatusCode::kNotFound);
  absl::StatusOr<WebhookPage> all = store.List();
  REQUIRE(all.ok());
  CHECK(all->total == 0);
  absl::StatusOr<DeliveryPage> h = store.DeliveryHistory(id);
  REQUIRE(h.ok());
  REQUIRE(h->items.size() == 1);
  CHECK(h->items[0].status == "cancelled");
}

TEST_CASE("WebhookStore: delivery history, newest first, with attempts") {
  Db db("webhook_store_history");
  WebhookStore store(db.pool.get());
  absl::StatusOr<NewWebhook> made = store.Create(Named("h"));
  REQUIRE(made.ok());
  const std::string id = std::to_string(made->webhook.id);
  AlertInput alert;
  alert.operation_type = "commit";
  alert.severity = "INFO";
  alert.message = "m";
  for (int i = 0; i < 3; ++i) REQUIRE(EnqueueAlert(db.pool.get(), alert).ok());
  const std::string first = db.Scalar(
      "SELECT min(id) FROM pggit.alert_delivery_queue WHERE webhook_id = " +
      id);
  db.Scalar(
      "UPDATE pggit.alert_delivery_queue SET delivery_status = "
      "'failed', attempt_count = 2, last_http_status = 500, "
      "last_error = 'http 500' WHERE id = " +
      first);
  db.Scalar(
      "INSERT INTO pggit.delivery_attempts (delivery_id, attempt, "
      "started_at, duration_ms, http_status, error) VALUES (" +
      first + ", 1, '2026-01-02T03:04:05.123456Z', 12.5, 500, 'http 500'), (" +
      first + ", 2, '2026-01-02T03:04:06Z', 3, NULL, 'timeout')");

  absl::StatusOr<DeliveryPage> all = store.DeliveryHistory(made->webhook.id);
  REQUIRE(all.ok());
  CHECK(all->total == 3);
  REQUIRE(all->items.size() == 3);
  CHECK(std::to_string(all->items[2].id) == first);  // oldest last
  CHECK(all->items[0].attempts.empty());

  DeliveryFilter failed;
  failed.status = "failed";
  absl::StatusOr<DeliveryPage> f =
      store.DeliveryHistory(made->webhook.id, failed);
  REQUIRE(f.ok());
  CHECK(f->total == 1);
  REQUIRE(f->items.size() == 1);
  const Delivery& d = f->items[0];
  CHECK(d.status == "failed");
  CHECK(d.attempt_count == 2);
  CHECK(d.last_http_status == 500);
  CHECK(d.last_error == "http 500");
  REQUIRE(d.attempts.size() == 2);
  CHECK(d.attempts[0].attempt == 1);
  CHECK(absl::ToUnixMicros(d.attempts[0].started_at) ==
        absl::ToUnixMicros(absl::FromCivil(
            absl::CivilSecond(2026, 1, 2, 3, 4, 5), absl::UTCTimeZone())) +
            123456);
  CHECK(d.attempts[0].duration_ms == 12.5);
  CHECK(d.attempts[0].http_status == 500);
  CHECK(d.attempts[1].error == "timeout");
  CHECK_FALSE(d.attempts[1].http_status.has_value());

  DeliveryFilter page;
  page.limit = 1;
  page.offset = 1;
  absl::StatusOr<DeliveryPage> p =
      store.DeliveryHistory(made->webhook.id, page);
  REQUIRE(p.ok());
  CHECK(p->total == 3);
  CHECK(p->items.size() == 1);

  CHECK(store.DeliveryHistory(made->webhook.id + 99).status().code() ==
        absl::StatusCode::kNotFound);
  DeliveryFilter bad;
  bad.status = "lost";
  CHECK(store.DeliveryHistory(made->webhook.id, bad).status().code() ==
        absl::StatusCode::kInvalidArgument);
}

TEST_CASE("IsFailing agrees with the webhooks health check") {
  Db db("webhook_store_failing");
  WebhookStore store(db.pool.get());
  for (const char* name : {"ok", "failures", "open", "disabled"}) {
    REQUIRE(store.Create(Named(name)).ok());
  }
  db.Scalar(
      "UPDATE pggit.webhooks SET consecutive_failures = 2 "
      "WHERE name = 'failures'");
  db.Scalar(
      "UPDATE pggit.webhooks SET breaker_state = 'open' "
      "WHERE name = 'open'");
  db.Scalar(
      "UPDATE pggit.webhooks SET status = 'disabled', "
      "consecutive_failures = 5 WHERE name = 'disabled'");
  absl::StatusOr<WebhookPage> all = store.List();
  REQUIRE(all.ok());
  std::vector<std::string> failing;
  for (const Webhook& w : all->items) {
    if (IsFailing(w)) failing.push_back(w.name);
  }
  CHECK(failing == std::vector<std::string>{"failures", "open"});
  CheckResult health = WebhooksHealthCheck(db.pool.get()).run();
  CHECK(health.details_json.find("\"failing_count\": 2") != std::string::npos);
  CHECK(health.status == "degraded");
}

}  // namespace
}  // namespace pggitops
