// libFuzzer target: Router::Find and Router::RoutesAt (server/http/router.h)
// over the daemon's route table. For any method and path:
//   - a match's template, with its parameters put back, is the path itself
//     (no parameter is empty or holds a '/');
//   - HEAD finds what GET finds; a 405 (allowed methods) never comes with a
//     route, and lists sorted, distinct methods that do match the path;
//   - Find knows the path exactly when RoutesAt returns routes, and every
//     route RoutesAt returns is found by its own method.
// Input: METHOD '\n' PATH. Seeds: tests/fuzz/router/. See docs/TESTING.md.
#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include "absl/strings/str_split.h"
#include "server/http/router.h"
#include "tests/fuzz/fuzz_util.h"

using pggitops::fuzz::Bytes;
using pggitops::fuzz::Require;
using pggitops::server::Route;
using pggitops::server::Router;

namespace {

const Router& Table() {
  static const Router* router = [] {
    auto* r = new Router;
    const char* const routes[][2] = {
        {"GET", "/health"},
        {"GET", "/health/live"},
        {"GET", "/health/ready"},
        {"GET", "/health/deep"},
        {"GET", "/metrics"},
        {"GET", "/dashboard"},
        {"POST", "/dashboard/session"},
        {"DELETE", "/dashboard/session"},
        {"GET", "/api/v1/dashboard"},
        {"GET", "/api/v1/alerts"},
        {"POST", "/api/v1/alerts"},
        {"GET", "/api/v1/alerts/stream"},
        {"GET", "/api/v1/alerts/{id}"},
        {"POST", "/api/v1/alerts/acknowledge"},
        {"POST", "/api/v1/alerts/resolve"},
        {"GET", "/api/v1/cache/stats"},
        {"POST", "/api/v1/cache/invalidate"},
        {"POST", "/api/v1/cache/warm"},
        {"GET", "/api/v1/webhooks"},
        {"POST", "/api/v1/webhooks"},
        {"POST", "/api/v1/webhooks/retry-pending"},
        {"GET", "/api/v1/webhooks/{id}"},
        {"PUT", "/api/v1/webhooks/{id}"},
        {"PATCH", "/api/v1/webhooks/{id}"},
        {"DELETE", "/api/v1/webhooks/{id}"},
        {"GET", "/api/v1/webhooks/{id}/deliveries"},
        {"POST", "/api/v1/webhooks/{id}/test"},
        {"GET", "/api/v1/{kind}/{id}/{what}"},  // a template of params only
    };
    for (const auto& [method, path] : routes) {
      Route route;
      route.method = method;
      route.path_template = path;
      r->Add(std::move(route));
    }
    return r;
  }();
  return *router;
}

// The template with its {name} segments replaced by `params`.
std::string Expand(const Route& r, const Router::Match& m) {
  std::string out;
  for (absl::string_view seg :
       absl::StrSplit(r.path_template, '/', absl::SkipEmpty())) {
    out += '/';
    if (seg.size() > 2 && seg.front() == '{' && seg.back() == '}') {
      auto it = m.params.find(std::string(seg.substr(1, seg.size() - 2)));
      Require(it != m.params.end(), "a template parameter has no value");
      Require(!it->second.empty(), "a parameter is empty");
      Require(it->second.find('/') == std::string::npos,
              "a parameter holds a '/'");
      out += it->second;
    } else {
      out.append(seg.data(), seg.size());
    }
  }
  return out.empty() ? "/" : out;
}

void CheckMatch(const Router& router, const std::string& method,
                const std::string& path) {
  const Router::Match m = router.Find(method, path);
  if (m.route != nullptr) {
    Require(m.allowed_methods.empty(), "a match with allowed methods");
    Require(Expand(*m.route, m) == path, "template + params != path");
    Require(m.route->method == (method == "HEAD" ? "GET" : method),
            "a route of another method");
  }
  Require(std::is_sorted(m.allowed_methods.begin(), m.allowed_methods.end()),
          "allowed methods not sorted");
  Require(
      std::adjacent_find(m.allowed_methods.begin(), m.allowed_methods.end()) ==
          m.allowed_methods.end(),
      "allowed methods repeated");
  for (const std::string& other : m.allowed_methods) {
    Require(other != method, "405 lists the method asked for");
    const Router::Match o = router.Find(other, path);
    Require(o.route != nullptr, "an allowed method finds no route");
  }
  const std::vector<const Route*> at = router.RoutesAt(path);
  Require(m.path_known() == !at.empty(), "Find and RoutesAt disagree");
  for (const Route* r : at) {
    Require(router.Find(r->method, path).route == r,
            "a route of RoutesAt is not found by its method");
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  Bytes in(data, size);
  const std::string method = in.Until('\n');
  const std::string path = in.Rest();
  const Router& router = Table();
  CheckMatch(router, method, path);
  if (method == "HEAD" || method == "GET") {
    const Router::Match head = router.Find("HEAD", path);
    const Router::Match get = router.Find("GET", path);
    Require(head.route == get.route, "HEAD and GET differ");
    Require(head.params == get.params, "HEAD and GET params differ");
  }
  return 0;
}
