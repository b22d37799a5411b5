// PoolOptions::Validate and PoolOptionsFromConfig.
#include <string>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "pggitops/connection_pool.h"

namespace pggitops {
namespace {

absl::Status Invalid(absl::string_view field, absl::string_view rule,
                     absl::string_view got) {
  return absl::InvalidArgumentError(
      absl::StrCat("PoolOptions.", field, ": ", rule, " (got ", got, ")"));
}

absl::Status CheckInt(absl::string_view field, int v, int lo, int hi) {
  if (v >= lo && v <= hi) return absl::OkStatus();
  return Invalid(field, absl::StrFormat("must be from %d to %d", lo, hi),
                 absl::StrCat(v));
}

// lo <= d <= hi, or d infinite when `infinite_ok`.
absl::Status CheckDuration(absl::string_view field, absl::Duration d,
                           absl::Duration lo, absl::Duration hi,
                           bool infinite_ok) {
  if (d == absl::InfiniteDuration() && infinite_ok) return absl::OkStatus();
  if (d >= lo && d <= hi) return absl::OkStatus();
  std::string rule = absl::StrCat("must be from ", absl::FormatDuration(lo),
                                  " to ", absl::FormatDuration(hi));
  if (infinite_ok) absl::StrAppend(&rule, " or infinite");
  return Invalid(field, rule, absl::FormatDuration(d));
}

absl::Status CheckApplicationName(const std::string& name) {
  bool printable = true;
  for (char c : name) printable = printable && c >= 0x20 && c < 0x7f;
  if (name.size() < 64 && printable) return absl::OkStatus();
  return Invalid("application_name",
                 "must be at most 63 printable ASCII characters",
                 absl::StrCat("\"", name.substr(0, 80), "\""));
}

}  // namespace

absl::Status PoolOptions::Validate() const {
  const absl::Duration kNs = absl::Nanoseconds(1);
  const absl::Duration kHuge = absl::Hours(24 * 365 * 100);
  absl::Status checks[] = {
      CheckInt("size", size, 1, 1000),
      CheckInt("max_overflow", max_overflow, 0, 1000),
      CheckDuration("timeout", timeout, kNs, kHuge, true),
      CheckDuration("recycle", recycle, kNs, kHuge, true),
      CheckDuration("pre_ping_idle", pre_ping_idle, absl::ZeroDuration(), kHuge,
                    true),
      CheckDuration("connect_timeout", connect_timeout, absl::Seconds(1),
                    absl::Hours(1), false),
      CheckDuration("statement_timeout", statement_timeout,
                    absl::Milliseconds(1), absl::Hours(24), true),
      CheckDuration("slow_query", slow_query, kNs, kHuge, true),
      CheckDuration("down_retry_interval", down_retry_interval,
                    absl::Milliseconds(1), absl::Hours(1), false),
      CheckApplicationName(application_name),
  };
  for (const absl::Status& s : checks) {
    if (!s.ok()) return s;
  }
  return absl::OkStatus();
}

namespace {

// Zero or negative in the configuration means "never" for these keys.
absl::Duration ZeroMeansNever(absl::Duration d) {
  return d <= absl::ZeroDuration() ? absl::InfiniteDuration() : d;
}

}  // namespace

PoolOptions PoolOptionsFromConfig(const Config& config) {
  PoolOptions o;
  o.dsn = config.database_url;
  o.size = config.database_pool_size;
  o.max_overflow = config.database_pool_max_overflow;
  o.timeout = config.database_pool_timeout;
  o.recycle = ZeroMeansNever(config.database_pool_recycle);
  o.pre_ping = config.database_pool_pre_ping;
  o.pre_ping_idle = config.database_pool_pre_ping_idle;
  o.connect_timeout = config.database_connect_timeout;
  o.statement_timeout = ZeroMeansNever(config.database_statement_timeout);
  o.slow_query = ZeroMeansNever(config.database_slow_query);
  return o;
}

}  // namespace pggitops
