// ConnectionPool::Create and the pool object handed to callers.
#include "pggitops/connection_pool.h"

#include <memory>
#include <utility>

#include "libpggitops/pool/pool_core.h"
#include "libpggitops/pool/pqxx_connector.h"

namespace pggitops {
namespace {

// Forwards to the shared PoolCore, which leases keep alive. Thread-safe.
class PoolImpl final : public ConnectionPool {
 public:
  PoolImpl(const PoolOptions& options, std::unique_ptr<PgConnector> connector)
      : timeout_(options.timeout),
        core_(std::make_shared<internal::PoolCore>(options,
                                                   std::move(connector))) {}
  ~PoolImpl() override { core_->Shutdown(); }

  absl::StatusOr<PooledConnection> Acquire() override {
    return core_->Acquire(timeout_);
  }
  absl::StatusOr<PooledConnection> Acquire(absl::Duration timeout) override {
    return core_->Acquire(timeout);
  }
  PoolStats Stats() const override { return core_->Stats(); }
  void Shutdown() override { core_->Shutdown(); }

 private:
  const absl::Duration timeout_;
  const std::shared_ptr<internal::PoolCore> core_;
};

}  // namespace

absl::StatusOr<std::unique_ptr<ConnectionPool>> ConnectionPool::Create(
    const PoolOptions& options) {
  if (absl::Status s = options.Validate(); !s.ok()) return s;
  absl::StatusOr<std::unique_ptr<PgConnector>> connector =
      internal::NewPqxxConnector(options);
  if (!connector.ok()) return connector.status();
  return Create(options, *std::move(connector));
}

absl::StatusOr<std::unique_ptr<ConnectionPool>> ConnectionPool::Create(
    const PoolOptions& options, std::unique_ptr<PgConnector> connector) {
  if (absl::Status s = options.Validate(); !s.ok()) return s;
  if (connector == nullptr) {
    return absl::InvalidArgumentError("ConnectionPool: connector is null");
  }
  return std::unique_ptr<ConnectionPool>(
      new PoolImpl(options, std::move(connector)));
}

}  // namespace pggitops
