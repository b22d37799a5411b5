#include "libpggitops/pool/pqxx_status.h"

#include <pqxx/pqxx>
#include <string>

#include "absl/strings/ascii.h"
#include "absl/strings/cord.h"
#include "absl/strings/str_cat.h"
#include "libpggitops/pool/sql_status.h"

namespace pggitops::internal {
namespace {

template <typename T>
bool Is(const std::exception& e) {
  return dynamic_cast<const T*>(&e) != nullptr;
}

// The SQLSTATE a libpqxx exception type stands for, most specific first.
const char* SqlStateOfType(const std::exception& e) {
  if (Is<pqxx::insufficient_privilege>(e)) return "42501";
  if (Is<pqxx::unique_violation>(e)) return "23505";
  if (Is<pqxx::foreign_key_violation>(e)) return "23503";
  if (Is<pqxx::not_null_violation>(e)) return "23502";
  if (Is<pqxx::check_violation>(e)) return "23514";
  if (Is<pqxx::integrity_constraint_violation>(e)) return "23000";
  if (Is<pqxx::data_exception>(e)) return "22000";
  if (Is<pqxx::serialization_failure>(e)) return "40001";
  if (Is<pqxx::deadlock_detected>(e)) return "40P01";
  if (Is<pqxx::disk_full>(e)) return "53100";
  if (Is<pqxx::out_of_memory>(e)) return "53200";
  if (Is<pqxx::insufficient_resources>(e)) return "53000";
  if (Is<pqxx::undefined_table>(e)) return "42P01";
  if (Is<pqxx::undefined_column>(e)) return "42703";
  if (Is<pqxx::undefined_function>(e)) return "42883";
  if (Is<pqxx::syntax_error>(e)) return "42601";
  if (Is<pqxx::feature_not_supported>(e)) return "0A000";
  return "";
}

absl::Status WithContext(const absl::Status& s, absl::string_view context) {
  if (context.empty()) return s;
  absl::Status out(s.code(), absl::StrCat(context, ": ", s.message()));
  s.ForEachPayload([&out](absl::string_view url, const absl::Cord& payload) {
    out.SetPayload(url, payload);
  });
  return out;
}

}  // namespace

std::string OneLine(absl::string_view message) {
  std::string out;
  for (char c : absl::StripAsciiWhitespace(message)) {
    bool space = c == ' ' || c == '\n' || c == '\t' || c == '\r';
    if (space && (out.empty() || out.back() == ' ')) continue;
    out += space ? ' ' : c;
  }
  return out;
}

std::string SqlStateOfPqxx(const std::exception& e) {
  if (const auto* sql = dynamic_cast<const pqxx::sql_error*>(&e)) {
    if (!sql->sqlstate().empty()) return sql->sqlstate();
  }
  return SqlStateOfType(e);
}

absl::Status StatusFromPqxx(const std::exception& e,
                            absl::string_view context) {
  const std::string message = OneLine(e.what());
  absl::Status status;
  if (Is<pqxx::broken_connection>(e)) {
    status = absl::UnavailableError(message);
  } else if (Is<pqxx::in_doubt_error>(e) ||
             Is<pqxx::statement_completion_unknown>(e)) {
    status = absl::UnknownError(message);
  } else if (const std::string state = SqlStateOfPqxx(e); !state.empty()) {
    status = SqlError(state, message);
  } else if (Is<pqxx::transaction_rollback>(e)) {
    status = absl::AbortedError(message);
  } else {
    status = absl::InternalError(message);
  }
  return WithContext(status, context);
}

}  // namespace pggitops::internal
