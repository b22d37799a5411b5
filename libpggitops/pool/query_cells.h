// File: libpggitops/pool/query_cells.h
//
// Reading the text cells of a QueryResult into C++ values, and the SQL that
// makes timestamps exact to read, for the library's SQL stores (webhooks,
// alerts, dashboard). A cell the SQL guarantees (NOT NULL column, count(*))
// is read with a fallback instead of an error: the stores own their SQL.
#ifndef PGGITOPS_LIBPGGITOPS_POOL_QUERY_CELLS_H_
#define PGGITOPS_LIBPGGITOPS_POOL_QUERY_CELLS_H_

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"

namespace pggitops::internal {

using Cell = std::optional<std::string>;

// SQL for timestamptz `expr` as whole microseconds since the epoch (exact:
// extract(epoch ...) is numeric); NULL stays NULL. Read with TimeCell().
inline std::string MicrosSql(absl::string_view expr) {
  return absl::StrCat("(extract(epoch FROM ", expr, ") * 1000000)::bigint");
}

inline std::optional<int64_t> OptIntCell(const Cell& c) {
  int64_t v = 0;
  if (!c.has_value() || !absl::SimpleAtoi(*c, &v)) return std::nullopt;
  return v;
}

inline int64_t IntCell(const Cell& c, int64_t fallback = 0) {
  return OptIntCell(c).value_or(fallback);
}

inline std::optional<double> OptDoubleCell(const Cell& c) {
  double v = 0;
  if (!c.has_value() || !absl::SimpleAtod(*c, &v)) return std::nullopt;
  return v;
}

// A boolean in PostgreSQL's text form ("t"/"f").
inline bool BoolCell(const Cell& c) { return c.has_value() && *c == "t"; }

// A MicrosSql() cell.
inline std::optional<absl::Time> OptTimeCell(const Cell& c) {
  std::optional<int64_t> us = OptIntCell(c);
  if (!us.has_value()) return std::nullopt;
  return absl::FromUnixMicros(*us);
}

inline absl::Time TimeCell(const Cell& c) {
  return OptTimeCell(c).value_or(absl::UnixEpoch());
}

// "{1,2,3}": a PostgreSQL array literal of integers.
inline std::string IntArrayLiteral(const std::vector<int64_t>& values) {
  return absl::StrCat("{", absl::StrJoin(values, ","), "}");
}

}  // namespace pggitops::internal

#endif  // PGGITOPS_LIBPGGITOPS_POOL_QUERY_CELLS_H_
