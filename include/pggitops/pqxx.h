// File: pggitops/pqxx.h
//
// The opt-in libpqxx adapter: the only public header that includes
// <pqxx/pqxx>. It gives the libpqxx connection behind a lease of a pool made
// by ConnectionPool::Create(options), for code that wants libpqxx
// transactions, prepared statements or LISTEN/NOTIFY, and converts libpqxx
// exceptions to absl::Status.
//
//   absl::StatusOr<PooledConnection> lease = pool->Acquire();
//   if (!lease.ok()) return lease.status();
//   absl::Status s = RunPqxx(*lease, "claim deliveries",
//                            [&](pqxx::connection& c) {
//     pqxx::work txn(c);
//     txn.exec("UPDATE ...");
//     txn.commit();
//   });
//
// The pool's connections have libpqxx's silent reconnection ("reactivation")
// disabled: a connection the server dropped throws pqxx::broken_connection
// instead of reconnecting behind the pool's back, and RunPqxx() then marks
// the lease broken so the pool closes it. REQUIRES: every libpqxx
// transaction object on a lease is destroyed before the lease is returned
// (the pool rolls back an open transaction left in the session itself).
//
// Components that take the caller's libpqxx transaction have an adapter
// header of their own built on this one: "pggitops/delivery_pqxx.h"
// (EnqueueAlert in the caller's transaction).
#ifndef PGGITOPS_INCLUDE_PQXX_H_
#define PGGITOPS_INCLUDE_PQXX_H_

#include <exception>
#include <pqxx/pqxx>
#include <utility>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "pggitops/connection_pool.h"
#include "pggitops/export.h"

namespace pggitops {

// The libpqxx connection of `lease`. REQUIRES: lease.valid(), from a pool
// made by ConnectionPool::Create(options) (the libpqxx connector); anything
// else is a programming error and aborts.
PGGITOPS_EXPORT pqxx::connection& Connection(PooledConnection& lease);

// Converts an exception thrown by libpqxx to the status codes SqlStateOf()
// describes: pqxx::sql_error by its SQLSTATE (kept as payload),
// pqxx::broken_connection -> kUnavailable, pqxx::in_doubt_error -> kUnknown,
// anything else -> kInternal. When `lease` is given and the error means the
// session is gone, marks the lease broken.
PGGITOPS_EXPORT absl::Status StatusFromPqxxException(
    const std::exception& e, PooledConnection* lease = nullptr);

// Runs fn(pqxx::connection&) on the lease's connection, timed as one query
// (db_query_duration_seconds; `what` names it in the slow-query log), and
// returns OK or the converted exception. REQUIRES: lease.valid().
template <typename Fn>
absl::Status RunPqxx(PooledConnection& lease, absl::string_view what, Fn&& fn) {
  ScopedQueryTimer timer(lease, what);
  try {
    std::forward<Fn>(fn)(Connection(lease));
    return absl::OkStatus();
  } catch (const std::exception& e) {
    return StatusFromPqxxException(e, &lease);
  }
}

}  // namespace pggitops

#endif  // PGGITOPS_INCLUDE_PQXX_H_
