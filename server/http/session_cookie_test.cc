#include "server/http/session_cookie.h"

#include "doctest/doctest.h"

namespace pggitops::server {
namespace {

TEST_CASE("FindCookie: pairs, spaces, quotes, first non-empty wins") {
  CHECK(FindCookie("pggit_session=pggit_abc", "pggit_session") == "pggit_abc");
  CHECK(FindCookie("a=1; pggit_session=pggit_abc; b=2", "pggit_session") ==
        "pggit_abc");
  CHECK(FindCookie("a=1;pggit_session = pggit_abc ;b=2", "pggit_session") ==
        "pggit_abc");
  CHECK(FindCookie("pggit_session=\"pggit_q\"", "pggit_session") == "pggit_q");
  // Base64 padding or '=' inside a value stays in the value.
  CHECK(FindCookie("x=a=b; pggit_session=k==", "pggit_session") == "k==");
  // An empty one is skipped for the next; the first of two is taken.
  CHECK(FindCookie("pggit_session=; pggit_session=second", "pggit_session") ==
        "second");
  CHECK(FindCookie("pggit_session=one; pggit_session=two", "pggit_session") ==
        "one");
  CHECK(FindCookie("pggit_session=\"\"", "pggit_session") == std::nullopt);
}

TEST_CASE("FindCookie: nothing that is not exactly the name") {
  CHECK(FindCookie("", "pggit_session") == std::nullopt);
  CHECK(FindCookie("pggit_session", "pggit_session") == std::nullopt);
  CHECK(FindCookie("PGGIT_SESSION=k", "pggit_session") == std::nullopt);
  CHECK(FindCookie("xpggit_session=k", "pggit_session") == std::nullopt);
  CHECK(FindCookie("pggit_session_old=k", "pggit_session") == std::nullopt);
  CHECK(FindCookie(";;; ; =v", "pggit_session") == std::nullopt);
}

TEST_CASE("RequestCookie: every Cookie header, in order") {
  httplib::Request req;
  CHECK(RequestCookie(req, kSessionCookieName) == std::nullopt);
  req.headers.emplace("Cookie", "theme=dark");
  CHECK(RequestCookie(req, kSessionCookieName) == std::nullopt);
  req.headers.emplace("cookie", "pggit_session=pggit_k");
  CHECK(RequestCookie(req, kSessionCookieName) == "pggit_k");
}

TEST_CASE("IsCookieSafe: the characters of a key, nothing that splits") {
  CHECK(IsCookieSafe("pggit_AbC-09_xyz"));
  CHECK(IsCookieSafe("a.b~c"));
  CHECK_FALSE(IsCookieSafe(""));
  CHECK_FALSE(IsCookieSafe(std::string(513, 'a')));
  CHECK(IsCookieSafe(std::string(512, 'a')));
  for (const char* bad : {"a;b", "a b", "a,b", "a\r\nSet-Cookie: x=1", "a\"b",
                          "a=b", "a\\b", "\xc3\xa9"}) {
    CAPTURE(bad);
    CHECK_FALSE(IsCookieSafe(bad));
  }
}

TEST_CASE("SessionCookie and ClearedSessionCookie") {
  CHECK(SessionCookie("pggit_k", false) ==
        "pggit_session=pggit_k; Path=/; HttpOnly; SameSite=Strict");
  CHECK(SessionCookie("pggit_k", true) ==
        "pggit_session=pggit_k; Path=/; HttpOnly; SameSite=Strict; Secure");
  CHECK(ClearedSessionCookie(false) ==
        "pggit_session=; Path=/; Max-Age=0; HttpOnly; SameSite=Strict");
  CHECK(ClearedSessionCookie(true) ==
        "pggit_session=; Path=/; Max-Age=0; HttpOnly; SameSite=Strict; "
        "Secure");
}

TEST_CASE("ForwardedOverHttps: only a trusted proxy's last value") {
  absl::StatusOr<TrustedProxies> t = TrustedProxies::Parse({"127.0.0.1"});
  REQUIRE(t.ok());
  httplib::Request req;
  req.remote_addr = "127.0.0.1";
  CHECK_FALSE(ForwardedOverHttps(req, *t));
  req.headers.emplace("X-Forwarded-Proto", "HTTPS");
  CHECK(ForwardedOverHttps(req, *t));
  CHECK_FALSE(ForwardedOverHttps(req, TrustedProxies()));
  req.remote_addr = "203.0.113.9";  // the client's own header: ignored
  CHECK_FALSE(ForwardedOverHttps(req, *t));
  req.remote_addr = "127.0.0.1";
  req.headers.clear();
  req.headers.emplace("X-Forwarded-Proto", "https, http");
  CHECK_FALSE(ForwardedOverHttps(req, *t));
  req.headers.clear();
  req.headers.emplace("X-Forwarded-Proto", "http, https");
  CHECK(ForwardedOverHttps(req, *t));
}

}  // namespace
}  // namespace pggitops::server
