// What a route handler sees of a request, and how it answers.
#ifndef PGGITOPS_SERVER_HTTP_REQUEST_CONTEXT_H_
#define PGGITOPS_SERVER_HTTP_REQUEST_CONTEXT_H_

#include <map>
#include <optional>
#include <string>

#include "httplib.h"
#include "nlohmann/json.hpp"

namespace pggitops::server {

struct RequestContext {
  const httplib::Request& req;
  httplib::Response& res;
  const std::string& request_id;
  const std::string& route;                   // the matched template
  std::map<std::string, std::string> params;  // path parameters
  // The parsed body: a JSON object, or null when the request had none.
  nlohmann::json body;

  // Answers `status` with `j` as JSON.
  void Json(int status, const nlohmann::json& j);
  // A query parameter, or nullopt when absent.
  std::optional<std::string> Query(const std::string& key) const;
};

}  // namespace pggitops::server

#endif  // PGGITOPS_SERVER_HTTP_REQUEST_CONTEXT_H_
