// The dashboard's session cookie (CONTRACT section 10, "Dashboard with
// keys"): the page for people sends its `read` key once to
// POST /dashboard/session, which stores it in the HttpOnly, SameSite=Strict
// cookie `pggit_session`; AuthMiddleware accepts that cookie in place of
// `Authorization: Bearer` for GET and HEAD requests only, since a browser's
// EventSource cannot send an Authorization header.
#ifndef PGGITOPS_SERVER_HTTP_SESSION_COOKIE_H_
#define PGGITOPS_SERVER_HTTP_SESSION_COOKIE_H_

#include <optional>
#include <string>

#include "absl/strings/string_view.h"
#include "httplib.h"
#include "server/http/client_address.h"

namespace pggitops::server {

inline constexpr char kSessionCookieName[] = "pggit_session";

// The value of the first cookie named `name` with a non-empty value in one
// `Cookie` header ("a=1; pggit_session=pggit_x"), or nullopt. Pairs are
// split on ';', spaces around names and values are ignored, a value in
// double quotes is unquoted (RFC 6265), and a pair without '=' is skipped.
// Names are case-sensitive.
std::optional<std::string> FindCookie(absl::string_view header,
                                      absl::string_view name);

// The same over every `Cookie` header of `req`, in order.
std::optional<std::string> RequestCookie(const httplib::Request& req,
                                         absl::string_view name);

// Whether `value` may stand in a Set-Cookie header as it is: 1 to 512 of
// the characters of an API key (letters, digits, '-', '_', '.', '~'; a key
// is "pggit_" + base64url), so no value can split or extend the header.
bool IsCookieSafe(absl::string_view value);

// Whether `req` reached the daemon over HTTPS: its peer is a trusted proxy
// and the last `X-Forwarded-Proto` value it set is "https". The daemon
// itself speaks plain HTTP.
bool ForwardedOverHttps(const httplib::Request& req,
                        const TrustedProxies& trusted);

// The Set-Cookie value that stores `key` (REQUIRES: IsCookieSafe(key)):
//   pggit_session=<key>; Path=/; HttpOnly; SameSite=Strict[; Secure]
// A session cookie (no Max-Age): the browser drops it when it closes.
std::string SessionCookie(absl::string_view key, bool secure);

// The Set-Cookie value that deletes it:
//   pggit_session=; Path=/; Max-Age=0; HttpOnly; SameSite=Strict[; Secure]
std::string ClearedSessionCookie(bool secure);

}  // namespace pggitops::server

#endif  // PGGITOPS_SERVER_HTTP_SESSION_COOKIE_H_
