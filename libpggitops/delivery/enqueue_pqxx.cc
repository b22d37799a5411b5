// EnqueueAlert over the caller's libpqxx transaction (pggitops/pqxx.h).
#include <string>

#include "pggitops/delivery_pqxx.h"

namespace pggitops {

absl::StatusOr<int64_t> EnqueueAlert(pqxx::transaction_base& txn,
                                     const AlertInput& alert) {
  if (absl::Status s = alert.Validate(); !s.ok()) return s;
  try {
    const pqxx::result r = txn.exec_params(
        "INSERT INTO pggit.alerts (operation_type, severity, message, "
        "context) VALUES ($1, $2, $3, $4::jsonb) RETURNING id",
        alert.operation_type, alert.severity, alert.message,
        alert.context_json.empty() ? std::string("{}") : alert.context_json);
    return r[0][0].as<int64_t>();
  } catch (const std::exception& e) {
    return StatusFromPqxxException(e);
  }
}

}  // namespace pggitops
