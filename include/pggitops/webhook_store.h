// File: pggitops/webhook_store.h
//
// The webhooks a DeliveryEngine delivers to (pggit.webhooks), and their
// delivery history: create, read, list, change and delete them from C++,
// as the HTTP API's /api/v1/webhooks does.
//
//   WebhookStore store(pool);
//   WebhookFields f;
//   f.name = "ops";
//   f.url = "https://hooks.example.com/pggit";
//   f.filter_severities = std::vector<std::string>{"CRITICAL"};
//   absl::StatusOr<NewWebhook> made = store.Create(f);
//   if (!made.ok()) return made.status();     // InvalidArgument names a field
//   Keep(made->secret);                        // the signing key, shown once
//
//   WebhookFields off;
//   off.is_active = false;
//   store.Update(made->webhook.id, off);       // only the fields set change
//   absl::StatusOr<DeliveryPage> h = store.DeliveryHistory(made->webhook.id);
//
// A webhook is soft-deleted: Delete() hides it from Get and List, cancels
// its pending deliveries and keeps its history. A name is unique among the
// webhooks that are not deleted.
//
// Errors of every method: the pool's (kDeadlineExceeded when no connection
// came in time, kUnavailable when the database is down; see
// connection_pool.h) and the database's as SqlStateOf() describes; plus
// those listed per method. Thread-safe: the store holds only the pool.
#ifndef PGGITOPS_INCLUDE_WEBHOOK_STORE_H_
#define PGGITOPS_INCLUDE_WEBHOOK_STORE_H_

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "pggitops/connection_pool.h"
#include "pggitops/export.h"

namespace pggitops {

// A webhook as stored. Never carries the secret.
struct PGGITOPS_EXPORT Webhook {
  int64_t id = 0;
  std::string name;
  std::string url;
  std::optional<std::string> description;
  // The operator's switch. `status` follows it (a database trigger keeps
  // them in step): "active", "inactive" (switched off) or "disabled" (by
  // the delivery engine after sustained failure or an HTTP 410, until
  // is_active is set to true again).
  bool is_active = true;
  std::string status;
  // Deliver only alerts of these severities / operation types; empty means
  // every one.
  std::vector<std::string> filter_severities;
  std::vector<std::string> filter_operation_types;
  // Retries after the first attempt, waiting min(max_backoff,
  // backoff_base^attempt) seconds.
  int max_retries = 3;
  double backoff_base = 2;
  int max_backoff = 3600;
  int timeout_seconds = 30;
  bool ssl_verify = true;
  // The circuit breaker: "closed", "open" or "half_open".
  std::string breaker_state;
  // Failed attempts since the last success.
  int64_t consecutive_failures = 0;
  // (deliveries - failures) / deliveries over the webhook's life, rounded
  // to 4 decimals; nullopt before its first delivery.
  std::optional<double> success_rate;
  absl::Time created_at;
  absl::Time updated_at;  // moves when the configuration changes
  std::optional<absl::Time> last_used_at;
  std::optional<absl::Time> last_success_at;
  std::optional<absl::Time> last_failure_at;
};

// The one definition of a failing webhook, used by the webhooks health
// check, the dashboard ("degraded_webhooks") and retry-pending: an active
// webhook with a failed attempt since its last success, or whose circuit
// breaker is not closed.
PGGITOPS_EXPORT bool IsFailing(const Webhook& webhook);

// The writable fields of a webhook. For Create(), unset fields take their
// defaults (those of Webhook above; name and url are required); for
// Update(), only the fields that are set are written.
struct PGGITOPS_EXPORT WebhookFields {
  std::optional<std::string> name;  // 1 to 255 characters, unique
  // An http:// or https:// URL naming a host, at most 2048 characters,
  // without spaces or control characters. Private targets are refused at
  // delivery time unless the engine allows them (CheckWebhookTargetHost in
  // delivery_queue.h checks a URL ahead of time).
  std::optional<std::string> url;
  // Set to std::optional<std::string>() to clear it. At most 1000
  // characters.
  std::optional<std::optional<std::string>> description;
  std::optional<bool> is_active;
  // Each of INFO, WARNING, CRITICAL (duplicates are dropped).
  std::optional<std::vector<std::string>> filter_severities;
  // 1 to 255 characters each (duplicates are dropped).
  std::optional<std::vector<std::string>> filter_operation_types;
  std::optional<int> max_retries;      // 0 to 20
  std::optional<double> backoff_base;  // 1 to 10
  std::optional<int> max_backoff;      // seconds, 1 to 86400
  std::optional<int> timeout_seconds;  // 1 to 60
  std::optional<bool> ssl_verify;

  // True when no field is set.
  bool empty() const;

  // kInvalidArgument naming the first field out of range, e.g.
  // "timeout_seconds: must be from 1 to 60 (got 61)". Texts are UTF-8
  // without NUL characters; lengths count characters.
  absl::Status Validate() const;
};

// What Create() returns: the webhook and its signing secret, which is
// returned only here.
struct PGGITOPS_EXPORT NewWebhook {
  Webhook webhook;
  std::string secret;
};

// A new signing secret: "whsec_" + base64 of 24 bytes from the kernel's
// CSPRNG (Standard Webhooks). kInternal if the kernel gives no randomness.
PGGITOPS_EXPORT absl::StatusOr<std::string> GenerateWebhookSecret();

// Which webhooks List() returns, and which page of them.
struct PGGITOPS_EXPORT WebhookFilter {
  std::optional<bool> is_active;  // nullopt: both
  int64_t limit = 20;             // 1 to 100
  int64_t offset = 0;             // not negative
};

struct PGGITOPS_EXPORT WebhookPage {
  std::vector<Webhook> items;  // by id
  int64_t total = 0;           // webhooks matching the filter, all pages
};

// One HTTP attempt of a delivery.
struct PGGITOPS_EXPORT DeliveryAttempt {
  int attempt = 0;  // 1 for the first
  absl::Time started_at;
  std::optional<double> duration_ms;
  std::optional<int> http_status;
  std::optional<std::string> error;  // why it failed, e.g. "timeout: ..."
};

// One alert's delivery to one webhook (a row of the delivery queue).
struct PGGITOPS_EXPORT Delivery {
  int64_t id = 0;
  int64_t alert_id = 0;
  int64_t webhook_id = 0;
  // "pending", "in_progress", "delivered", "failed" or "cancelled".
  std::string status;
  int attempt_count = 0;
  absl::Time next_attempt_at;
  std::optional<int> last_http_status;
  std::optional<std::string> last_error;  // the last attempt's error
  absl::Time created_at;
  std::optional<absl::Time> delivered_at;
  std::vector<DeliveryAttempt> attempts;  // oldest first
};

struct PGGITOPS_EXPORT DeliveryFilter {
  std::optional<std::string> status;  // one of Delivery::status; nullopt: all
  int64_t limit = 20;                 // 1 to 100
  int64_t offset = 0;                 // not negative
};

struct PGGITOPS_EXPORT DeliveryPage {
  std::vector<Delivery> items;  // newest first
  int64_t total = 0;
};

class PGGITOPS_EXPORT WebhookStore {
 public:
  // *pool must outlive the store.
  explicit WebhookStore(ConnectionPool* pool) : pool_(pool) {}

  // Creates a webhook with a new secret. Errors: kInvalidArgument naming
  // the field (a missing name or url, a value out of range; nothing is
  // written); kAlreadyExists "name: a webhook with this name already
  // exists".
  absl::StatusOr<NewWebhook> Create(const WebhookFields& fields);

  // kNotFound "webhook N not found" for an id that names no webhook or a
  // deleted one.
  absl::StatusOr<Webhook> Get(int64_t id);

  // The page of webhooks (deleted ones excepted) that `filter` selects, by
  // id, with the total count; both read in one snapshot. kInvalidArgument
  // for a limit or offset out of range.
  absl::StatusOr<WebhookPage> List(const WebhookFilter& filter = {});

  // Writes the fields that are set, and returns the webhook as it is then
  // (unchanged when no field is set). Setting is_active, even to its
  // current value, re-enables a webhook the engine disabled (true) or
  // switches it off (false); a webhook that becomes active starts with a
  // closed breaker. Errors: as Create(); kNotFound as Get(). A running
  // DeliveryEngine picks up a re-activated webhook's parked deliveries on
  // its next poll (call DeliveryEngine::Wake() to make it now).
  absl::StatusOr<Webhook> Update(int64_t id, const WebhookFields& fields);

  // Soft-deletes the webhook and cancels its pending deliveries (one
  // statement). kNotFound as Get().
  absl::Status Delete(int64_t id);

  // The deliveries of webhook `id` (a deleted one's too), newest first,
  // each with its attempts. kNotFound when `id` never named a webhook;
  // kInvalidArgument for a status, limit or offset out of range.
  absl::StatusOr<DeliveryPage> DeliveryHistory(
      int64_t id, const DeliveryFilter& filter = {});

 private:
  ConnectionPool* pool_;
};

}  // namespace pggitops

#endif  // PGGITOPS_INCLUDE_WEBHOOK_STORE_H_
