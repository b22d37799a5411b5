// AlertStore against a real, migrated PostgreSQL: create and read back,
// list filters, paging and bounded contexts, the acknowledge/resolve rules
// (a refused transition changes nothing), and counts.
#include "pggitops/alert_store.h"

#include <string>
#include <vector>

#include "doctest/doctest.h"
#include "pggitops/webhook_store.h"
#include "tests/integration/store_test_util.h"

namespace pggitops {
namespace {

using store_test::Db;

AlertInput Input(const std::string& severity, const std::string& op = "commit",
                 const std::string& context = "") {
  AlertInput in;
  in.operation_type = op;
  in.severity = severity;
  in.message = "m " + severity;
  in.context_json = context;
  return in;
}

TEST_CASE("AlertStore: create, get with deliveries, not found") {
  Db db("alert_store_create");
  WebhookFields hook;
  hook.name = "h";
  hook.url = "https://hooks.example.com/h";
  REQUIRE(WebhookStore(db.pool.get()).Create(hook).ok());
  AlertStore store(db.pool.get());
  absl::StatusOr<int64_t> id =
      store.Create(Input("CRITICAL", "schema_change", R"({"table": "t"})"));
  REQUIRE_MESSAGE(id.ok(), id.status().ToString());
  absl::StatusOr<Alert> a = store.Get(*id);
  REQUIRE(a.ok());
  CHECK(a->id == *id);
  CHECK(a->operation_type == "schema_change");
  CHECK(a->severity == "CRITICAL");
  CHECK(a->status == "pending");
  CHECK(a->context_json == R"({"table": "t"})");  // jsonb's text
  CHECK_FALSE(a->context_omitted_bytes.has_value());
  CHECK(a->deliveries.pending == 1);  // one per matching active webhook
  CHECK_FALSE(a->acknowledged_at.has_value());
  CHECK(absl::Now() - a->created_at < absl::Minutes(5));

  CHECK(store.Get(*id + 100).status().message() ==
        "alert " + std::to_string(*id + 100) + " not found");
  absl::Status bad = store.Create(Input("LOW")).status();
  CHECK(bad.code() == absl::StatusCode::kInvalidArgument);
  CHECK(db.Scalar("SELECT count(*) FROM pggit.alerts") == "1");
}

TEST_CASE("AlertStore: list filters, pages newest first, bounds contexts") {
  Db db("alert_store_list");
  AlertStoreOptions o;
  o.context_max_bytes = 40;
  AlertStore store(db.pool.get(), o);
  std::vector<int64_t> ids;
  for (const char* s : {"INFO", "WARNING", "CRITICAL", "INFO"}) {
    absl::StatusOr<int64_t> id = store.Create(Input(s));
    REQUIRE(id.ok());
    ids.push_back(*id);
  }
  const std::string big = R"({"blob": ")" + std::string(100, 'x') + R"("})";
  absl::StatusOr<int64_t> big_id = store.Create(Input("INFO", "deploy", big));
  REQUIRE(big_id.ok());

  absl::StatusOr<AlertPage> all = store.List();
  REQUIRE(all.ok());
  CHECK(all->total == 5);
  REQUIRE(all->items.size() == 5);
  CHECK(all->items[0].id == *big_id);  // newest first
  CHECK(all->items[0].context_json.empty());
  const int64_t big_bytes = std::stoll(
      db.Scalar("SELECT octet_length(context::text) FROM pggit.alerts "
                "WHERE id = " +
                std::to_string(*big_id)));
  CHECK(big_bytes > 100);
  CHECK(all->items[0].context_omitted_bytes == big_bytes);
  CHECK(all->items[1].context_json == "{}");
  // Get and unbounded GetMany keep the whole context.
  absl::StatusOr<Alert> whole = store.Get(*big_id);
  REQUIRE(whole.ok());
  CHECK(whole->context_json.size() > 100);
  absl::StatusOr<std::vector<Alert>> many =
      store.GetMany({*big_id, ids[0], 999999}, /*bounded=*/false);
  REQUIRE(many.ok());
  REQUIRE(many->size() == 2);
  CHECK(many->at(0).id == ids[0]);  // by id
  CHECK(many->at(1).context_json.size() > 100);
  many = store.GetMany({*big_id}, /*bounded=*/true);
  REQUIRE(many.ok());
  REQUIRE(many->size() == 1);
  CHECK(many->at(0).context_omitted_bytes.has_value());

  AlertFilter info;
  info.severity = "INFO";
  info.limit = 2;
  info.offset = 1;
  absl::StatusOr<AlertPage> p = store.List(info);
  REQUIRE(p.ok());
  CHECK(p->total == 3);
  REQUIRE(p->items.size() == 2);
  CHECK(p->items[0].id == ids[3]);
  CHECK(p->items[1].id == ids[0]);

  AlertFilter op;
  op.operation_type = "deploy";
  p = store.List(op);
  REQUIRE(p.ok());
  CHECK(p->total == 1);
  op.offset = 5;  // past the end
  p = store.List(op);
  REQUIRE(p.ok());
  CHECK(p->items.empty());
  CHECK(p->total == 1);

  absl::StatusOr<std::vector<Alert>> after = store.After(ids[1], 2);
  REQUIRE(after.ok());
  REQUIRE(after->size() == 2);
  CHECK(after->at(0).id == ids[2]);
  CHECK(after->at(1).id == ids[3]);

  AlertFilter bad;
  bad.status = "open";
  CHECK(store.List(bad).status().code() == absl::StatusCode::kInvalidArgument);
}

TEST_CASE("AlertStore: acknowledge and resolve follow the state rules") {
  Db db("alert_store_rules");
  AlertStore store(db.pool.get());
  std::vector<int64_t> ids;
  for (int i = 0; i < 3; ++i) {
    absl::StatusOr<int64_t> id = store.Create(Input("WARNING"));
    REQUIRE(id.ok());
    ids.push_back(*id);
  }
  const int64_t missing = ids.back() + 50;

  absl::StatusOr<AlertTransition> t =
      store.Acknowledge({ids[0], ids[0], missing});
  REQUIRE(t.ok());
  CHECK(t->done == 1);
  CHECK(t->changed == 1);
  CHECK(t->not_found == std::vector<int64_t>{missing});
  absl::StatusOr<Alert> a = store.Get(ids[0]);
  REQUIRE(a.ok());
  CHECK(a->status == "acknowledged");
  REQUIRE(a->acknowledged_at.has_value());
  const absl::Time acknowledged = *a->acknowledged_at;

  t = store.Resolve({ids[0], ids[1]});  // acknowledged and pending
  REQUIRE(t.ok());
  CHECK(t->done == 2);
  CHECK(t->changed == 2);

  // Backwards is refused by changing nothing: a resolved alert stays
  // resolved and keeps its times; it counts as done, not changed.
  const std::string before = db.Scalar(
      "SELECT status || updated_at::text FROM pggit.alerts WHERE id = " +
      std::to_string(ids[0]));
  t = store.Acknowledge({ids[0]});
  REQUIRE(t.ok());
  CHECK(t->done == 1);
  CHECK(t->changed == 0);
  CHECK(db.Scalar("SELECT status || updated_at::text FROM pggit.alerts "
                  "WHERE id = " +
                  std::to_string(ids[0])) == before);
  a = store.Get(ids[0]);
  REQUIRE(a.ok());
  CHECK(a->status == "resolved");
  CHECK(a->acknowledged_at == acknowledged);
  CHECK(a->resolved_at.has_value());

  // Bad input changes nothing.
  CHECK(store.Resolve({}).status().code() ==
        absl::StatusCode::kInvalidArgument);
  CHECK(store.Resolve(std::vector<int64_t>(kMaxAlertIdsPerCall + 1, ids[2]))
            .status()
            .code() == absl::StatusCode::kInvalidArgument);
  a = store.Get(ids[2]);
  REQUIRE(a.ok());
  CHECK(a->status == "pending");
}

TEST_CASE("AlertStore: counts by severity and status") {
  Db db("alert_store_counts");
  AlertStore store(db.pool.get());
  std::vector<int64_t> ids;
  for (const char* s : {"INFO", "INFO", "WARNING", "CRITICAL", "CRITICAL"}) {
    absl::StatusOr<int64_t> id = store.Create(Input(s));
    REQUIRE(id.ok());
    ids.push_back(*id);
  }
  REQUIRE(store.Acknowledge({ids[0], ids[1]}).ok());
  REQUIRE(store.Resolve({ids[1], ids[2]}).ok());
  absl::StatusOr<AlertCounts> c = store.Counts();
  REQUIRE(c.ok());
  CHECK(c->total == 5);
  CHECK(c->info == 2);
  CHECK(c->warning == 1);
  CHECK(c->critical == 2);
  CHECK(c->pending == 2);
  CHECK(c->acknowledged == 1);
  CHECK(c->resolved == 2);
}

}  // namespace
}  // namespace pggitops
