// File: pggitops/config.h
//
// The configuration of pggit-api and of the library components it wires
// (CONTRACT section 3). Sources, lowest precedence first: built-in defaults <
// YAML file (--config FILE or PGGIT_CONFIG) < `.env` file in the working
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
#include <map>
#include <string>
#include <utility>
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
// next key=) become ***.
PGGITOPS_EXPORT std::string RedactSecrets(const std::string& connection_string);

// API_WORKERS when unset: 2 x the online cores, at least 4.
PGGITOPS_EXPORT int DefaultApiWorkers();

// Plain data. Field comments give the key; CONTRACT section 3 and
// docs/CONFIGURATION.md give defaults and ranges.
struct PGGITOPS_EXPORT Config {
  // HTTP server
  std::string api_host = "127.0.0.1";  // API_HOST
  int api_port = 8000;                 // API_PORT
  int api_workers = 4;  // API_WORKERS (default: 2 x cores, at least 4)
  int api_max_connections = 10000;           // API_MAX_CONNECTIONS
  int api_max_connections_per_client = 256;  // API_MAX_CONNECTIONS_PER_CLIENT
  absl::Duration api_header_timeout = absl::Seconds(10);  // API_HEADER_TIMEOUT
  absl::Duration api_body_timeout = absl::Seconds(30);    // API_BODY_TIMEOUT
  int api_max_header_bytes = 16384;  // API_MAX_HEADER_BYTES
  absl::Duration api_keepalive_timeout =
      absl::Seconds(15);                     // API_KEEPALIVE_TIMEOUT
  int api_keepalive_max = 10000;             // API_KEEPALIVE_MAX
  LogLevel api_log_level = LogLevel::kInfo;  // API_LOG_LEVEL
  std::string log_file;                      // PGGIT_LOG_FILE

  // Database and pool
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

  // Cache
  bool cache_enabled = true;            // CACHE_ENABLED
  int64_t cache_max_bytes = 104857600;  // CACHE_MAX_BYTES
  absl::Duration cache_ttl_webhook_list =
      absl::Seconds(120);  // CACHE_TTL_WEBHOOK_LIST
  absl::Duration cache_ttl_alerts_list =
      absl::Seconds(60);  // CACHE_TTL_ALERTS_LIST
  absl::Duration cache_ttl_dashboard =
      absl::Seconds(300);  // CACHE_TTL_DASHBOARD
  std::string redis_url;   // REDIS_URL
  absl::Duration redis_timeout = absl::Milliseconds(250);  // REDIS_TIMEOUT

  // HTTP policy
  std::vector<std::string> cors_origins;  // CORS_ORIGINS
  int rate_limit_per_minute = 100;        // RATE_LIMIT_PER_MINUTE (0 disables)
  int rate_limit_burst = 20;              // RATE_LIMIT_BURST
  bool rate_limit_exempt_loopback = false;  // RATE_LIMIT_EXEMPT_LOOPBACK
  int rate_limit_ipv6_prefix = 64;          // RATE_LIMIT_IPV6_PREFIX
  int64_t alert_context_max_bytes = 65536;  // ALERT_CONTEXT_MAX_BYTES
  std::vector<std::string>
      trusted_proxies;         // TRUSTED_PROXIES (addresses or CIDRs)
  int sse_max_streams = 1000;  // SSE_MAX_STREAMS
  absl::Duration sse_status_interval = absl::Seconds(5);  // SSE_STATUS_INTERVAL
  absl::Duration sse_keepalive_interval =
      absl::Seconds(15);             // SSE_KEEPALIVE_INTERVAL
  bool metrics_require_key = false;  // METRICS_REQUIRE_KEY

  // Webhook delivery
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

  // Health and lifecycle
  absl::Duration health_cache = absl::Seconds(2);  // HEALTH_CACHE_SECONDS
  absl::Duration health_check_timeout =
      absl::Seconds(4);                                 // HEALTH_CHECK_TIMEOUT
  absl::Duration sse_query_timeout = absl::Seconds(2);  // SSE_QUERY_TIMEOUT
  absl::Duration webhook_purge_interval =
      absl::Hours(1);  // WEBHOOK_PURGE_INTERVAL
  absl::Duration shutdown_timeout = absl::Seconds(30);  // SHUTDOWN_TIMEOUT
  absl::Duration shutdown_grace = absl::Seconds(5);  // SHUTDOWN_GRACE_SECONDS
  absl::Duration api_key_cache = absl::Seconds(2);   // API_KEY_CACHE_SECONDS
  std::string environment = "production";            // ENVIRONMENT

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

// Log options from API_LOG_LEVEL and PGGIT_LOG_FILE (no sink).
PGGITOPS_EXPORT LogOptions LogOptionsFromConfig(const Config& config);

}  // namespace pggitops

#endif  // PGGITOPS_INCLUDE_CONFIG_H_
