// File: pggitops/alert_store.h
//
// The alerts (pggit.alerts): create them, read and list them with their
// delivery counts, acknowledge and resolve them, count them, as the HTTP
// API's /api/v1/alerts does.
//
//   AlertStore store(pool);
//   AlertInput in;
//   in.operation_type = "schema_change";
//   in.severity = "CRITICAL";
//   in.message = "column dropped";
//   absl::StatusOr<int64_t> id = store.Create(in);  // fans out to webhooks
//   absl::StatusOr<AlertTransition> t = store.Acknowledge({*id});
//   absl::StatusOr<Alert> a = store.Get(*id);       // a->status "acknowledged"
//
// The state rules: an alert is created "pending"; acknowledging moves a
// pending alert to "acknowledged"; resolving moves a pending or
// acknowledged alert to "resolved". Nothing moves back, and nothing else
// changes a status: acknowledging a resolved alert leaves it resolved (it
// is already past that state, so it counts as done, not as changed).
// acknowledged_at and resolved_at are stamped when the status moves.
//
// Errors of every method: the pool's (kDeadlineExceeded when no connection
// came in time, kUnavailable when the database is down; see
// connection_pool.h) and the database's as SqlStateOf() describes; plus
// those listed per method. Thread-safe: the store holds only the pool and
// its options.
#ifndef PGGITOPS_INCLUDE_ALERT_STORE_H_
#define PGGITOPS_INCLUDE_ALERT_STORE_H_

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "pggitops/connection_pool.h"
#include "pggitops/delivery_queue.h"
#include "pggitops/export.h"

namespace pggitops {

// An alert's deliveries by status.
struct PGGITOPS_EXPORT AlertDeliveryCounts {
  int64_t pending = 0;
  int64_t in_progress = 0;
  int64_t delivered = 0;
  int64_t failed = 0;
  int64_t cancelled = 0;
};

struct PGGITOPS_EXPORT Alert {
  int64_t id = 0;
  std::string operation_type;
  std::string severity;  // INFO, WARNING or CRITICAL
  std::string message;
  std::string status;  // pending, acknowledged or resolved
  // The context, a JSON object as text. Empty when it was left out for its
  // size (see context_bytes).
  std::string context_json;
  // The context's size in bytes (serialized), when List() and the other
  // bounded reads left it out for being larger than
  // AlertStoreOptions::context_max_bytes; nullopt when context_json holds
  // it.
  std::optional<int64_t> context_omitted_bytes;
  absl::Time created_at;
  absl::Time updated_at;
  std::optional<absl::Time> acknowledged_at;
  std::optional<absl::Time> resolved_at;
  AlertDeliveryCounts deliveries;
};

// True when the state rules (above) let an alert in status `from` be moved
// to `to` by Acknowledge() ("acknowledged") or Resolve() ("resolved").
PGGITOPS_EXPORT bool AlertTransitionAllowed(absl::string_view from,
                                            absl::string_view to);

struct PGGITOPS_EXPORT AlertFilter {
  std::optional<std::string> status;          // nullopt: any
  std::optional<std::string> severity;        // nullopt: any
  std::optional<std::string> operation_type;  // 1 to 255 characters
  int64_t limit = 20;                         // 1 to 100
  int64_t offset = 0;                         // not negative
};

struct PGGITOPS_EXPORT AlertPage {
  std::vector<Alert> items;  // newest first (created_at, then id)
  int64_t total = 0;         // alerts matching the filter, all pages
};

// The outcome of Acknowledge() or Resolve() over a list of ids.
struct PGGITOPS_EXPORT AlertTransition {
  // Distinct ids that name an alert: each is now in the target state or
  // past it.
  int64_t done = 0;
  // Of those, the alerts whose status this call changed.
  int64_t changed = 0;
  // Ids that name no alert, ascending.
  std::vector<int64_t> not_found;
};

struct PGGITOPS_EXPORT AlertCounts {
  int64_t total = 0;
  int64_t info = 0, warning = 0, critical = 0;          // by severity
  int64_t pending = 0, acknowledged = 0, resolved = 0;  // by status
};

struct PGGITOPS_EXPORT AlertStoreOptions {
  // A context larger than this (serialized bytes) is left out of List(),
  // GetMany(..., bounded) and After(), so a page stays bounded by its
  // length times this. Get() always returns it. Range: positive.
  // Default: 65536 (ALERT_CONTEXT_MAX_BYTES).
  int64_t context_max_bytes = 65536;
  // Longest wait for a pooled connection; nullopt: the pool's timeout.
  std::optional<absl::Duration> acquire_timeout;
};

// Most ids one Acknowledge() or Resolve() takes.
inline constexpr size_t kMaxAlertIdsPerCall = 1000;

class PGGITOPS_EXPORT AlertStore {
 public:
  // *pool must outlive the store.
  explicit AlertStore(ConnectionPool* pool, AlertStoreOptions options = {})
      : pool_(pool), options_(options) {}

  // Inserts the alert (EnqueueAlert in delivery_queue.h: its deliveries
  // are queued in the same transaction) and returns its id; read it back
  // with Get(). kInvalidArgument as AlertInput::Validate() (nothing is
  // written).
  absl::StatusOr<int64_t> Create(const AlertInput& alert);

  // The alert with its whole context. kNotFound "alert N not found".
  absl::StatusOr<Alert> Get(int64_t id);

  // The alerts among `ids` that exist, by id; contexts bounded when
  // `bounded` (see AlertStoreOptions).
  absl::StatusOr<std::vector<Alert>> GetMany(const std::vector<int64_t>& ids,
                                             bool bounded);

  // At most `limit` alerts with an id above `after_id`, by id, contexts
  // bounded: what a client reconnecting to a stream missed.
  absl::StatusOr<std::vector<Alert>> After(int64_t after_id, int64_t limit);

  // The page `filter` selects and the total, read in one snapshot.
  // kInvalidArgument naming the field for a filter out of range.
  absl::StatusOr<AlertPage> List(const AlertFilter& filter = {});

  // Moves the alerts among `ids` that the state rules allow to
  // "acknowledged" / "resolved", in one statement. Repeated ids count once.
  // kInvalidArgument "alert_ids: ..." for no ids or more than
  // kMaxAlertIdsPerCall (nothing changes).
  absl::StatusOr<AlertTransition> Acknowledge(const std::vector<int64_t>& ids);
  absl::StatusOr<AlertTransition> Resolve(const std::vector<int64_t>& ids);

  // Every alert counted by severity and by status, in one snapshot.
  absl::StatusOr<AlertCounts> Counts();

 private:
  absl::StatusOr<AlertTransition> Transition(const std::vector<int64_t>& ids,
                                             absl::string_view to);

  ConnectionPool* pool_;
  AlertStoreOptions options_;
};

}  // namespace pggitops

#endif  // PGGITOPS_INCLUDE_ALERT_STORE_H_
