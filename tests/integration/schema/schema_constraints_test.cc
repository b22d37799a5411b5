// The schema's CHECK, NOT NULL and UNIQUE constraints on a real PostgreSQL
// 15: every bad row is refused with the right SQLSTATE and leaves no trace,
// while the boundary values of CONTRACT section 10 are accepted.
#include <pqxx/pqxx>
#include <string>
#include <vector>

#include "doctest/doctest.h"
#include "tests/integration/schema/schema_test_util.h"

namespace pggitops {
namespace {

using schema_test::MigratedDatabase;
using schema_test::Scalar;
using schema_test::SqlState;

constexpr char kCheck[] = "23514";
constexpr char kNotNull[] = "23502";
constexpr char kUnique[] = "23505";

struct BadRow {
  const char* what;
  const char* sqlstate;
  std::string sql;
};

std::string Webhook(const std::string& columns, const std::string& values) {
  return "INSERT INTO webhooks (name, url, secret" + columns +
         ") VALUES ('ok', 'https://ok.example', 'whsec_x'" + values + ")";
}

std::string WebhookNamed(const std::string& name, const std::string& url) {
  return "INSERT INTO webhooks (name, url, secret) VALUES ('" + name + "', '" +
         url + "', 'whsec_x')";
}

std::string Alert(const std::string& columns, const std::string& values) {
  return "INSERT INTO alerts (operation_type, severity, message" + columns +
         ") VALUES ('op', 'INFO', 'm'" + values + ")";
}

std::string ApiKey(const std::string& hash, const std::string& scopes) {
  return "INSERT INTO api_keys (name, key_hash, key_prefix, scopes) VALUES "
         "('k', '" +
         hash + "', 'pgk_', '" + scopes + "')";
}

const std::string kHash(64, 'a');

int TotalRows(pqxx::connection_base& c) {
  return std::stoi(Scalar(
      c,
      "SELECT (SELECT count(*) FROM webhooks) + (SELECT count(*) FROM "
      "alerts) + (SELECT count(*) FROM alert_delivery_queue) + (SELECT "
      "count(*) FROM delivery_attempts) + (SELECT count(*) FROM api_keys)"));
}

TEST_CASE("constraints: bad rows are refused and change nothing") {
  const std::string dsn = MigratedDatabase("schema_constraints_bad");
  pqxx::connection c(dsn);
  // One webhook, one alert and its delivery to hang the rest on.
  Scalar(c, WebhookNamed("base", "https://base.example"));
  const std::string alert = Scalar(c, Alert("", "") + " RETURNING id");
  const std::string delivery = Scalar(c, "SELECT id FROM alert_delivery_queue");
  REQUIRE_FALSE(delivery.empty());
  const int rows_before = TotalRows(c);

  const std::vector<BadRow> bad = {
      {"empty name", kCheck, WebhookNamed("", "https://x.example")},
      {"256-char name", kCheck,
       WebhookNamed(std::string(256, 'n'), "https://x.example")},
      {"ftp url", kCheck, WebhookNamed("n", "ftp://x.example/")},
      {"url without host", kCheck, WebhookNamed("n", "https://")},
      {"url with a space", kCheck, WebhookNamed("n", "https://x.example/a b")},
      {"2049-char url", kCheck,
       WebhookNamed("n", "https://x.example/" + std::string(2049 - 18, 'p'))},
      {"1001-char description", kCheck,
       Webhook(", description", ", '" + std::string(1001, 'd') + "'")},
      {"unknown status", kCheck, Webhook(", status", ", 'paused'")},
      {"max_retries 21", kCheck, Webhook(", max_retries", ", 21")},
      {"max_retries -1", kCheck, Webhook(", max_retries", ", -1")},
      {"backoff_base 0.5", kCheck, Webhook(", backoff_base", ", 0.5")},
      {"backoff_base 10.5", kCheck, Webhook(", backoff_base", ", 10.5")},
      {"backoff_base NaN", kCheck, Webhook(", backoff_base", ", 'NaN'")},
      {"max_backoff 0", kCheck, Webhook(", max_backoff", ", 0")},
      {"max_backoff 86401", kCheck, Webhook(", max_backoff", ", 86401")},
      {"timeout_seconds 0", kCheck, Webhook(", timeout_seconds", ", 0")},
      {"timeout_seconds 61", kCheck, Webhook(", timeout_seconds", ", 61")},
      {"unknown severity filter", kCheck,
       Webhook(", filter_severities", ", '{CRITICAL,DEBUG}'")},
      {"NULL operation type filter", kCheck,
       Webhook(", filter_operation_types", ", '{deploy,NULL}'")},
      {"unknown breaker state", kCheck, Webhook(", breaker_state", ", 'ajar'")},
      {"negative failures", kCheck, Webhook(", consecutive_failures", ", -1")},
      {"empty secret", kCheck,
       "INSERT INTO webhooks (name, url, secret) VALUES ('n', "
       "'https://x.example', '')"},
      {"no secret", kNotNull,
       "INSERT INTO webhooks (name, url) VALUES ('n', 'https://x.example')"},
      {"duplicate live name", kUnique,
       WebhookNamed("base", "https://other.example")},
      {"unknown severity", kCheck,
       "INSERT INTO alerts (operation_type, severity, message) VALUES ('op', "
       "'LOW', 'm')"},
      {"lower-case severity", kCheck,
       "INSERT INTO alerts (operation_type, severity, message) VALUES ('op', "
       "'critical', 'm')"},
      {"unknown alert status", kCheck, Alert(", status", ", 'open'")},
      {"empty operation type", kCheck,
       "INSERT INTO alerts (operation_type, severity, message) VALUES ('', "
       "'INFO', 'm')"},
      {"array context", kCheck, Alert(", context", ", '[1, 2]'")},
      {"no message", kNotNull,
       "INSERT INTO alerts (operation_type, severity) VALUES ('op', 'INFO')"},
      {"unknown delivery status", kCheck,
       "UPDATE alert_delivery_queue SET delivery_status = 'lost'"},
      {"in_progress without a lease", kCheck,
       "UPDATE alert_delivery_queue SET delivery_status = 'in_progress'"},
      {"negative attempt count", kCheck,
       "UPDATE alert_delivery_queue SET attempt_count = -1"},
      {"second delivery of an alert to a webhook", kUnique,
       "INSERT INTO alert_delivery_queue (alert_id, webhook_id) SELECT "
       "alert_id, webhook_id FROM alert_delivery_queue"},
      {"attempt 0", kCheck,
       "INSERT INTO delivery_attempts (delivery_id, attempt) VALUES (" +
           delivery + ", 0)"},
      {"1026-byte excerpt", kCheck,
       "INSERT INTO delivery_attempts (delivery_id, attempt, "
       "response_excerpt) VALUES (" +
           delivery + ", 1, repeat('é', 513))"},
      {"negative duration", kCheck,
       "INSERT INTO delivery_attempts (delivery_id, attempt, duration_ms) "
       "VALUES (" +
           delivery + ", 1, -1)"},
      {"unknown scope", kCheck, ApiKey(kHash, "{read,root}")},
      {"no scope", kCheck, ApiKey(kHash, "{}")},
      {"short hash", kCheck, ApiKey("abc", "{read}")},
      {"upper-case hash", kCheck, ApiKey(std::string(64, 'A'), "{read}")},
  };
  for (const BadRow& row : bad) {
    std::string message;
    CHECK_MESSAGE(SqlState(c, row.sql, &message) == row.sqlstate,
                  row.what << ": " << message);
  }
  CHECK(TotalRows(c) == rows_before);
  CHECK(Scalar(c,
               "SELECT delivery_status || '/' || attempt_count FROM "
               "alert_delivery_queue WHERE alert_id = " +
                   alert) == "pending/0");
}

TEST_CASE("constraints: the contract's boundary values are accepted") {
  const std::string dsn = MigratedDatabase("schema_constraints_good");
  pqxx::connection c(dsn);
  const std::vector<std::string> good = {
      WebhookNamed(std::string(255, 'n'),
                   "https://x.example/" + std::string(2048 - 18, 'p')),
      WebhookNamed("HTTP upper case", "HTTP://X.EXAMPLE:8080/a?b=c#d"),
      "INSERT INTO webhooks (name, url, secret, description, max_retries, "
      "backoff_base, max_backoff, timeout_seconds, filter_severities) VALUES "
      "('low', 'http://x.example', 's', '" +
          std::string(1000, 'd') + "', 0, 1, 1, 1, '{}')",
      "INSERT INTO webhooks (name, url, secret, max_retries, backoff_base, "
      "max_backoff, timeout_seconds, filter_severities, "
      "filter_operation_types) VALUES ('high', 'https://x.example', 's', 20, "
      "10, 86400, 60, '{INFO,WARNING,CRITICAL}', '{deploy}')",
      "INSERT INTO alerts (operation_type, severity, message, context) VALUES "
      "('" +
          std::string(255, 'o') + "', 'CRITICAL', '', '{\"a\": [1]}')",
      "INSERT INTO delivery_attempts (delivery_id, attempt, response_excerpt) "
      "SELECT id, 1, repeat('é', 512) FROM alert_delivery_queue LIMIT 1",
      ApiKey(kHash, "{read,write,admin}"),
  };
  for (const std::string& sql : good) {
    std::string message;
    CHECK_MESSAGE(SqlState(c, sql, &message) == "", sql << ": " << message);
  }
  CHECK(Scalar(c, "SELECT count(*) FROM webhooks") == "4");
  // The alert matches "n...", "HTTP upper case" and "low"; "high" only
  // wants deploys.
  CHECK(Scalar(c, "SELECT count(*) FROM alert_delivery_queue") == "3");
  CHECK(Scalar(c, "SELECT count(*) FROM delivery_attempts") == "1");
}

}  // namespace
}  // namespace pggitops
