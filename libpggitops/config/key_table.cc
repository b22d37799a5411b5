// The table of configuration keys. Defaults live in the in-class
// initialisers of pggitops::Config; this table adds the name, type, range
// and meaning of each field.
#include <string>
#include <utility>
#include <vector>

#include "libpggitops/config/checks.h"
#include "libpggitops/config/key_spec.h"

namespace pggitops::internal::config {
namespace {

KeySpec Make(const char* name, KeyType type, MemberPtr member, double min,
             double max, const char* help) {
  KeySpec s;
  s.name = name;
  s.type = type;
  s.member = member;
  s.min = min;
  s.max = max;
  s.help = help;
  return s;
}

KeySpec Int(const char* name, int Config::*m, int min, int max,
            const char* help) {
  return Make(name, KeyType::kInt, m, min, max, help);
}
KeySpec Int64(const char* name, int64_t Config::*m, double min, double max,
              const char* help) {
  return Make(name, KeyType::kInt64, m, min, max, help);
}
KeySpec Seconds(const char* name, absl::Duration Config::*m, double min,
                double max, const char* help) {
  return Make(name, KeyType::kSeconds, m, min, max, help);
}
KeySpec Bool(const char* name, bool Config::*m, const char* help) {
  return Make(name, KeyType::kBool, m, 0, 1, help);
}
KeySpec Str(const char* name, std::string Config::*m, StringCheck check,
            const char* range_text, const char* help) {
  KeySpec s = Make(name, KeyType::kString, m, 0, 0, help);
  s.check = check;
  s.range_text = range_text;
  return s;
}
KeySpec Enum(const char* name, std::string Config::*m,
             std::vector<std::string> allowed, const char* help) {
  KeySpec s = Make(name, KeyType::kEnum, m, 0, 0, help);
  s.allowed = std::move(allowed);
  return s;
}
KeySpec WithDefault(KeySpec s, const char* default_text) {
  s.default_text = default_text;
  return s;
}
KeySpec Secret(KeySpec s) {
  s.secret = true;
  return s;
}

std::vector<KeySpec> BuildTable() {
  using C = Config;
  std::vector<KeySpec> t = {
      // Logging
      Make("API_LOG_LEVEL", KeyType::kLogLevel, &C::api_log_level, 0, 0,
           "least severe level logged (WARN means WARNING)"),
      Str("PGGIT_LOG_FILE", &C::log_file, CheckLogFile, "file path or empty",
          "also append warnings and errors as JSON lines here; reopened on "
          "SIGHUP"),
      // Database and pool
      WithDefault(
          Secret(Str("DATABASE_URL", &C::database_url, CheckDatabaseUrl,
                     "postgresql:// URI or libpq key=value string",
                     "PostgreSQL connection; the password is never shown")),
          "required"),
      Int("DATABASE_POOL_SIZE", &C::database_pool_size, 1, 1000,
          "persistent connections; size + max overflow must be at most 1000"),
      Int("DATABASE_POOL_MAX_OVERFLOW", &C::database_pool_max_overflow, 0, 999,
          "extra connections allowed under load, closed when returned"),
      Seconds("DATABASE_POOL_TIMEOUT", &C::database_pool_timeout, 0.001, 3600,
              "wait for a free connection before failing with 503 "
              "POOL_TIMEOUT"),
      Seconds("DATABASE_POOL_RECYCLE", &C::database_pool_recycle, 0.001, 604800,
              "a connection older than this is replaced at checkout"),
      Bool("DATABASE_POOL_PRE_PING", &C::database_pool_pre_ping,
           "check an idle connection with a ping before handing it out"),
      Seconds("DATABASE_POOL_PRE_PING_IDLE", &C::database_pool_pre_ping_idle, 0,
              3600, "ping only connections idle at least this long"),
      Seconds("DATABASE_CONNECT_TIMEOUT", &C::database_connect_timeout, 0.1,
              600, "time limit for opening one connection"),
      Seconds("DATABASE_STATEMENT_TIMEOUT", &C::database_statement_timeout,
              0.001, 86400, "statement_timeout of every pooled connection"),
      Seconds("DATABASE_SLOW_QUERY_SECONDS", &C::database_slow_query, 0.001,
              3600, "queries slower than this are logged and counted"),
      // Cache
      Bool("CACHE_ENABLED", &C::cache_enabled, "use the response cache"),
      Int64("CACHE_MAX_BYTES", &C::cache_max_bytes, 1048576, 68719476736.0,
            "in-process (L1) cache byte budget"),
      WithDefault(Secret(Str("REDIS_URL", &C::redis_url, CheckRedisUrl,
                             "empty, redis://[[user]:password@]host[:port][/db]"
                             " or unix:///path[?db=N&password=P]",
                             "enables the Redis L2 cache and cross-instance "
                             "invalidation; rediss:// (TLS) is refused")),
                  "unset"),
      Seconds("REDIS_TIMEOUT", &C::redis_timeout, 0.001, 60,
              "time limit of one Redis command; Redis is then skipped"),
      // Rate limiter and alerts
      Int("RATE_LIMIT_PER_MINUTE", &C::rate_limit_per_minute, 0, 1000000,
          "requests per minute per client address and instance; 0 disables"),
      Int("RATE_LIMIT_BURST", &C::rate_limit_burst, 1, 1000000,
          "requests a client may make at once above the per-minute pace"),
      Bool("RATE_LIMIT_EXEMPT_LOOPBACK", &C::rate_limit_exempt_loopback,
           "do not rate-limit loopback clients"),
      Int("RATE_LIMIT_IPV6_PREFIX", &C::rate_limit_ipv6_prefix, 1, 128,
          "IPv6 clients share one rate-limit bucket (and one connection cap) "
          "per prefix of this length"),
      Int64("ALERT_CONTEXT_MAX_BYTES", &C::alert_context_max_bytes, 256,
            16777216,
            "an alert's context, serialized, at most (larger is 422); list "
            "pages show larger ones as a marker"),
      // Webhook delivery
      Int("WEBHOOK_WORKERS", &C::webhook_workers, 1, 64,
          "dispatcher threads (each drives many deliveries)"),
      Int("WEBHOOK_MAX_IN_FLIGHT", &C::webhook_max_in_flight, 1, 100000,
          "concurrent deliveries overall"),
      Int("WEBHOOK_MAX_IN_FLIGHT_PER_ENDPOINT",
          &C::webhook_max_in_flight_per_endpoint, 1, 10000,
          "concurrent deliveries to one webhook, per instance (sizing: "
          "docs/delivery.md)"),
      Int("WEBHOOK_BATCH_SIZE", &C::webhook_batch_size, 1, 10000,
          "deliveries claimed at once"),
      Seconds("WEBHOOK_POLL_INTERVAL", &C::webhook_poll_interval, 0.01, 3600,
              "polling fallback when no NOTIFY arrives"),
      Seconds("WEBHOOK_LEASE_SECONDS", &C::webhook_lease, 0.1, 86400,
              "a claimed delivery whose worker died is claimable after this"),
      Make("WEBHOOK_RETENTION_DAYS", KeyType::kDays, &C::webhook_retention_days,
           1, 3650, "delivered rows and attempts older than this are purged"),
      Make("WEBHOOK_DISABLE_AFTER_HOURS", KeyType::kHours,
           &C::webhook_disable_after, 0.0001, 8760,
           "a webhook failing without a success this long is disabled"),
      WithDefault(
          Bool("WEBHOOK_ALLOW_PRIVATE_TARGETS",
               &C::webhook_allow_private_targets,
               "allow private, loopback and link-local webhook targets"),
          "false (true when ENVIRONMENT=development)"),
      Int("WEBHOOK_BREAKER_THRESHOLD", &C::webhook_breaker_threshold, 1, 1000,
          "consecutive failures that open a webhook's circuit breaker"),
      Seconds("WEBHOOK_BREAKER_OPEN_SECONDS", &C::webhook_breaker_open, 0.01,
              86400, "first open period of a breaker, doubling each time"),
      Seconds("WEBHOOK_BREAKER_MAX_OPEN_SECONDS", &C::webhook_breaker_max_open,
              0.01, 86400,
              "longest open period; at least WEBHOOK_BREAKER_OPEN_SECONDS"),
      // Health, API keys, environment
      Seconds("HEALTH_CACHE_SECONDS", &C::health_cache, 0, 3600,
              "deep-health results are reused this long"),
      Seconds("HEALTH_CHECK_TIMEOUT", &C::health_check_timeout, 0.01, 600,
              "time limit of each /health/deep check, so a hung dependency "
              "cannot hang the endpoint"),
      Seconds("WEBHOOK_PURGE_INTERVAL", &C::webhook_purge_interval, 1, 604800,
              "how often the retention purge of delivered rows and attempts "
              "runs"),
      Seconds("API_KEY_CACHE_SECONDS", &C::api_key_cache, 0.1, 300,
              "API keys are reloaded from the database this often; a key "
              "created or revoked on any instance takes effect within it"),
      Enum("ENVIRONMENT", &C::environment, {"production", "development"},
           "development relaxes only what is documented as relaxed"),
  };
  return t;
}

}  // namespace

const std::vector<KeySpec>& KeyTable() {
  static const std::vector<KeySpec>* table =
      new std::vector<KeySpec>(BuildTable());
  return *table;
}

}  // namespace pggitops::internal::config
