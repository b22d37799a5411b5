// ConfigLoader::Register: an application's keys go through the same
// sources, precedence, validation and renderings as the library's.
#include <string>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "doctest/doctest.h"
#include "libpggitops/config/key_spec.h"
#include "libpggitops/config/test_util.h"
#include "pggitops/config.h"

namespace pggitops {
namespace {

using internal::config::TempDir;

ConfigKey PortKey() {
  ConfigKey k;
  k.name = "MYAPP_PORT";
  k.type = ConfigKey::Type::kInt;
  k.min = 1;
  k.max = 65535;
  k.default_value = int64_t{8080};
  k.help = "listen port of my application";
  return k;
}

ConfigKey HostsKey() {
  ConfigKey k;
  k.name = "MYAPP_HOSTS";
  k.type = ConfigKey::Type::kList;
  k.default_value = std::vector<std::string>{};
  k.range_text = "JSON or comma list of names without spaces";
  k.check = [](const std::string& v) -> std::string {
    if (v.empty() || absl::StrContains(v, ' ')) {
      return absl::StrCat("entry \"", v, "\" is not a name");
    }
    return "";
  };
  k.help = "peer hosts";
  k.before = "DATABASE_URL";
  return k;
}

ConfigLoader Loader() {
  ConfigLoader loader;
  REQUIRE(loader.Register(PortKey()).ok());
  REQUIRE(loader.Register(HostsKey()).ok());
  return loader;
}

ConfigSources Env(std::map<std::string, std::string> env) {
  ConfigSources s;
  s.dotenv_path = "";
  env.emplace("DATABASE_URL", "postgresql://h/db");
  s.environment = std::move(env);
  return s;
}

std::string ErrorOf(const ConfigLoader& loader, const ConfigSources& s) {
  absl::StatusOr<Config> c = loader.Load(s);
  if (c.ok()) return "";
  CHECK(c.status().code() == absl::StatusCode::kInvalidArgument);
  return std::string(c.status().message());
}

TEST_CASE("ConfigLoader: a registered key gets its default, marked default") {
  absl::StatusOr<Config> c = Loader().Load(Env({}));
  REQUIRE(c.ok());
  CHECK(std::get<int64_t>(c->registered.at("MYAPP_PORT")) == 8080);
  CHECK(std::get<std::vector<std::string>>(c->registered.at("MYAPP_HOSTS"))
            .empty());
  CHECK(c->value_sources.at("MYAPP_PORT") == "default");
  CHECK(c->database_pool_size == 20);  // the library's keys as before
}

TEST_CASE("ConfigLoader: yaml < .env < env < flag for a registered key") {
  TempDir dir;
  ConfigLoader loader = Loader();
  ConfigSources s = Env({});
  s.yaml_path = dir.Write("c.yaml", "myapp_port: 1001\nMYAPP_HOSTS: [a, b]\n");
  absl::StatusOr<Config> c = loader.Load(s);
  REQUIRE_MESSAGE(c.ok(), c.status().ToString());
  CHECK(std::get<int64_t>(c->registered.at("MYAPP_PORT")) == 1001);
  CHECK(std::get<std::vector<std::string>>(c->registered.at("MYAPP_HOSTS")) ==
        std::vector<std::string>{"a", "b"});
  CHECK(c->value_sources.at("MYAPP_PORT") == "yaml");
  s.dotenv_path = dir.Write(".env", "MYAPP_PORT=1002\n");
  CHECK(std::get<int64_t>(loader.Load(s)->registered.at("MYAPP_PORT")) == 1002);
  s.environment["MYAPP_PORT"] = "1003";
  CHECK(std::get<int64_t>(loader.Load(s)->registered.at("MYAPP_PORT")) == 1003);
  s.flags = {{"myapp-port", "1004"}};
  c = loader.Load(s);
  REQUIRE(c.ok());
  CHECK(std::get<int64_t>(c->registered.at("MYAPP_PORT")) == 1004);
  CHECK(c->value_sources.at("MYAPP_PORT") == "flag");
}

TEST_CASE("ConfigLoader: a registered key is validated like the library's") {
  ConfigLoader loader = Loader();
  CHECK(ErrorOf(loader, Env({{"MYAPP_PORT", "0"}})) ==
        "MYAPP_PORT=0 (env): must be an integer from 1 to 65535");
  CHECK(ErrorOf(loader, Env({{"MYAPP_HOSTS", "a,b c"}})) ==
        "MYAPP_HOSTS=a,b c (env): entry \"b c\" is not a name");
  ConfigSources s = Env({});
  s.flags = {{"myapp-prot", "1"}};
  CHECK(ErrorOf(loader, s) ==
        "unknown flag --myapp-prot (did you mean --myapp-port?)");
}

TEST_CASE("ConfigLoader: unknown keys behave as without registration") {
  TempDir dir;
  ConfigLoader loader = Loader();
  ConfigSources s = Env({{"MYAPP_OTHER", "x"}});
  s.dotenv_path = dir.Write(".env", "MYAPP_NOPE=1\n");
  CHECK(ErrorOf(loader, s).empty());  // ignored in env and .env
  s.yaml_path = dir.Write("c.yaml", "myapp_nope: 1\n");
  CHECK(absl::EndsWith(ErrorOf(loader, s), "unknown key \"myapp_nope\""));
  // The library alone does not know the application's key.
  ConfigSources plain = Env({});
  plain.flags = {{"myapp-port", "1"}};
  CHECK(absl::StartsWith(std::string(LoadConfig(plain).status().message()),
                         "unknown flag --myapp-port"));
}

TEST_CASE("ConfigLoader: duplicate and malformed registrations are refused") {
  ConfigLoader loader = Loader();
  std::vector<std::string> before = loader.KeyNames();
  absl::Status s = loader.Register(PortKey());
  CHECK(s.code() == absl::StatusCode::kInvalidArgument);
  CHECK(s.message() ==
        "cannot register configuration key \"MYAPP_PORT\": already a key");
  ConfigKey k = PortKey();
  k.name = "DATABASE_URL";  // a library key
  CHECK_FALSE(loader.Register(k).ok());
  k.name = "myapp_lower";
  CHECK_FALSE(loader.Register(k).ok());
  k.name = "HELP";
  CHECK_FALSE(loader.Register(k).ok());
  k = PortKey();
  k.name = "MYAPP_A";
  k.default_value = int64_t{0};  // out of range
  CHECK_FALSE(loader.Register(k).ok());
  k.default_value = std::string("8080");  // wrong type
  CHECK_FALSE(loader.Register(k).ok());
  k.default_value = int64_t{1};
  k.min = 10;  // min > max
  k.max = 5;
  CHECK_FALSE(loader.Register(k).ok());
  k = PortKey();
  k.name = "MYAPP_MODE";
  k.type = ConfigKey::Type::kEnum;
  k.default_value = std::string("fast");
  CHECK_FALSE(loader.Register(k).ok());  // no allowed values
  CHECK(loader.KeyNames() == before);    // nothing was added
}

TEST_CASE("ConfigLoader: help, describe and the table list registered keys") {
  ConfigLoader loader = Loader();
  std::vector<std::string> names = loader.KeyNames();
  REQUIRE(names.size() == internal::config::KeyTable().size() + 2);
  CHECK(names.back() == "MYAPP_PORT");  // no `before`: at the end
  auto at = [&names](const char* n) {
    return std::find(names.begin(), names.end(), n) - names.begin();
  };
  CHECK(at("MYAPP_HOSTS") + 1 == at("DATABASE_URL"));
  CHECK(absl::StrContains(
      loader.Help(),
      "--myapp-port                           MYAPP_PORT                     "
      "    default 8080; 1 to 65535; listen port of my application\n"));
  CHECK(absl::StrContains(loader.MarkdownTable(),
                          "| `MYAPP_PORT` | `--myapp-port` | `8080` | 1 to "
                          "65535 | listen port of my application |\n"));
  absl::StatusOr<Config> c = loader.Load(Env({{"MYAPP_HOSTS", "x,y"}}));
  REQUIRE(c.ok());
  std::string described = loader.Describe(*c);
  CHECK(absl::StrContains(described, "\nMYAPP_HOSTS=x,y  # env\n"));
  CHECK(absl::StrContains(described, "\nMYAPP_PORT=8080  # default\n"));
  // The free functions know the library's keys only.
  CHECK_FALSE(absl::StrContains(ConfigHelp(), "MYAPP"));
}

}  // namespace
}  // namespace pggitops
