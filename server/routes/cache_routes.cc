#include "server/routes/cache_routes.h"

#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/time/clock.h"
#include "nlohmann/json.hpp"
#include "server/http/errors.h"
#include "server/http/json_util.h"
#include "server/http/request_context.h"

namespace pggitops::server {
namespace {

// Most keys one invalidation request may name.
constexpr size_t kMaxKeys = 1000;

double Millis(absl::Duration d) { return absl::ToDoubleMilliseconds(d); }

nlohmann::json L2Json(const L2Stats& l2) {
  return {{"enabled", l2.enabled},
          {"status", l2.status},
          {"hits", l2.hits},
          {"misses", l2.misses},
          {"errors", l2.errors},
          {"skipped", l2.skipped},
          {"writes", l2.writes},
          {"invalidations", l2.invalidations},
          {"published", l2.published},
          {"received", l2.received},
          {"reconnects", l2.reconnects},
          {"subscribed", l2.subscribed},
          {"last_error", l2.last_error}};
}

void Stats(RequestContext& ctx, Cache* cache, LatencyWindow* latency) {
  CacheStats st = cache->Stats();
  LatencyWindow::Summary window = latency->Summarize();
  ctx.Json(200, {{"hit_rate", st.hit_rate},
                 {"total_requests", st.total_requests()},
                 {"cache_hits", st.hits},
                 {"cache_misses", st.misses},
                 {"l1_hits", st.l1_hits},
                 {"l2_hits", st.l2_hits},
                 {"evicted_entries", st.evictions},
                 {"expired_entries", st.expirations},
                 {"current_size_bytes", st.bytes},
                 {"max_size_bytes", st.max_bytes},
                 {"entries", st.entries},
                 {"l2", L2Json(st.l2)},
                 {"cache_stats",
                  {{"p50_ms", window.p50_ms},
                   {"p95_ms", window.p95_ms},
                   {"p99_ms", window.p99_ms},
                   {"requests", window.count},
                   {"window_seconds", 60}}},
                 {"timestamp", Rfc3339(absl::Now())}});
}

void Warm(RequestContext& ctx, Cache* cache) {
  if (ctx.body.is_object() && !ctx.body.empty()) {
    throw Validation(absl::StrCat("unknown field '", ctx.body.begin().key(),
                                  "': warm takes no parameters"));
  }
  WarmResult w = cache->Warm();
  nlohmann::json warmers = nlohmann::json::array();
  std::vector<std::string> errors;
  for (const WarmerResult& r : w.warmers) {
    nlohmann::json j = {{"name", r.name},
                        {"entries", r.entries},
                        {"duration_ms", Millis(r.duration)},
                        {"status", r.status.ok() ? "ok" : "error"}};
    if (!r.status.ok()) {
      j["error"] = std::string(r.status.message());
      errors.push_back(absl::StrCat(r.name, ": ", r.status.message()));
    }
    warmers.push_back(std::move(j));
  }
  if (!w.warmers.empty() && w.failed() == static_cast<int>(w.warmers.size())) {
    throw Unavailable(
        absl::StrCat("cache warm failed: ", absl::StrJoin(errors, "; ")));
  }
  ctx.Json(200, {{"status", w.failed() == 0 ? "success" : "partial"},
                 {"warmed_entries", w.warmed_entries},
                 {"duration_ms", Millis(w.duration)},
                 {"timestamp", Rfc3339(absl::Now())},
                 {"warmers", warmers}});
}

struct InvalidateRequest {
  std::vector<std::string> keys;
  std::string pattern;
  bool has_pattern = false;
};

// Validates the whole body before anything is invalidated.
InvalidateRequest ParseInvalidate(const nlohmann::json& body) {
  InvalidateRequest req;
  for (const auto& [field, value] : body.items()) {
    if (field == "keys") {
      if (!value.is_array())
        throw Validation("keys: must be an array of strings");
      if (value.size() > kMaxKeys) {
        throw Validation(absl::StrCat("keys: at most ", kMaxKeys, " keys"));
      }
      for (size_t i = 0; i < value.size(); ++i) {
        if (!value[i].is_string()) {
          throw Validation(absl::StrCat("keys[", i, "]: must be a string"));
        }
        req.keys.push_back(value[i].get<std::string>());
      }
    } else if (field == "pattern") {
      if (!value.is_string()) throw Validation("pattern: must be a string");
      req.pattern = value.get<std::string>();
      req.has_pattern = true;
    } else {
      throw Validation(absl::StrCat("unknown field '", field,
                                    "': expected keys and/or pattern"));
    }
  }
  if (req.keys.empty() && !req.has_pattern) {
    throw Validation(
        "keys or pattern: give a non-empty keys list, a pattern, "
        "or both");
  }
  return req;
}

void Invalidate(RequestContext& ctx, Cache* cache) {
  InvalidateRequest req = ParseInvalidate(ctx.body);
  // Everything is checked before anything is applied: a bad pattern leaves
  // the keys in place, and the other way round.
  for (size_t i = 0; i < req.keys.size(); ++i) {
    absl::Status s = ValidateCacheKey(req.keys[i]);
    if (!s.ok()) throw Validation(absl::StrCat("keys[", i, "]: ", s.message()));
  }
  if (req.has_pattern) {
    absl::Status s = ValidateCachePattern(req.pattern);
    if (!s.ok()) throw Validation(absl::StrCat("pattern: ", s.message()));
  }
  int64_t removed = 0;
  if (!req.keys.empty()) {
    absl::StatusOr<int64_t> n = cache->Invalidate(req.keys);
    if (!n.ok()) throw FromStatus(n.status());
    removed += *n;
  }
  if (req.has_pattern) {
    absl::StatusOr<int64_t> n = cache->InvalidatePattern(req.pattern);
    if (!n.ok()) throw FromStatus(n.status());
    removed += *n;
  }
  ctx.Json(200, {{"invalidated", removed},
                 {"total_entries", cache->Stats().entries}});
}

}  // namespace

void AddCacheRoutes(Router* router, Cache* cache, LatencyWindow* latency) {
  router->Add(
      {"GET", "/api/v1/cache/stats", BodyPolicy::kNone, Scope::kRead,
       [cache, latency](RequestContext& ctx) { Stats(ctx, cache, latency); }});
  router->Add({"POST", "/api/v1/cache/warm", BodyPolicy::kOptionalJson,
               Scope::kAdmin,
               [cache](RequestContext& ctx) { Warm(ctx, cache); }});
  router->Add({"POST", "/api/v1/cache/invalidate", BodyPolicy::kRequiredJson,
               Scope::kAdmin,
               [cache](RequestContext& ctx) { Invalidate(ctx, cache); }});
}

}  // namespace pggitops::server
