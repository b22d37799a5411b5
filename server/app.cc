#include "server/app.h"

#include <unistd.h>

#include <csignal>
#include <thread>
#include <utility>

#include "absl/strings/str_cat.h"
#include "absl/synchronization/notification.h"
#include "absl/time/clock.h"
#include "nlohmann/json.hpp"
#include "pggitops/api_keys.h"
#include "pggitops/cache.h"
#include "pggitops/connection_pool.h"
#include "pggitops/delivery_queue.h"
#include "pggitops/health.h"
#include "pggitops/latency_window.h"
#include "pggitops/log.h"
#include "pggitops/metrics.h"
#include "pggitops/pg_listener.h"
#include "pggitops/rate_limiter.h"
#include "pggitops/schema.h"
#include "pggitops/version.h"
#include "server/app_context.h"
#include "server/http/access_control.h"
#include "server/http/client_address.h"
#include "server/http/http_server.h"
#include "server/lifecycle.h"
#include "server/routes/cached_read.h"
#include "server/routes/request_figures.h"
#include "server/routes/route_table.h"
#include "server/routes/sse_hub.h"

namespace pggitops::server {
namespace {

HttpServerOptions ServerOptions(const ServerConfig& c,
                                const TrustedProxies* proxies) {
  HttpServerOptions o;
  o.host = c.api_host;
  o.port = c.api_port;
  o.workers = c.api_workers;
  o.max_connections = c.api_max_connections;
  o.max_connections_per_client = c.api_max_connections_per_client;
  o.header_timeout = c.api_header_timeout;
  o.body_timeout = c.api_body_timeout;
  o.max_header_bytes = static_cast<size_t>(c.api_max_header_bytes);
  o.keepalive_timeout = c.api_keepalive_timeout;
  o.keepalive_max = c.api_keepalive_max;
  o.cors_origins = c.cors_origins;
  o.ipv6_client_prefix = c.rate_limit_ipv6_prefix;
  // A reverse proxy carries many clients: it is not capped per client.
  o.exempt_peer = [proxies](absl::string_view ip) {
    return proxies->Contains(ip);
  };
  return o;
}

// On a pooled connection: a check that runs every few seconds must not open
// a session of its own each time. Like the other database checks, it waits
// at most half its time limit for a connection.
HealthCheck SchemaCheck(ConnectionPool* pool, absl::Duration timeout) {
  HealthCheck check;
  check.name = "schema";
  check.criticality = Criticality::kCritical;
  check.timeout = timeout;
  check.run = [pool, timeout] {
    CheckResult r;
    absl::StatusOr<SchemaStatus> s = CheckSchema(pool, timeout / 2);
    if (!s.ok()) {
      r.ok = false;
      r.status = "unknown";
      r.message = std::string(s.status().message());
      return r;
    }
    r.ok = s->compatible && s->missing_indexes.empty();
    r.status = s->status;
    nlohmann::json missing = s->missing_indexes;
    r.details_json = nlohmann::json{
        {"version", s->version},
        {"expected_version", s->expected_version},
        {"missing_indexes",
         missing}}.dump();
    if (!r.ok) {
      r.message = s->compatible ? "guide indexes missing"
                                : "schema version incompatible: run "
                                  "`pggit-api migrate`";
      r.error_code = s->compatible ? "INDEXES_MISSING" : "SCHEMA_INCOMPATIBLE";
    }
    return r;
  };
  return check;
}

}  // namespace

struct App::Impl {
  ServerConfig config;
  MetricsRegistry metrics;
  LatencyWindow latency{absl::Seconds(kRequestWindowSeconds)};
  HealthRegistry health;
  AppContext ctx;
  std::unique_ptr<ConnectionPool> pool;
  std::unique_ptr<PgListener> listener;
  std::unique_ptr<Cache> cache;
  std::unique_ptr<CachedRead> reads;
  std::unique_ptr<DeliveryEngine> engine;
  std::unique_ptr<ApiKeyVerifier> keys;
  std::unique_ptr<RateLimiter> limiter;
  TrustedProxies proxies;
  Router router;
  std::unique_ptr<HttpServer> server;
  int lock_metrics_hook = -1;

  explicit Impl(ServerConfig c)
      : config(std::move(c)), health(HealthOptionsFromConfig(config)) {}

  absl::Status Start();
  absl::Status StartCache();
  absl::Status StartDelivery();
  absl::Status StartAccessControl();
  absl::Status AddCheck(HealthCheck check);
  void WarmCache();
  void Drain(absl::Time deadline);
};

absl::Status App::Impl::Start() {
  ctx.config = &config;
  ctx.metrics = &metrics;
  ctx.health = &health;
  ctx.latency = &latency;
  ctx.started_at = absl::Now();
  RegisterProcessMetrics(&metrics);

  PoolOptions pool_options = PoolOptionsFromConfig(config);
  pool_options.metrics = &metrics;
  absl::StatusOr<std::unique_ptr<ConnectionPool>> made =
      ConnectionPool::Create(pool_options);
  if (!made.ok()) return made.status();
  pool = *std::move(made);
  ctx.pool = pool.get();
  const absl::Duration check_timeout = config.health_check_timeout;
  absl::Status registered =
      AddCheck(DatabaseHealthCheck(pool.get(), check_timeout));
  if (!registered.ok()) return registered;
  // db_lock_waits, db_lock_wait_seconds_max: read at each scrape, waiting
  // for a connection as long as the deep-health checks do.
  lock_metrics_hook =
      RegisterLockWaitMetrics(pool.get(), &metrics, check_timeout / 2);

  // Refuse to run against a schema this build cannot use (CONTRACT 9). An
  // unreachable database does not stop the start: readiness stays 503
  // until it answers.
  absl::StatusOr<SchemaStatus> schema = CheckSchema(config.database_url);
  if (schema.ok() && !schema->compatible) {
    return absl::FailedPreconditionError(absl::StrCat(
        "database schema is ", schema->status, " (version ", schema->version,
        ", this build needs ", schema->expected_version, " to ",
        MaxCompatibleSchemaVersion(), "); run `pggit-api migrate`"));
  }
  if (!schema.ok()) {
    Log::Warning("database not reachable at start; not ready until it is",
                 {{"error", std::string(schema.status().message())}});
  }
  registered = AddCheck(SchemaCheck(pool.get(), check_timeout));
  if (!registered.ok()) return registered;

  // One LISTEN session serves the cache and the delivery engine; it
  // connects in the background and reconnects by itself.
  PgListenerOptions listener_options = PgListenerOptionsFromConfig(config);
  listener_options.metrics = &metrics;
  absl::StatusOr<std::unique_ptr<PgListener>> l =
      PgListener::Create(listener_options);
  if (!l.ok()) return l.status();
  listener = *std::move(l);
  ctx.listener = listener.get();

  // Every connection is a descriptor; so are the pool's sessions, the
  // listener, Redis, log files and the engine's sockets.
  absl::Status s = RaiseOpenFileLimit(config.api_max_connections,
                                      256 + config.database_pool_size +
                                          config.database_pool_max_overflow +
                                          config.webhook_max_in_flight);
  if (!s.ok()) return s;
  s = StartCache();
  if (!s.ok()) return s;
  s = StartDelivery();
  if (!s.ok()) return s;
  s = StartAccessControl();
  if (!s.ok()) return s;
  s = listener->Start();
  if (!s.ok()) return s;

  AddAllRoutes(&router, &ctx, keys.get(), &proxies);
  HttpServerOptions http = ServerOptions(config, &proxies);
  // No CORS while protected mode is on: no page of another origin may
  // call a server that trusts every local client.
  http.cors_enabled = [k = keys.get()] { return !k->protected_mode(); };
  server = std::make_unique<HttpServer>(std::move(http), &router, &metrics,
                                        &latency);
  // On every request, before routing: protected mode's Host and Origin
  // checks, then the rate limit (so guessing keys, and unknown paths, cost
  // tokens too); after routing, keys and scopes.
  server->AddScreen(ProtectedModeScreen(keys.get()));
  if (limiter != nullptr) {
    server->AddScreen(RateLimitScreen(limiter.get(), &proxies,
                                      config.rate_limit_exempt_loopback,
                                      config.rate_limit_ipv6_prefix));
  }
  server->AddMiddleware(AuthMiddleware(keys.get()));
  return server->Bind();
}

// CONTRACT 8. Keys are loaded now and reloaded every API_KEY_CACHE_SECONDS.
// Without a key the API answers loopback clients only, so listening on
// another address would serve nobody but invite mistakes: refused. When the
// keys cannot be read yet, the daemon starts in protected mode (the safe
// side) and leaves it once they load.
absl::Status App::Impl::StartAccessControl() {
  absl::StatusOr<TrustedProxies> parsed =
      TrustedProxies::Parse(config.trusted_proxies);
  if (!parsed.ok()) return parsed.status();
  proxies = *std::move(parsed);

  ApiKeyVerifierOptions key_options =
      ApiKeyVerifierOptionsFromConfig(config, pool.get());
  key_options.metrics = &metrics;
  absl::StatusOr<std::unique_ptr<ApiKeyVerifier>> k =
      ApiKeyVerifier::Create(key_options);
  if (!k.ok()) return k.status();
  keys = *std::move(k);
  if (keys->loaded() && keys->protected_mode() &&
      !IsLoopbackHost(config.api_host)) {
    return absl::FailedPreconditionError(absl::StrCat(
        "API_HOST=", config.api_host,
        " is not a loopback address and no API key exists: without a key "
        "the API answers loopback clients only (protected mode). Create a "
        "key first (`pggit-api keys create --name NAME --scopes read`) or "
        "listen on 127.0.0.1"));
  }
  if (!keys->loaded()) {
    Log::Warning("API keys not loaded yet: protected mode until they are");
  } else if (keys->protected_mode()) {
    Log::Info(
        "protected mode: no API key exists; the API answers loopback "
        "clients only");
  }
  if (!config.cors_origins.empty() &&
      (!keys->loaded() || keys->protected_mode())) {
    Log::Warning(
        "CORS_ORIGINS is set but no API key exists: no CORS headers are "
        "sent while protected mode is on (create a key to enable CORS)");
  }
  keys->Start();

  if (config.rate_limit_per_minute > 0) {
    RateLimiterOptions limit_options = RateLimiterOptionsFromConfig(config);
    absl::StatusOr<std::unique_ptr<RateLimiter>> l =
        RateLimiter::Create(limit_options);
    if (!l.ok()) return l.status();
    limiter = *std::move(l);
  }
  return absl::OkStatus();
}

absl::Status App::Impl::StartCache() {
  CacheOptions options = CacheOptionsFromConfig(config);
  options.metrics = &metrics;
  absl::StatusOr<std::unique_ptr<Cache>> made = Cache::Create(options);
  if (!made.ok()) return made.status();
  cache = *std::move(made);
  ctx.cache = cache.get();
  reads = std::make_unique<CachedRead>(cache.get(), &config);
  ctx.reads = reads.get();
  // Changes made in the database by anyone (sql/002 triggers) reach this
  // instance's cache; notifications lost while disconnected are covered by
  // invalidating everything on reconnection.
  Cache* c = cache.get();
  absl::StatusOr<int> sub =
      listener->Subscribe("pggit_cache", [c](const std::string& payload) {
        absl::Status applied = c->ApplyDatabaseNotification(payload);
        if (!applied.ok()) {
          Log::Warning("ignored cache notification",
                       {{"payload", payload},
                        {"error", std::string(applied.message())}});
        }
      });
  if (!sub.ok()) return sub.status();
  listener->AddReconnectCallback([c] { c->OnDatabaseListenerReconnected(); });
  absl::Status r = AddCheck(cache->CacheHealthCheck());
  if (r.ok()) r = AddCheck(cache->RedisHealthCheck());
  return r;
}

absl::Status App::Impl::StartDelivery() {
  DeliveryOptions options = DeliveryOptionsFromConfig(config);
  options.listener = listener.get();
  options.metrics = &metrics;
  absl::StatusOr<std::unique_ptr<DeliveryEngine>> made =
      DeliveryEngine::Create(pool.get(), options);
  if (!made.ok()) return made.status();
  engine = *std::move(made);
  ctx.engine = engine.get();
  const absl::Duration t = config.health_check_timeout;
  absl::Status r = AddCheck(WebhooksHealthCheck(pool.get(), t));
  if (r.ok()) r = AddCheck(QueueHealthCheck(pool.get(), t));
  if (r.ok()) r = AddCheck(engine->DispatcherHealthCheck());
  if (r.ok()) r = AddCheck(listener->ListenerHealthCheck());
  return r;
}

// Every deep-health check gets the time limit HEALTH_CHECK_TIMEOUT.
absl::Status App::Impl::AddCheck(HealthCheck check) {
  check.timeout = config.health_check_timeout;
  return health.Register(std::move(check));
}

// CONTRACT 9: the cache is warmed before READY=1. A warmer that fails (the
// database is not up yet) is logged and does not stop the start.
void App::Impl::WarmCache() {
  WarmResult warmed = cache->Warm();
  for (const WarmerResult& w : warmed.warmers) {
    if (!w.status.ok()) {
      Log::Warning(
          "cache warmer failed",
          {{"warmer", w.name}, {"error", std::string(w.status.message())}});
    }
  }
  Log::Info("cache warmed",
            {{"entries", absl::StrCat(warmed.warmed_entries)},
             {"warmers", absl::StrCat(warmed.warmers.size())},
             {"failed", absl::StrCat(warmed.failed())},
             {"ms", absl::StrCat(absl::ToInt64Milliseconds(warmed.duration))}});
}

void App::Impl::Drain(absl::Time deadline) {
  ctx.phase = Phase::kDraining;
  NotifyStopping();
  Log::Info("draining: readiness now 503",
            {{"grace_seconds",
              absl::StrCat(absl::ToDoubleSeconds(config.shutdown_grace))}});
  // Open streams end at once (their clients reconnect elsewhere).
  if (ctx.stream_hub != nullptr) ctx.stream_hub->EndStreams();
  // Keep the listener open for the grace period so a load balancer sees
  // the 503 and stops sending; further signals change nothing.
  WaitOutGracePeriod(config.shutdown_grace);
  // The listener closes with idle and half-received connections; requests
  // in flight finish while the engine lets its deliveries finish or hands
  // their leases back, both before the watchdog's deadline.
  std::thread deliveries([this, deadline] {
    engine->Shutdown(deadline - absl::Milliseconds(500));
  });
  server->Drain(deadline - absl::Milliseconds(250));
  deliveries.join();
}

App::App(ServerConfig config)
    : impl_(std::make_unique<Impl>(std::move(config))) {}
App::~App() = default;

int App::Serve() {
  Impl& s = *impl_;
  absl::Status started = s.Start();
  if (!started.ok()) {
    Log::Error("start failed", {{"error", std::string(started.message())}});
    return 1;
  }
  s.WarmCache();
  absl::Status engine_started = s.engine->Start();
  if (!engine_started.ok()) {
    Log::Error("delivery engine failed to start",
               {{"error", std::string(engine_started.message())}});
    return 1;
  }
  std::thread http([&s] { s.server->Serve(); });
  s.ctx.phase = Phase::kServing;
  NotifyReady();
  Log::Info(
      "serving",
      {{"address", absl::StrCat(s.config.api_host, ":", s.server->port())},
       {"version", kVersionString},
       {"workers", absl::StrCat(s.config.api_workers)}});

  int sig = WaitForShutdownSignal();
  Log::Info("shutdown requested",
            {{"signal", sig == SIGINT ? "SIGINT" : "SIGTERM"}});
  absl::Time deadline = absl::Now() + s.config.shutdown_timeout;
  absl::Notification drained;
  std::thread watchdog([&] {
    if (!drained.WaitForNotificationWithDeadline(deadline)) {
      Log::Error("shutdown timed out; exiting with requests unfinished",
                 {{"in_flight", absl::StrCat(s.server->in_flight())}});
      _exit(1);
    }
  });
  s.Drain(deadline);
  http.join();
  // Streams own sockets of the HTTP server: closed before it goes.
  if (s.ctx.stream_hub != nullptr) s.ctx.stream_hub->Shutdown();
  s.cache->Shutdown();
  s.keys->Shutdown();
  s.listener->Shutdown();
  s.metrics.RemoveCollectHook(s.lock_metrics_hook);
  s.pool->Shutdown();
  drained.Notify();
  watchdog.join();
  Log::Info("stopped");
  return 0;
}

}  // namespace pggitops::server
