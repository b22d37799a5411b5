// pggit-ops backup, verify-backup and restore against the real PostgreSQL:
// a round trip reproduces every row of every table and the database's
// search_path; a corrupted or truncated dump fails verification; restore
// refuses to overwrite without --force; restoring onto a new cluster
// provisions the role first.
#include <sys/stat.h>

#include <fstream>
#include <string>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_split.h"
#include "tests/integration/ops/ops_test_util.h"

namespace pggitops::ops_test {
namespace {

using absl::StrContains;

// Rows in several tables, an extra table outside the pggit schema, and a
// setting of the role in this database (besides the search_path).
void Populate(const Ops& ops) {
  ops.Sql(
      "INSERT INTO pggit.webhooks (name, url, secret) SELECT 'hook' || g,"
      " 'http://192.0.2.' || g || '/h', 'whsec_c2VjcmV0'"
      " FROM generate_series(1, 3) g;"
      "INSERT INTO pggit.alerts (operation_type, severity, message, context)"
      " SELECT 'commit', (ARRAY['INFO','WARNING','CRITICAL'])[1 + g % 3],"
      " 'alert ' || g || E' with a tab\\tand ''quotes''',"
      " jsonb_build_object('n', g) FROM generate_series(1, 50) g;"
      "UPDATE pggit.alert_delivery_queue SET delivery_status = 'failed',"
      " attempt_count = 4, last_error = 'HTTP 500' WHERE id % 7 = 0;"
      "CREATE TABLE public.ops_extra (id int PRIMARY KEY, note text);"
      "ALTER TABLE public.ops_extra OWNER TO pggit;"
      "INSERT INTO public.ops_extra SELECT g, md5(g::text)"
      " FROM generate_series(1, 20) g;");
  ops.Sql("ALTER ROLE pggit IN DATABASE " + ops.db +
          " SET statement_timeout = '45s'");
}

// md5 of every row of `table` in `db`, in a stable order.
std::string TableDigest(const std::string& db, const std::string& table) {
  return harness::AdminQuery(
      db,
      "SELECT count(*) || ':' || coalesce(md5(string_agg(t::text, '|'"
      " ORDER BY t::text)), '') FROM " +
          table + " t");
}

std::string Settings(const std::string& db) {
  return harness::AdminQuery(
      "postgres",
      "SELECT string_agg(coalesce(r.rolname, '') || ' ' || array_to_string("
      "s.setconfig, ';'), ',' ORDER BY r.rolname NULLS FIRST)"
      " FROM pg_db_role_setting s LEFT JOIN pg_roles r ON r.oid = s.setrole"
      " JOIN pg_database d ON d.oid = s.setdatabase WHERE d.datname = '" +
          db + "'");
}

// Populates the database of `ops`, backs it up and returns the dump's path.
std::string BackedUp(const Ops& ops) {
  Populate(ops);
  OpsResult r = ops.Run({"backup"});
  REQUIRE_MESSAGE(r.code == 0, r.Dump());
  return r.j["data"]["backup"]["file"];
}

std::vector<std::string> Tables(const json& manifest) {
  std::vector<std::string> out;
  for (const auto& [t, n] : manifest["tables"].items()) out.push_back(t);
  return out;
}

json ReadJson(const std::string& path) {
  std::ifstream f(path);
  return json::parse(f);
}

std::string ScratchDatabases() {
  return harness::AdminQuery("postgres",
                             "SELECT count(*) FROM pg_database WHERE datname"
                             " LIKE 'pggit_verify%' OR datname LIKE"
                             " '%_restore_%'");
}

TEST_CASE("backup, verify-backup, restore: every row and the search_path") {
  Ops ops("ops_backup");
  Populate(ops);
  // Old backups, past BACKUP_RETENTION_DAYS (default 7).
  REQUIRE(harness::Run("mkdir -p " + Quote(ops.backups) + " && cd " +
                       Quote(ops.backups) +
                       " && for f in pggit-old.dump pggit-old.dump.sha256 "
                       "pggit-old.dump.manifest.json; do echo x > $f; "
                       "touch -d '10 days ago' $f; done") == 0);

  OpsResult r = ops.Run({"backup"});
  REQUIRE_MESSAGE(r.code == 0, r.Dump());
  const std::string file = r.j["data"]["backup"]["file"];
  CHECK(absl::StartsWith(file, ops.backups + "/pggit-ops_backup-"));
  struct stat st;
  CHECK(stat((file + ".sha256").c_str(), &st) == 0);
  CHECK((st.st_mode & 027) == 0);  // for the owner and the group only
  CHECK(harness::Run("cd " + Quote(ops.backups) + " && sha256sum -c " +
                     Quote(file + ".sha256")) == 0);
  CHECK(stat((ops.backups + "/pggit-old.dump").c_str(), &st) != 0);
  CHECK(StrContains(r.Messages("retention"), "deleted 1 backup(s)"));

  json manifest = ReadJson(file + ".manifest.json");
  CHECK(manifest["format"] == "pggit-ops-backup/1");
  CHECK(manifest["tables"]["pggit.alerts"] == 50);
  CHECK(manifest["tables"]["pggit.alert_delivery_queue"] == 150);
  CHECK(manifest["tables"]["public.ops_extra"] == 20);
  CHECK(manifest["tables"]["pggit.schema_migrations"].get<int>() >= 3);
  CHECK(manifest["settings"].dump().find("search_path=pggit, public") !=
        std::string::npos);
  CHECK(manifest["settings"].dump().find("statement_timeout=45s") !=
        std::string::npos);

  r = ops.Run({"verify-backup"});
  CHECK_MESSAGE(r.code == 0, r.Dump());
  CHECK(r.Level("checksum") == "ok");
  CHECK(r.Level("compare") == "ok");
  CHECK(r.Level("queries") == "ok");
  CHECK(ScratchDatabases() == "0");

  const std::string copy = "ops_backup_copy";
  harness::AdminQuery("postgres",
                      "DROP DATABASE IF EXISTS " + copy + " WITH (FORCE)");
  r = ops.Run({"restore", file, "--into", copy});
  REQUIRE_MESSAGE(r.code == 0, r.Dump());
  CHECK(StrContains(r.Actions(), "SET search_path = pggit, public"));
  for (const std::string& t : Tables(manifest)) {
    CAPTURE(t);
    CHECK(TableDigest(copy, t) == TableDigest(ops.db, t));
  }
  CHECK(Settings(copy) == Settings(ops.db));
  CHECK(harness::AdminQuery("postgres",
                            "SELECT pg_get_userbyid(datdba) FROM pg_database"
                            " WHERE datname = '" +
                                copy + "'") == "pggit");
  // The guide's unqualified query, as the application role.
  std::string out;
  CHECK(harness::Run("PGPASSWORD=pggit psql -X -A -t -h 127.0.0.1 -p " +
                         std::to_string(harness::Get().pgport) +
                         " -U pggit -d " + copy +
                         " -c \"SELECT COUNT(*) FROM alert_delivery_queue"
                         " WHERE delivery_status = 'failed'\"",
                     &out) == 0);
  CHECK(out == harness::AdminQuery(ops.db,
                                   "SELECT count(*) FROM "
                                   "pggit.alert_delivery_queue WHERE "
                                   "delivery_status = 'failed'") +
                   "\n");

  // Without --force an existing database is left alone.
  harness::AdminQuery(copy, "INSERT INTO public.ops_extra VALUES (999, 'x')");
  r = ops.Run({"restore", file, "--into", copy});
  CHECK(r.code == 2);
  CHECK(StrContains(r.Messages("target"), "refusing to overwrite"));
  CHECK(harness::AdminQuery(copy, "SELECT count(*) FROM public.ops_extra") ==
        "21");
  r = ops.Run({"restore", file, "--into", copy, "--force"});
  CHECK_MESSAGE(r.code == 0, r.Dump());
  CHECK(harness::AdminQuery(copy, "SELECT count(*) FROM public.ops_extra") ==
        "20");
  CHECK(ScratchDatabases() == "0");
  harness::AdminQuery("postgres", "DROP DATABASE " + copy + " WITH (FORCE)");
}

TEST_CASE("verify-backup fails on a corrupted or truncated dump") {
  Ops ops("ops_backup_bad");
  const std::string file = BackedUp(ops);
  OpsResult r;
  const std::string bad = ops.backups + "/bad.dump";
  auto copy = [&] {
    REQUIRE(harness::Run("cp " + Quote(file) + " " + Quote(bad) + " && cp " +
                         Quote(file + ".sha256") + " " +
                         Quote(bad + ".sha256") + " && cp " +
                         Quote(file + ".manifest.json") + " " +
                         Quote(bad + ".manifest.json")) == 0);
  };
  // A byte flipped in the middle.
  copy();
  REQUIRE(harness::Run("size=$(stat -c %s " + Quote(bad) +
                       ") && printf '\\377' | dd of=" + Quote(bad) +
                       " bs=1 seek=$((size / 2)) conv=notrunc status=none") ==
          0);
  r = ops.Run({"verify-backup", bad});
  CHECK(r.code == 2);
  CHECK(r.Level("checksum") == "crit");
  CHECK(StrContains(r.Messages("checksum"), "corrupt or truncated"));

  // Cut in half.
  copy();
  REQUIRE(harness::Run("truncate -s $(( $(stat -c %s " + Quote(bad) +
                       ") / 2 )) " + Quote(bad)) == 0);
  r = ops.Run({"verify-backup", bad});
  CHECK(r.code == 2);
  CHECK(r.Level("checksum") == "crit");

  // Cut in half with a checksum and manifest that agree: the restore fails.
  REQUIRE(harness::Run("cd " + Quote(ops.backups) +
                       " && sum=$(sha256sum bad.dump | cut -d' ' -f1)"
                       " && echo \"$sum  bad.dump\" > bad.dump.sha256"
                       " && jq --arg s \"$sum\" '.sha256 = $s'"
                       " bad.dump.manifest.json > m && mv m "
                       "bad.dump.manifest.json") == 0);
  r = ops.Run({"verify-backup", bad});
  CHECK_MESSAGE(r.code == 2, r.Dump());
  CHECK(r.Level("checksum") == "ok");
  CHECK((r.Level("archive") == "crit" || r.Level("pg_restore") == "crit"));

  // No checksum, no trust.
  copy();
  REQUIRE(harness::Run("rm " + Quote(bad + ".sha256")) == 0);
  r = ops.Run({"verify-backup", bad});
  CHECK(r.code == 2);
  CHECK(StrContains(r.Messages("checksum"), "missing"));

  // A manifest whose counts are wrong is caught by the comparison.
  copy();
  REQUIRE(harness::Run("cd " + Quote(ops.backups) +
                       " && jq '.tables[\"pggit.alerts\"] = 49'"
                       " bad.dump.manifest.json > m && mv m "
                       "bad.dump.manifest.json") == 0);
  r = ops.Run({"verify-backup", bad});
  CHECK(r.code == 2);
  CHECK(StrContains(r.Messages("compare"), "pggit.alerts: 50 rows"));
  CHECK(ScratchDatabases() == "0");

  // The file that was never touched still verifies.
  r = ops.Run({"verify-backup", file});
  CHECK_MESSAGE(r.code == 0, r.Dump());
}

// A second, empty PostgreSQL cluster (initdb), stopped on destruction.
class Cluster {
 public:
  Cluster() {
    char tmpl[] = "/var/tmp/pggitops-cluster.XXXXXX";
    REQUIRE(mkdtemp(tmpl) != nullptr);
    dir_ = tmpl;
    port_ = harness::FreePort();
    const std::string pgbin = harness::Get().pgbin;
    const std::string as_pg = geteuid() == 0 ? "runuser -u postgres -- " : "";
    REQUIRE(
        harness::Run("chmod 755 " + Quote(dir_) + " && mkdir " +
                     Quote(dir_ + "/pg") +
                     (geteuid() == 0 ? " && chown postgres " + Quote(dir_) +
                                           " " + Quote(dir_ + "/pg")
                                     : "") +
                     " && cd / && " + as_pg + pgbin + "/initdb -D " +
                     Quote(dir_ + "/pg") +
                     " -U postgres --auth=trust --no-sync >/dev/null && " +
                     as_pg + pgbin + "/pg_ctl -D " + Quote(dir_ + "/pg") +
                     " -l " + Quote(dir_ + "/log") + " -w -o " +
                     Quote("-p " + std::to_string(port_) + " -k " + dir_ +
                           " -c listen_addresses=127.0.0.1"
                           " -c shared_preload_libraries=pg_stat_statements") +
                     " start >/dev/null") == 0);
  }
  ~Cluster() {
    const std::string as_pg = geteuid() == 0 ? "runuser -u postgres -- " : "";
    harness::Run("cd / && " + as_pg + harness::Get().pgbin + "/pg_ctl -D " +
                 Quote(dir_ + "/pg") + " -m immediate -w stop >/dev/null");
    harness::Run("rm -rf " + Quote(dir_));
  }
  std::string AdminDsn() const {
    return "postgresql://postgres@127.0.0.1:" + std::to_string(port_) +
           "/postgres";
  }
  std::string Query(const std::string& db, const std::string& sql) const {
    std::string out;
    harness::Run("psql -X -A -t -h 127.0.0.1 -p " + std::to_string(port_) +
                     " -U postgres -d " + db + " -c " + Quote(sql),
                 &out);
    while (!out.empty() && out.back() == '\n') out.pop_back();
    return out;
  }

 private:
  std::string dir_;
  int port_ = 0;
};

TEST_CASE("restore onto a new cluster provisions the role first") {
  Ops ops("ops_backup_dr");
  const std::string file = BackedUp(ops);
  json manifest = ReadJson(file + ".manifest.json");

  Cluster fresh;
  REQUIRE(fresh.Query("postgres",
                      "SELECT count(*) FROM pg_roles"
                      " WHERE rolname = 'pggit'") == "0");
  OpsResult r = ops.Run({"restore", file, "--into", "pggit"},
                        "PGGIT_ADMIN_URL=" + Quote(fresh.AdminDsn()));
  REQUIRE_MESSAGE(r.code == 0, r.Dump());
  CHECK(StrContains(r.Messages("provision"), "does not exist on this cluster"));
  CHECK(StrContains(r.Actions(), "provision-db created role pggit"));
  CHECK(fresh.Query("postgres",
                    "SELECT rolpassword IS NOT NULL AND NOT rolsuper"
                    " FROM pg_authid WHERE rolname = 'pggit'") == "t");
  CHECK(fresh.Query("postgres",
                    "SELECT pg_has_role('pggit', 'pg_monitor',"
                    " 'member')") == "t");
  CHECK(fresh.Query("pggit",
                    "SELECT string_agg(extname, ',' ORDER BY"
                    " extname) FROM pg_extension") ==
        "pg_stat_statements,pgstattuple,plpgsql");
  for (const auto& table : manifest["tables"].items()) {
    const std::string& t = table.key();
    const auto& n = table.value();
    CAPTURE(t);
    CHECK(fresh.Query("pggit", "SELECT count(*) FROM " + t) ==
          std::to_string(n.get<int>()));
  }
  CHECK(
      fresh.Query("postgres",
                  "SELECT array_to_string(setconfig, ';') FROM "
                  "pg_db_role_setting s JOIN pg_database d ON d.oid ="
                  " s.setdatabase WHERE d.datname = 'pggit' AND setrole = 0") ==
      "search_path=pggit, public");
}

}  // namespace
}  // namespace pggitops::ops_test
