// File: pggitops/delivery_queue.h
//
// The durable webhook delivery queue (CONTRACT sections 4, 6 and 10).
//
// Producers insert alerts; an AFTER INSERT trigger on `alerts` writes one
// `alert_delivery_queue` row per matching active webhook and sends NOTIFY
// pggit_deliveries, in the inserting transaction. EnqueueAlert() below is the
// std/Abseil way to insert one (on its own, or in the caller's transaction
// on a pooled lease); "pggitops/delivery_pqxx.h" takes the caller's own libpqxx
// transaction; any SQL producer may simply INSERT INTO alerts.
//
// A DeliveryEngine takes due rows and delivers them, at least once:
//
//   * claims: batches of due rows taken with FOR UPDATE SKIP LOCKED and a
//     lease (WEBHOOK_LEASE_SECONDS, renewed while the attempt runs), so any
//     number of engines, in any number of processes, share one queue; a
//     crashed engine's rows are claimed again when their lease runs out;
//   * wake-up: LISTEN pggit_deliveries through a PgListener, with polling
//     every WEBHOOK_POLL_INTERVAL as a fallback and one poll after every
//     reconnection of the listener;
//   * delivery: a WebhookTransport (by default libcurl's multi interface on
//     one thread) with WEBHOOK_MAX_IN_FLIGHT overall and
//     WEBHOOK_MAX_IN_FLIGHT_PER_ENDPOINT per webhook, so one slow endpoint
//     never delays the others; private, loopback and link-local targets
//     refused at connect time unless allowed; no redirects;
//   * signing (Standard Webhooks): webhook-id "msg_<alert id>_<webhook id>"
//     (stable across retries), webhook-timestamp, webhook-signature
//     "v1,<base64 HMAC-SHA256(key, id.timestamp.body)>";
//   * outcomes: 2xx delivered; 410 fails and disables the webhook; refused
//     targets and invalid URLs fail at once (a retry cannot succeed); every
//     other status (4xx included), timeouts and connection errors are
//     retried after min(max_backoff, backoff_base^attempt) seconds with
//     jitter (never earlier than the Retry-After of a 429 or 503); after
//     1 + max_retries attempts the row is `failed`. Every attempt is a row
//     of delivery_attempts;
//   * circuit breaker per webhook, kept in the webhooks row so every engine
//     agrees: WEBHOOK_BREAKER_THRESHOLD consecutive failures open it for
//     WEBHOOK_BREAKER_OPEN_SECONDS (doubling up to ..._MAX_OPEN_SECONDS);
//     while open, due rows are rescheduled to the end of the open period;
//     then one probe is let through (half-open): success closes, failure
//     reopens. A webhook without a success for WEBHOOK_DISABLE_AFTER_HOURS
//     is disabled (status 'disabled', disabled_reason recorded);
//   * retention: delivered, failed and cancelled rows (and their attempts)
//     older than WEBHOOK_RETENTION_DAYS are deleted in small batches, by
//     one engine at a time (advisory lock);
//   * metrics: webhook_queue_depth, webhook_deliveries_total{result},
//     webhook_delivery_duration_seconds, webhook_retries_total,
//     webhook_in_flight, webhook_breaker_state{state} (webhooks per state).
//
// Typical use (the daemon does this):
//
//   DeliveryOptions options = DeliveryOptionsFromConfig(config);
//   options.listener = listener.get();   // shared PgListener, started
//   options.metrics = &metrics;
//   auto engine = DeliveryEngine::Create(pool.get(), options);
//   if (!engine.ok()) return engine.status();
//   if (absl::Status s = (*engine)->Start(); !s.ok()) return s;
//   health.Register((*engine)->DispatcherHealthCheck());
//   health.Register(WebhooksHealthCheck(pool.get()));
//   health.Register(QueueHealthCheck(pool.get()));
//   ...
//   (*engine)->Shutdown(absl::Now() + absl::Seconds(30));
#ifndef PGGITOPS_INCLUDE_DELIVERY_QUEUE_H_
#define PGGITOPS_INCLUDE_DELIVERY_QUEUE_H_

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "absl/functional/any_invocable.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "pggitops/config.h"
#include "pggitops/connection_pool.h"
#include "pggitops/env.h"
#include "pggitops/export.h"
#include "pggitops/health.h"
#include "pggitops/metrics.h"

namespace pggitops {

class PgListener;

// ---------------------------------------------------------------------------
// Enqueueing
// ---------------------------------------------------------------------------

// An alert to insert. Validated before anything is written.
struct PGGITOPS_EXPORT AlertInput {
  // 1 to 255 characters, e.g. "commit", "merge", "schema_change".
  std::string operation_type;
  // "INFO", "WARNING" or "CRITICAL".
  std::string severity;
  std::string message;
  // A JSON object (text); empty means {}.
  std::string context_json;

  // InvalidArgument naming the first bad field, e.g.
  // "severity: must be INFO, WARNING or CRITICAL (got \"LOW\")".
  absl::Status Validate() const;
};

// Inserts the alert (autocommit) and returns its id. The trigger queues one
// delivery per matching active webhook and wakes the engines when the insert
// commits. Errors: InvalidArgument for a bad alert (nothing is written);
// the pool's errors (kDeadlineExceeded, kUnavailable, ...) otherwise.
// REQUIRES: pool != nullptr.
PGGITOPS_EXPORT absl::StatusOr<int64_t> EnqueueAlert(ConnectionPool* pool,
                                                     const AlertInput& alert);

// Inserts the alert on `lease`, inside the transaction the caller began on
// it (or autocommit if none), so the alert and its deliveries commit or roll
// back with the caller's own writes; the engines are woken at commit:
//
//   absl::StatusOr<PooledConnection> lease = pool->Acquire();
//   lease->Query("BEGIN");
//   lease->Query("UPDATE orders SET ...", {...});
//   absl::StatusOr<int64_t> id = EnqueueAlert(*lease, alert);
//   lease->Query(id.ok() ? "COMMIT" : "ROLLBACK");
//
// Errors as above; on a database error inside a transaction the transaction
// is aborted (roll it back). REQUIRES: lease.valid().
PGGITOPS_EXPORT absl::StatusOr<int64_t> EnqueueAlert(PooledConnection& lease,
                                                     const AlertInput& alert);

// Checks the host of a webhook URL as written, before any delivery: with
// `allow_private_targets` off, a literal address that is not public
// (private, loopback, link-local, unique-local, ...; also the IPv4 forms
// libcurl accepts, such as "127.1" or "2130706433") and "localhost" or any
// name under ".localhost" are refused. Other names are checked on their
// resolved addresses at connect time. Error: kInvalidArgument naming
// "url" and what the address is.
PGGITOPS_EXPORT absl::Status CheckWebhookTargetHost(absl::string_view url,
                                                    bool allow_private_targets);

// Makes the failed and waiting (pending) deliveries of webhooks that are
// active (neither disabled nor inactive nor deleted) due now, with a fresh
// retry budget (attempt_count back to 0; the attempt history is kept), and
// closes those webhooks' circuit breakers; then wakes the engines. Only one
// webhook's when `webhook_id` is given. Returns how many deliveries were
// made due. Errors: NotFound when `webhook_id` names no webhook (or a
// deleted one); the pool's errors. REQUIRES: pool != nullptr.
PGGITOPS_EXPORT absl::StatusOr<int> RetryPending(
    ConnectionPool* pool, std::optional<int64_t> webhook_id = std::nullopt);

// The "webhooks" check for /health/deep, non-critical:
//   {"status": "healthy"|"degraded", "active_count", "failing_count",
//    "disabled_count", "inactive_count"}
// failing_count counts active webhooks with a failure since their last
// success or a breaker that is not closed; any makes the check degraded.
// *pool must outlive every run of the check.
PGGITOPS_EXPORT HealthCheck WebhooksHealthCheck(
    ConnectionPool* pool, absl::Duration timeout = absl::Seconds(2));

// The "queue" check for /health/deep, non-critical:
//   {"status": "ok", "depth": N, "oldest_pending_seconds": S}
// depth counts pending and in_progress rows; oldest_pending_seconds is the
// age of the oldest of them (0 when there is none). *pool must outlive
// every run of the check.
PGGITOPS_EXPORT HealthCheck QueueHealthCheck(
    ConnectionPool* pool, absl::Duration timeout = absl::Seconds(2));

// ---------------------------------------------------------------------------
// Transport seam
// ---------------------------------------------------------------------------

// One signed POST.
struct PGGITOPS_EXPORT WebhookRequest {
  std::string url;   // http:// or https://
  std::string body;  // sent as application/json
  // Extra headers (webhook-id, webhook-timestamp, webhook-signature).
  // Content-Type and User-Agent are set by the transport.
  std::vector<std::pair<std::string, std::string>> headers;
  // Overall deadline of the attempt (connect, send, wait, read).
  absl::Duration timeout = absl::Seconds(30);
  // Verify the server's TLS certificate and host name.
  bool verify_tls = true;
  // Requests with the same key share the per-endpoint in-flight cap
  // (the engine uses the webhook id).
  std::string endpoint_key;
};

// Why no usable response arrived. NOTE: values may be logged; do not
// renumber.
enum class TransportError {
  kNone = 0,            // a complete response arrived (see http_status)
  kTimeout = 1,         // the attempt's deadline passed
  kConnect = 2,         // refused, unreachable, reset, nothing received
  kDns = 3,             // the name did not resolve
  kTls = 4,             // TLS handshake or certificate failure
  kRefusedTarget = 5,   // every resolved address is private/loopback/...
  kInvalidRequest = 6,  // malformed URL or a scheme other than http(s)
  kShutdown = 7,        // the transport stopped before the attempt ended
  kOther = 8,
};

// Returns "none", "timeout", "connect", "dns", "tls", "refused_target",
// "invalid_request", "shutdown" or "other".
PGGITOPS_EXPORT const char* TransportErrorName(TransportError e);

struct PGGITOPS_EXPORT WebhookResponse {
  // The HTTP status received (0 when none). May be set together with an
  // error (e.g. a 200 whose body was still dripping at the deadline).
  int http_status = 0;
  TransportError error = TransportError::kNone;
  std::string error_message;  // human-readable, "" when error == kNone
  // The first bytes of the response body: at most 1024 bytes of valid
  // UTF-8 without NUL characters.
  std::string body_excerpt;
  // The Retry-After header as received ("" when absent).
  std::string retry_after;
  // Time from the start of the attempt to its end.
  absl::Duration duration;
};

// Sends webhook requests asynchronously. Implementations must be
// thread-safe: Send() may be called from several threads at once.
class PGGITOPS_EXPORT WebhookTransport {
 public:
  using Callback = absl::AnyInvocable<void(WebhookResponse)>;

  virtual ~WebhookTransport() = default;

  // Starts (or queues) the request and calls `done` exactly once with the
  // outcome, from any thread, possibly before Send() returns. Callers must
  // not hold locks that `done` takes.
  virtual void Send(WebhookRequest request, Callback done) = 0;

  // Stops: queued requests end at once and requests still running at
  // `deadline` are aborted, all with TransportError::kShutdown; later
  // Send() calls end at once the same way. Returns when every callback has
  // been called. Idempotent.
  virtual void Shutdown(absl::Time deadline) = 0;
};

struct PGGITOPS_EXPORT HttpTransportOptions {
  // Requests running at once; more are queued. Range: 1 to 100000.
  // Default: 256 (WEBHOOK_MAX_IN_FLIGHT).
  int max_in_flight = 256;
  // Requests running at once with one endpoint_key. Range: 1 to 10000.
  // Default: 8 (WEBHOOK_MAX_IN_FLIGHT_PER_ENDPOINT).
  int max_in_flight_per_endpoint = 8;
  // Allow private, loopback, link-local, unique-local, multicast and
  // unspecified addresses. Default: false (WEBHOOK_ALLOW_PRIVATE_TARGETS).
  bool allow_private_targets = false;
  // User-Agent header. Default: "pggitops-webhooks/<version>".
  std::string user_agent;

  absl::Status Validate() const;
};

// The libcurl transport: every request on one thread (curl multi), with an
// overall deadline per attempt however slowly the receiver answers,
// http/https only, no redirects, no proxies, TLS verified unless the
// request says otherwise, and the address policy checked on each resolved
// address at connect time. InvalidArgument for invalid options;
// kInternal if libcurl cannot be initialised.
PGGITOPS_EXPORT absl::StatusOr<std::unique_ptr<WebhookTransport>>
NewHttpTransport(const HttpTransportOptions& options);

// ---------------------------------------------------------------------------
// The engine
// ---------------------------------------------------------------------------

struct PGGITOPS_EXPORT DeliveryOptions {
  // Parameters that affect behavior (CONTRACT section 3)

  // Dispatcher threads; each claims and completes batches while the
  // transport keeps many deliveries in flight. Range: 1 to 64.
  // Default: 2 (WEBHOOK_WORKERS).
  int workers = 2;
  // Range: 1 to 100000. Default: 256 (WEBHOOK_MAX_IN_FLIGHT).
  int max_in_flight = 256;
  // Attempts to one webhook at once, by this engine (another instance has
  // its own). Bounds one webhook's rate to about this / its response time
  // (docs/delivery.md, "Sizing the per-endpoint cap"). Range: 1 to 10000.
  // Default: 8 (WEBHOOK_MAX_IN_FLIGHT_PER_ENDPOINT).
  int max_in_flight_per_endpoint = 8;
  // Rows claimed (and completed) per statement. Range: 1 to 10000.
  // Default: 100 (WEBHOOK_BATCH_SIZE).
  int batch_size = 100;
  // Polling fallback when no notification arrives. Range: 10 ms to 1 h.
  // Default: 5 s (WEBHOOK_POLL_INTERVAL).
  absl::Duration poll_interval = absl::Seconds(5);
  // Lease of a claimed row; renewed every lease/3 while it is held.
  // Range: 100 ms to 24 h. Default: 30 s (WEBHOOK_LEASE_SECONDS).
  absl::Duration lease = absl::Seconds(30);
  // Range: 1 to 3650. Default: 14 (WEBHOOK_RETENTION_DAYS).
  int retention_days = 14;
  // Range: positive. Default: 24 h (WEBHOOK_DISABLE_AFTER_HOURS).
  absl::Duration disable_after = absl::Hours(24);
  // Default: false (WEBHOOK_ALLOW_PRIVATE_TARGETS).
  bool allow_private_targets = false;
  // Consecutive failures that open a breaker. Range: 1 to 1000.
  // Default: 5 (WEBHOOK_BREAKER_THRESHOLD).
  int breaker_threshold = 5;
  // First open period, doubled on each failed probe up to breaker_max_open.
  // Range: positive, breaker_open <= breaker_max_open.
  // Defaults: 30 s and 10 min (WEBHOOK_BREAKER_[MAX_]OPEN_SECONDS).
  absl::Duration breaker_open = absl::Seconds(30);
  absl::Duration breaker_max_open = absl::Minutes(10);

  // Housekeeping

  // How often retention purges run (the first one shortly after Start()).
  // Range: 1 s to 7 days. Default: 1 h (WEBHOOK_PURGE_INTERVAL).
  absl::Duration purge_interval = absl::Hours(1);
  // Rows deleted per purge statement. Range: 1 to 100000. Default: 500.
  int purge_batch = 500;
  // How often webhook_queue_depth and webhook_breaker_state are refreshed
  // from the database. Range: 10 ms to 1 h. Default: 5 s.
  absl::Duration metrics_interval = absl::Seconds(5);
  // Rows of a webhook that is not active are rescheduled this far ahead
  // (and brought forward as soon as an engine sees the webhook active
  // again). Range: 1 s to 7 days. Default: 1 h.
  absl::Duration park_interval = absl::Hours(1);

  // Environment

  // Names this engine in lease_owner. Default (empty): "<host>:<pid>:<n>".
  std::string instance_id;
  // Where notifications come from. Not owned; must outlive the engine and
  // be started by its owner. Default (nullptr): the engine opens its own
  // PgListener on `dsn` if `dsn` is set, else it only polls.
  PgListener* listener = nullptr;
  // libpq connection string for the engine's own listener (see above).
  std::string dsn;
  // Not owned; must outlive the engine. Default (nullptr): the engine owns
  // a NewHttpTransport() built from the options above.
  WebhookTransport* transport = nullptr;
  // Registry for the webhook_* series; must outlive the engine. Default
  // (nullptr): private metrics.
  MetricsRegistry* metrics = nullptr;
  // Clock for timestamps, Retry-After dates and intervals; must outlive
  // the engine. Default (nullptr): Env::Default().
  Env* env = nullptr;

  // InvalidArgument naming the first field out of range, e.g.
  // "DeliveryOptions.batch_size: must be from 1 to 10000 (got 0)".
  absl::Status Validate() const;
};

// Options from the WEBHOOK_* keys (listener, dsn, transport, metrics and
// env left empty; dsn is set to DATABASE_URL).
PGGITOPS_EXPORT DeliveryOptions DeliveryOptionsFromConfig(const Config& config);

// The answer of a test send (POST /api/v1/webhooks/{id}/test).
struct PGGITOPS_EXPORT TestSendResult {
  bool success = false;            // a 2xx arrived within the timeout
  std::optional<int> http_status;  // nullopt when no response
  double duration_ms = 0;
  std::optional<std::string> error;  // nullopt on success
};

// Counters since Start(), for tests and the dispatcher health check.
struct PGGITOPS_EXPORT DeliveryStats {
  bool running = false;
  int in_flight = 0;  // attempts running now
  int held = 0;       // rows leased by this engine (running or queued)
  int64_t claimed_total = 0;
  // Claim queries the database answered, whether they found rows or not:
  // advances while the engine looks at the queue (a poll, a NOTIFY, Wake()).
  int64_t claim_cycles_total = 0;
  int64_t delivered_total = 0;
  int64_t retried_total = 0;            // attempts that will be retried
  int64_t failed_total = 0;             // rows that ended failed
  int64_t handed_back_total = 0;        // leases returned unfinished
  int64_t completion_errors_total = 0;  // completion batches that failed
  bool listener_connected = false;
  // Time since a worker last finished a loop (claim or wait); infinite
  // before the first one.
  absl::Duration since_last_cycle = absl::InfiniteDuration();
};

// Delivers queued webhook rows. Thread-safe: every method may be called from
// any thread, except that destruction must not race with other calls.
class PGGITOPS_EXPORT DeliveryEngine {
 public:
  // Validates the options and builds the engine; starts nothing.
  // REQUIRES: pool != nullptr and outlives the engine.
  static absl::StatusOr<std::unique_ptr<DeliveryEngine>> Create(
      ConnectionPool* pool, DeliveryOptions options);

  // Shuts down (with a deadline of now) if still running.
  virtual ~DeliveryEngine() = default;
  DeliveryEngine(const DeliveryEngine&) = delete;
  DeliveryEngine& operator=(const DeliveryEngine&) = delete;

  // Subscribes to pggit_deliveries and starts the worker and housekeeping
  // threads. The database need not be up: workers retry. FailedPrecondition
  // when called twice or after Shutdown(); the listener's error if the
  // engine's own listener cannot start.
  virtual absl::Status Start() = 0;

  // Stops claiming, lets attempts in flight finish until `deadline` (wall
  // clock), aborts the rest, records what finished, hands the leases of
  // unfinished rows back (pending, due now) and stops every thread. Returns
  // by about `deadline` when the database answers. Idempotent.
  virtual void Shutdown(absl::Time deadline) = 0;

  // Claims now instead of at the next notification or poll.
  virtual void Wake() = 0;

  // Sends a "webhook.test" event to webhook `webhook_id` through the
  // engine's transport (same signing, deadline and address policy) and
  // waits for the answer; nothing is queued or recorded. Works before
  // Start() and for inactive and disabled webhooks. Errors: NotFound for an
  // unknown or deleted webhook; FailedPrecondition after Shutdown(); the
  // pool's errors.
  virtual absl::StatusOr<TestSendResult> SendTest(int64_t webhook_id) = 0;

  virtual DeliveryStats Stats() const = 0;

  // The "dispatcher" liveness check, non-critical:
  //   {"status": "running"|"stopped"|"stalled", "in_flight", "held",
  //    "listener": "connected"|"disconnected"|"none",
  //    "seconds_since_last_cycle"}
  // stalled when no worker finished a loop for 3 poll intervals (at least
  // 30 s). The engine must outlive every run of the check.
  virtual HealthCheck DispatcherHealthCheck() = 0;

 protected:
  DeliveryEngine() = default;
};

}  // namespace pggitops

#endif  // PGGITOPS_INCLUDE_DELIVERY_QUEUE_H_
