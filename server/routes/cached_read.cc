#include "server/routes/cached_read.h"

#include <exception>
#include <memory>
#include <utility>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "pggitops/log.h"
#include "server/http/errors.h"
#include "server/http/json_util.h"

namespace pggitops::server {
namespace {

// The status a waiter sees for an HttpError the loading request threw; the
// mapping inverts FromStatus for the codes it produces.
absl::Status StatusOfHttpError(const HttpError& e) {
  const std::string m = e.what();
  switch (e.status()) {
    case 400:
    case 422:
      return absl::InvalidArgumentError(m);
    case 404:
      return absl::NotFoundError(m);
    case 409:
      return absl::AlreadyExistsError(m);
    case 503:
      return e.error_code() == "POOL_TIMEOUT" ? absl::DeadlineExceededError(m)
                                              : absl::UnavailableError(m);
    default:
      return absl::InternalError(m);
  }
}

// Runs `produce` as a cache loader: JSON text out, exceptions kept in
// *thrown for the request that ran it and turned into a Status for others.
CacheLoader AsLoader(const JsonProducer& produce, bool* ran,
                     std::exception_ptr* thrown) {
  return [&produce, ran, thrown]() -> absl::StatusOr<std::string> {
    *ran = true;
    try {
      return DumpJson(produce());
    } catch (const HttpError& e) {
      *thrown = std::current_exception();
      return StatusOfHttpError(e);
    } catch (const std::exception& e) {
      *thrown = std::current_exception();
      return absl::InternalError(e.what());
    }
  };
}

}  // namespace

const char* CacheFamilyName(CacheFamily family) {
  switch (family) {
    case CacheFamily::kWebhooks:
      return "webhooks";
    case CacheFamily::kAlerts:
      return "alerts";
    case CacheFamily::kDashboard:
      return "dashboard";
  }
  return "unknown";
}

absl::Duration CacheFamilyTtl(const ServerConfig& config, CacheFamily family) {
  switch (family) {
    case CacheFamily::kWebhooks:
      return config.cache_ttl_webhook_list;
    case CacheFamily::kAlerts:
      return config.cache_ttl_alerts_list;
    case CacheFamily::kDashboard:
      return config.cache_ttl_dashboard;
  }
  return absl::ZeroDuration();
}

std::string CacheKey(CacheFamily family,
                     std::initializer_list<absl::string_view> parts) {
  return absl::StrCat(CacheFamilyName(family), ":", absl::StrJoin(parts, ":"));
}

void CachedRead::Serve(RequestContext& ctx, CacheFamily family,
                       const std::string& key,
                       const JsonProducer& produce) const {
  bool hit = false;
  CacheValue body = Load(family, key, produce, &hit);
  ctx.res.status = 200;
  ctx.res.set_header("X-Cache", hit ? "HIT" : "MISS");
  ctx.res.set_content(body->data(), body->size(), "application/json");
}

CacheValue CachedRead::Load(CacheFamily family, const std::string& key,
                            const JsonProducer& produce, bool* hit) const {
  bool ran = false;
  std::exception_ptr thrown;
  CacheLoader loader = AsLoader(produce, &ran, &thrown);
  absl::StatusOr<CacheValue> body;
  if (cache_ != nullptr) {
    body = cache_->GetOrLoad(key, CacheFamilyTtl(*config_, family), loader);
  } else if (absl::StatusOr<std::string> s = loader(); s.ok()) {
    body = std::make_shared<const std::string>(*std::move(s));
  } else {
    body = s.status();
  }
  if (thrown) std::rethrow_exception(thrown);
  if (!body.ok()) throw FromStatus(body.status());
  *hit = !ran;
  return *std::move(body);
}

void CachedRead::InvalidateAfterWrite(
    std::initializer_list<CacheFamily> families) const {
  if (cache_ == nullptr) return;
  for (CacheFamily f : families) {
    absl::StatusOr<int64_t> n =
        cache_->InvalidatePattern(absl::StrCat(CacheFamilyName(f), ":*"));
    if (!n.ok()) {  // cannot happen: the pattern is a constant
      Log::Error("cache invalidation failed",
                 {{"error", std::string(n.status().message())}});
    }
  }
}

absl::StatusOr<int64_t> CachedRead::Warm(CacheFamily family,
                                         const std::string& key,
                                         const JsonProducer& produce) const {
  if (cache_ == nullptr) return 0;
  bool ran = false;
  std::exception_ptr thrown;
  absl::StatusOr<CacheValue> v = cache_->Refresh(
      key, CacheFamilyTtl(*config_, family), AsLoader(produce, &ran, &thrown));
  if (!v.ok()) return v.status();
  return 1;
}

}  // namespace pggitops::server
