// The API's JSON of the library's webhooks, deliveries, alerts and
// dashboard figures (CONTRACT sections 5 and 10): field names, RFC 3339
// times, nulls, and numbers as PostgreSQL's json rendered them before the
// model moved into the library (a whole float such as 2.0 is written 2).
#ifndef PGGITOPS_SERVER_ROUTES_DOMAIN_JSON_H_
#define PGGITOPS_SERVER_ROUTES_DOMAIN_JSON_H_

#include <optional>
#include <string>

#include "absl/time/time.h"
#include "nlohmann/json.hpp"
#include "pggitops/alert_store.h"
#include "pggitops/webhook_store.h"

namespace pggitops::server {

// A float8 as PostgreSQL's json writes it: whole values as integers.
nlohmann::json PgNumber(double v);
// nullopt as null.
nlohmann::json PgNumber(const std::optional<double>& v);
// Rfc3339() of the time, or null.
nlohmann::json TimeJson(const std::optional<absl::Time>& t);

// A webhook (never the secret).
nlohmann::json WebhookJson(const Webhook& w);
// One delivery with its attempts.
nlohmann::json DeliveryJson(const Delivery& d);

// An alert with its deliveries by status; a context the store left out for
// its size is {"truncated": true, "bytes": N}.
nlohmann::json AlertJson(const Alert& a);

}  // namespace pggitops::server

#endif  // PGGITOPS_SERVER_ROUTES_DOMAIN_JSON_H_
