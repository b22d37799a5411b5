#include "server/routes/docs_routes.h"

#include <set>
#include <string>
#include <utility>
#include <vector>

#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "nlohmann/json.hpp"
#include "server/http/request_context.h"

namespace pggitops::server {
namespace {

// Nothing on the page runs or loads: its only inline part is its style.
constexpr char kDocsCsp[] =
    "default-src 'none'; style-src 'unsafe-inline'; base-uri 'none'; "
    "form-action 'none'; frame-ancestors 'none'";

void ServeDocument(RequestContext& ctx) {
  ctx.res.status = 200;
  ctx.res.set_header("X-Content-Type-Options", "nosniff");
  absl::string_view doc = OpenApiJson();
  ctx.res.set_content(doc.data(), doc.size(), "application/json");
}

void ServeDocsPage(RequestContext& ctx) {
  ctx.res.status = 200;
  ctx.res.set_header("Content-Security-Policy", kDocsCsp);
  ctx.res.set_header("X-Content-Type-Options", "nosniff");
  ctx.res.set_header("X-Frame-Options", "DENY");
  ctx.res.set_header("Referrer-Policy", "no-referrer");
  absl::string_view page = DocsPageHtml();
  ctx.res.set_content(page.data(), page.size(), "text/html; charset=utf-8");
}

}  // namespace

void AddDocsRoutes(Router* router) {
  router->Add({"GET", "/openapi.json", BodyPolicy::kNone, Scope::kPublic,
               [](RequestContext& ctx) { ServeDocument(ctx); }});
  router->Add({"GET", "/docs", BodyPolicy::kNone, Scope::kPublic,
               [](RequestContext& ctx) { ServeDocsPage(ctx); }});
}

std::vector<std::string> OpenApiRouteMismatches(const Router& router,
                                                absl::string_view document) {
  nlohmann::json doc = nlohmann::json::parse(
      document.begin(), document.end(), nullptr, /*allow_exceptions=*/false);
  if (doc.is_discarded() || !doc.is_object()) {
    return {"the document is not a JSON object"};
  }
  auto paths = doc.find("paths");
  if (paths == doc.end() || !paths->is_object()) {
    return {"the document has no paths object"};
  }
  static const std::set<std::string> kMethods = {"get", "put", "post", "patch",
                                                 "delete"};
  std::set<std::pair<std::string, std::string>> documented;  // (GET, /x)
  for (const auto& [path, item] : paths->items()) {
    if (!item.is_object()) continue;
    for (const auto& [method, op] : item.items()) {
      if (kMethods.count(method) == 0) continue;
      documented.emplace(absl::AsciiStrToUpper(method), path);
    }
  }
  std::vector<std::string> out;
  std::set<std::pair<std::string, std::string>> routed;
  for (const Route& r : router.routes()) {
    routed.emplace(r.method, r.path_template);
    if (documented.count({r.method, r.path_template}) == 0) {
      out.push_back(absl::StrCat(r.method, " ", r.path_template,
                                 ": routed but not in the document"));
    }
  }
  for (const auto& [method, path] : documented) {
    if (routed.count({method, path}) == 0) {
      out.push_back(
          absl::StrCat(method, " ", path, ": in the document but not routed"));
    }
  }
  return out;
}

}  // namespace pggitops::server
