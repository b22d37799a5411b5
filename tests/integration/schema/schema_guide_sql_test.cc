// Every SQL statement of OPERATIONS-GUIDE.md that touches the database,
// copied verbatim, run as the unprivileged pggit role on a provisioned and
// migrated database, one statement at a time outside a transaction block (as
// psql runs them). The four statements that are wrong on any PostgreSQL 15
// must fail, and their corrections in ops/sql/ must run.
#include <algorithm>
#include <chrono>
#include <pqxx/pqxx>
#include <string>
#include <vector>

#include "doctest/doctest.h"
#include "tests/harness/harness.h"
#include "tests/integration/schema/schema_test_util.h"

namespace pggitops {
namespace {

using schema_test::Column;
using schema_test::MigratedDatabase;
using schema_test::ReadSource;
using schema_test::Scalar;
using schema_test::SqlState;

struct GuideStatement {
  std::string where;  // the guide's section
  std::string sql;    // verbatim
};

// In the guide's order. The guide's pg_terminate_backend statement is run
// separately (see below).
const std::vector<GuideStatement> kWorking = {
    {"Daily Operations > Health Checks",
     R"sql(SELECT 'DB connected' as status;)sql"},
    {"Query Optimization > Identify Slow Queries",
     R"sql(ALTER SYSTEM SET log_min_duration_statement = 1000;  -- 1 second)sql"},
    {"Query Optimization > Identify Slow Queries",
     R"sql(SELECT pg_reload_conf();)sql"},
    {"Query Optimization > Identify Slow Queries", R"sql(-- Check slow queries
SELECT
    query,
    calls,
    mean_exec_time,
    max_exec_time
FROM pg_stat_statements
WHERE mean_exec_time > 1000
ORDER BY mean_exec_time DESC
LIMIT 10;)sql"},
    {"Query Optimization > Analyze Query Plans", R"sql(EXPLAIN ANALYZE
SELECT * FROM webhooks
WHERE status = 'active'
ORDER BY created_at DESC
LIMIT 20;)sql"},
    {"Incident Response > High Latency, step 4",
     R"sql(SELECT count(*) as active_connections
FROM pg_stat_activity;)sql"},
    {"Incident Response > High Latency, step 5",
     R"sql(SELECT query, mean_exec_time
FROM pg_stat_statements
WHERE mean_exec_time > 1000
ORDER BY mean_exec_time DESC
LIMIT 5;)sql"},
    {"Incident Response > High Error Rate, step 2", R"sql(SELECT 1;)sql"},
    {"Incident Response > Pool Exhausted, step 2",
     R"sql(SELECT pid, usename, query, query_start
FROM pg_stat_activity
WHERE query != '<idle>'
ORDER BY query_start DESC;)sql"},
    {"Incident Response > Webhook Queue Backlog, step 3",
     R"sql(SELECT webhook_id, COUNT(*) as pending_count
FROM alert_delivery_queue
WHERE delivery_status = 'pending'
GROUP BY webhook_id
ORDER BY pending_count DESC
LIMIT 10;)sql"},
    {"Incident Response > Webhook Queue Backlog, step 4",
     R"sql(UPDATE webhooks SET is_active = false WHERE id = 123;)sql"},
    {"Incident Response > Webhook Queue Backlog, step 6",
     R"sql(SELECT COUNT(*) FROM alert_delivery_queue WHERE delivery_status = 'pending';)sql"},
    {"Maintenance > Daily, step 4",
     R"sql(SELECT schemaname, COUNT(*) as table_count FROM pg_tables GROUP BY schemaname;)sql"},
    {"Maintenance > Daily, step 5",
     R"sql(SELECT webhook_id, COUNT(*) as failure_count
FROM alert_delivery_queue
WHERE delivery_status = 'failed'
AND created_at > CURRENT_TIMESTAMP - INTERVAL '24 hours'
GROUP BY webhook_id
ORDER BY failure_count DESC
LIMIT 5;)sql"},
    {"Maintenance > Weekly, step 1", R"sql(VACUUM ANALYZE;)sql"},
    {"Maintenance > Weekly, step 3",
     R"sql(REINDEX INDEX CONCURRENTLY idx_webhook_status;)sql"},
    {"Maintenance > Weekly, step 5", R"sql(SELECT
    query,
    calls,
    total_exec_time,
    mean_exec_time
FROM pg_stat_statements
ORDER BY total_exec_time DESC
LIMIT 10;)sql"},
    {"Troubleshooting > Connection pool size exceeded",
     R"sql(SELECT count(*) as active_connections FROM pg_stat_activity;)sql"},
    {"Troubleshooting > High disk usage",
     R"sql(SELECT pg_database.datname, pg_size_pretty(pg_database_size(pg_database.datname)) FROM pg_database;)sql"},
    {"Troubleshooting > High disk usage", R"sql(VACUUM FULL;)sql"},
};

const char kTerminateIdle[] = R"sql(SELECT pg_terminate_backend(pid)
FROM pg_stat_activity
WHERE state = 'idle'
AND query_start < NOW() - INTERVAL '5 minutes';)sql";

struct BrokenStatement {
  std::string where;
  std::string sql;                   // verbatim
  std::string missing_column;        // what PostgreSQL 15 says is missing
  std::string correction;            // the file in ops/sql/
  std::vector<std::string> columns;  // the correction's result columns
};

const std::vector<BrokenStatement>& Broken() {
  static const std::vector<BrokenStatement> kBroken = {
      {"Query Optimization > Add Missing Indexes",
       R"sql(-- Check missing indexes
SELECT schemaname, tablename, indexname, idx_scan
FROM pg_stat_user_indexes
WHERE idx_scan = 0
ORDER BY tablename;)sql",
       "tablename",
       "ops/sql/query-optimization-unused-indexes.sql",
       {"schemaname", "tablename", "indexname", "idx_scan"}},
      {"Incident Response > High Latency, step 6",
       R"sql(SELECT schemaname, tablename, indexname, idx_scan
FROM pg_stat_user_indexes
WHERE idx_scan = 0;)sql",
       "tablename",
       "ops/sql/high-latency-unused-indexes.sql",
       {"schemaname", "tablename", "indexname", "idx_scan"}},
      {"Incident Response > Pool Exhausted, step 1",
       R"sql(SELECT
    datname,
    count(*) as connections,
    max_conn
FROM pg_stat_activity
GROUP BY datname
ORDER BY count(*) DESC;)sql",
       "max_conn",
       "ops/sql/pool-exhausted-connection-usage.sql",
       {"datname", "connections", "max_conn"}},
      {"Maintenance > Weekly, step 2",
       R"sql(SELECT
    schemaname,
    tablename,
    round(100 * (otta - floor((cc*oppwidth)/(1 + cc/otta)))::numeric / otta) AS waste_ratio
FROM (
    SELECT *
    FROM pgstattuple_approx('webhooks')
) t;)sql",
       "schemaname",
       "ops/sql/weekly-table-bloat.sql",
       {"schemaname", "tablename", "table_size", "dead_tuple_percent",
        "free_percent", "waste_ratio"}},
  };
  return kBroken;
}

// Webhook 123 (the guide's example id) and another, with queued deliveries,
// one of them failed, so the guide's queries have rows to show.
void AddGuideData(pqxx::connection_base& c) {
  Scalar(c,
         "INSERT INTO webhooks (id, name, url, secret) OVERRIDING SYSTEM "
         "VALUE VALUES (123, 'backlogged', 'https://a.example', 's')");
  Scalar(c,
         "INSERT INTO webhooks (name, url, secret) VALUES ('other', "
         "'https://b.example', 's')");
  Scalar(c,
         "INSERT INTO alerts (operation_type, severity, message) SELECT "
         "'deploy', 'CRITICAL', 'n' || g FROM generate_series(1, 3) g");
  Scalar(c,
         "UPDATE alert_delivery_queue SET delivery_status = 'failed' "
         "WHERE id = (SELECT max(id) FROM alert_delivery_queue)");
}

// Polls new sessions until the server-wide setting shows `value`.
bool SettingBecomes(const std::string& dsn, const std::string& value) {
  return harness::WaitFor(
      [&] {
        pqxx::connection fresh(dsn);
        return Scalar(fresh, "SHOW log_min_duration_statement") == value;
      },
      std::chrono::seconds(10));
}

TEST_CASE("guide SQL: every working statement runs as pggit") {
  const std::string dsn = MigratedDatabase("schema_guide_sql");
  pqxx::connection c(dsn);
  Scalar(c, "SET client_min_messages = error");  // VACUUM's skip warnings
  AddGuideData(c);
  CHECK(Scalar(c,
               "SELECT rolsuper FROM pg_roles WHERE rolname = "
               "current_user") == "f");
  const std::string before = Scalar(c, "SHOW log_min_duration_statement");
  for (const GuideStatement& s : kWorking) {
    std::string message;
    CHECK_MESSAGE(SqlState(c, s.sql, &message) == "",
                  s.where << ":\n"
                          << s.sql << "\n=> " << message);
  }
  // The statements did what the guide says.
  CHECK(SettingBecomes(dsn, "1s"));
  CHECK(Scalar(c, kWorking[0].sql) == "DB connected");
  CHECK(Scalar(c,
               "SELECT is_active || '/' || status FROM webhooks WHERE id "
               "= 123") == "false/inactive");
  CHECK(Column(c, kWorking[9].sql).size() == 2);   // pending per webhook
  CHECK(Scalar(c, kWorking[11].sql) == "5");       // 6 queued, 1 failed
  CHECK(Column(c, kWorking[13].sql).size() == 1);  // the failed one's hook
  pqxx::nontransaction tx(c);
  for (const pqxx::row& row : tx.exec(kWorking[12].sql)) {
    if (row["schemaname"].as<std::string>() == "pggit") {
      CHECK(row["table_count"].as<int>() >= 6);
    }
  }
  tx.commit();

  // Put the server-wide setting back (the grant allows RESET too).
  CHECK(SqlState(c, "ALTER SYSTEM RESET log_min_duration_statement") == "");
  CHECK(SqlState(c, "SELECT pg_reload_conf()") == "");
  CHECK(SettingBecomes(dsn, before));
}

TEST_CASE("guide SQL: kill idle connections is permitted to pggit") {
  const std::string dsn = MigratedDatabase("schema_guide_terminate");
  pqxx::connection c(dsn);
  // Confine the verbatim statement to this test's database, so it cannot
  // end the idle sessions of tests running beside it: a temporary view is
  // found before pg_catalog's pg_stat_activity.
  Scalar(c,
         "CREATE TEMP VIEW pg_stat_activity AS SELECT * FROM "
         "pg_catalog.pg_stat_activity WHERE datname = current_database()");
  std::string message;
  CHECK_MESSAGE(SqlState(c, kTerminateIdle, &message) == "", message);
  // pg_signal_backend lets pggit end another role's idle session, which is
  // what the statement does to sessions idle for over five minutes.
  harness::AdminQuery("postgres",
                      "DO $$ BEGIN CREATE ROLE pggitops_schema_outsider "
                      "LOGIN; EXCEPTION WHEN duplicate_object THEN NULL; "
                      "END $$");
  const harness::Services& services = harness::Get();
  pqxx::connection idle(
      "postgresql://pggitops_schema_outsider@" + services.pghost + ":" +
      std::to_string(services.pgport) + "/" + dsn.substr(dsn.rfind('/') + 1));
  const std::string idle_pid = Scalar(idle, "SELECT pg_backend_pid()");
  CHECK(Scalar(c,
               "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
               "WHERE state = 'idle' AND pid = " +
                   idle_pid) == "t");
  CHECK_THROWS(Scalar(idle, "SELECT 1"));
}

TEST_CASE("guide SQL: the four broken queries fail; ops/sql corrections run") {
  const std::string dsn = MigratedDatabase("schema_guide_broken");
  pqxx::connection c(dsn);
  AddGuideData(c);
  for (const BrokenStatement& s : Broken()) {
    std::string message;
    CHECK_MESSAGE(SqlState(c, s.sql, &message) == "42703", s.where);
    CHECK_MESSAGE(message.find("column \"" + s.missing_column +
                               "\" does not exist") != std::string::npos,
                  s.where << ": " << message);

    const std::string fixed = ReadSource(s.correction);
    pqxx::nontransaction tx(c);
    pqxx::result r;
    CHECK_NOTHROW(r = tx.exec(fixed));
    std::vector<std::string> columns;
    for (pqxx::row::size_type i = 0; i < r.columns(); ++i) {
      columns.push_back(r.column_name(i));
    }
    CHECK_MESSAGE(columns == s.columns, s.correction);
    CHECK_MESSAGE(!r.empty(), s.correction);
  }
  pqxx::nontransaction tx(c);
  const pqxx::result usage =
      tx.exec(ReadSource("ops/sql/pool-exhausted-connection-usage.sql"));
  const std::string max_connections =
      tx.exec1("SHOW max_connections")[0].as<std::string>();
  for (const pqxx::row& row : usage) {
    CHECK(row["max_conn"].as<std::string>() == max_connections);
  }
  std::vector<std::string> measured;
  for (const pqxx::row& row :
       tx.exec(ReadSource("ops/sql/weekly-table-bloat.sql"))) {
    measured.push_back(row["tablename"].as<std::string>());
  }
  for (const char* table :
       {"alert_delivery_queue", "alerts", "api_keys", "delivery_attempts",
        "schema_migrations", "webhooks"}) {
    CHECK_MESSAGE(std::count(measured.begin(), measured.end(), table) == 1,
                  table);
  }
}

TEST_CASE("guide SQL: CREATE INDEX CONCURRENTLY answers already exists") {
  const std::string dsn = MigratedDatabase("schema_guide_indexes");
  pqxx::connection c(dsn);
  const char* const kCreate[] = {
      R"sql(CREATE INDEX CONCURRENTLY idx_webhook_status ON webhooks(status);)sql",
      R"sql(CREATE INDEX CONCURRENTLY idx_alert_created ON alerts(created_at DESC);)sql",
      R"sql(CREATE INDEX CONCURRENTLY idx_delivery_status ON alert_delivery_queue(delivery_status, created_at);)sql",
  };
  for (const char* sql : kCreate) {
    std::string message;
    CHECK(SqlState(c, sql, &message) == "42P07");
    CHECK_MESSAGE(message.find("already exists") != std::string::npos, message);
  }
  CHECK(Scalar(c,
               "SELECT count(*) FROM pg_index i JOIN pg_class x ON x.oid "
               "= i.indexrelid JOIN pg_namespace n ON n.oid = "
               "x.relnamespace WHERE n.nspname = 'pggit' AND NOT "
               "i.indisvalid") == "0");
}

TEST_CASE("guide SQL: psql runs the guide's unqualified commands as written") {
  const std::string dsn = MigratedDatabase("schema_guide_psql");
  pqxx::connection c(dsn);
  AddGuideData(c);
  std::string out;
  const int code =
      harness::Run("psql -X -At '" + dsn +
                       "' -c \"SELECT COUNT(*) FROM alert_delivery_queue WHERE "
                       "delivery_status = 'pending';\"",
                   &out);
  CHECK_MESSAGE(code == 0, out);
  CHECK(out == "5\n");
}

}  // namespace
}  // namespace pggitops
