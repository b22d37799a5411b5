// PooledConnection (the RAII lease) and ScopedQueryTimer.
#include <utility>

#include "libpggitops/pool/pool_core.h"
#include "libpggitops/pool/sql_status.h"
#include "pggitops/connection_pool.h"

namespace pggitops {

PooledConnection::PooledConnection() = default;

PooledConnection::PooledConnection(std::shared_ptr<internal::PoolCore> pool,
                                   std::unique_ptr<internal::PoolSlot> slot)
    : pool_(std::move(pool)), slot_(std::move(slot)) {}

PooledConnection::~PooledConnection() { Release(); }

PooledConnection::PooledConnection(PooledConnection&& other) noexcept
    : pool_(std::move(other.pool_)), slot_(std::move(other.slot_)) {}

PooledConnection& PooledConnection::operator=(
    PooledConnection&& other) noexcept {
  if (this != &other) {
    Release();
    pool_ = std::move(other.pool_);
    slot_ = std::move(other.slot_);
  }
  return *this;
}

absl::StatusOr<QueryResult> PooledConnection::Query(
    absl::string_view sql,
    const std::vector<std::optional<std::string>>& params) {
  absl::StatusOr<QueryResult> result;
  {
    ScopedQueryTimer timer(*this, sql);
    result = slot_->conn->Execute(sql, params);
  }
  if (!result.ok() && internal::IsConnectionFailure(result.status())) {
    MarkBroken();
  }
  return result;
}

void PooledConnection::Release() {
  if (slot_ == nullptr) return;
  std::shared_ptr<internal::PoolCore> pool = std::move(pool_);
  pool->Return(std::move(slot_), /*discard=*/false);
}

void PooledConnection::Discard() {
  if (slot_ == nullptr) return;
  std::shared_ptr<internal::PoolCore> pool = std::move(pool_);
  pool->Return(std::move(slot_), /*discard=*/true);
}

void PooledConnection::MarkBroken() {
  if (!slot_->broken) pool_->NoteDeadConnection();
  slot_->broken = true;
}

PgConnection& PooledConnection::connection() { return *slot_->conn; }

uint64_t PooledConnection::connection_id() const { return slot_->id; }

ScopedQueryTimer::ScopedQueryTimer(const PooledConnection& lease,
                                   absl::string_view what)
    : pool_(lease.pool_.get()),
      what_(what),
      start_(pool_->env()->MonotonicNow()) {}

ScopedQueryTimer::~ScopedQueryTimer() {
  pool_->RecordQuery(pool_->env()->MonotonicNow() - start_, what_);
}

}  // namespace pggitops
