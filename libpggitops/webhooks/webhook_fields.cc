// The pure part of webhook_store.h: field rules, the failing rule and
// secrets.
#include <sys/random.h>

#include <algorithm>
#include <cerrno>
#include <string>

#include "absl/strings/ascii.h"
#include "absl/strings/escaping.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "libpggitops/webhooks/failing.h"
#include "pggitops/text.h"
#include "pggitops/webhook_store.h"

namespace pggitops {
namespace {

absl::Status Text(const std::string& field, const std::string& s, size_t min,
                  size_t max) {
  const size_t n = Utf8CharCount(s);
  if (n < min || n > max) {
    return absl::InvalidArgumentError(
        absl::StrCat(field, ": must be ", min, " to ", max,
                     " characters long (got ", n, ")"));
  }
  if (s.find('\0') != std::string::npos) {
    return absl::InvalidArgumentError(
        absl::StrCat(field, ": must not contain NUL characters"));
  }
  return absl::OkStatus();
}

template <typename T>
absl::Status Range(const std::string& field, const std::optional<T>& v, T min,
                   T max) {
  if (!v.has_value() || (*v >= min && *v <= max)) return absl::OkStatus();
  return absl::InvalidArgumentError(absl::StrCat(
      field, ": must be from ", min, " to ", max, " (got ", *v, ")"));
}

absl::Status Url(const std::string& url) {
  if (absl::Status s = Text("url", url, 1, 2048); !s.ok()) return s;
  const std::string lower = absl::AsciiStrToLower(url);
  size_t rest = 0;
  if (absl::StartsWith(lower, "https://")) {
    rest = 8;
  } else if (absl::StartsWith(lower, "http://")) {
    rest = 7;
  } else {
    return absl::InvalidArgumentError(
        "url: must be an http:// or https:// URL");
  }
  for (char c : url) {
    auto u = static_cast<unsigned char>(c);
    if (u <= 0x20 || u == 0x7f) {
      return absl::InvalidArgumentError(
          "url: must not contain spaces or control characters (percent-encode "
          "them)");
    }
  }
  absl::string_view authority = absl::string_view(url).substr(
      rest, url.find_first_of("/?#", rest) - rest);
  size_t at = authority.rfind('@');
  absl::string_view host =
      at == absl::string_view::npos ? authority : authority.substr(at + 1);
  if (host.empty() || host[0] == ':') {
    return absl::InvalidArgumentError("url: must name a host");
  }
  return absl::OkStatus();
}

absl::Status Filters(const WebhookFields& f) {
  if (f.filter_severities.has_value()) {
    for (size_t i = 0; i < f.filter_severities->size(); ++i) {
      const std::string& s = (*f.filter_severities)[i];
      if (s != "INFO" && s != "WARNING" && s != "CRITICAL") {
        return absl::InvalidArgumentError(
            absl::StrCat("filters.severities[", i,
                         "]: must be one of INFO, WARNING, CRITICAL"));
      }
    }
  }
  if (f.filter_operation_types.has_value()) {
    for (size_t i = 0; i < f.filter_operation_types->size(); ++i) {
      absl::Status s = Text(absl::StrCat("filters.operation_types[", i, "]"),
                            (*f.filter_operation_types)[i], 1, 255);
      if (!s.ok()) return s;
    }
  }
  return absl::OkStatus();
}

}  // namespace

bool IsFailing(const Webhook& w) {
  return w.status == "active" &&
         (w.breaker_state != "closed" || w.consecutive_failures > 0);
}

namespace internal {

std::string FailingWebhookSql(absl::string_view alias) {
  const std::string a = alias.empty() ? "" : absl::StrCat(alias, ".");
  return absl::StrCat("(", a, "status = 'active' AND (", a,
                      "breaker_state <> 'closed' OR ", a,
                      "consecutive_failures > 0))");
}

}  // namespace internal

bool WebhookFields::empty() const {
  return !name && !url && !description && !is_active && !filter_severities &&
         !filter_operation_types && !max_retries && !backoff_base &&
         !max_backoff && !timeout_seconds && !ssl_verify;
}

absl::Status WebhookFields::Validate() const {
  absl::Status s;
  if (name.has_value()) s = Text("name", *name, 1, 255);
  if (s.ok() && url.has_value()) s = Url(*url);
  if (s.ok() && description.has_value() && description->has_value()) {
    s = Text("description", **description, 0, 1000);
  }
  if (s.ok()) s = Filters(*this);
  if (s.ok()) s = Range("retry_policy.max_retries", max_retries, 0, 20);
  if (s.ok()) s = Range("retry_policy.backoff_base", backoff_base, 1.0, 10.0);
  if (s.ok()) s = Range("retry_policy.max_backoff", max_backoff, 1, 86400);
  if (s.ok()) s = Range("timeout_seconds", timeout_seconds, 1, 60);
  return s;
}

absl::StatusOr<std::string> GenerateWebhookSecret() {
  unsigned char bytes[24];
  size_t got = 0;
  while (got < sizeof(bytes)) {
    ssize_t n = getrandom(bytes + got, sizeof(bytes) - got, 0);
    if (n < 0) {
      if (errno == EINTR) continue;
      return absl::InternalError(
          absl::StrCat("getrandom failed: errno ", errno));
    }
    got += static_cast<size_t>(n);
  }
  return absl::StrCat(
      "whsec_", absl::Base64Escape(absl::string_view(
                    reinterpret_cast<const char*>(bytes), sizeof(bytes))));
}

}  // namespace pggitops
