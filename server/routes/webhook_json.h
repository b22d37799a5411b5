// Input checking of the webhooks endpoints (CONTRACT section 10): the
// webhook body of create/PUT/PATCH, path ids and list paging. The value
// rules of a webhook's fields are the library's (WebhookFields::Validate);
// this file checks JSON types and names the JSON field. Everything here throws
// HttpError (422 naming the field, 404 for an id that cannot name a resource)
// before anything touches the database.
#ifndef PGGITOPS_SERVER_ROUTES_WEBHOOK_JSON_H_
#define PGGITOPS_SERVER_ROUTES_WEBHOOK_JSON_H_

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "nlohmann/json.hpp"
#include "pggitops/webhook_store.h"
#include "server/http/request_context.h"

namespace pggitops::server {

// The fields a request named, validated, as the library's WebhookFields: a
// field the request did not name is unset, so an update changes only what
// the client sent (the is_active trigger must not fire otherwise).
struct WebhookWrite {
  WebhookFields fields;
  // True when the request named `field` ("name", "url", "is_active", ...,
  // "max_retries" for retry_policy.max_retries, "filter_severities" for
  // filters.severities).
  bool names(const std::string& field) const;
};

enum class WebhookBodyMode {
  kCreate,  // name and url required; defaults for the rest
  kUpdate,  // any subset (PUT and PATCH, CONTRACT section 10)
};

// Validates a webhook body (a JSON object). Throws 422 VALIDATION_ERROR
// naming the first bad field ("retry_policy.max_retries: ...") for an
// unknown or read-only field, a wrong type, a value out of range or (create)
// a missing required field. Unless `allow_private_targets`, a url whose host
// is literally a private, loopback or link-local address, or localhost, is
// refused (422 url; CONTRACT section 8).
WebhookWrite ParseWebhookBody(const nlohmann::json& body, WebhookBodyMode mode,
                              bool allow_private_targets = true);

// A path id: decimal digits that fit a bigint; anything else throws 422
// VALIDATION_ERROR (malformed ids are 422 everywhere, unknown ids 404).
int64_t ParseWebhookId(const std::string& text);

// The body as a caller below admin may see it: the password of a URL's
// userinfo ("https://user:***@host/") and the address a refused delivery
// resolved to ("target address refused: (address hidden) is private") are
// masked. Returns the body unchanged when there is nothing to mask.
std::string MaskForNonAdmin(const std::string& body);
// The same in place; false (and *body untouched) when there is nothing to
// mask, which costs one memchr and one memmem over the body.
bool MaskForNonAdminInPlace(std::string* body);

// limit (default 20, 1 to 100) and offset (default 0, not negative) of a
// list request; 422 otherwise.
struct PageParams {
  int64_t limit = 20;
  int64_t offset = 0;
};
PageParams ParsePage(const RequestContext& ctx);

// An optional query parameter that must be one of `allowed` (422 naming
// `name` otherwise); nullopt when absent.
std::optional<std::string> ParseChoice(const RequestContext& ctx,
                                       const std::string& name,
                                       const std::vector<std::string>& allowed);

// A JSON integer in [min, max], or 422 naming `field`.
int64_t JsonInteger(const nlohmann::json& value, const std::string& field,
                    int64_t min, int64_t max);

}  // namespace pggitops::server

#endif  // PGGITOPS_SERVER_ROUTES_WEBHOOK_JSON_H_
