// Maps PostgreSQL errors (SQLSTATE) to absl::Status codes, and carries the
// SQLSTATE as a status payload (read with SqlStateOf()).
#ifndef PGGITOPS_LIBPGGITOPS_POOL_SQL_STATUS_H_
#define PGGITOPS_LIBPGGITOPS_POOL_SQL_STATUS_H_

#include "absl/status/status.h"
#include "absl/strings/string_view.h"

namespace pggitops::internal {

// The payload type URL under which the SQLSTATE is stored.
inline constexpr absl::string_view kSqlStatePayload = "pggitops/sqlstate";

// The status code for a server error with this five-character SQLSTATE
// (see SqlStateOf() in connection_pool.h for the table).
absl::StatusCode CodeForSqlState(absl::string_view sqlstate);

// A status for a server error: CodeForSqlState(sqlstate), the message
// prefixed with the SQLSTATE, and the SQLSTATE as payload. An empty
// sqlstate (no server answer) gives kUnavailable.
absl::Status SqlError(absl::string_view sqlstate, absl::string_view message);

// True for statuses meaning the session is gone: kUnavailable without a
// SQLSTATE, or SQLSTATE class 08 (connection exception) or 57P01-57P03
// (server shutting down).
bool IsConnectionFailure(const absl::Status& status);

}  // namespace pggitops::internal

#endif  // PGGITOPS_LIBPGGITOPS_POOL_SQL_STATUS_H_
