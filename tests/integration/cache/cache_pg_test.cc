// Database invalidation end to end: the triggers of
// sql/002_cache_invalidation.sql NOTIFY pggit_cache, a plain libpqxx
// listener (standing in for the daemon's) hands the payloads to
// Cache::ApplyDatabaseNotification, and the next read sees the change made
// by SQL, such as the guide's `UPDATE webhooks SET is_active = false`.
#include <fstream>
#include <map>
#include <memory>
#include <pqxx/pqxx>
#include <sstream>
#include <string>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "doctest/doctest.h"
#include "pggitops/cache.h"
#include "pggitops/schema.h"
#include "tests/harness/harness.h"

namespace pggitops {
namespace {

// A migrated database (Migrate applies 002_cache_invalidation), with the
// migration file applied once more by hand: it must be idempotent, and a
// database migrated by an older build gets the triggers that way too.
std::string CacheDatabase(const std::string& name) {
  const std::string dsn = harness::FreshDatabase(name);
  absl::StatusOr<MigrateResult> m = Migrate(dsn);
  REQUIRE_MESSAGE(m.ok(), m.status().ToString());
  std::ifstream in(harness::SourcePath("sql/002_cache_invalidation.sql"));
  REQUIRE(in.good());
  std::stringstream sql;
  sql << in.rdbuf();
  pqxx::connection c(dsn);
  pqxx::nontransaction tx(c);
  tx.exec(sql.str());
  return dsn;
}

// Collects the payloads of pggit_cache and applies them to a cache, as the
// daemon's listener does.
class Listener : public pqxx::notification_receiver {
 public:
  Listener(pqxx::connection_base& c, Cache* cache)
      : pqxx::notification_receiver(c, "pggit_cache"), cache_(cache) {}
  void operator()(const std::string& payload, int) override {
    payloads.push_back(payload);
    if (cache_ != nullptr) {
      CHECK(cache_->ApplyDatabaseNotification(payload).ok());
    }
  }
  std::vector<std::string> payloads;

 private:
  Cache* cache_;
};

// Waits up to `seconds` for notifications until `want` payloads arrived;
// then drains what else is already there.
std::map<std::string, int> Collect(pqxx::connection& c, Listener& l,
                                   size_t want, long seconds = 5) {
  l.payloads.clear();
  for (int i = 0; i < seconds * 10 && l.payloads.size() < want; ++i) {
    c.await_notification(0, 100'000);
  }
  c.get_notifs();
  std::map<std::string, int> counts;
  for (const std::string& p : l.payloads) ++counts[p];
  return counts;
}

void Exec(const std::string& dsn, const std::string& sql) {
  pqxx::connection c(dsn);
  pqxx::nontransaction tx(c);
  tx.exec(sql);
}

std::string InsertWebhook(pqxx::connection& c, const std::string& name) {
  pqxx::nontransaction tx(c);
  return tx
      .exec_params1(
          "INSERT INTO pggit.webhooks (name, url, secret) VALUES ($1, "
          "'https://example.com/hook', 'whsec_test') RETURNING id",
          name)[0]
      .as<std::string>();
}

std::unique_ptr<Cache> MakeCache() {
  CacheOptions o;
  o.max_bytes = 1 << 20;
  absl::StatusOr<std::unique_ptr<Cache>> c = Cache::Create(o);
  REQUIRE(c.ok());
  return *std::move(c);
}

TEST_CASE("SQL UPDATE reaches the cache: the next read sees the new value") {
  const std::string dsn = CacheDatabase("cache_pg_update");
  auto cache = MakeCache();
  pqxx::connection listen(dsn), data(dsn);
  Listener listener(listen, cache.get());
  InsertWebhook(data, "ops-pager");
  Collect(listen, listener, 2);  // the insert's own notifications

  int loads = 0;
  CacheLoader loader = [&]() -> absl::StatusOr<std::string> {
    ++loads;
    pqxx::nontransaction tx(data);
    return tx
        .exec1(
            "SELECT string_agg(name || '=' || is_active::text, ',')"
            " FROM pggit.webhooks")[0]
        .as<std::string>();
  };
  const std::string key = "webhooks:list:limit=20:offset=0";
  auto first = cache->GetOrLoad(key, absl::Seconds(120), loader);
  REQUIRE(first.ok());
  CHECK(**first == "ops-pager=true");

  // The guide's statement, unqualified, as an operator runs it in psql.
  Exec(dsn, "UPDATE webhooks SET is_active = false");
  // Until the notification is applied the cache (correctly) still serves
  // what it has: this proves the value really came from the cache.
  auto cached = cache->GetOrLoad(key, absl::Seconds(120), loader);
  CHECK(**cached == "ops-pager=true");
  CHECK(loads == 1);

  std::map<std::string, int> got = Collect(listen, listener, 2);
  CHECK(got["webhooks:*"] == 1);
  CHECK(got["dashboard:*"] == 1);
  auto after = cache->GetOrLoad(key, absl::Seconds(120), loader);
  REQUIRE(after.ok());
  CHECK(**after == "ops-pager=false");
  CHECK(loads == 2);
  // status followed is_active (the 001 trigger), so the API shows it too.
  pqxx::nontransaction tx(data);
  CHECK(tx.exec1("SELECT status FROM pggit.webhooks")[0].as<std::string>() ==
        "inactive");
}

TEST_CASE("Cache triggers: one notification per family per statement") {
  const std::string dsn = CacheDatabase("cache_pg_families");
  pqxx::connection listen(dsn), data(dsn);
  Listener listener(listen, nullptr);
  for (int i = 0; i < 3; ++i) InsertWebhook(data, absl::StrCat("hook", i));
  Collect(listen, listener, 6, 2);

  SUBCASE("a bulk UPDATE sends one per family") {
    Exec(dsn, "UPDATE webhooks SET description = 'x'");
    auto got = Collect(listen, listener, 2);
    CHECK(got.size() == 2);
    CHECK(got["webhooks:*"] == 1);
    CHECK(got["dashboard:*"] == 1);
  }
  SUBCASE("a statement that changes no row sends nothing") {
    Exec(dsn, "UPDATE webhooks SET description = 'x' WHERE id < 0");
    Exec(dsn, "DELETE FROM alert_delivery_queue WHERE id < 0");
    CHECK(Collect(listen, listener, 1, 1).empty());
  }
  SUBCASE("a rolled-back change sends nothing") {
    Exec(dsn, "BEGIN; UPDATE webhooks SET description = 'y'; ROLLBACK");
    CHECK(Collect(listen, listener, 1, 1).empty());
  }
  SUBCASE("an alert and its fan-out invalidate alerts and dashboard") {
    pqxx::nontransaction tx(data);
    const std::string id =
        tx.exec1(
              "INSERT INTO alerts (operation_type, severity, message)"
              " VALUES ('commit', 'WARNING', 'm') RETURNING id")[0]
            .as<std::string>();
    auto got = Collect(listen, listener, 3);
    CHECK(got.size() == 3);
    CHECK(got["alerts:*"] == 1);
    CHECK(got["dashboard:*"] == 1);
    CHECK(got["alerts:item:" + id] == 1);  // three queue rows, collapsed
    // A delivery changing status: that alert's page only.
    Exec(dsn, "UPDATE alert_delivery_queue SET delivery_status = 'cancelled'");
    got = Collect(listen, listener, 1);
    CHECK(got.size() == 1);
    CHECK(got["alerts:item:" + id] == 1);
  }
  SUBCASE("the engine's bookkeeping invalidates nothing") {
    Exec(dsn,
         "INSERT INTO alerts (operation_type, severity, message)"
         " VALUES ('commit', 'WARNING', 'm')");
    Collect(listen, listener, 3);
    // A claim's lease renewal keeps the status; counters, breaker and
    // last_used_at are refreshed by TTL, not by notification.
    Exec(dsn,
         "UPDATE alert_delivery_queue SET lease_owner = 'w1', "
         "lease_expires_at = now() + interval '30 seconds', "
         "updated_at = now()");
    Exec(dsn,
         "UPDATE webhooks SET consecutive_failures = consecutive_failures + 1,"
         " total_deliveries = total_deliveries + 1, last_used_at = now(),"
         " last_failure_at = now(), updated_at = now()");
    CHECK(Collect(listen, listener, 1, 1).empty());
    // ... while the engine disabling a webhook is news.
    Exec(dsn,
         "UPDATE webhooks SET status = 'disabled', disabled_reason = 'x', "
         "disabled_at = now() WHERE name = 'hook0'");
    auto got = Collect(listen, listener, 2);
    CHECK(got["webhooks:*"] == 1);
    CHECK(got["dashboard:*"] == 1);
  }
  SUBCASE("a statement touching more than 100 alerts' deliveries: alerts:*") {
    Exec(dsn,
         "INSERT INTO alerts (operation_type, severity, message)"
         " SELECT 'commit', 'INFO', 'bulk ' || g FROM generate_series(1, 101) "
         "g");
    Collect(listen, listener, 2);  // alerts:* and dashboard:*
    Exec(dsn, "UPDATE alert_delivery_queue SET delivery_status = 'cancelled'");
    auto got = Collect(listen, listener, 1);
    CHECK(got.size() == 1);
    CHECK(got["alerts:*"] == 1);
  }
  SUBCASE("every payload is a pattern the cache accepts") {
    Exec(dsn, "DELETE FROM webhooks WHERE name = 'hook2'");
    auto cache = MakeCache();
    for (const auto& [payload, n] : Collect(listen, listener, 2)) {
      CHECK(cache->ApplyDatabaseNotification(payload).ok());
    }
  }
}

TEST_CASE("Cache triggers: the migration file is idempotent") {
  const std::string dsn = CacheDatabase("cache_pg_idempotent");
  std::ifstream in(harness::SourcePath("sql/002_cache_invalidation.sql"));
  std::stringstream sql;
  sql << in.rdbuf();
  Exec(dsn, sql.str());  // a second time: no error
  pqxx::connection c(dsn);
  pqxx::nontransaction tx(c);
  CHECK(tx.exec1("SELECT count(*) FROM pg_trigger WHERE tgname LIKE "
                 "'%\\_cache\\_%'")[0]
            .as<int>() == 12);
}

}  // namespace
}  // namespace pggitops
