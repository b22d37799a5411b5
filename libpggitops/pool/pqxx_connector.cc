#include "libpggitops/pool/pqxx_connector.h"

#include <libpq-fe.h>
#include <poll.h>

#include <cerrno>
#include <cstdlib>
#include <utility>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "libpggitops/pool/conninfo.h"
#include "libpggitops/pool/pqxx_status.h"
#include "libpggitops/pool/sql_status.h"
#include "pggitops/log.h"

namespace pggitops {
namespace internal {
namespace {

// libpqxx 6.4 keeps the libpq handle private (connection_base::
// raw_connection()) and offers no way to ask libpq for the transaction
// status or to read input without running a query, both of which the pool
// needs between leases. An explicit template instantiation may name a
// private member ([temp.explicit]: "the usual access checking rules do not
// apply"), which lets this one function reach the handle; the friend below
// is its only use.
using RawConnectionFn =
    pqxx::internal::pq::PGconn* (pqxx::connection_base::*)() const;
RawConnectionFn RawConnectionAccessor();
template <RawConnectionFn kFn>
struct RawConnectionExposer {
  friend RawConnectionFn RawConnectionAccessor() { return kFn; }
};
template struct RawConnectionExposer<&pqxx::connection_base::raw_connection>;

class PqxxConnector final : public PgConnector {
 public:
  PqxxConnector(ConnParams params, const PoolOptions& options)
      : params_(std::move(params)), options_(options) {}

  absl::StatusOr<std::unique_ptr<PgConnection>> Connect(
      absl::Duration connect_timeout) override {
    const std::string conninfo =
        RenderConninfo(params_, options_, connect_timeout);
    try {
      auto conn = std::make_unique<pqxx::connection>(conninfo);
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wdeprecated-declarations"
      conn->inhibit_reactivation(true);
#pragma GCC diagnostic pop
      return std::make_unique<PqxxConnection>(std::move(conn));
    } catch (const std::exception& e) {
      return absl::UnavailableError(OneLine(e.what()));
    }
  }

 private:
  const ConnParams params_;
  const PoolOptions options_;
};

}  // namespace

// Routes server notices to the debug log instead of libpqxx's default
// (stderr, which would break the JSON log lines), and remembers a FATAL
// message received between statements: the server is closing the session.
class PqxxConnection::NoticeHandler final : public pqxx::errorhandler {
 public:
  NoticeHandler(pqxx::connection_base& conn, bool* fatal)
      : pqxx::errorhandler(conn), fatal_(fatal) {}

  bool operator()(const char message[]) noexcept override {
    if (absl::StartsWith(message, "FATAL:")) *fatal_ = true;
    Log::Debug("postgres notice", {{"message", OneLine(message)}});
    return false;  // handled: skip libpqxx's default handler
  }

 private:
  bool* const fatal_;
};

PqxxConnection::PqxxConnection(std::unique_ptr<pqxx::connection> conn)
    : conn_(std::move(conn)),
      notices_(std::make_unique<NoticeHandler>(*conn_, &fatal_notice_)) {}

PqxxConnection::~PqxxConnection() = default;

pqxx::internal::pq::PGconn* PqxxConnection::raw() const {
  return ((*conn_).*RawConnectionAccessor())();
}

bool PqxxConnection::CheckAlive() {
  PGconn* pg = raw();
  if (pg == nullptr || PQstatus(pg) != CONNECTION_OK || fatal_notice_) {
    return false;
  }
  // Something may have arrived while idle: a notification, a parameter
  // change, or the FATAL message and end of file of a terminated backend.
  // Read until the socket is drained (bounded): end of file makes
  // PQconsumeInput fail, and PQisBusy parses what was read, which passes an
  // idle-time error to the notice handler.
  for (int round = 0; round < 4; ++round) {
    pollfd p{PQsocket(pg), POLLIN, 0};
    if (p.fd < 0) return false;
    const int n = poll(&p, 1, 0);
    if (n == 0) return true;  // nothing (more) to read
    if (n < 0) return errno == EINTR;
    if ((p.revents & (POLLERR | POLLNVAL)) != 0) return false;
    if (PQconsumeInput(pg) == 0) return false;
    PQisBusy(pg);
    if (PQstatus(pg) != CONNECTION_OK || fatal_notice_) return false;
  }
  return true;
}

absl::Status PqxxConnection::Ping() { return Execute("SELECT 1", {}).status(); }

TransactionState PqxxConnection::GetTransactionState() {
  PGconn* pg = raw();
  if (pg == nullptr || PQstatus(pg) != CONNECTION_OK) {
    return TransactionState::kBroken;
  }
  switch (PQtransactionStatus(pg)) {
    case PQTRANS_IDLE:
      return TransactionState::kIdle;
    case PQTRANS_ACTIVE:
      return TransactionState::kActive;
    case PQTRANS_INTRANS:
      return TransactionState::kInTransaction;
    case PQTRANS_INERROR:
      return TransactionState::kInFailedTransaction;
    case PQTRANS_UNKNOWN:
      break;
  }
  return TransactionState::kBroken;
}

absl::Status PqxxConnection::ErrorFromConnection() const {
  PGconn* pg = raw();
  if (pg == nullptr) return absl::UnavailableError("connection closed");
  std::string message = OneLine(PQerrorMessage(pg));
  if (PQstatus(pg) != CONNECTION_OK) return absl::UnavailableError(message);
  return absl::InternalError(message);
}

absl::StatusOr<QueryResult> PqxxConnection::Execute(
    absl::string_view sql,
    const std::vector<std::optional<std::string>>& params) {
  PGconn* pg = raw();
  if (pg == nullptr) return absl::UnavailableError("connection closed");
  std::vector<const char*> values;
  values.reserve(params.size());
  for (const auto& p : params) values.push_back(p ? p->c_str() : nullptr);
  const std::string text(sql);
  // Without parameters the simple protocol costs the server less (one
  // message instead of parse, bind, describe and execute).
  std::unique_ptr<PGresult, void (*)(PGresult*)> res(
      values.empty()
          ? PQexec(pg, text.c_str())
          : PQexecParams(pg, text.c_str(), static_cast<int>(values.size()),
                         nullptr, values.data(), nullptr, nullptr, 0),
      PQclear);
  if (res == nullptr) return ErrorFromConnection();
  switch (PQresultStatus(res.get())) {
    case PGRES_COMMAND_OK:
    case PGRES_TUPLES_OK:
    case PGRES_EMPTY_QUERY:
      break;
    case PGRES_FATAL_ERROR: {
      const char* state = PQresultErrorField(res.get(), PG_DIAG_SQLSTATE);
      if (state == nullptr) return ErrorFromConnection();
      return SqlError(state, OneLine(PQresultErrorMessage(res.get())));
    }
    default:
      return absl::InvalidArgumentError(
          absl::StrCat("statement not supported by Query (",
                       PQresStatus(PQresultStatus(res.get())), ")"));
  }
  QueryResult out;
  const int ncols = PQnfields(res.get());
  const int nrows = PQntuples(res.get());
  for (int c = 0; c < ncols; ++c) out.columns.push_back(PQfname(res.get(), c));
  out.rows.resize(nrows);
  for (int r = 0; r < nrows; ++r) {
    out.rows[r].reserve(ncols);
    for (int c = 0; c < ncols; ++c) {
      if (PQgetisnull(res.get(), r, c)) {
        out.rows[r].emplace_back(std::nullopt);
      } else {
        out.rows[r].emplace_back(std::string(PQgetvalue(res.get(), r, c),
                                             PQgetlength(res.get(), r, c)));
      }
    }
  }
  int64_t affected = 0;
  if (absl::SimpleAtoi(PQcmdTuples(res.get()), &affected)) {
    out.affected_rows = affected;
  }
  return out;
}

absl::StatusOr<std::unique_ptr<PgConnector>> NewPqxxConnector(
    const PoolOptions& options) {
  absl::StatusOr<ConnParams> params = ParseDsn(options.dsn);
  if (!params.ok()) return params.status();
  return std::make_unique<PqxxConnector>(*std::move(params), options);
}

}  // namespace internal

pqxx::connection& Connection(PooledConnection& lease) {
  auto* conn =
      lease.valid()
          ? dynamic_cast<internal::PqxxConnection*>(&lease.connection())
          : nullptr;
  if (conn == nullptr) {
    Log::Error(
        "pggitops::Connection: lease is empty or not from a libpqxx pool");
    std::abort();
  }
  return conn->pqxx_connection();
}

absl::Status StatusFromPqxxException(const std::exception& e,
                                     PooledConnection* lease) {
  absl::Status status = internal::StatusFromPqxx(e);
  if (lease != nullptr && lease->valid() &&
      internal::IsConnectionFailure(status)) {
    lease->MarkBroken();
  }
  return status;
}

}  // namespace pggitops
