// The daemon's keys, registered into the library's ConfigLoader. Each key's
// default is the initialiser of its ServerConfig field.
#include "server/server_config.h"

#include <arpa/inet.h>
#include <unistd.h>

#include <algorithm>
#include <cstdlib>
#include <string>
#include <type_traits>
#include <utility>
#include <variant>
#include <vector>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "pggitops/log.h"
#include "pggitops/text.h"

namespace pggitops::server {
namespace {

using Member = std::variant<int ServerConfig::*, absl::Duration ServerConfig::*,
                            bool ServerConfig::*, std::string ServerConfig::*,
                            std::vector<std::string> ServerConfig::*>;

// One daemon key: its definition and the field it fills.
struct DaemonKey {
  ConfigKey key;
  Member member;
};

const ServerConfig& Defaults() {
  static const ServerConfig* d = new ServerConfig();
  return *d;
}

DaemonKey Make(const char* name, ConfigKey::Type type, Member member,
               double min, double max, const char* help, const char* before) {
  DaemonKey k;
  k.key.name = name;
  k.key.type = type;
  k.key.min = min;
  k.key.max = max;
  k.key.help = help;
  k.key.before = before;
  k.member = member;
  std::visit(
      [&k](auto m) {
        using T = std::decay_t<decltype(Defaults().*m)>;
        if constexpr (std::is_same_v<T, int>) {
          k.key.default_value = int64_t{Defaults().*m};
        } else {
          k.key.default_value = Defaults().*m;
        }
      },
      member);
  return k;
}

DaemonKey Int(const char* name, int ServerConfig::*m, int min, int max,
              const char* help, const char* before) {
  return Make(name, ConfigKey::Type::kInt, m, min, max, help, before);
}
DaemonKey Seconds(const char* name, absl::Duration ServerConfig::*m, double min,
                  double max, const char* help, const char* before) {
  return Make(name, ConfigKey::Type::kSeconds, m, min, max, help, before);
}
DaemonKey Bool(const char* name, bool ServerConfig::*m, const char* help,
               const char* before) {
  return Make(name, ConfigKey::Type::kBool, m, 0, 1, help, before);
}
DaemonKey Checked(DaemonKey k, std::string (*check)(const std::string&),
                  const char* range_text) {
  k.key.check = check;
  k.key.range_text = range_text;
  return k;
}

// Where the daemon's keys sit among the library's in help and docs.
constexpr char kBeforeLog[] = "API_LOG_LEVEL";
constexpr char kBeforeRedis[] = "REDIS_URL";
constexpr char kBeforeRate[] = "RATE_LIMIT_PER_MINUTE";
constexpr char kBeforeWebhook[] = "WEBHOOK_WORKERS";
constexpr char kBeforePurge[] = "WEBHOOK_PURGE_INTERVAL";
constexpr char kBeforeKeys[] = "API_KEY_CACHE_SECONDS";

std::vector<DaemonKey> BuildKeys() {
  using C = ServerConfig;
  using T = ConfigKey::Type;
  DaemonKey workers = Int("API_WORKERS", &C::api_workers, 1, 1024,
                          "threads that serve requests; a connection holds "
                          "one only while a request of it is being served",
                          kBeforeLog);
  workers.key.default_value = int64_t{std::min(1024, DefaultApiWorkers())};
  workers.key.default_text = "2 x cores, at least 4";
  return {
      // HTTP server
      Checked(Make("API_HOST", T::kString, &C::api_host, 0, 0,
                   "listen address; with no API key only loopback is allowed",
                   kBeforeLog),
              CheckApiHost, "IPv4/IPv6 address or localhost"),
      Int("API_PORT", &C::api_port, 1, 65535, "listen port", kBeforeLog),
      workers,
      Int("API_MAX_CONNECTIONS", &C::api_max_connections, 1, 1000000,
          "open connections; at the cap the longest-idle one is closed, and "
          "a new one is refused (503) only when all are busy",
          kBeforeLog),
      Int("API_MAX_CONNECTIONS_PER_CLIENT", &C::api_max_connections_per_client,
          1, 1000000,
          "open connections from one client address (loopback and "
          "TRUSTED_PROXIES peers are not capped)",
          kBeforeLog),
      Seconds("API_HEADER_TIMEOUT", &C::api_header_timeout, 0.01, 3600,
              "the whole request head must arrive within this (else 408)",
              kBeforeLog),
      Seconds("API_BODY_TIMEOUT", &C::api_body_timeout, 0.01, 3600,
              "the whole request body must arrive within this (else 408)",
              kBeforeLog),
      Int("API_MAX_HEADER_BYTES", &C::api_max_header_bytes, 1024, 1048576,
          "request line plus headers; larger is 431 (414 for the line)",
          kBeforeLog),
      Seconds("API_KEEPALIVE_TIMEOUT", &C::api_keepalive_timeout, 0.001, 3600,
              "idle keep-alive connections are closed after this (they hold "
              "no worker)",
              kBeforeLog),
      Int("API_KEEPALIVE_MAX", &C::api_keepalive_max, 1, 1000000,
          "requests served on one keep-alive connection before it is closed",
          kBeforeLog),
      // Page caches
      Seconds("CACHE_TTL_WEBHOOK_LIST", &C::cache_ttl_webhook_list, 0.001,
              86400, "lifetime of cached webhook lists", kBeforeRedis),
      Seconds("CACHE_TTL_ALERTS_LIST", &C::cache_ttl_alerts_list, 0.001, 86400,
              "lifetime of cached alert lists", kBeforeRedis),
      Seconds("CACHE_TTL_DASHBOARD", &C::cache_ttl_dashboard, 0.001, 86400,
              "lifetime of the cached dashboard summary", kBeforeRedis),
      // HTTP policy
      Checked(Make("CORS_ORIGINS", T::kList, &C::cors_origins, 0, 0,
                   "origins allowed by CORS", kBeforeRate),
              CheckCorsOrigin,
              "JSON or comma list of * or http(s)://host[:port]"),
      Checked(Make("TRUSTED_PROXIES", T::kList, &C::trusted_proxies, 0, 0,
                   "peers whose X-Forwarded-For is believed for the client "
                   "address",
                   kBeforeWebhook),
              CheckTrustedProxy, "JSON or comma list of IP addresses or CIDRs"),
      Int("SSE_MAX_STREAMS", &C::sse_max_streams, 0, 100000,
          "open /api/v1/alerts/stream connections, more get 503; an open "
          "stream holds no worker",
          kBeforeWebhook),
      Seconds("SSE_STATUS_INTERVAL", &C::sse_status_interval, 0.01, 3600,
              "period of system_status stream events", kBeforeWebhook),
      Seconds("SSE_KEEPALIVE_INTERVAL", &C::sse_keepalive_interval, 0.01, 3600,
              "period of keep-alive comment lines on streams", kBeforeWebhook),
      Bool("METRICS_REQUIRE_KEY", &C::metrics_require_key,
           "put /metrics behind a read key", kBeforeWebhook),
      Seconds("SSE_QUERY_TIMEOUT", &C::sse_query_timeout, 0.01, 600,
              "the alert stream's database reads wait at most this for a "
              "pooled connection",
              kBeforePurge),
      // Lifecycle
      Seconds("SHUTDOWN_TIMEOUT", &C::shutdown_timeout, 0.1, 3600,
              "time to drain requests and deliveries on SIGTERM", kBeforeKeys),
      Seconds("SHUTDOWN_GRACE_SECONDS", &C::shutdown_grace, 0, 300,
              "on SIGTERM, /health/ready answers 503 this long before the "
              "listener closes",
              kBeforeKeys),
  };
}

const std::vector<DaemonKey>& DaemonKeys() {
  static const std::vector<DaemonKey>* keys =
      new std::vector<DaemonKey>(BuildKeys());
  return *keys;
}

// Copies one registered value into its field; a missing or mistyped value
// leaves the default.
void CopyOut(const DaemonKey& k, const ConfigValue& v, ServerConfig* out) {
  std::visit(
      [&v, out](auto m) {
        using T = std::decay_t<decltype(out->*m)>;
        if constexpr (std::is_same_v<T, int>) {
          if (const int64_t* i = std::get_if<int64_t>(&v)) {
            out->*m = static_cast<int>(*i);
          }
        } else if (const T* x = std::get_if<T>(&v)) {
          out->*m = *x;
        }
      },
      k.member);
}

bool IsIpLiteral(const std::string& s, int* max_prefix) {
  unsigned char buf[16];
  if (inet_pton(AF_INET, s.c_str(), buf) == 1) {
    *max_prefix = 32;
    return true;
  }
  if (inet_pton(AF_INET6, s.c_str(), buf) == 1) {
    *max_prefix = 128;
    return true;
  }
  return false;
}

bool AllDigits(absl::string_view s) {
  if (s.empty()) return false;
  for (char c : s) {
    if (!absl::ascii_isdigit(static_cast<unsigned char>(c))) return false;
  }
  return true;
}

}  // namespace

std::vector<ConfigKey> DaemonConfigKeys() {
  std::vector<ConfigKey> keys;
  for (const DaemonKey& k : DaemonKeys()) keys.push_back(k.key);
  return keys;
}

int DefaultApiWorkers() {
  long cores = sysconf(_SC_NPROCESSORS_ONLN);
  return std::max(4, 2 * static_cast<int>(std::max(1L, cores)));
}

std::string CheckApiHost(const std::string& value) {
  int max_prefix = 0;
  if (value == "localhost" || IsIpLiteral(value, &max_prefix)) return "";
  return "must be an IPv4 or IPv6 address (e.g. 127.0.0.1, 0.0.0.0, ::1) or "
         "localhost";
}

std::string CheckCorsOrigin(const std::string& value) {
  if (value == "*") return "";
  std::string host;
  int port = 0;
  absl::string_view rest = value;
  bool ok = absl::ConsumePrefix(&rest, "http://") ||
            absl::ConsumePrefix(&rest, "https://");
  for (char c : rest) {
    if (static_cast<unsigned char>(c) < 0x20 || c == 0x7f) ok = false;
  }
  if (ok && rest.find_first_of("/?#@ ") == absl::string_view::npos &&
      SplitHostPort(rest, &host, &port).empty()) {
    return "";
  }
  return absl::StrCat("entry \"", value,
                      "\" is not an origin: use * or http(s)://host[:port] "
                      "without a path");
}

std::string CheckTrustedProxy(const std::string& value) {
  std::pair<std::string, std::string> parts =
      absl::StrSplit(value, absl::MaxSplits('/', 1));
  int max_prefix = 0;
  bool ok = IsIpLiteral(parts.first, &max_prefix);
  if (ok && absl::StrContains(value, '/')) {
    int prefix = -1;
    ok = AllDigits(parts.second) && parts.second.size() <= 3 &&
         absl::SimpleAtoi(parts.second, &prefix) && prefix <= max_prefix;
  }
  if (ok) return "";
  return absl::StrCat("entry \"", value,
                      "\" is not an IPv4/IPv6 address or CIDR (e.g. 10.0.0.1, "
                      "10.0.0.0/8, fd00::/8)");
}

const ConfigLoader& ServerConfigLoader() {
  static const ConfigLoader* loader = [] {
    auto* l = new ConfigLoader();
    for (const DaemonKey& k : DaemonKeys()) {
      absl::Status s = l->Register(k.key);
      if (!s.ok()) {  // a programming error in the table above
        Log::Error("daemon configuration key not registered",
                   {{"key", k.key.name}, {"error", std::string(s.message())}});
        std::abort();
      }
    }
    return l;
  }();
  return *loader;
}

ServerConfig ServerConfigFrom(Config config) {
  ServerConfig out;
  static_cast<Config&>(out) = std::move(config);
  for (const DaemonKey& k : DaemonKeys()) {
    auto it = out.registered.find(k.key.name);
    CopyOut(k, it != out.registered.end() ? it->second : k.key.default_value,
            &out);
  }
  return out;
}

absl::StatusOr<ServerConfig> LoadServerConfig(const ConfigSources& sources) {
  absl::StatusOr<Config> config = ServerConfigLoader().Load(sources);
  if (!config.ok()) return config.status();
  return ServerConfigFrom(*std::move(config));
}

}  // namespace pggitops::server
