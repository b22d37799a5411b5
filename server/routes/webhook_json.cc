#include "server/routes/webhook_json.h"

#include <string.h>

#include <algorithm>
#include <cstring>
#include <limits>
#include <vector>

#include "absl/strings/ascii.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "pggitops/delivery_queue.h"
#include "pggitops/text.h"
#include "server/http/errors.h"

namespace pggitops::server {
namespace {

using nlohmann::json;

// Fields the API returns but a client cannot write.
constexpr const char* kReadOnly[] = {"id",         "secret",     "status",
                                     "created_at", "updated_at", "last_used_at",
                                     "health"};

const char* TypeName(const json& v) {
  switch (v.type()) {
    case json::value_t::null:
      return "null";
    case json::value_t::boolean:
      return "a boolean";
    case json::value_t::number_integer:
    case json::value_t::number_unsigned:
      return "an integer";
    case json::value_t::number_float:
      return "a number";
    case json::value_t::string:
      return "a string";
    case json::value_t::array:
      return "an array";
    case json::value_t::object:
      return "an object";
    default:
      return "invalid";
  }
}

[[noreturn]] void Bad(const std::string& field, const std::string& what,
                      const json& got) {
  std::string shown = got.is_string() || got.is_structured()
                          ? std::string(TypeName(got))
                          : got.dump();
  throw Validation(absl::StrCat(field, ": ", what, " (got ", shown, ")"));
}

std::string String(const json& v, const std::string& field, size_t min,
                   size_t max) {
  if (!v.is_string()) Bad(field, "must be a string", v);
  std::string s = v.get<std::string>();
  size_t n = Utf8CharCount(s);
  if (n < min || n > max) {
    throw Validation(absl::StrCat(field, ": must be ", min, " to ", max,
                                  " characters long (got ", n, ")"));
  }
  // libpq passes parameters as C strings; PostgreSQL text cannot hold NUL.
  if (s.find('\0') != std::string::npos) {
    throw Validation(absl::StrCat(field, ": must not contain NUL characters"));
  }
  return s;
}

bool Bool(const json& v, const std::string& field) {
  if (!v.is_boolean()) Bad(field, "must be true or false", v);
  return v.get<bool>();
}

std::string Url(const json& v, bool allow_private_targets) {
  WebhookFields f;
  f.url = String(v, "url", 1, 2048);
  if (absl::Status s = f.Validate(); !s.ok()) {
    throw Validation(std::string(s.message()));
  }
  absl::Status target = CheckWebhookTargetHost(*f.url, allow_private_targets);
  if (!target.ok()) throw Validation(std::string(target.message()));
  return *f.url;
}

// A JSON array of strings (duplicates are the store's to drop).
std::vector<std::string> StringList(const json& v, const std::string& field,
                                    const std::vector<std::string>& allowed) {
  if (!v.is_array()) Bad(field, "must be an array of strings", v);
  std::vector<std::string> out;
  for (size_t i = 0; i < v.size(); ++i) {
    std::string item_field = absl::StrCat(field, "[", i, "]");
    std::string s = String(v[i], item_field, 1, 255);
    if (!allowed.empty() &&
        std::find(allowed.begin(), allowed.end(), s) == allowed.end()) {
      throw Validation(absl::StrCat(item_field, ": must be one of ",
                                    absl::StrJoin(allowed, ", "), " (got \"", s,
                                    "\")"));
    }
    out.push_back(std::move(s));
  }
  return out;
}

const json& Object(const json& v, const std::string& field) {
  if (!v.is_object()) Bad(field, "must be an object", v);
  return v;
}

}  // namespace

bool WebhookWrite::names(const std::string& field) const {
  const WebhookFields& f = fields;
  if (field == "name") return f.name.has_value();
  if (field == "url") return f.url.has_value();
  if (field == "description") return f.description.has_value();
  if (field == "is_active") return f.is_active.has_value();
  if (field == "filter_severities") return f.filter_severities.has_value();
  if (field == "filter_operation_types") {
    return f.filter_operation_types.has_value();
  }
  if (field == "max_retries") return f.max_retries.has_value();
  if (field == "backoff_base") return f.backoff_base.has_value();
  if (field == "max_backoff") return f.max_backoff.has_value();
  if (field == "timeout_seconds") return f.timeout_seconds.has_value();
  if (field == "ssl_verify") return f.ssl_verify.has_value();
  return false;
}

int64_t JsonInteger(const json& value, const std::string& field, int64_t min,
                    int64_t max) {
  const std::string what =
      absl::StrCat("must be an integer from ", min, " to ", max);
  int64_t n = 0;
  if (value.is_number_unsigned()) {
    uint64_t u = value.get<uint64_t>();
    if (u > static_cast<uint64_t>(std::numeric_limits<int64_t>::max())) {
      Bad(field, what, value);
    }
    n = static_cast<int64_t>(u);
  } else if (value.is_number_integer()) {
    n = value.get<int64_t>();
  } else {
    Bad(field, what, value);
  }
  if (n < min || n > max) Bad(field, what, value);
  return n;
}

WebhookWrite ParseWebhookBody(const json& body, WebhookBodyMode mode,
                              bool allow_private_targets) {
  if (!body.is_object()) throw BadRequest("the body must be a JSON object");
  WebhookWrite w;
  WebhookFields& f = w.fields;
  for (const auto& [field, v] : body.items()) {
    if (field == "name") {
      f.name = String(v, "name", 1, 255);
    } else if (field == "url") {
      f.url = Url(v, allow_private_targets);
    } else if (field == "description") {
      f.description = v.is_null() ? std::optional<std::string>()
                                  : String(v, "description", 0, 1000);
    } else if (field == "is_active") {
      f.is_active = Bool(v, "is_active");
    } else if (field == "ssl_verify") {
      f.ssl_verify = Bool(v, "ssl_verify");
    } else if (field == "timeout_seconds") {
      f.timeout_seconds =
          static_cast<int>(JsonInteger(v, "timeout_seconds", 1, 60));
    } else if (field == "filters") {
      for (const auto& [sub, sv] : Object(v, "filters").items()) {
        if (sub == "severities") {
          f.filter_severities = StringList(sv, "filters.severities",
                                           {"INFO", "WARNING", "CRITICAL"});
        } else if (sub == "operation_types") {
          f.filter_operation_types =
              StringList(sv, "filters.operation_types", {});
        } else {
          throw Validation(absl::StrCat(
              "filters.", sub,
              ": unknown field (expected severities, operation_types)"));
        }
      }
    } else if (field == "retry_policy") {
      for (const auto& [sub, sv] : Object(v, "retry_policy").items()) {
        if (sub == "max_retries") {
          f.max_retries = static_cast<int>(
              JsonInteger(sv, "retry_policy.max_retries", 0, 20));
        } else if (sub == "max_backoff") {
          f.max_backoff = static_cast<int>(
              JsonInteger(sv, "retry_policy.max_backoff", 1, 86400));
        } else if (sub == "backoff_base") {
          if (!sv.is_number() || sv.get<double>() < 1.0 ||
              sv.get<double>() > 10.0) {
            Bad("retry_policy.backoff_base", "must be a number from 1 to 10",
                sv);
          }
          f.backoff_base = sv.get<double>();
        } else {
          throw Validation(absl::StrCat("retry_policy.", sub,
                                        ": unknown field (expected "
                                        "max_retries, backoff_base, "
                                        "max_backoff)"));
        }
      }
    } else if (std::find(std::begin(kReadOnly), std::end(kReadOnly), field) !=
               std::end(kReadOnly)) {
      throw Validation(absl::StrCat(field, ": is read-only"));
    } else {
      throw Validation(absl::StrCat(
          field,
          ": unknown field (expected name, url, description, is_active, "
          "filters, retry_policy, timeout_seconds, ssl_verify)"));
    }
  }
  if (mode == WebhookBodyMode::kCreate) {
    for (const char* required : {"name", "url"}) {
      if (!w.names(required)) {
        throw Validation(absl::StrCat(required, ": is required"));
      }
    }
  }
  return w;
}

namespace {

// The end of the JSON string value that starts at body[from] (after its
// opening quote): the index of its closing quote.
size_t StringEnd(const std::string& body, size_t from) {
  size_t i = from;
  while (i < body.size() && body[i] != '"') i += body[i] == '\\' ? 2 : 1;
  return std::min(i, body.size());
}

}  // namespace

std::string MaskForNonAdmin(const std::string& body) {
  std::string out = body;
  MaskForNonAdminInPlace(&out);
  return out;
}

bool MaskForNonAdminInPlace(std::string* body) {
  static constexpr absl::string_view kRefused = "target address refused: ";
  struct Cut {
    size_t begin, end;  // body[begin, end) is replaced
    absl::string_view with;
  };
  std::vector<Cut> cuts;
  const char* data = body->data();
  const size_t size = body->size();
  size_t last_authority = std::string::npos;  // of the last cut
  // URL credentials: an '@' inside the authority of a "scheme://" string.
  // '@' is rare in a response, so memchr finds the few places to look at.
  for (const void* hit = std::memchr(data, '@', size); hit != nullptr;
       hit = std::memchr(static_cast<const char*>(hit) + 1, '@',
                         size - (static_cast<const char*>(hit) + 1 - data))) {
    const size_t sign = static_cast<const char*>(hit) - data;
    // Back to the start of the JSON string, or to the authority's start.
    // An authority holds no space or control character (the url field
    // refuses them): one ends the search, so text such as "(address
    // hidden)" that masking writes is never read as a URL's userinfo.
    size_t i = sign;
    size_t scheme = std::string::npos;
    while (i > 0) {
      const char c = data[i - 1];
      if (static_cast<unsigned char>(c) <= 0x20) break;
      if (c == '"' || c == '/' || c == '?' || c == '#') {
        if (c == '/' && i >= 3 && data[i - 2] == '/' && data[i - 3] == ':') {
          scheme = i;  // the authority starts here
        }
        break;
      }
      --i;
    }
    if (scheme == std::string::npos) continue;
    absl::string_view userinfo(data + scheme, sign - scheme);
    size_t colon = userinfo.find(':');
    if (!cuts.empty() && last_authority == scheme) {
      // The last '@' of the authority ends the userinfo: whatever follows
      // the first one's cut is masked too ("https://a@b:c@h" shows "***").
      cuts.back().end = sign;
    } else if (colon == absl::string_view::npos) {
      // A userinfo without a password is a token ("https://TOKEN@h"):
      // all of it is the secret.
      cuts.push_back({scheme, sign, "***"});
      last_authority = scheme;
    } else {
      cuts.push_back({scheme + colon, sign, ":***"});  // "user:***"
      last_authority = scheme;
    }
  }
  // Resolved addresses of refused targets, in errors of deliveries.
  for (const void* hit = memmem(data, size, kRefused.data(), kRefused.size());
       hit != nullptr;) {
    const size_t begin = static_cast<const char*>(hit) - data + kRefused.size();
    size_t next = begin;
    const void* is = memmem(data + begin, size - begin, " is ", 4);
    if (is != nullptr) {
      const size_t end = static_cast<const char*>(is) - data;
      if (end <= StringEnd(*body, begin)) {
        cuts.push_back({begin, end, "(address hidden)"});
        next = end;  // the hidden text is not searched again
      }
    }
    hit = memmem(data + next, size - next, kRefused.data(), kRefused.size());
  }
  if (cuts.empty()) return false;
  std::sort(cuts.begin(), cuts.end(),
            [](const Cut& a, const Cut& b) { return a.begin < b.begin; });
  std::string out;
  out.reserve(size);
  size_t copied = 0;
  for (const Cut& c : cuts) {
    if (c.begin < copied) continue;
    out.append(*body, copied, c.begin - copied);
    out.append(c.with.data(), c.with.size());
    copied = c.end;
  }
  out.append(*body, copied, std::string::npos);
  body->swap(out);
  return true;
}

int64_t ParseWebhookId(const std::string& text) {
  return ParseResourceId(text, "webhook");
}

namespace {

int64_t QueryInteger(const RequestContext& ctx, const std::string& name,
                     int64_t fallback, int64_t min, int64_t max) {
  std::optional<std::string> text = ctx.Query(name);
  if (!text) return fallback;
  int64_t n = 0;
  bool digits = !text->empty() && text->size() <= 19 &&
                std::all_of(text->begin() + (text->front() == '-' ? 1 : 0),
                            text->end(), absl::ascii_isdigit);
  if (!digits || !absl::SimpleAtoi(*text, &n) || n < min || n > max) {
    throw Validation(absl::StrCat(name, ": must be an integer ",
                                  max == std::numeric_limits<int64_t>::max()
                                      ? absl::StrCat("of at least ", min)
                                      : absl::StrCat("from ", min, " to ", max),
                                  " (got \"", *text, "\")"));
  }
  return n;
}

}  // namespace

PageParams ParsePage(const RequestContext& ctx) {
  PageParams p;
  p.limit = QueryInteger(ctx, "limit", 20, 1, 100);
  p.offset =
      QueryInteger(ctx, "offset", 0, 0, std::numeric_limits<int64_t>::max());
  return p;
}

std::optional<std::string> ParseChoice(
    const RequestContext& ctx, const std::string& name,
    const std::vector<std::string>& allowed) {
  std::optional<std::string> v = ctx.Query(name);
  if (v && std::find(allowed.begin(), allowed.end(), *v) == allowed.end()) {
    throw Validation(absl::StrCat(name, ": must be one of ",
                                  absl::StrJoin(allowed, ", "), " (got \"", *v,
                                  "\")"));
  }
  return v;
}

}  // namespace pggitops::server
