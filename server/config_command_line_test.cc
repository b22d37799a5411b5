// ParseCommandLine over the daemon's keys (the library's plus those
// server_config.cc registers): flags, --config, --help, positionals and
// subcommand flags.
#include <string>
#include <utility>
#include <vector>

#include "absl/strings/match.h"
#include "doctest/doctest.h"
#include "pggitops/config.h"
#include "server/server_config.h"

namespace pggitops::server {
namespace {

using Flags = std::vector<std::pair<std::string, std::string>>;
using Words = std::vector<std::string>;

absl::StatusOr<CommandLine> Parse(std::vector<const char*> args,
                                  std::vector<const char*> env = {}) {
  args.insert(args.begin(), "pggit-api");
  env.push_back(nullptr);
  return ServerConfigLoader().ParseCommandLine(static_cast<int>(args.size()),
                                               args.data(), env.data());
}

TEST_CASE("ParseCommandLine: no arguments") {
  absl::StatusOr<CommandLine> cl = Parse({});
  REQUIRE(cl.ok());
  CHECK(cl->positionals.empty());
  CHECK(cl->sources.flags.empty());
  CHECK(cl->sources.yaml_path.empty());
  CHECK(cl->sources.dotenv_path == ".env");
  CHECK_FALSE(cl->help);
}

TEST_CASE("ParseCommandLine: --key=value, --key value and bare booleans") {
  absl::StatusOr<CommandLine> cl =
      Parse({"--database-pool-size=5", "--api-port", "9000", "--cache-enabled",
             "--metrics-require-key", "off", "--api_workers", "8",
             "--trusted-proxies=", "serve"});
  REQUIRE_MESSAGE(cl.ok(), cl.status().ToString());
  CHECK(cl->sources.flags == Flags{{"database-pool-size", "5"},
                                   {"api-port", "9000"},
                                   {"cache-enabled", "true"},
                                   {"metrics-require-key", "off"},
                                   {"api-workers", "8"},
                                   {"trusted-proxies", ""}});
  CHECK(cl->positionals == Words{"serve"});
}

TEST_CASE("ParseCommandLine: a bare boolean before the subcommand") {
  absl::StatusOr<CommandLine> cl = Parse({"--cache-enabled", "migrate"});
  REQUIRE(cl.ok());
  CHECK(cl->sources.flags == Flags{{"cache-enabled", "true"}});
  CHECK(cl->positionals == Words{"migrate"});
}

TEST_CASE("ParseCommandLine: --config, -h and --help") {
  absl::StatusOr<CommandLine> cl =
      Parse({"--config", "/etc/pggit.yaml", "check-config"});
  REQUIRE(cl.ok());
  CHECK(cl->sources.yaml_path == "/etc/pggit.yaml");
  CHECK(cl->positionals == Words{"check-config"});
  cl = Parse({"serve", "--config=/tmp/a.yaml", "-h"});
  REQUIRE(cl.ok());
  CHECK(cl->sources.yaml_path == "/tmp/a.yaml");
  CHECK(cl->help);
  CHECK(cl->positionals == Words{"serve"});
  CHECK(Parse({"--help"})->help);
  CHECK_FALSE(Parse({"--config"}).ok());
  CHECK_FALSE(Parse({"--config="}).ok());
  CHECK_FALSE(Parse({"--config", "--api-port=1"}).ok());
}

TEST_CASE("ParseCommandLine: subcommand flags stay positional, in order") {
  absl::StatusOr<CommandLine> cl = Parse(
      {"--api-port=9000", "keys", "create", "--name", "N", "--scopes",
       "read,write", "--database-pool-size", "3", "--dry-run", "-v", "--x=y"});
  REQUIRE_MESSAGE(cl.ok(), cl.status().ToString());
  CHECK(cl->positionals == Words{"keys", "create", "--name", "N", "--scopes",
                                 "read,write", "--dry-run", "-v", "--x=y"});
  CHECK(cl->sources.flags ==
        Flags{{"api-port", "9000"}, {"database-pool-size", "3"}});
  cl = Parse({"keys", "revoke", "N"});
  REQUIRE(cl.ok());
  CHECK(cl->positionals == Words{"keys", "revoke", "N"});
}

TEST_CASE("ParseCommandLine: -- ends the flags") {
  absl::StatusOr<CommandLine> cl = Parse({"--", "--api-port=1", "x"});
  REQUIRE(cl.ok());
  CHECK(cl->positionals == Words{"--api-port=1", "x"});
  CHECK(cl->sources.flags.empty());
  cl = Parse({"keys", "--", "--api-port=1"});
  REQUIRE(cl.ok());
  CHECK(cl->positionals == Words{"keys", "--", "--api-port=1"});
  CHECK(cl->sources.flags.empty());
}

TEST_CASE("ParseCommandLine: unknown flags before the subcommand fail") {
  absl::StatusOr<CommandLine> cl = Parse({"--database-pool-sise=5", "serve"});
  REQUIRE_FALSE(cl.ok());
  CHECK(cl.status().code() == absl::StatusCode::kInvalidArgument);
  CHECK(cl.status().message() ==
        "unknown flag --database-pool-sise (did you mean "
        "--database-pool-size?)");
  CHECK(Parse({"-x", "serve"}).status().message() == "unknown flag -x");
  CHECK(absl::StartsWith(Parse({"--name", "N"}).status().message(),
                         "unknown flag --name"));
}

TEST_CASE("ParseCommandLine: a value flag without a value fails") {
  CHECK(Parse({"--api-port"}).status().message() ==
        "flag --api-port needs a value (API_PORT: 1 to 65535)");
  CHECK_FALSE(Parse({"--api-port", "--api-workers=3"}).ok());
  absl::StatusOr<CommandLine> cl = Parse({"--api-port", "-1"});
  REQUIRE(cl.ok());  // LoadConfig rejects -1, not the parser
  CHECK(cl->sources.flags == Flags{{"api-port", "-1"}});
}

TEST_CASE("ParseCommandLine: copies the environment") {
  absl::StatusOr<CommandLine> cl =
      Parse({}, {"DATABASE_URL=postgresql://h/db?a=b", "EMPTY=", "NOEQUALS",
                 "PGGIT_CONFIG=/etc/pggit.yaml"});
  REQUIRE(cl.ok());
  const auto& env = cl->sources.environment;
  CHECK(env.at("DATABASE_URL") == "postgresql://h/db?a=b");
  CHECK(env.at("EMPTY").empty());
  CHECK(env.count("NOEQUALS") == 0);
  CHECK(env.at("PGGIT_CONFIG") == "/etc/pggit.yaml");
  CHECK(ServerConfigLoader()
            .ParseCommandLine(1, std::vector<const char*>{"x", nullptr}.data(),
                              nullptr)
            .ok());
}

TEST_CASE("ParseCommandLine + LoadConfig: flags override the environment") {
  absl::StatusOr<CommandLine> cl = Parse(
      {"--api-port", "9001", "serve"},
      {"DATABASE_URL=postgresql://h/db", "API_PORT=9000", "API_WORKERS=8"});
  REQUIRE(cl.ok());
  cl->sources.dotenv_path = "";
  absl::StatusOr<ServerConfig> c = LoadServerConfig(cl->sources);
  REQUIRE(c.ok());
  CHECK(c->api_port == 9001);
  CHECK(c->value_sources.at("API_PORT") == "flag");
  CHECK(c->api_workers == 8);
  CHECK(c->value_sources.at("API_WORKERS") == "env");
}

// The library's free function knows only the library's keys.
TEST_CASE("ParseCommandLine without the daemon's keys refuses them") {
  std::vector<const char*> args = {"app", "--api-port=1", nullptr};
  absl::StatusOr<CommandLine> cl =
      pggitops::ParseCommandLine(2, args.data(), nullptr);
  REQUIRE_FALSE(cl.ok());
  CHECK(absl::StartsWith(cl.status().message(), "unknown flag --api-port"));
}

}  // namespace
}  // namespace pggitops::server
