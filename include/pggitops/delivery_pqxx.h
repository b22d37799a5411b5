// File: pggitops/delivery_pqxx.h
//
// The delivery queue for libpqxx users (opt-in, like "pggitops/pqxx.h",
// which it includes): an alert inserted inside the caller's own libpqxx
// transaction, so the alert and its deliveries commit or roll back with the
// application's writes.
//
//   pqxx::work txn(conn);
//   txn.exec("UPDATE accounts ...");
//   absl::StatusOr<int64_t> id = EnqueueAlert(txn, alert);
//   if (!id.ok()) return id.status();   // txn is aborted: do not commit
//   txn.commit();                        // engines are woken at commit
#ifndef PGGITOPS_INCLUDE_DELIVERY_PQXX_H_
#define PGGITOPS_INCLUDE_DELIVERY_PQXX_H_

#include <cstdint>

#include "absl/status/statusor.h"
#include "pggitops/delivery_queue.h"
#include "pggitops/export.h"
#include "pggitops/pqxx.h"

namespace pggitops {

// Inserts the alert within `txn` (any libpqxx connection to the pggitops
// database: one from the pool via Connection(lease), or the application's
// own) and returns its id. InvalidArgument for an invalid alert (nothing is
// sent to the server); a database error is converted as
// StatusFromPqxxException does, and leaves `txn` aborted, as any failed
// statement does.
PGGITOPS_EXPORT absl::StatusOr<int64_t> EnqueueAlert(
    pqxx::transaction_base& txn, const AlertInput& alert);

}  // namespace pggitops

#endif  // PGGITOPS_INCLUDE_DELIVERY_PQXX_H_
