#include "server/http/router.h"

#include <algorithm>
#include <cstdlib>

#include "absl/strings/str_split.h"

namespace pggitops::server {
namespace {

std::vector<std::string> SplitTemplate(absl::string_view t) {
  return absl::StrSplit(t, '/', absl::SkipEmpty());
}

bool IsParam(const std::string& segment) {
  return segment.size() > 2 && segment.front() == '{' && segment.back() == '}';
}

}  // namespace

void Router::Add(Route route) {
  for (const Route& r : routes_) {
    if (r.method == route.method && r.path_template == route.path_template) {
      std::fprintf(stderr, "duplicate route %s %s\n", route.method.c_str(),
                   route.path_template.c_str());
      std::abort();
    }
  }
  segments_.push_back(SplitTemplate(route.path_template));
  routes_.push_back(std::move(route));
}

bool Router::MatchTemplate(const std::vector<std::string>& tmpl,
                           const std::vector<absl::string_view>& path,
                           std::map<std::string, std::string>* params,
                           int* literals) {
  if (tmpl.size() != path.size()) return false;
  *literals = 0;
  params->clear();
  for (size_t i = 0; i < tmpl.size(); ++i) {
    if (IsParam(tmpl[i])) {
      (*params)[tmpl[i].substr(1, tmpl[i].size() - 2)] = std::string(path[i]);
    } else if (tmpl[i] == path[i]) {
      ++*literals;
    } else {
      return false;
    }
  }
  return true;
}

std::vector<const Route*> Router::RoutesAt(absl::string_view path) const {
  std::vector<const Route*> found;
  if (path.empty() || path.front() != '/') return found;
  // "/a//b" and "/a/" are different resources from "/a/b" and "/a".
  if (path.size() > 1 &&
      (path.back() == '/' || path.find("//") != absl::string_view::npos)) {
    return found;
  }
  std::vector<absl::string_view> parts =
      absl::StrSplit(path, '/', absl::SkipEmpty());
  // The path belongs to the most specific templates that match it (most
  // literal segments): "/webhooks/retry-pending" is that resource for every
  // method, so a GET there is 405, not a GET of webhook "retry-pending".
  std::vector<int> literals(routes_.size(), -1);
  int most = -1;
  std::map<std::string, std::string> params;
  for (size_t i = 0; i < routes_.size(); ++i) {
    if (MatchTemplate(segments_[i], parts, &params, &literals[i])) {
      most = std::max(most, literals[i]);
    } else {
      literals[i] = -1;
    }
  }
  for (size_t i = 0; i < routes_.size(); ++i) {
    if (most >= 0 && literals[i] == most) found.push_back(&routes_[i]);
  }
  return found;
}

Router::Match Router::Find(absl::string_view method,
                           absl::string_view path) const {
  Match best;
  absl::string_view wanted = method == "HEAD" ? "GET" : method;
  for (const Route* r : RoutesAt(path)) {
    if (r->method == wanted) {
      best.route = r;
    } else if (std::find(best.allowed_methods.begin(),
                         best.allowed_methods.end(),
                         r->method) == best.allowed_methods.end()) {
      best.allowed_methods.push_back(r->method);
    }
  }
  if (best.route == nullptr) {
    std::sort(best.allowed_methods.begin(), best.allowed_methods.end());
    return best;
  }
  best.allowed_methods.clear();
  size_t i = static_cast<size_t>(best.route - routes_.data());
  std::vector<absl::string_view> parts =
      absl::StrSplit(path, '/', absl::SkipEmpty());
  int literals = 0;
  MatchTemplate(segments_[i], parts, &best.params, &literals);
  return best;
}

}  // namespace pggitops::server
