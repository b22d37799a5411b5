// The daemon's one route table. Routes are (method, path template) pairs
// such as ("GET", "/api/v1/webhooks/{id}"); the template is also the `route`
// label of the HTTP metrics, so label values stay bounded whatever paths
// clients send.
#ifndef PGGITOPS_SERVER_HTTP_ROUTER_H_
#define PGGITOPS_SERVER_HTTP_ROUTER_H_

#include <functional>
#include <map>
#include <string>
#include <vector>

#include "absl/strings/string_view.h"

namespace pggitops::server {

struct RequestContext;

// What a route does with a request body.
enum class BodyPolicy {
  kNone,          // any body is ignored
  kOptionalJson,  // none, or a JSON object (Content-Type application/json)
  kRequiredJson,  // a JSON object (Content-Type application/json)
};

// The scope a route needs once API keys exist (CONTRACT section 8).
enum class Scope { kPublic, kRead, kWrite, kAdmin };

struct Route {
  std::string method;         // GET, POST, PUT, PATCH, DELETE
  std::string path_template;  // "/api/v1/webhooks/{id}"
  BodyPolicy body = BodyPolicy::kNone;
  Scope scope = Scope::kPublic;
  std::function<void(RequestContext&)> handler;
  // A streaming route (SSE) is excluded from request-duration metrics.
  bool streaming = false;
  // Applied to the response body for callers below admin (URL credentials,
  // resolved addresses; CONTRACT section 8). Null: the body as it is.
  // Masks in place; returns whether it changed anything.
  std::function<bool(std::string*)> redact_for_non_admin = nullptr;
};

// Not thread-safe to build; Match is safe to call concurrently once built.
class Router {
 public:
  // REQUIRES: no route with the same method and template exists.
  void Add(Route route);

  struct Match {
    const Route* route = nullptr;               // set when found
    std::map<std::string, std::string> params;  // {"id": "42"}
    std::vector<std::string> allowed_methods;   // set on 405
    bool path_known() const {
      return route != nullptr || !allowed_methods.empty();
    }
  };
  // Finds the route for `method` and `path`. HEAD matches GET routes. When
  // several templates match, the path belongs to those with the most
  // literal segments, whatever the method ("/webhooks/retry-pending" over
  // "/webhooks/{id}"). Without a route for the method among them,
  // `allowed_methods` lists their methods (405); empty means 404.
  Match Find(absl::string_view method, absl::string_view path) const;

  // The routes of the resource at `path`, one per method, in the order they
  // were added: the matching templates with the most literal segments (as
  // Find chooses them). Empty when no template matches (404).
  std::vector<const Route*> RoutesAt(absl::string_view path) const;

  const std::vector<Route>& routes() const { return routes_; }

 private:
  static bool MatchTemplate(const std::vector<std::string>& tmpl,
                            const std::vector<absl::string_view>& path,
                            std::map<std::string, std::string>* params,
                            int* literals);
  std::vector<Route> routes_;
  std::vector<std::vector<std::string>> segments_;  // parallel to routes_
};

}  // namespace pggitops::server

#endif  // PGGITOPS_SERVER_HTTP_ROUTER_H_
