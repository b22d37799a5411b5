// Input checking of the alerts endpoints' bodies (CONTRACT section 10),
// declared here so tests and the fuzz target (tests/fuzz/alert_body_fuzz.cc)
// can call them; defined in alert_routes.cc. Both throw HttpError (422
// VALIDATION_ERROR naming the field) before anything touches the database.
#ifndef PGGITOPS_SERVER_ROUTES_ALERT_BODY_H_
#define PGGITOPS_SERVER_ROUTES_ALERT_BODY_H_

#include <cstdint>
#include <vector>

#include "nlohmann/json.hpp"
#include "pggitops/delivery_queue.h"

namespace pggitops::server {

// The body of POST /api/v1/alerts: operation_type, severity and message
// (strings, required) and context (an object without NUL characters, at
// most `context_max_bytes` serialized); nothing else.
AlertInput ParseAlertBody(const nlohmann::json& body,
                          int64_t context_max_bytes);

// The body of POST /api/v1/alerts/acknowledge and /resolve:
// {"alert_ids": [1 to 1000 integers that fit a bigint]}, nothing else.
std::vector<int64_t> ParseAlertIds(const nlohmann::json& body);

}  // namespace pggitops::server

#endif  // PGGITOPS_SERVER_ROUTES_ALERT_BODY_H_
