// Small helpers shared by the delivery store's .cc files: a transaction
// guard and conversions of text cells and JSON parameters.
#ifndef PGGITOPS_LIBPGGITOPS_DELIVERY_STORE_UTIL_H_
#define PGGITOPS_LIBPGGITOPS_DELIVERY_STORE_UTIL_H_

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/time/time.h"
#include "nlohmann/json.hpp"
#include "pggitops/connection_pool.h"

namespace pggitops::internal::store {

using Row = std::vector<std::optional<std::string>>;

// Rolls back unless committed. Errors of ROLLBACK itself are ignored (the
// pool rolls back a dirty lease anyway).
class Txn {
 public:
  explicit Txn(PooledConnection& lease) : lease_(lease) {}
  ~Txn() {
    if (open_) lease_.Query("ROLLBACK").IgnoreError();
  }
  Txn(const Txn&) = delete;
  Txn& operator=(const Txn&) = delete;
  absl::Status Begin() {
    absl::Status s = lease_.Query("BEGIN").status();
    open_ = s.ok();
    return s;
  }
  absl::Status Commit() {
    open_ = false;
    return lease_.Query("COMMIT").status();
  }

 private:
  PooledConnection& lease_;
  bool open_ = false;
};

inline int64_t Int(const std::optional<std::string>& v, int64_t fallback = 0) {
  int64_t out = fallback;
  if (v.has_value() && !absl::SimpleAtoi(*v, &out)) out = fallback;
  return out;
}

inline double Double(const std::optional<std::string>& v, double fallback = 0) {
  double out = fallback;
  if (v.has_value() && !absl::SimpleAtod(*v, &out)) out = fallback;
  return out;
}

// A cell holding extract(epoch FROM ...).
inline std::optional<absl::Time> Epoch(const std::optional<std::string>& v) {
  if (!v.has_value()) return std::nullopt;
  double s = 0;
  if (!absl::SimpleAtod(*v, &s)) return std::nullopt;
  return absl::FromUnixMicros(static_cast<int64_t>(s * 1e6));
}

// Seconds since the epoch for to_timestamp(), or null.
inline nlohmann::json EpochJson(const std::optional<absl::Time>& t) {
  if (!t.has_value()) return nullptr;
  return static_cast<double>(absl::ToUnixMicros(*t)) / 1e6;
}

inline std::string Dump(const nlohmann::json& j) {
  return j.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
}

inline std::string Seconds(absl::Duration d) {
  return absl::StrCat(absl::ToDoubleSeconds(d));
}

}  // namespace pggitops::internal::store

#endif  // PGGITOPS_LIBPGGITOPS_DELIVERY_STORE_UTIL_H_
