// config: the pggitops configuration loader, extended with a key of your
// application's own.
//
//   config [--config FILE.yaml] [--KEY VALUE ...] [--help]
//
// Every key, the library's (DATABASE_URL, DATABASE_POOL_SIZE, ...) and the
// registered EXAMPLE_GREETING and EXAMPLE_REPEAT, is read from the same
// sources, lowest precedence first: built-in default < YAML file (--config
// or $PGGIT_CONFIG) < ./.env < environment < command-line flag. The output
// says where each shown value came from. An invalid value fails with one
// line naming the key, its source and what is allowed (exit 1).
//
//   EXAMPLE_REPEAT=3 config --database-url postgresql://localhost/db
//   config --database-url postgresql://localhost/db --example-repeat 0
#include "pggitops/config.h"

#include <cstdint>
#include <cstdio>
#include <string>
#include <variant>

#include "absl/status/statusor.h"
#include "pggitops/connection_pool.h"

extern char** environ;

namespace {

// The application's keys. Registration refuses a name the library already
// has, a malformed name, or a default outside the key's own range.
absl::Status RegisterKeys(pggitops::ConfigLoader* loader) {
  pggitops::ConfigKey greeting;
  greeting.name = "EXAMPLE_GREETING";
  greeting.type = pggitops::ConfigKey::Type::kString;
  greeting.default_value = std::string("hello");
  greeting.range_text = "1 to 40 characters";
  greeting.check = [](const std::string& v) -> std::string {
    return v.empty() || v.size() > 40 ? "must be 1 to 40 characters" : "";
  };
  greeting.help = "what the example prints";
  absl::Status s = loader->Register(greeting);
  if (!s.ok()) return s;

  pggitops::ConfigKey repeat;
  repeat.name = "EXAMPLE_REPEAT";
  repeat.type = pggitops::ConfigKey::Type::kInt;
  repeat.min = 1;
  repeat.max = 5;
  repeat.default_value = int64_t{1};
  repeat.help = "how many times it prints it";
  return loader->Register(repeat);
}

}  // namespace

int main(int argc, char** argv) {
  pggitops::ConfigLoader loader;  // the library's keys
  if (absl::Status s = RegisterKeys(&loader); !s.ok()) {
    std::fprintf(stderr, "config: %s\n", s.ToString().c_str());
    return 1;
  }

  // Flags are the key names in lower case with '-' for '_'. Words that are
  // not flags are positionals (none are expected here).
  absl::StatusOr<pggitops::CommandLine> cli =
      loader.ParseCommandLine(argc, argv, environ);
  if (!cli.ok()) {
    std::fprintf(stderr, "config: %s (see --help)\n",
                 std::string(cli.status().message()).c_str());
    return 2;
  }
  if (cli->help) {
    std::printf("usage: config [--config FILE.yaml] [--KEY VALUE ...]\n\n%s",
                loader.Help().c_str());
    return 0;
  }
  if (!cli->positionals.empty()) {
    std::fprintf(stderr, "config: unexpected argument %s (see --help)\n",
                 cli->positionals.front().c_str());
    return 2;
  }

  absl::StatusOr<pggitops::Config> config = loader.Load(cli->sources);
  if (!config.ok()) {
    std::fprintf(stderr, "config: invalid configuration: %s\n",
                 std::string(config.status().message()).c_str());
    return 1;
  }

  // The library's keys are fields of Config; components take them through
  // their ...OptionsFromConfig functions.
  pggitops::PoolOptions pool = pggitops::PoolOptionsFromConfig(*config);
  std::printf("pool size %d (from %s)\n", pool.size,
              config->value_sources.at("DATABASE_POOL_SIZE").c_str());
  // Registered keys are in Config::registered, typed by their ConfigKey.
  const std::string& greeting =
      std::get<std::string>(config->registered.at("EXAMPLE_GREETING"));
  const int64_t repeat =
      std::get<int64_t>(config->registered.at("EXAMPLE_REPEAT"));
  for (int64_t i = 0; i < repeat; ++i) {
    std::printf("%s (EXAMPLE_GREETING from %s)\n", greeting.c_str(),
                config->value_sources.at("EXAMPLE_GREETING").c_str());
  }
  // Every key with its value and source, passwords redacted: what
  // `pggit-api check-config` prints. Reads back as a .env file.
  std::printf("\n%s", loader.Describe(*config).c_str());
  return 0;
}
