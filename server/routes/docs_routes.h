// The API's own description: GET /openapi.json (an OpenAPI 3.1 document,
// docs/api/openapi.json, embedded at build time by scripts/embed_openapi.py)
// and GET /docs (a page listing it, rendered at build time: no scripts, no
// external assets). Both public, like /health.
#ifndef PGGITOPS_SERVER_ROUTES_DOCS_ROUTES_H_
#define PGGITOPS_SERVER_ROUTES_DOCS_ROUTES_H_

#include <string>
#include <vector>

#include "absl/strings/string_view.h"
#include "server/http/router.h"

namespace pggitops::server {

// The embedded document (minified, info.version = this build's version).
absl::string_view OpenApiJson();
// The embedded /docs page.
absl::string_view DocsPageHtml();

void AddDocsRoutes(Router* router);

// Where the route table and an OpenAPI document disagree: one line per
// route the document does not describe ("GET /x: routed but not in the
// document") and per operation of the document that is not routed ("POST
// /y: in the document but not routed"); also a document that is not JSON
// or has no `paths`. Empty when they agree.
std::vector<std::string> OpenApiRouteMismatches(const Router& router,
                                                absl::string_view document);

}  // namespace pggitops::server

#endif  // PGGITOPS_SERVER_ROUTES_DOCS_ROUTES_H_
