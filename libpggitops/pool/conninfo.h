// The libpq connection string of the pool's connections: the user's DSN
// (URI or key/value) with the pool's connect timeout, statement timeout and
// application name added.
#ifndef PGGITOPS_LIBPGGITOPS_POOL_CONNINFO_H_
#define PGGITOPS_LIBPGGITOPS_POOL_CONNINFO_H_

#include <string>
#include <utility>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "pggitops/connection_pool.h"

namespace pggitops::internal {

using ConnParams = std::vector<std::pair<std::string, std::string>>;

// The keywords `dsn` sets, in libpq's order. InvalidArgument
// ("PoolOptions.dsn: ...") when it is empty or libpq cannot parse it; the
// message hides the quoted fragments libpq echoes (they may hold the
// password).
absl::StatusOr<ConnParams> ParseDsn(const std::string& dsn);

// A key='value' connection string: `params`, with connect_timeout set to
// `connect_timeout` in whole seconds (rounded up, at least 2, as libpq
// needs), "-c statement_timeout=<ms>" appended to `options` unless
// options.statement_timeout is infinite, and fallback_application_name.
std::string RenderConninfo(const ConnParams& params, const PoolOptions& options,
                           absl::Duration connect_timeout);

}  // namespace pggitops::internal

#endif  // PGGITOPS_LIBPGGITOPS_POOL_CONNINFO_H_
