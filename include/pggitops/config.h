// File: pggitops/config.h
//
// The configuration of the library components (CONTRACT section 3), and a
// loader that applications such as pggit-api extend with their own keys
// (ConfigLoader::Register). Sources, lowest precedence first: built-in defaults
// < YAML file (--config FILE or PGGIT_CONFIG) < `.env` file in the working
// directory < process environment < command-line flags. Every key has one
// name; it is spelled
//   DATABASE_POOL_SIZE     in the environment and in .env,
//   DATABASE_POOL_SIZE or database_pool_size   in the YAML file (a flat map),
//   --database-pool-size=N or --database-pool-size N   as a flag.
// Every value is validated; the first invalid one fails LoadConfig with one
// line naming the key, its source and its allowed range. docs/CONFIGURATION.md
// lists every key with its default and range.
//
// The functions below keep no state between calls and are safe to call from
// several threads at once; Config and ConfigSources are plain values.
#ifndef PGGITOPS_INCLUDE_CONFIG_H_
#define PGGITOPS_INCLUDE_CONFIG_H_

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <utility>
#include <variant>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "pggitops/export.h"
#include "pggitops/log.h"

namespace pggitops {

// The one redaction of connection strings (DATABASE_URL, REDIS_URL, and
// any libpq or Redis URL): the password of a URI's userinfo, a lone
// credential ("redis://secret@host"), and the value of every key ending in
// "password" (key/value strings and URI queries, quoted or not, up to the
// next key=) become ***. Where a URI is ambiguous (several '@') the longer
// reading is hidden. Redacted text redacts to itself.
PGGITOPS_EXPORT std::string RedactSecrets(const std::string& connection_string);

// The value of a key registered with ConfigLoader::Register (below):
//   int64_t          ConfigKey::Type::kInt, kInt64
//   absl::Duration   kSeconds
//   bool             kBool
//   std::string      kString, kEnum
//   std::vector<std::string>   kList
using ConfigValue = std::variant<int64_t, absl::Duration, bool, std::string,
                                 std::vector<std::string>>;

// A key that the application reads, not a library component (the daemon's
// API_PORT, CORS_ORIGINS, ...). Once registered, the key is read from the
// same sources with the same precedence and spellings as the library's own
// keys, validated with the same messages, and listed by Help, Describe and
// MarkdownTable.
struct PGGITOPS_EXPORT ConfigKey {
  enum class Type {
    kInt,      // integer text, from min to max
    kInt64,    // the same, for values beyond int
    kSeconds,  // seconds as a number (fractions allowed), from min to max
    kBool,     // true/false, 1/0, yes/no, on/off
    kString,   // checked by `check`
    kEnum,     // one of `allowed` (case-insensitive; stored lower case)
    kList,     // JSON list of strings or comma list, each entry `check`ed
  };
  // Environment spelling: upper-case letters, digits and '_', starting with
  // a letter ("API_PORT"). The flag is --api-port, the YAML key API_PORT or
  // api_port.
  std::string name;
  Type type = Type::kString;
  double min = 0;  // numeric types: inclusive range
  double max = 0;
  std::vector<std::string> allowed;  // kEnum: accepted values, lower case
  // Used when no source sets the key; must hold the type's alternative of
  // ConfigValue (an int64_t for kInt, ...).
  ConfigValue default_value;
  // Shown in help and docs instead of default_value ("2 x cores"); optional.
  std::string default_text;
  // kString, kList: what is allowed, short ("IPv4/IPv6 address").
  std::string range_text;
  // One line: the meaning of the key.
  std::string help;
  // May hold a password: shown redacted in errors and Describe.
  bool secret = false;
  // kString (the value) and kList (each entry): "" when acceptable, else the
  // reason, phrased to follow "KEY=value (source): ". Optional.
  std::function<std::string(const std::string&)> check;
  // Place the key before this one in Help, Describe and MarkdownTable; empty
  // or unknown: after every other key.
  std::string before;
};

// Plain data: the keys that library components read (the daemon's own keys,
// such as API_PORT or CORS_ORIGINS, are registered by it: ConfigLoader
// below). Field comments give the key; docs/CONFIGURATION.md gives defaults
// and ranges.
struct PGGITOPS_EXPORT Config {
  // Logging (LogOptionsFromConfig)
  LogLevel api_log_level = LogLevel::kInfo;  // API_LOG_LEVEL
  std::string log_file;                      // PGGIT_LOG_FILE

  // Database and pool (PoolOptionsFromConfig, PgListenerOptionsFromConfig)
  std::string database_url;             // DATABASE_URL (required)
  int database_pool_size = 20;          // DATABASE_POOL_SIZE
  int database_pool_max_overflow = 10;  // DATABASE_POOL_MAX_OVERFLOW
  absl::Duration database_pool_timeout =
      absl::Seconds(30);  // DATABASE_POOL_TIMEOUT
  absl::Duration database_pool_recycle =
      absl::Seconds(3600);             // DATABASE_POOL_RECYCLE
  bool database_pool_pre_ping = true;  // DATABASE_POOL_PRE_PING
  absl::Duration database_pool_pre_ping_idle =
      absl::Seconds(10);  // DATABASE_POOL_PRE_PING_IDLE
  absl::Duration database_connect_timeout =
      absl::Seconds(5);  // DATABASE_CONNECT_TIMEOUT
  absl::Duration database_statement_timeout =
      absl::Seconds(30);  // DATABASE_STATEMENT_TIMEOUT
  absl::Duration database_slow_query =
      absl::Seconds(1);  // DATABASE_SLOW_QUERY_SECONDS

  // Cache (CacheOptionsFromConfig)
  bool cache_enabled = true;                               // CACHE_ENABLED
  int64_t cache_max_bytes = 104857600;                     // CACHE_MAX_BYTES
  std::string redis_url;                                   // REDIS_URL
  absl::Duration redis_timeout = absl::Milliseconds(250);  // REDIS_TIMEOUT

  // Rate limiter (RateLimiterOptionsFromConfig)
  int rate_limit_per_minute = 100;          // RATE_LIMIT_PER_MINUTE (0 off)
  int rate_limit_burst = 20;                // RATE_LIMIT_BURST
  bool rate_limit_exempt_loopback = false;  // RATE_LIMIT_EXEMPT_LOOPBACK
  int rate_limit_ipv6_prefix = 64;          // RATE_LIMIT_IPV6_PREFIX
  // Alerts
  int64_t alert_context_max_bytes = 65536;  // ALERT_CONTEXT_MAX_BYTES

  // Webhook delivery (DeliveryOptionsFromConfig)
  int webhook_workers = 2;          // WEBHOOK_WORKERS
  int webhook_max_in_flight = 256;  // WEBHOOK_MAX_IN_FLIGHT
  int webhook_max_in_flight_per_endpoint =
      8;                         // WEBHOOK_MAX_IN_FLIGHT_PER_ENDPOINT
  int webhook_batch_size = 100;  // WEBHOOK_BATCH_SIZE
  absl::Duration webhook_poll_interval =
      absl::Seconds(5);                              // WEBHOOK_POLL_INTERVAL
  absl::Duration webhook_lease = absl::Seconds(30);  // WEBHOOK_LEASE_SECONDS
  int webhook_retention_days = 14;                   // WEBHOOK_RETENTION_DAYS
  absl::Duration webhook_disable_after =
      absl::Hours(24);                         // WEBHOOK_DISABLE_AFTER_HOURS
  bool webhook_allow_private_targets = false;  // WEBHOOK_ALLOW_PRIVATE_TARGETS
  int webhook_breaker_threshold = 5;           // WEBHOOK_BREAKER_THRESHOLD
  absl::Duration webhook_breaker_open =
      absl::Seconds(30);  // WEBHOOK_BREAKER_OPEN_SECONDS
  absl::Duration webhook_breaker_max_open =
      absl::Minutes(10);  // WEBHOOK_BREAKER_MAX_OPEN_SECONDS

  // Health (HealthOptionsFromConfig) and the rest
  absl::Duration health_cache = absl::Seconds(2);  // HEALTH_CACHE_SECONDS
  absl::Duration health_check_timeout =
      absl::Seconds(4);  // HEALTH_CHECK_TIMEOUT
  absl::Duration webhook_purge_interval =
      absl::Hours(1);                               // WEBHOOK_PURGE_INTERVAL
  absl::Duration api_key_cache = absl::Seconds(2);  // API_KEY_CACHE_SECONDS
  std::string environment = "production";           // ENVIRONMENT

  // The values of the keys registered with ConfigLoader::Register, by key
  // name, typed as ConfigKey::Type says. Filled by ConfigLoader::Load for
  // every registered key (its default when unset); empty otherwise.
  std::map<std::string, ConfigValue> registered;

  // Where each key's value came from: KEY -> "default", "yaml", ".env",
  // "env" or "flag". Filled by LoadConfig.
  std::map<std::string, std::string> value_sources;

  bool is_development() const { return environment == "development"; }
};

// Where LoadConfig reads from. ParseCommandLine() fills one from argv and
// envp; tests build it by hand.
struct PGGITOPS_EXPORT ConfigSources {
  // YAML file; empty means the PGGIT_CONFIG entry of `environment`, if any.
  // A named file that does not exist is an error.
  std::string yaml_path;
  // KEY=VALUE file; a missing file is not an error. Empty: none.
  std::string dotenv_path = ".env";
  // The process environment (only known keys are read; PGGIT_CONFIG names
  // the YAML file when yaml_path is empty).
  std::map<std::string, std::string> environment;
  // Flags as (key, value) with the key in flag spelling without the leading
  // dashes, e.g. {"database-pool-size", "5"}; in command-line order, last one
  // wins. An unknown name fails LoadConfig.
  std::vector<std::pair<std::string, std::string>> flags;
};

// Splits argv into config flags and positional words (the subcommand and
// its arguments). Accepts --key=value, --key value, --config FILE (or
// --config=FILE), -h/--help anywhere, and a bare --flag for boolean keys
// (meaning true; a following true/false/1/0/yes/no/on/off word is taken as
// its value). Flag names are the key names in lower case with '-' for '_'.
// The first word that is not a flag starts the positionals; after it, words
// and flags that are not config keys (e.g. `keys create --name N`) are kept
// as positionals verbatim, in order. Before it, an unknown flag is an error
// naming it. A bare "--" makes every later word positional. The environment
// is copied from `envp` (NULL-terminated, may be null).
struct PGGITOPS_EXPORT CommandLine {
  ConfigSources sources;
  std::vector<std::string> positionals;
  bool help = false;  // --help or -h seen
};
PGGITOPS_EXPORT absl::StatusOr<CommandLine> ParseCommandLine(
    int argc, const char* const* argv, const char* const* envp);

// Merges the sources, validates every value and returns the effective
// config. Error: kInvalidArgument with one line, e.g.
//   DATABASE_POOL_SIZE=0 (env): must be an integer from 1 to 1000
// where the source is "yaml", ".env", "env" or "flag" and passwords in the
// shown value are replaced by "***". Unknown keys in the YAML file or the
// flags are errors; unknown keys in .env and the environment are ignored.
PGGITOPS_EXPORT absl::StatusOr<Config> LoadConfig(const ConfigSources& sources);

// Returns "KEY=value  # source" lines for every key, in table order, with
// passwords in URLs and DSNs replaced by "***"; the source is that of
// value_sources ("default", "yaml", ".env", "env", "flag"), or "program"
// for a value that differs from the default without a recorded source.
// Values that need it are double-quoted, so the output reads back as .env.
PGGITOPS_EXPORT std::string DescribeConfig(const Config& config);

// One line per key: name, default, allowed range and meaning; for --help.
PGGITOPS_EXPORT std::string ConfigHelp();

// The key table the functions above read, plus keys an application
// registers: the application's own settings then come from the same sources
// with the same precedence, spellings, validation and messages, and appear
// in --help, Describe and the documentation table. The free functions above
// are a ConfigLoader with no registered key.
//
//   ConfigLoader loader;
//   ConfigKey port;
//   port.name = "MYAPP_PORT";
//   port.type = ConfigKey::Type::kInt;
//   port.min = 1;
//   port.max = 65535;
//   port.default_value = int64_t{8080};
//   port.help = "listen port";
//   absl::Status s = loader.Register(port);
//   absl::StatusOr<Config> config = loader.Load(sources);
//   int64_t p = std::get<int64_t>(config->registered.at("MYAPP_PORT"));
//
// Thread safety: Register is not thread-safe and must happen before the
// loader is used; the const methods may then be called from any thread.
class PGGITOPS_EXPORT ConfigLoader {
 public:
  // The library's keys only.
  ConfigLoader();
  ~ConfigLoader();
  ConfigLoader(const ConfigLoader& other);
  ConfigLoader& operator=(const ConfigLoader& other);

  // Adds `key` to the table. Error (the table unchanged): kInvalidArgument
  // when the name is not in environment spelling, is already a key (the
  // library's or one registered before), or its flag spelling is "config"
  // or "help"; when min > max, kEnum has no `allowed` value, or
  // default_value does not hold the type's alternative or is outside the
  // range (`check` is not applied to the default).
  absl::Status Register(const ConfigKey& key);

  // As the free functions of the same names, over this loader's keys.
  absl::StatusOr<CommandLine> ParseCommandLine(int argc,
                                               const char* const* argv,
                                               const char* const* envp) const;
  absl::StatusOr<Config> Load(const ConfigSources& sources) const;
  std::string Describe(const Config& config) const;
  std::string Help() const;
  // The Markdown table of every key (key, flag, default, allowed, meaning),
  // as docs/CONFIGURATION.md embeds it.
  std::string MarkdownTable() const;
  // The names of every key, in table order.
  std::vector<std::string> KeyNames() const;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

// Log options from API_LOG_LEVEL and PGGIT_LOG_FILE (no sink).
PGGITOPS_EXPORT LogOptions LogOptionsFromConfig(const Config& config);

}  // namespace pggitops

#endif  // PGGITOPS_INCLUDE_CONFIG_H_
