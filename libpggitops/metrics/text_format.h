// Private helpers for the Prometheus text exposition format 0.0.4: name
// validation, escaping and number formatting. Pure functions, thread-safe.
#ifndef PGGITOPS_LIBPGGITOPS_METRICS_TEXT_FORMAT_H_
#define PGGITOPS_LIBPGGITOPS_METRICS_TEXT_FORMAT_H_

#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/string_view.h"

namespace pggitops::internal {

// Prints "pggitops metrics: <message>" to stderr and aborts. Used for
// programming errors (see pggitops/metrics.h).
[[noreturn]] void MetricsAbort(absl::string_view message);

// True if `name` matches [a-zA-Z_:][a-zA-Z0-9_:]*.
bool IsValidMetricName(absl::string_view name);

// True if `name` matches [a-zA-Z_][a-zA-Z0-9_]* and does not start with
// "__" (reserved for Prometheus).
bool IsValidLabelName(absl::string_view name);

// Checks a family declaration: the metric name, every label name, no
// duplicate label names, and for histograms no "le" label. Returns
// kInvalidArgument naming the offending part.
absl::Status ValidateFamily(absl::string_view name,
                            const std::vector<std::string>& label_names,
                            bool is_histogram);

// Escapes HELP text: backslash as \\ and newline as \n.
std::string EscapeHelp(absl::string_view help);

// Escapes a label value: backslash as \\, double quote as \" and newline
// as \n.
std::string EscapeLabelValue(absl::string_view value);

// Formats a sample value or an `le` bound so that Prometheus parses it back
// to the same double: integral values below 2^53 in magnitude as plain
// integers ("3", "-2"), other finite values in the shortest round-trip form
// ("0.005", "1e-07"), and "+Inf", "-Inf", "NaN".
std::string FormatNumber(double v);

// Appends `{name="value",...}` for the given labels plus an optional extra
// label (used for `le`); appends nothing when there is no label at all.
// REQUIRES: names.size() == values.size().
void AppendLabels(const std::vector<std::string>& names,
                  const std::vector<std::string>& values,
                  absl::string_view extra_name, absl::string_view extra_value,
                  std::string* out);

}  // namespace pggitops::internal

#endif  // PGGITOPS_LIBPGGITOPS_METRICS_TEXT_FORMAT_H_
