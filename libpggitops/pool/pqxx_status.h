// File: libpggitops/pool/pqxx_status.h
//
// The one mapping of libpqxx exceptions to absl::Status, for every libpqxx
// user of the library (the pool's adapter, pggitops/pqxx.h, the schema
// runner, the alert fan-out of a caller's transaction). Codes follow
// SqlStateOf() in connection_pool.h; the SQLSTATE is kept as payload.
#ifndef PGGITOPS_LIBPGGITOPS_POOL_PQXX_STATUS_H_
#define PGGITOPS_LIBPGGITOPS_POOL_PQXX_STATUS_H_

#include <exception>
#include <string>

#include "absl/status/status.h"
#include "absl/strings/string_view.h"

namespace pggitops::internal {

// The SQLSTATE of a libpqxx exception: its sqlstate() when libpqxx kept
// one, else the one its type stands for (libpqxx 6.4 throws
// insufficient_privilege, transaction_rollback and others without it:
// insufficient_privilege is 42501), else "".
std::string SqlStateOfPqxx(const std::exception& e);

// Maps `e`: pqxx::broken_connection -> kUnavailable; in_doubt_error and
// statement_completion_unknown -> kUnknown; an SQL error by its SQLSTATE
// (SqlStateOfPqxx; see CodeForSqlState), so a privilege error without one
// is kPermissionDenied; anything else -> kInternal. The message is what()
// on one line, prefixed by "`context`: " when a context is given.
absl::Status StatusFromPqxx(const std::exception& e,
                            absl::string_view context = "");

// libpq messages end with a newline and continue on tab-indented lines:
// the text on one line.
std::string OneLine(absl::string_view message);

}  // namespace pggitops::internal

#endif  // PGGITOPS_LIBPGGITOPS_POOL_PQXX_STATUS_H_
