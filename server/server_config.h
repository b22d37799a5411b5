// The daemon's configuration: the library's Config plus the keys only
// pggit-api reads (listen address, workers, edge limits, CORS, streams,
// trusted proxies, page TTLs, shutdown). Those keys are registered into the
// library's ConfigLoader, so one loader reads, validates, documents and
// describes every key with the same precedence and messages.
#ifndef PGGITOPS_SERVER_SERVER_CONFIG_H_
#define PGGITOPS_SERVER_SERVER_CONFIG_H_

#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "pggitops/config.h"

namespace pggitops::server {

// API_WORKERS when unset: 2 x the online cores, at least 4.
int DefaultApiWorkers();

// Plain data. Field comments give the key; docs/CONFIGURATION.md gives
// defaults and ranges (the defaults are these initialisers).
struct ServerConfig : Config {
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
      absl::Seconds(15);          // API_KEEPALIVE_TIMEOUT
  int api_keepalive_max = 10000;  // API_KEEPALIVE_MAX

  // Page caches of the read endpoints
  absl::Duration cache_ttl_webhook_list =
      absl::Seconds(120);  // CACHE_TTL_WEBHOOK_LIST
  absl::Duration cache_ttl_alerts_list =
      absl::Seconds(60);  // CACHE_TTL_ALERTS_LIST
  absl::Duration cache_ttl_dashboard =
      absl::Seconds(300);  // CACHE_TTL_DASHBOARD

  // HTTP policy
  std::vector<std::string> cors_origins;  // CORS_ORIGINS
  std::vector<std::string>
      trusted_proxies;         // TRUSTED_PROXIES (addresses or CIDRs)
  int sse_max_streams = 1000;  // SSE_MAX_STREAMS
  absl::Duration sse_status_interval = absl::Seconds(5);  // SSE_STATUS_INTERVAL
  absl::Duration sse_keepalive_interval =
      absl::Seconds(15);             // SSE_KEEPALIVE_INTERVAL
  bool metrics_require_key = false;  // METRICS_REQUIRE_KEY
  absl::Duration sse_query_timeout = absl::Seconds(2);  // SSE_QUERY_TIMEOUT

  // Lifecycle
  absl::Duration shutdown_timeout = absl::Seconds(30);  // SHUTDOWN_TIMEOUT
  absl::Duration shutdown_grace = absl::Seconds(5);  // SHUTDOWN_GRACE_SECONDS
};

// The daemon's keys as registered (defaults from ServerConfig's
// initialisers), in registration order.
std::vector<ConfigKey> DaemonConfigKeys();

// The library's keys plus the daemon's, in documentation order. Built once;
// safe to use from any thread.
const ConfigLoader& ServerConfigLoader();

// The daemon's fields of `config` (loaded by ServerConfigLoader) copied out
// of Config::registered; keys missing there keep their defaults.
ServerConfig ServerConfigFrom(Config config);

// ServerConfigLoader().Load(sources), then ServerConfigFrom.
absl::StatusOr<ServerConfig> LoadServerConfig(const ConfigSources& sources);

// Validators of the daemon's string keys ("" when acceptable, else the
// reason). API_HOST: an IPv4 or IPv6 literal, or "localhost".
std::string CheckApiHost(const std::string& value);
// One CORS_ORIGINS entry: "*" or http(s)://host[:port], no path.
std::string CheckCorsOrigin(const std::string& value);
// One TRUSTED_PROXIES entry: an IPv4/IPv6 address or CIDR.
std::string CheckTrustedProxy(const std::string& value);

}  // namespace pggitops::server

#endif  // PGGITOPS_SERVER_SERVER_CONFIG_H_
