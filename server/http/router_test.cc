#include "server/http/router.h"

#include "doctest/doctest.h"

namespace pggitops::server {
namespace {

Router MakeRouter() {
  Router r;
  auto noop = [](RequestContext&) {};
  r.Add({"GET", "/api/v1/webhooks", BodyPolicy::kNone, Scope::kRead, noop});
  r.Add({"POST", "/api/v1/webhooks", BodyPolicy::kRequiredJson, Scope::kWrite,
         noop});
  r.Add(
      {"GET", "/api/v1/webhooks/{id}", BodyPolicy::kNone, Scope::kRead, noop});
  r.Add({"DELETE", "/api/v1/webhooks/{id}", BodyPolicy::kNone, Scope::kWrite,
         noop});
  r.Add({"POST", "/api/v1/webhooks/retry-pending", BodyPolicy::kOptionalJson,
         Scope::kWrite, noop});
  r.Add({"GET", "/health", BodyPolicy::kNone, Scope::kPublic, noop});
  return r;
}

TEST_CASE("Router: literal and parameter routes, params captured") {
  Router r = MakeRouter();
  Router::Match m = r.Find("GET", "/api/v1/webhooks/42");
  REQUIRE(m.route != nullptr);
  CHECK(m.route->path_template == "/api/v1/webhooks/{id}");
  CHECK(m.params.at("id") == "42");
  m = r.Find("GET", "/api/v1/webhooks");
  REQUIRE(m.route != nullptr);
  CHECK(m.route->path_template == "/api/v1/webhooks");
}

TEST_CASE("Router: literal segment wins over a parameter") {
  Router r = MakeRouter();
  Router::Match m = r.Find("POST", "/api/v1/webhooks/retry-pending");
  REQUIRE(m.route != nullptr);
  CHECK(m.route->path_template == "/api/v1/webhooks/retry-pending");
  // The path is the retry-pending resource for every method: GET there is
  // 405 (Allow: POST), not a GET of a webhook called "retry-pending".
  m = r.Find("GET", "/api/v1/webhooks/retry-pending");
  CHECK(m.route == nullptr);
  CHECK(m.allowed_methods == std::vector<std::string>{"POST"});
  // Other ids still reach the {id} routes.
  m = r.Find("DELETE", "/api/v1/webhooks/retry-pendingx");
  REQUIRE(m.route != nullptr);
  CHECK(m.params.at("id") == "retry-pendingx");
}

TEST_CASE("Router: 405 lists the allowed methods, 404 lists none") {
  Router r = MakeRouter();
  Router::Match m = r.Find("PUT", "/api/v1/webhooks");
  CHECK(m.route == nullptr);
  CHECK(m.allowed_methods == std::vector<std::string>{"GET", "POST"});
  CHECK(m.path_known());
  m = r.Find("GET", "/api/v1/nothing");
  CHECK(m.route == nullptr);
  CHECK(m.allowed_methods.empty());
  CHECK_FALSE(m.path_known());
}

TEST_CASE("Router: HEAD matches GET; odd paths do not match") {
  Router r = MakeRouter();
  CHECK(r.Find("HEAD", "/health").route != nullptr);
  CHECK(r.Find("GET", "/health/").route == nullptr);
  CHECK(r.Find("GET", "/api//v1/webhooks").route == nullptr);
  CHECK(r.Find("GET", "").route == nullptr);
  CHECK(r.Find("GET", "health").route == nullptr);
  CHECK(r.Find("GET", "/api/v1/webhooks/1/2").route == nullptr);
}

TEST_CASE("Router: RoutesAt lists the methods of the resource at a path") {
  Router r = MakeRouter();
  auto methods = [&r](absl::string_view path) {
    std::vector<std::string> out;
    for (const Route* route : r.RoutesAt(path)) out.push_back(route->method);
    return out;
  };
  CHECK(methods("/api/v1/webhooks") == std::vector<std::string>{"GET", "POST"});
  CHECK(methods("/api/v1/webhooks/7") ==
        std::vector<std::string>{"GET", "DELETE"});
  // The most specific templates only, as for Find.
  CHECK(methods("/api/v1/webhooks/retry-pending") ==
        std::vector<std::string>{"POST"});
  CHECK(methods("/api/v1/nothing").empty());
  CHECK(methods("/health/").empty());
}

}  // namespace
}  // namespace pggitops::server
