#include "server/commands.h"

#include <cstdio>
#include <iostream>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "absl/time/time.h"
#include "pggitops/api_keys.h"
#include "pggitops/connection_pool.h"
#include "pggitops/log.h"
#include "pggitops/schema.h"
#include "pggitops/version.h"
#include "server/app.h"

namespace pggitops::server {

int RunServe(const ServerConfig& config) {
  App app(config);
  return app.Serve();
}

int RunMigrate(const ServerConfig& config) {
  absl::StatusOr<MigrateResult> r = Migrate(config.database_url);
  if (!r.ok()) {
    std::fprintf(stderr, "pggit-api migrate: %s\n",
                 std::string(r.status().message()).c_str());
    return 1;
  }
  if (r->applied.empty()) {
    std::printf("schema is up to date at version %d\n", r->to_version);
  } else {
    std::printf("migrated schema from version %d to %d: %s\n", r->from_version,
                r->to_version, absl::StrJoin(r->applied, ", ").c_str());
  }
  return 0;
}

int RunCheckConfig(const ServerConfig& config) {
  std::cout << "configuration is valid\n"
            << ServerConfigLoader().Describe(config);
  return 0;
}

namespace {

int KeysUsage() {
  std::fprintf(stderr,
               "usage: pggit-api keys create --name NAME --scopes "
               "read[,write][,admin]\n"
               "       pggit-api keys list\n"
               "       pggit-api keys revoke NAME\n");
  return 2;
}

int KeysFailed(const absl::Status& s) {
  std::string why(s.message());
  if (SqlStateOf(s) == "42P01") {
    why = "the database has no api_keys table: run `pggit-api migrate` first";
  }
  std::fprintf(stderr, "pggit-api keys: %s\n", why.c_str());
  return 1;
}

std::string When(const std::optional<absl::Time>& t) {
  if (!t.has_value()) return "-";
  return absl::FormatTime("%Y-%m-%dT%H:%M:%SZ", *t, absl::UTCTimeZone());
}

std::string ScopeList(const std::vector<ApiScope>& scopes) {
  std::vector<std::string> names;
  for (ApiScope s : scopes) names.push_back(ApiScopeName(s));
  return absl::StrJoin(names, ",");
}

// --name N / --name=N style options of `keys create`; nullopt when absent.
std::optional<std::string> Option(const std::vector<std::string>& args,
                                  const std::string& name, bool* bad) {
  std::optional<std::string> value;
  for (size_t i = 0; i < args.size(); ++i) {
    if (args[i] == "--" + name) {
      if (i + 1 >= args.size()) {
        *bad = true;
        return std::nullopt;
      }
      value = args[++i];
    } else if (absl::StartsWith(args[i], "--" + name + "=")) {
      value = args[i].substr(name.size() + 3);
    }
  }
  return value;
}

}  // namespace

int RunKeys(const ServerConfig& config, const std::vector<std::string>& args) {
  if (args.empty()) return KeysUsage();
  const std::string& verb = args[0];
  std::vector<std::string> rest(args.begin() + 1, args.end());

  PoolOptions options = PoolOptionsFromConfig(config);
  options.size = 1;
  options.max_overflow = 0;
  absl::StatusOr<std::unique_ptr<ConnectionPool>> pool =
      ConnectionPool::Create(options);
  if (!pool.ok()) return KeysFailed(pool.status());
  ApiKeyStore store(pool->get());

  if (verb == "create") {
    bool bad = false;
    std::optional<std::string> name = Option(rest, "name", &bad);
    std::optional<std::string> scopes_text = Option(rest, "scopes", &bad);
    for (const std::string& a : rest) {
      if (absl::StartsWith(a, "--") && !absl::StartsWith(a, "--name") &&
          !absl::StartsWith(a, "--scopes")) {
        std::fprintf(stderr, "pggit-api keys create: unknown option %s\n",
                     a.c_str());
        return KeysUsage();
      }
    }
    if (bad || !name.has_value() || !scopes_text.has_value()) {
      std::fprintf(stderr,
                   "pggit-api keys create: --name and --scopes are required\n");
      return KeysUsage();
    }
    absl::StatusOr<std::vector<ApiScope>> scopes = ParseApiScopes(*scopes_text);
    if (!scopes.ok()) return KeysFailed(scopes.status());
    absl::StatusOr<NewApiKey> key = store.Create(*name, *scopes);
    if (!key.ok()) return KeysFailed(key.status());
    std::printf(
        "created API key '%s' (scopes: %s); every instance accepts it within "
        "%s.\nThe key is shown only now; store it (send it as "
        "`Authorization: Bearer <key>`):\n%s\n",
        key->info.name.c_str(), ScopeList(key->info.scopes).c_str(),
        absl::FormatDuration(config.api_key_cache).c_str(), key->token.c_str());
    return 0;
  }
  if (verb == "list") {
    if (!rest.empty()) return KeysUsage();
    absl::StatusOr<std::vector<ApiKeyInfo>> keys = store.List(true);
    if (!keys.ok()) return KeysFailed(keys.status());
    std::printf("%-24s %-16s %-17s %-20s %-20s %s\n", "NAME", "PREFIX",
                "SCOPES", "CREATED", "LAST USED", "REVOKED");
    for (const ApiKeyInfo& k : *keys) {
      std::printf("%-24s %-16s %-17s %-20s %-20s %s\n", k.name.c_str(),
                  (k.prefix + "...").c_str(), ScopeList(k.scopes).c_str(),
                  When(k.created_at).c_str(), When(k.last_used_at).c_str(),
                  When(k.revoked_at).c_str());
    }
    int active = 0;
    for (const ApiKeyInfo& k : *keys) active += k.revoked_at ? 0 : 1;
    std::printf("%d active key%s%s\n", active, active == 1 ? "" : "s",
                active == 0 ? " (protected mode: the API answers loopback "
                              "clients only)"
                            : "");
    return 0;
  }
  if (verb == "revoke") {
    if (rest.size() != 1) return KeysUsage();
    absl::Status s = store.Revoke(rest[0]);
    if (!s.ok()) return KeysFailed(s);
    std::printf("revoked API key '%s'; every instance refuses it within %s\n",
                rest[0].c_str(),
                absl::FormatDuration(config.api_key_cache).c_str());
    return 0;
  }
  std::fprintf(stderr, "pggit-api keys: unknown subcommand '%s'\n",
               verb.c_str());
  return KeysUsage();
}

int RunVersion() {
  std::printf("pggit-api %s (libpggitops %s, schema %d, compatible up to %d)\n",
              kVersionString, kVersionString, RequiredSchemaVersion(),
              MaxCompatibleSchemaVersion());
  return 0;
}

void PrintUsage() {
  std::cout
      << "usage: pggit-api [--config FILE] [--KEY VALUE ...] [COMMAND]\n\n"
         "commands:\n"
         "  serve          run the daemon in the foreground (default)\n"
         "  migrate        apply the SQL migrations (idempotent, locked)\n"
         "  check-config   validate and print the effective configuration,\n"
         "                 secrets redacted\n"
         "  keys create --name NAME --scopes read[,write][,admin]\n"
         "                 create an API key (printed once, on the last line)\n"
         "  keys list      list API keys (names, prefixes, scopes; never "
         "keys)\n"
         "  keys revoke NAME\n"
         "                 revoke an API key on every instance\n"
         "  version        print version and schema compatibility\n\n"
         "Configuration: defaults < YAML file (--config or PGGIT_CONFIG) <\n"
         ".env in the working directory < environment < flags. Keys (env\n"
         "spelling; as a flag lower-case with dashes, e.g. --api-port "
         "8001):\n\n"
      << ServerConfigLoader().Help();
}

}  // namespace pggitops::server
