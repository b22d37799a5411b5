// The daemon's keys, registered into the library's loader: every one is
// read, validated, documented and described as the library's own are.
#include "server/server_config.h"

#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <map>
#include <sstream>
#include <string>
#include <vector>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_split.h"
#include "doctest/doctest.h"
#include "pggitops/config.h"

namespace pggitops::server {
namespace {

// Invalid values per daemon key; the coverage test fails when a key has no
// entry here.
const std::map<std::string, std::vector<std::string>>& InvalidValues() {
  static const auto* values =
      new std::map<std::string, std::vector<std::string>>{
          {"API_HOST", {"example.com", "", "256.1.1.1", "::1::2"}},
          {"API_PORT", {"0", "65536", "80x", "", "-1", "8000.5"}},
          {"API_WORKERS", {"0", "1025"}},
          {"API_MAX_CONNECTIONS", {"0", "1000001", "many"}},
          {"API_MAX_CONNECTIONS_PER_CLIENT", {"0", "1000001", "-5"}},
          {"API_HEADER_TIMEOUT", {"0", "0.001", "3601", "10s"}},
          {"API_BODY_TIMEOUT", {"0", "-1", "3601"}},
          {"API_MAX_HEADER_BYTES", {"1023", "1048577", "16k"}},
          {"API_KEEPALIVE_TIMEOUT",
           {"0", "-1", "abc", "nan", "inf", "3601", "2s"}},
          {"API_KEEPALIVE_MAX", {"0", "1000001"}},
          {"CACHE_TTL_WEBHOOK_LIST", {"0", "86401"}},
          {"CACHE_TTL_ALERTS_LIST", {"0", "86401"}},
          {"CACHE_TTL_DASHBOARD", {"0", "86401"}},
          {"CORS_ORIGINS",
           {"example.com", "https://a.com/", "[1,2]", R"(["ftp://x"])",
            "[unterminated", "https://a.com, http://"}},
          {"TRUSTED_PROXIES",
           {"10.0.0.0/33", "::1/129", "proxy.local", "10.0.0.1/", "10.0.0.0/-1",
            "10.0.0.0/8,bad"}},
          {"SSE_MAX_STREAMS", {"-1", "100001"}},
          {"SSE_STATUS_INTERVAL", {"0", "3601"}},
          {"SSE_KEEPALIVE_INTERVAL", {"0.001", "3601"}},
          {"METRICS_REQUIRE_KEY", {"y"}},
          {"SSE_QUERY_TIMEOUT", {"0", "601"}},
          {"SHUTDOWN_TIMEOUT", {"0.05", "3601"}},
          {"SHUTDOWN_GRACE_SECONDS", {"-1", "301"}},
      };
  return *values;
}

ConfigSources EnvOnly(std::map<std::string, std::string> env) {
  ConfigSources s;
  s.dotenv_path = "";
  env.emplace("DATABASE_URL", "postgresql://localhost/pggit");
  s.environment = std::move(env);
  return s;
}

std::string FlagOf(const std::string& key) {
  std::string flag = absl::AsciiStrToLower(key);
  std::replace(flag.begin(), flag.end(), '_', '-');
  return flag;
}

absl::StatusOr<ServerConfig> LoadWith(const std::string& key,
                                      const std::string& value,
                                      const std::string& source) {
  ConfigSources s = EnvOnly({});
  if (source == "flag") {
    s.flags.emplace_back(FlagOf(key), value);
  } else {
    s.environment[key] = value;
  }
  return LoadServerConfig(s);
}

std::string ErrorOf(const ConfigSources& s) {
  absl::StatusOr<ServerConfig> c = LoadServerConfig(s);
  if (c.ok()) return "";
  CHECK(c.status().code() == absl::StatusCode::kInvalidArgument);
  return std::string(c.status().message());
}

std::string Format(double v) {
  std::string s = absl::StrFormat("%.9f", v);
  s.erase(s.find_last_not_of('0') + 1);
  if (!s.empty() && s.back() == '.') s.pop_back();
  return s;
}

TEST_CASE("Daemon keys: every key is registered and has invalid values") {
  std::vector<std::string> names = ServerConfigLoader().KeyNames();
  CHECK(names.size() == 60);  // 38 library keys + 22 of the daemon
  for (const ConfigKey& k : DaemonConfigKeys()) {
    CAPTURE(k.name);
    CHECK(std::count(names.begin(), names.end(), k.name) == 1);
    CHECK(InvalidValues().count(k.name) == 1);
    CHECK(k.help.size() > 10);
  }
  CHECK(DaemonConfigKeys().size() == InvalidValues().size());
  CHECK(names.front() == "API_HOST");  // the documented order
  CHECK(names.back() == "ENVIRONMENT");
}

TEST_CASE("Daemon keys: every invalid value fails with one line naming it") {
  // Named, not structured, bindings: doctest's CAPTURE makes a lambda,
  // and clang 14 cannot capture a structured binding.
  for (const auto& entry : InvalidValues()) {
    const std::string& key = entry.first;
    for (const std::string& value : entry.second) {
      for (const std::string source : {"env", "flag"}) {
        CAPTURE(key);
        CAPTURE(value);
        absl::StatusOr<ServerConfig> c = LoadWith(key, value, source);
        REQUIRE_FALSE(c.ok());
        std::string msg(c.status().message());
        CHECK(c.status().code() == absl::StatusCode::kInvalidArgument);
        CHECK(absl::StartsWith(
            msg, absl::StrCat(key, "=", value, " (", source, "): ")));
        CHECK_FALSE(absl::StrContains(msg, "\n"));
      }
    }
  }
}

TEST_CASE("Daemon keys: numeric ranges are inclusive at both ends") {
  for (const ConfigKey& k : DaemonConfigKeys()) {
    bool integral = k.type == ConfigKey::Type::kInt;
    if (!integral && k.type != ConfigKey::Type::kSeconds) continue;
    CAPTURE(k.name);
    for (double edge : {k.min, k.max}) {
      absl::StatusOr<ServerConfig> c = LoadWith(k.name, Format(edge), "env");
      REQUIRE_MESSAGE(c.ok(), c.status().ToString());
      CHECK(absl::StrContains(
          ServerConfigLoader().Describe(*c),
          absl::StrCat("\n", k.name, "=", Format(edge), "  # env\n")));
    }
    double step = integral ? 1 : k.min / 2 + 1e-9;
    CHECK_FALSE(
        LoadWith(k.name, Format(k.max + (integral ? 1 : 0.5)), "env").ok());
    CHECK_FALSE(LoadWith(k.name, Format(k.min - step), "env").ok());
  }
}

TEST_CASE("Daemon keys: defaults are ServerConfig's, marked default") {
  absl::StatusOr<ServerConfig> c = LoadServerConfig(EnvOnly({}));
  REQUIRE(c.ok());
  ServerConfig d;
  CHECK(c->api_port == d.api_port);
  CHECK(c->sse_max_streams == 1000);
  CHECK(c->api_max_connections == 10000);
  CHECK(c->api_max_connections_per_client == 256);
  CHECK(c->api_header_timeout == absl::Seconds(10));
  CHECK(c->api_body_timeout == absl::Seconds(30));
  CHECK(c->api_max_header_bytes == 16384);
  CHECK(c->api_keepalive_timeout == absl::Seconds(15));
  CHECK(c->api_keepalive_max == 10000);
  CHECK(c->shutdown_grace == absl::Seconds(5));
  CHECK(c->value_sources.at("API_PORT") == "default");
  CHECK(c->value_sources.size() == 60);
  CHECK(ErrorOf(EnvOnly({{"API_MAX_HEADER_BYTES", "100"}})) ==
        "API_MAX_HEADER_BYTES=100 (env): must be an integer from 1024 to "
        "1048576");
}

TEST_CASE("Daemon keys: API_WORKERS defaults to 2 x cores, at least 4") {
  absl::StatusOr<ServerConfig> c = LoadServerConfig(EnvOnly({}));
  REQUIRE(c.ok());
  CHECK(c->api_workers == std::min(1024, DefaultApiWorkers()));
  CHECK(c->api_workers >= 4);
  CHECK(c->api_workers % 2 == 0);
  CHECK(c->value_sources.at("API_WORKERS") == "default");
  c = LoadServerConfig(EnvOnly({{"API_WORKERS", "3"}}));
  REQUIRE(c.ok());
  CHECK(c->api_workers == 3);
  CHECK(absl::StrContains(ServerConfigLoader().Help(),
                          "default 2 x cores, at least 4; 1 to 1024; "));
}

TEST_CASE("Daemon keys: yaml < .env < env < flag") {
  struct Case {
    const char* key;
    std::vector<std::string> values;  // yaml, .env, env, flag
    std::vector<std::string> shown;   // as Describe prints them
  };
  const std::vector<Case> cases = {
      {"API_PORT",
       {"9001", "9002", "9003", "9004"},
       {"9001", "9002", "9003", "9004"}},
      {"API_KEEPALIVE_TIMEOUT",
       {"0.5", "1.5", "2", "3"},
       {"0.5", "1.5", "2", "3"}},
      {"METRICS_REQUIRE_KEY",
       {"false", "on", "0", "yes"},
       {"false", "true", "false", "true"}},
      {"CORS_ORIGINS",
       {"https://a.example", "[\"https://b.example\"]",
        "https://c.example, https://d.example", "*"},
       {"https://a.example", "https://b.example",
        "https://c.example,https://d.example", "*"}},
  };
  const std::vector<std::string> layers = {"yaml", ".env", "env", "flag"};
  char tmpl[] = "/tmp/pggit-server-config-XXXXXX";
  REQUIRE(mkdtemp(tmpl) != nullptr);
  std::string dir = tmpl;
  auto write = [&dir](const std::string& name, const std::string& text) {
    std::ofstream(dir + "/" + name) << text;
    return dir + "/" + name;
  };
  for (const Case& c : cases) {
    for (int top = 3; top >= 0; --top) {
      CAPTURE(c.key);
      CAPTURE(top);
      ConfigSources s = EnvOnly({});
      s.yaml_path =
          write("c.yaml", absl::StrCat(c.key, ": '", c.values[0], "'\n"));
      s.dotenv_path =
          write(".env",
                top >= 1 ? absl::StrCat(c.key, "='", c.values[1], "'\n") : "");
      if (top >= 2) s.environment[c.key] = c.values[2];
      if (top >= 3) s.flags.emplace_back(FlagOf(c.key), c.values[3]);
      absl::StatusOr<ServerConfig> cfg = LoadServerConfig(s);
      REQUIRE_MESSAGE(cfg.ok(), cfg.status().ToString());
      CHECK(cfg->value_sources.at(c.key) == layers[top]);
      CHECK(absl::StrContains(ServerConfigLoader().Describe(*cfg),
                              absl::StrCat("\n", c.key, "=", c.shown[top],
                                           "  # ", layers[top], "\n")));
    }
  }
  std::remove((dir + "/c.yaml").c_str());
  std::remove((dir + "/.env").c_str());
  rmdir(dir.c_str());
}

TEST_CASE("Daemon keys: lists accept JSON, comma and YAML forms") {
  absl::StatusOr<ServerConfig> c = LoadServerConfig(EnvOnly({
      {"CORS_ORIGINS", R"(["https://a.example", "http://b.example:8080"])"},
      {"TRUSTED_PROXIES", "10.0.0.0/8, ::1 ,192.168.1.7,fd00::/8,"},
  }));
  REQUIRE(c.ok());
  CHECK(c->cors_origins ==
        std::vector<std::string>{"https://a.example", "http://b.example:8080"});
  CHECK(c->trusted_proxies == std::vector<std::string>{"10.0.0.0/8", "::1",
                                                       "192.168.1.7",
                                                       "fd00::/8"});
  c = LoadServerConfig(
      EnvOnly({{"TRUSTED_PROXIES", "[]"}, {"CORS_ORIGINS", ""}}));
  REQUIRE(c.ok());
  CHECK(c->trusted_proxies.empty());
  CHECK(c->cors_origins.empty());
}

TEST_CASE("Daemon keys: the library alone ignores them in the environment") {
  ConfigSources s = EnvOnly({{"API_PORT", "not a port"}});
  CHECK(LoadConfig(s).ok());  // unknown keys in env are ignored
  CHECK_FALSE(LoadServerConfig(s).ok());
}

TEST_CASE("Daemon keys: Describe reads back as a .env file") {
  absl::StatusOr<ServerConfig> c = LoadServerConfig(
      EnvOnly({{"CORS_ORIGINS", "https://a.example,https://b.example"},
               {"API_PORT", "9100"},
               {"SHUTDOWN_GRACE_SECONDS", "0.5"}}));
  REQUIRE(c.ok());
  char tmpl[] = "/tmp/pggit-server-config-XXXXXX";
  REQUIRE(mkdtemp(tmpl) != nullptr);
  std::string path = std::string(tmpl) + "/.env";
  std::ofstream(path) << ServerConfigLoader().Describe(*c);
  ConfigSources s;
  s.dotenv_path = path;
  absl::StatusOr<ServerConfig> back = LoadServerConfig(s);
  REQUIRE_MESSAGE(back.ok(), back.status().ToString());
  CHECK(back->cors_origins == c->cors_origins);
  CHECK(back->api_port == 9100);
  CHECK(back->shutdown_grace == absl::Milliseconds(500));
  std::remove(path.c_str());
  rmdir(tmpl);
}

// docs/CONFIGURATION.md embeds the daemon's whole table (library keys and
// its own) between two markers. Run with PGGITOPS_UPDATE_DOCS=1 to rewrite
// it after changing a key.
TEST_CASE("docs/CONFIGURATION.md: the key table is current") {
  std::string path =
      std::string(PGGITOPS_SOURCE_DIR) + "/docs/CONFIGURATION.md";
  std::ifstream in(path);
  REQUIRE_MESSAGE(in.is_open(), "cannot open ", path);
  std::stringstream text;
  text << in.rdbuf();
  std::string doc = text.str();
  const std::string begin = "<!-- BEGIN KEY TABLE (generated) -->\n";
  const std::string end = "<!-- END KEY TABLE -->";
  size_t b = doc.find(begin);
  size_t e = doc.find(end);
  REQUIRE(b != std::string::npos);
  REQUIRE(e != std::string::npos);
  std::string current = doc.substr(b + begin.size(), e - b - begin.size());
  std::string wanted = ServerConfigLoader().MarkdownTable();
  const char* update = std::getenv("PGGITOPS_UPDATE_DOCS");
  if (current != wanted && update != nullptr && std::string(update) == "1") {
    doc.replace(b + begin.size(), current.size(), wanted);
    std::ofstream(path) << doc;
    current = wanted;
  }
  CHECK_MESSAGE(current == wanted,
                "docs/CONFIGURATION.md is stale: run this test with "
                "PGGITOPS_UPDATE_DOCS=1");
}

TEST_CASE("Help: one line per key, the daemon's among the library's") {
  std::vector<std::string> lines =
      absl::StrSplit(ServerConfigLoader().Help(), '\n', absl::SkipEmpty());
  std::vector<std::string> names = ServerConfigLoader().KeyNames();
  REQUIRE(lines.size() == names.size());
  for (size_t i = 0; i < lines.size(); ++i) {
    CAPTURE(names[i]);
    CHECK(absl::StrContains(lines[i], absl::StrCat(" ", names[i], " ")));
  }
}

TEST_CASE("CheckApiHost: IP literals and localhost only") {
  for (const char* ok : {"127.0.0.1", "0.0.0.0", "::", "::1", "fe80::1",
                         "localhost", "10.1.2.3"}) {
    CAPTURE(ok);
    CHECK(CheckApiHost(ok).empty());
  }
  for (const char* bad :
       {"", "example.com", "127.0.0.1:80", "[::1]", "Localhost", "1.2.3"}) {
    CAPTURE(bad);
    CHECK_FALSE(CheckApiHost(bad).empty());
  }
}

TEST_CASE("CheckTrustedProxy: addresses and CIDRs with a valid prefix") {
  for (const char* ok : {"10.0.0.1", "10.0.0.0/8", "0.0.0.0/0", "::1",
                         "fd00::/8", "2001:db8::/128", "192.168.0.0/32"}) {
    CAPTURE(ok);
    CHECK(CheckTrustedProxy(ok).empty());
  }
  for (const char* bad :
       {"10.0.0.0/33", "::/129", "10.0.0.0/", "/8", "10.0.0.0/8/8",
        "10.0.0.0/x", "host", "10.0.0.0/-1", "10.0.0.0/0008"}) {
    CAPTURE(bad);
    CHECK(absl::StartsWith(CheckTrustedProxy(bad), "entry \""));
  }
}

TEST_CASE("CheckCorsOrigin: * or scheme://host[:port]") {
  for (const char* ok : {"*", "https://app.example", "http://localhost:3000",
                         "https://[::1]:8443"}) {
    CAPTURE(ok);
    CHECK(CheckCorsOrigin(ok).empty());
  }
  for (const char* bad :
       {"app.example", "https://app.example/", "ftp://x", "https://",
        "https://a.example:0", "https://u@a.example", "https://a.example?x"}) {
    CAPTURE(bad);
    CHECK_FALSE(CheckCorsOrigin(bad).empty());
  }
}

}  // namespace
}  // namespace pggitops::server
