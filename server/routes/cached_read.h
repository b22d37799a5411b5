// The read-through helper of the JSON read endpoints (webhooks, alerts,
// dashboard): a response body is cached as immutable bytes under a key of
// its family, for the family's TTL (CACHE_TTL_*), and writes invalidate the
// families they touch before they answer, so a client always reads its own
// writes. Other instances learn of the write from the database trigger's
// NOTIFY and from the cache's Redis channel.
//
//   CachedRead reads(app.cache, app.config);
//   // GET /api/v1/webhooks?limit=20&offset=0
//   reads.Serve(ctx, CacheFamily::kWebhooks,
//               CacheKey(CacheFamily::kWebhooks, {"list", "20", "0", "any"}),
//               [&] { return ListWebhooks(...); });  // nlohmann::json
//   // POST /api/v1/webhooks, after the commit:
//   reads.InvalidateAfterWrite({CacheFamily::kWebhooks,
//                               CacheFamily::kDashboard});
//   // Warm set (registered once at start):
//   cache->RegisterWarmer("webhooks first page", [&](Cache&) {
//     return reads.Warm(CacheFamily::kWebhooks, key, produce);
//   });
//
// Thread-safe (the Cache is).
#ifndef PGGITOPS_SERVER_ROUTES_CACHED_READ_H_
#define PGGITOPS_SERVER_ROUTES_CACHED_READ_H_

#include <functional>
#include <initializer_list>
#include <string>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "nlohmann/json.hpp"
#include "pggitops/cache.h"
#include "pggitops/config.h"
#include "server/http/request_context.h"
#include "server/server_config.h"

namespace pggitops::server {

// The key families of CONTRACT section 10.
enum class CacheFamily { kWebhooks, kAlerts, kDashboard };

// "webhooks", "alerts", "dashboard".
const char* CacheFamilyName(CacheFamily family);

// CACHE_TTL_WEBHOOK_LIST, CACHE_TTL_ALERTS_LIST, CACHE_TTL_DASHBOARD.
absl::Duration CacheFamilyTtl(const ServerConfig& config, CacheFamily family);

// "<family>:<part>:<part>...", e.g. CacheKey(kWebhooks, {"list", "20", "0"})
// is "webhooks:list:20:0". Parts should be canonical (validated, defaults
// filled in) so equal requests share a key.
std::string CacheKey(CacheFamily family,
                     std::initializer_list<absl::string_view> parts);

// Produces a response body; may throw HttpError (404, 503, ...).
using JsonProducer = std::function<nlohmann::json()>;

class CachedRead {
 public:
  // *cache (may be null: nothing is cached) and *config must outlive this.
  CachedRead(Cache* cache, const ServerConfig* config)
      : cache_(cache), config_(config) {}

  // Answers 200 with the cached body of `key`, or with `produce()`'s JSON,
  // cached for the family's TTL. Sets `X-Cache: HIT` or `MISS`. Concurrent
  // misses on one key call `produce` once. An HttpError thrown by
  // `produce` reaches the caller that ran it unchanged; callers that waited
  // for it get the same status (mapped through FromStatus). Nothing is
  // cached on error.
  void Serve(RequestContext& ctx, CacheFamily family, const std::string& key,
             const JsonProducer& produce) const;

  // The body Serve would answer, for a handler that adds to it before
  // answering: cached or produced and cached as Serve does (and throwing as
  // it does). *hit says whether it came from the cache (for X-Cache).
  CacheValue Load(CacheFamily family, const std::string& key,
                  const JsonProducer& produce, bool* hit) const;

  // Invalidates `families` (pattern "<family>:*") in this instance, in
  // Redis and in the other instances. Call after the write committed and
  // before answering.
  void InvalidateAfterWrite(std::initializer_list<CacheFamily> families) const;

  // For warmers: renders `key` now and stores it. Returns 1 (entries
  // loaded), or the error `produce` threw, as a Status.
  absl::StatusOr<int64_t> Warm(CacheFamily family, const std::string& key,
                               const JsonProducer& produce) const;

 private:
  Cache* const cache_;
  const ServerConfig* const config_;
};

}  // namespace pggitops::server

#endif  // PGGITOPS_SERVER_ROUTES_CACHED_READ_H_
