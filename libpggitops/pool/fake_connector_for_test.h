// A scripted PgConnector for the pool's unit tests: sessions live in a
// FakeServer the test inspects and breaks at will. Test-only.
#ifndef PGGITOPS_LIBPGGITOPS_POOL_FAKE_CONNECTOR_FOR_TEST_H_
#define PGGITOPS_LIBPGGITOPS_POOL_FAKE_CONNECTOR_FOR_TEST_H_

#include <algorithm>
#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "libpggitops/pool/pool_lock.h"
#include "libpggitops/pool/sql_status.h"
#include "pggitops/connection_pool.h"
#include "testing/fake_env.h"

namespace pggitops::internal {

// Server-side state of one session.
struct FakeSession {
  int id = 0;
  bool server_closed = false;  // terminated: CheckAlive() is false
  bool ping_fails = false;     // looks alive, but round trips fail
  bool rollback_fails = false;
  bool client_closed = false;  // the pool closed it
  int pings = 0;
  TransactionState state = TransactionState::kIdle;
  std::vector<std::string> statements;
};

// Thread-safe. Sessions are recorded forever, so tests can look at closed
// ones.
class FakeServer : public std::enable_shared_from_this<FakeServer> {
 public:
  explicit FakeServer(testing::FakeEnv* env = nullptr) : env_(env) {}

  // Connect() fails with `error` while it is not OK.
  void SetConnectError(absl::Status error) {
    PoolLock lock(&mu_);
    connect_error_ = std::move(error);
  }
  // Every statement "SLOW" advances the fake clock by `d`.
  void SetSlowQueryTime(absl::Duration d) {
    PoolLock lock(&mu_);
    slow_ = d;
  }
  // The server terminates every open session (pg_terminate_backend).
  void TerminateAll() {
    PoolLock lock(&mu_);
    for (auto& s : sessions_) s->server_closed = true;
  }
  // Every open session stops answering while its socket looks fine.
  void PartitionAll() {
    PoolLock lock(&mu_);
    for (auto& s : sessions_) s->ping_fails = true;
  }
  int connect_attempts() const {
    PoolLock lock(&mu_);
    return static_cast<int>(connect_timeouts_.size());
  }
  std::vector<absl::Duration> connect_timeouts() const {
    PoolLock lock(&mu_);
    return connect_timeouts_;
  }
  int open() const {
    PoolLock lock(&mu_);
    return open_;
  }
  int max_open() const {
    PoolLock lock(&mu_);
    return max_open_;
  }
  int total_pings() const {
    PoolLock lock(&mu_);
    int n = 0;
    for (const auto& s : sessions_) n += s->pings;
    return n;
  }
  // A copy of session `id`'s state (ids start at 1).
  FakeSession session(int id) const {
    PoolLock lock(&mu_);
    return *sessions_.at(id - 1);
  }
  // Changes session `id` under the server's lock.
  template <typename Fn>
  void Mutate(int id, Fn fn) {
    PoolLock lock(&mu_);
    fn(*sessions_.at(id - 1));
  }
  int sessions() const {
    PoolLock lock(&mu_);
    return static_cast<int>(sessions_.size());
  }

  absl::StatusOr<std::unique_ptr<PgConnection>> Connect(absl::Duration timeout);
  bool CheckAlive(FakeSession* s) {
    PoolLock lock(&mu_);
    return !s->server_closed;
  }
  absl::Status Ping(FakeSession* s) {
    PoolLock lock(&mu_);
    ++s->pings;
    if (s->server_closed || s->ping_fails) {
      return absl::UnavailableError("server closed the connection");
    }
    return absl::OkStatus();
  }
  TransactionState State(FakeSession* s) {
    PoolLock lock(&mu_);
    return s->server_closed ? TransactionState::kBroken : s->state;
  }
  void Close(FakeSession* s) {
    PoolLock lock(&mu_);
    s->client_closed = true;
    --open_;
  }
  // Runs one of: BEGIN, COMMIT, ROLLBACK, SELECT 1, FAIL (a SQL error),
  // SLOW, ACTIVE (leaves a statement running), or any other text (no rows).
  absl::StatusOr<QueryResult> Execute(FakeSession* s, absl::string_view sql);

 private:
  testing::FakeEnv* const env_;
  mutable absl::Mutex mu_;
  absl::Status connect_error_ ABSL_GUARDED_BY(mu_);
  absl::Duration slow_ ABSL_GUARDED_BY(mu_);
  std::vector<std::unique_ptr<FakeSession>> sessions_ ABSL_GUARDED_BY(mu_);
  std::vector<absl::Duration> connect_timeouts_ ABSL_GUARDED_BY(mu_);
  int open_ ABSL_GUARDED_BY(mu_) = 0;
  int max_open_ ABSL_GUARDED_BY(mu_) = 0;
};

class FakeConnection final : public PgConnection {
 public:
  FakeConnection(std::shared_ptr<FakeServer> server, FakeSession* session)
      : server_(std::move(server)), session_(session) {}
  ~FakeConnection() override { server_->Close(session_); }
  bool CheckAlive() override { return server_->CheckAlive(session_); }
  absl::Status Ping() override { return server_->Ping(session_); }
  TransactionState GetTransactionState() override {
    return server_->State(session_);
  }
  absl::StatusOr<QueryResult> Execute(
      absl::string_view sql,
      const std::vector<std::optional<std::string>>&) override {
    return server_->Execute(session_, sql);
  }
  int session_id() const { return session_->id; }

 private:
  const std::shared_ptr<FakeServer> server_;
  FakeSession* const session_;
};

class FakeConnector final : public PgConnector {
 public:
  explicit FakeConnector(std::shared_ptr<FakeServer> server)
      : server_(std::move(server)) {}
  absl::StatusOr<std::unique_ptr<PgConnection>> Connect(
      absl::Duration timeout) override {
    return server_->Connect(timeout);
  }

 private:
  const std::shared_ptr<FakeServer> server_;
};

inline absl::StatusOr<std::unique_ptr<PgConnection>> FakeServer::Connect(
    absl::Duration timeout) {
  PoolLock lock(&mu_);
  connect_timeouts_.push_back(timeout);
  if (!connect_error_.ok()) return connect_error_;
  auto session = std::make_unique<FakeSession>();
  session->id = static_cast<int>(sessions_.size()) + 1;
  FakeSession* raw = session.get();
  sessions_.push_back(std::move(session));
  max_open_ = std::max(max_open_, ++open_);
  return std::unique_ptr<PgConnection>(
      new FakeConnection(shared_from_this(), raw));
}

inline absl::StatusOr<QueryResult> FakeServer::Execute(FakeSession* s,
                                                       absl::string_view sql) {
  absl::Duration advance;
  absl::StatusOr<QueryResult> result = QueryResult();
  {
    PoolLock lock(&mu_);
    s->statements.emplace_back(sql);
    if (s->server_closed || s->ping_fails) {
      s->state = TransactionState::kBroken;
      return absl::UnavailableError("server closed the connection");
    }
    if (s->state == TransactionState::kInFailedTransaction &&
        sql != "ROLLBACK" && sql != "COMMIT") {
      return SqlError("25P02", "current transaction is aborted");
    }
    if (sql == "BEGIN") {
      s->state = TransactionState::kInTransaction;
    } else if (sql == "ROLLBACK" && s->rollback_fails) {
      return SqlError("XX000", "rollback failed");
    } else if (sql == "ROLLBACK" || sql == "COMMIT") {
      s->state = TransactionState::kIdle;
    } else if (sql == "FAIL") {
      if (s->state == TransactionState::kInTransaction) {
        s->state = TransactionState::kInFailedTransaction;
      }
      return SqlError("22012", "division by zero");
    } else if (sql == "ACTIVE") {
      s->state = TransactionState::kActive;
    } else if (sql == "SELECT 1") {
      result->columns = {"?column?"};
      result->rows = {{std::string("1")}};
    } else if (sql == "SLOW") {
      advance = slow_;
    }
  }
  if (env_ != nullptr && advance > absl::ZeroDuration()) {
    env_->AdvanceBy(advance);
  }
  return result;
}

}  // namespace pggitops::internal

#endif  // PGGITOPS_LIBPGGITOPS_POOL_FAKE_CONNECTOR_FOR_TEST_H_
