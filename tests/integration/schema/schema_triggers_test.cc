// The schema's triggers on a real PostgreSQL 15: the one fan-out path
// (alerts -> alert_delivery_queue + NOTIFY), the is_active/status sync
// (including the guide's `UPDATE webhooks SET is_active = false`), soft
// deletion and the timestamps the triggers keep.
#include <pqxx/pqxx>
#include <string>
#include <utility>
#include <vector>

#include "doctest/doctest.h"
#include "tests/harness/harness.h"
#include "tests/integration/schema/schema_test_util.h"

namespace pggitops {
namespace {

using schema_test::Column;
using schema_test::MigratedDatabase;
using schema_test::Scalar;

// Collects notifications of one channel on a listening connection.
class Listener : public pqxx::notification_receiver {
 public:
  Listener(pqxx::connection_base& c, const std::string& channel,
           std::vector<std::pair<std::string, std::string>>* log)
      : pqxx::notification_receiver(c, channel), log_(log) {}
  void operator()(const std::string& payload, int) override {
    log_->push_back({channel(), payload});
  }

 private:
  std::vector<std::pair<std::string, std::string>>* log_;
};

// Waits (up to 10 s) until the log holds the pggit_alerts notification of
// alert `id`, and returns every notification received until then.
std::vector<std::pair<std::string, std::string>> NotificationsUntilAlert(
    pqxx::connection_base& c,
    std::vector<std::pair<std::string, std::string>>* log,
    const std::string& id) {
  const std::pair<std::string, std::string> want{"pggit_alerts",
                                                 "{\"id\": " + id + "}"};
  for (int i = 0; i < 100; ++i) {
    for (size_t k = 0; k < log->size(); ++k) {
      if ((*log)[k] == want) {
        std::vector<std::pair<std::string, std::string>> got(
            log->begin(), log->begin() + static_cast<long>(k) + 1);
        log->erase(log->begin(), log->begin() + static_cast<long>(k) + 1);
        return got;
      }
    }
    c.await_notification(0, 100'000);
  }
  FAIL("no pggit_alerts notification for alert " << id);
  return {};
}

std::string AddWebhook(pqxx::connection_base& c, const std::string& name,
                       const std::string& extra_columns = "",
                       const std::string& extra_values = "") {
  return Scalar(c, "INSERT INTO webhooks (name, url, secret" + extra_columns +
                       ") VALUES ('" + name + "', 'https://" + name +
                       ".example/hook', 'whsec_x'" + extra_values +
                       ") RETURNING id");
}

std::string QueuedWebhooks(pqxx::connection_base& c,
                           const std::string& alert_id) {
  return Scalar(c,
                "SELECT coalesce(string_agg(w.name, ',' ORDER BY w.name), '') "
                "FROM alert_delivery_queue q JOIN webhooks w ON w.id = "
                "q.webhook_id WHERE q.alert_id = " +
                    alert_id);
}

TEST_CASE("fan-out: one pending delivery per matching active webhook") {
  const std::string dsn = MigratedDatabase("schema_fanout");
  pqxx::connection c(dsn);
  AddWebhook(c, "all");
  AddWebhook(c, "critical", ", filter_severities", ", '{CRITICAL}'");
  AddWebhook(c, "deploys", ", filter_operation_types", ", '{deploy}'");
  AddWebhook(c, "critical_deploys",
             ", filter_severities, filter_operation_types",
             ", '{CRITICAL}', '{deploy,rollback}'");
  AddWebhook(c, "quiet", ", filter_severities", ", '{INFO,WARNING}'");
  AddWebhook(c, "inactive", ", is_active", ", false");
  AddWebhook(c, "disabled", ", status", ", 'disabled'");
  AddWebhook(c, "deleted", ", deleted_at", ", now()");

  pqxx::connection listen_conn(dsn);
  std::vector<std::pair<std::string, std::string>> log;
  Listener deliveries(listen_conn, "pggit_deliveries", &log);
  Listener alerts(listen_conn, "pggit_alerts", &log);

  const std::string critical_deploy =
      Scalar(c,
             "INSERT INTO alerts (operation_type, severity, message) VALUES "
             "('deploy', 'CRITICAL', 'deploy failed') RETURNING id");
  CHECK(QueuedWebhooks(c, critical_deploy) ==
        "all,critical,critical_deploys,deploys");
  CHECK(NotificationsUntilAlert(listen_conn, &log, critical_deploy) ==
        std::vector<std::pair<std::string, std::string>>{
            {"pggit_deliveries", ""},
            {"pggit_alerts", "{\"id\": " + critical_deploy + "}"}});

  const std::string info_commit = Scalar(
      c,
      "INSERT INTO alerts (operation_type, severity, message, context) "
      "VALUES ('commit', 'INFO', 'hello', '{\"repo\": \"x\"}') RETURNING "
      "id");
  CHECK(QueuedWebhooks(c, info_commit) == "all,quiet");

  CHECK(Scalar(c,
               "SELECT count(*) FROM alert_delivery_queue WHERE "
               "delivery_status = 'pending' AND attempt_count = 0 AND "
               "next_attempt_at <= now() AND lease_owner IS NULL") == "6");
  NotificationsUntilAlert(listen_conn, &log, info_commit);
}

TEST_CASE("fan-out: no webhook matches -> no wake-up, alert still streamed") {
  const std::string dsn = MigratedDatabase("schema_fanout_none");
  pqxx::connection c(dsn);
  AddWebhook(c, "critical_only", ", filter_severities", ", '{CRITICAL}'");
  pqxx::connection listen_conn(dsn);
  std::vector<std::pair<std::string, std::string>> log;
  Listener deliveries(listen_conn, "pggit_deliveries", &log);
  Listener alerts(listen_conn, "pggit_alerts", &log);

  const std::string id =
      Scalar(c,
             "INSERT INTO alerts (operation_type, severity, message) VALUES "
             "('commit', 'WARNING', 'meh') RETURNING id");
  CHECK(QueuedWebhooks(c, id).empty());
  CHECK(NotificationsUntilAlert(listen_conn, &log, id) ==
        std::vector<std::pair<std::string, std::string>>{
            {"pggit_alerts", "{\"id\": " + id + "}"}});
}

TEST_CASE("fan-out: many alerts in one statement, rollback queues nothing") {
  const std::string dsn = MigratedDatabase("schema_fanout_batch");
  pqxx::connection c(dsn);
  AddWebhook(c, "a");
  AddWebhook(c, "b");
  pqxx::connection listen_conn(dsn);
  std::vector<std::pair<std::string, std::string>> log;
  Listener deliveries(listen_conn, "pggit_deliveries", &log);
  Listener alerts(listen_conn, "pggit_alerts", &log);

  {
    pqxx::work tx(c);
    tx.exec(
        "INSERT INTO alerts (operation_type, severity, message) VALUES "
        "('x', 'INFO', 'rolled back')");
    tx.abort();
  }
  CHECK(Scalar(c, "SELECT count(*) FROM alert_delivery_queue") == "0");

  const std::vector<std::string> ids =
      Column(c,
             "INSERT INTO alerts (operation_type, severity, message) SELECT "
             "'batch', 'WARNING', 'n' || g FROM generate_series(1, 3) g "
             "RETURNING id");
  REQUIRE(ids.size() == 3);
  CHECK(Scalar(c, "SELECT count(*) FROM alert_delivery_queue") == "6");
  // One wake-up for the statement, one stream message per alert, and none
  // for the rolled-back insert.
  CHECK(NotificationsUntilAlert(listen_conn, &log, ids[2]) ==
        std::vector<std::pair<std::string, std::string>>{
            {"pggit_deliveries", ""},
            {"pggit_alerts", "{\"id\": " + ids[0] + "}"},
            {"pggit_alerts", "{\"id\": " + ids[1] + "}"},
            {"pggit_alerts", "{\"id\": " + ids[2] + "}"}});
}

TEST_CASE("fan-out: a producer needs only INSERT on alerts") {
  const std::string dsn = MigratedDatabase("schema_fanout_producer");
  pqxx::connection c(dsn);
  AddWebhook(c, "receiver");
  harness::AdminQuery("postgres",
                      "DO $$ BEGIN CREATE ROLE pggitops_schema_producer "
                      "LOGIN; EXCEPTION WHEN duplicate_object THEN NULL; "
                      "END $$");
  Scalar(c,
         "GRANT USAGE ON SCHEMA pggit TO pggitops_schema_producer; "
         "GRANT INSERT ON pggit.alerts TO pggitops_schema_producer");
  const harness::Services& s = harness::Get();
  pqxx::connection producer("postgresql://pggitops_schema_producer@" +
                            s.pghost + ":" + std::to_string(s.pgport) + "/" +
                            dsn.substr(dsn.rfind('/') + 1));
  CHECK(schema_test::SqlState(
            producer, "SELECT count(*) FROM alert_delivery_queue") == "42501");
  CHECK(schema_test::SqlState(
            producer,
            "INSERT INTO alerts (operation_type, severity, message) VALUES "
            "('sql', 'CRITICAL', 'from a pgGit function')") == "");
  CHECK(Scalar(c, "SELECT count(*) FROM alert_delivery_queue") == "1");
}

std::string StatusOf(pqxx::connection_base& c, const std::string& id) {
  return Scalar(c,
                "SELECT is_active || '/' || status FROM webhooks WHERE id "
                "= " +
                    id);
}

TEST_CASE("status sync: the guide's UPDATE webhooks SET is_active = false") {
  const std::string dsn = MigratedDatabase("schema_guide_disable");
  pqxx::connection c(dsn);
  Scalar(c,
         "INSERT INTO webhooks (id, name, url, secret) OVERRIDING SYSTEM "
         "VALUE VALUES (123, 'problematic', 'https://x.example', 's')");
  CHECK(StatusOf(c, "123") == "true/active");
  // Verbatim from the guide's "Webhook Queue Backlog" incident, step 4.
  Scalar(c, "UPDATE webhooks SET is_active = false WHERE id = 123;");
  CHECK(StatusOf(c, "123") == "false/inactive");
  // An inactive webhook gets no deliveries.
  Scalar(c,
         "INSERT INTO alerts (operation_type, severity, message) VALUES "
         "('x', 'INFO', 'y')");
  CHECK(Scalar(c, "SELECT count(*) FROM alert_delivery_queue") == "0");
  Scalar(c, "UPDATE webhooks SET is_active = true WHERE id = 123");
  CHECK(StatusOf(c, "123") == "true/active");
}

TEST_CASE("status sync: every direction, and re-enabling a disabled one") {
  const std::string dsn = MigratedDatabase("schema_status_sync");
  pqxx::connection c(dsn);
  const std::string id = AddWebhook(c, "w");
  Scalar(c, "UPDATE webhooks SET status = 'inactive' WHERE id = " + id);
  CHECK(StatusOf(c, id) == "false/inactive");
  Scalar(c, "UPDATE webhooks SET status = 'active' WHERE id = " + id);
  CHECK(StatusOf(c, id) == "true/active");

  // The engine disables after sustained failure: is_active stays as it was.
  Scalar(c,
         "UPDATE webhooks SET status = 'disabled', disabled_reason = 'HTTP "
         "410', breaker_state = 'open', consecutive_failures = 9, "
         "failing_since = now() - interval '25 hours' WHERE id = " +
             id);
  CHECK(StatusOf(c, id) == "true/disabled");
  CHECK(Scalar(c, "SELECT disabled_at IS NOT NULL FROM webhooks WHERE id = " +
                      id) == "t");
  // Statistics written by the engine leave the status alone.
  Scalar(c,
         "UPDATE webhooks SET total_failures = total_failures + 1 WHERE "
         "id = " +
             id);
  CHECK(StatusOf(c, id) == "true/disabled");

  // The operator's switch, even to its current value, re-enables it with a
  // clean failure record.
  Scalar(c, "UPDATE webhooks SET is_active = true WHERE id = " + id);
  CHECK(StatusOf(c, id) == "true/active");
  CHECK(Scalar(c,
               "SELECT concat_ws('/', breaker_state, consecutive_failures, "
               "failing_since IS NULL, disabled_reason IS NULL, disabled_at "
               "IS NULL) FROM webhooks WHERE id = " +
                   id) == "closed/0/t/t/t");

  // When both are set, the operator's switch wins.
  Scalar(c,
         "UPDATE webhooks SET is_active = false, status = 'active' WHERE "
         "id = " +
             id);
  CHECK(StatusOf(c, id) == "false/inactive");

  // Inserts: either column alone decides.
  CHECK(StatusOf(c, AddWebhook(c, "born_off", ", is_active", ", false")) ==
        "false/inactive");
  CHECK(StatusOf(c, AddWebhook(c, "born_idle", ", status", ", 'inactive'")) ==
        "false/inactive");
  CHECK(StatusOf(c, AddWebhook(c, "born_disabled", ", status",
                               ", 'disabled'")) == "true/disabled");
}

TEST_CASE("webhooks: updated_at follows configuration, not statistics") {
  const std::string dsn = MigratedDatabase("schema_updated_at");
  pqxx::connection c(dsn);
  const std::string id = AddWebhook(c, "w");
  const std::string where = " WHERE id = " + id;
  Scalar(c, "UPDATE webhooks SET updated_at = '2000-01-01Z'" + where);
  Scalar(c,
         "UPDATE webhooks SET total_deliveries = total_deliveries + 1, "
         "last_success_at = now(), last_used_at = now()" +
             where);
  CHECK(Scalar(c, "SELECT updated_at = '2000-01-01Z' FROM webhooks" + where) ==
        "t");
  Scalar(c, "UPDATE webhooks SET url = 'https://w.example/v2'" + where);
  CHECK(Scalar(c,
               "SELECT updated_at > now() - interval '1 minute' FROM "
               "webhooks" +
                   where) == "t");
}

TEST_CASE("webhooks: soft delete cancels pending deliveries, frees the name") {
  const std::string dsn = MigratedDatabase("schema_soft_delete");
  pqxx::connection c(dsn);
  const std::string id = AddWebhook(c, "w");
  Column(c,
         "INSERT INTO alerts (operation_type, severity, message) SELECT "
         "'x', 'INFO', 'n' || g FROM generate_series(1, 3) g RETURNING id");
  Scalar(c,
         "UPDATE alert_delivery_queue SET delivery_status = 'delivered' "
         "WHERE id = (SELECT min(id) FROM alert_delivery_queue)");
  CHECK(Scalar(c,
               "SELECT delivered_at IS NOT NULL FROM alert_delivery_queue "
               "WHERE delivery_status = 'delivered'") == "t");
  CHECK(schema_test::SqlState(c,
                              "INSERT INTO webhooks (name, url, secret) "
                              "VALUES ('w', 'https://x.example', 's')") ==
        "23505");

  Scalar(c, "UPDATE webhooks SET deleted_at = now() WHERE id = " + id);
  CHECK(Scalar(c,
               "SELECT string_agg(delivery_status, ',' ORDER BY id) FROM "
               "alert_delivery_queue") == "delivered,cancelled,cancelled");
  CHECK(schema_test::SqlState(c,
                              "INSERT INTO webhooks (name, url, secret) "
                              "VALUES ('w', 'https://x.example', 's')") == "");
}

TEST_CASE("alerts: acknowledging and resolving stamp their times") {
  const std::string dsn = MigratedDatabase("schema_alert_times");
  pqxx::connection c(dsn);
  const std::string id =
      Scalar(c,
             "INSERT INTO alerts (operation_type, severity, message) VALUES "
             "('x', 'INFO', 'y') RETURNING id");
  CHECK(Scalar(c, "SELECT status || '/' || (context = '{}') FROM alerts") ==
        "pending/true");
  Scalar(c, "UPDATE alerts SET status = 'acknowledged' WHERE id = " + id);
  CHECK(Scalar(c,
               "SELECT (acknowledged_at IS NOT NULL) || '/' || "
               "(resolved_at IS NULL) FROM alerts") == "true/true");
  Scalar(c, "UPDATE alerts SET status = 'resolved' WHERE id = " + id);
  CHECK(Scalar(c, "SELECT resolved_at IS NOT NULL FROM alerts") == "t");
}

}  // namespace
}  // namespace pggitops
