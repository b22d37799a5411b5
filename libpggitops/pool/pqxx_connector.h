// The libpqxx driver behind ConnectionPool::Create(options): the only
// place where the pool touches libpqxx and libpq. Exceptions stop here.
#ifndef PGGITOPS_LIBPGGITOPS_POOL_PQXX_CONNECTOR_H_
#define PGGITOPS_LIBPGGITOPS_POOL_PQXX_CONNECTOR_H_

#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "pggitops/connection_pool.h"
#include "pggitops/pqxx.h"

namespace pggitops::internal {

// A pool session: a pqxx::connection with reactivation inhibited, plus
// direct libpq calls on its handle for the checks the pool makes between
// leases (liveness without a round trip, transaction status, rollback).
// Not thread-safe (one lease at a time).
class PqxxConnection final : public PgConnection {
 public:
  explicit PqxxConnection(std::unique_ptr<pqxx::connection> conn);
  ~PqxxConnection() override;

  bool CheckAlive() override;
  absl::Status Ping() override;
  TransactionState GetTransactionState() override;
  absl::StatusOr<QueryResult> Execute(
      absl::string_view sql,
      const std::vector<std::optional<std::string>>& params) override;

  pqxx::connection& pqxx_connection() { return *conn_; }

 private:
  class NoticeHandler;

  pqxx::internal::pq::PGconn* raw() const;
  absl::Status ErrorFromConnection() const;

  std::unique_ptr<pqxx::connection> conn_;
  // Declared after conn_: unregisters itself before the connection closes.
  std::unique_ptr<NoticeHandler> notices_;
  // The server sent a FATAL message while the session was idle.
  bool fatal_notice_ = false;
};

// A connector for options.dsn. InvalidArgument if the dsn does not parse.
absl::StatusOr<std::unique_ptr<PgConnector>> NewPqxxConnector(
    const PoolOptions& options);

}  // namespace pggitops::internal

#endif  // PGGITOPS_LIBPGGITOPS_POOL_PQXX_CONNECTOR_H_
