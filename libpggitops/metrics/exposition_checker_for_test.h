// Test-only: a small strict checker for the Prometheus text exposition
// format 0.0.4, used by the metrics tests (and usable by any test that
// scrapes /metrics). Header-only and never linked into the library.
//
// It accepts exactly what the format allows and MetricsRegistry emits:
// `# HELP` / `# TYPE` lines, samples `name{l="v",...} value` with escaped
// label values, families in one contiguous group each and sorted by name,
// no duplicate series, histograms with increasing `le` buckets ending at
// +Inf, non-decreasing cumulative counts, and `_count` equal to the +Inf
// bucket. Other comments, timestamps and untyped samples are rejected,
// because MetricsRegistry never writes them.
#ifndef PGGITOPS_LIBPGGITOPS_METRICS_EXPOSITION_CHECKER_FOR_TEST_H_
#define PGGITOPS_LIBPGGITOPS_METRICS_EXPOSITION_CHECKER_FOR_TEST_H_

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <map>
#include <set>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "absl/strings/string_view.h"

namespace pggitops::testing {

// One parsed sample line.
struct ParsedSample {
  std::string name;
  std::vector<std::pair<std::string, std::string>> labels;  // unescaped
  double value = 0;
};

// One parsed family: its HELP (unescaped), TYPE and samples in order.
struct ParsedFamily {
  std::string name;
  std::string help;
  std::string type;
  std::vector<ParsedSample> samples;
};

namespace exposition_internal {

inline bool IsNameChar(char c, bool first, bool allow_colon) {
  bool letter = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_';
  bool digit = c >= '0' && c <= '9';
  return letter || (allow_colon && c == ':') || (!first && digit);
}

// Consumes a metric (allow_colon) or label name from the front of `s`.
inline std::string TakeName(absl::string_view* s, bool allow_colon) {
  size_t n = 0;
  while (n < s->size() && IsNameChar((*s)[n], n == 0, allow_colon)) ++n;
  std::string name(s->substr(0, n));
  s->remove_prefix(n);
  return name;
}

// Parses a sample value as Prometheus does: +Inf, -Inf, NaN or a decimal
// floating-point number.
inline absl::StatusOr<double> ParseValue(absl::string_view v) {
  if (v == "+Inf") return HUGE_VAL;
  if (v == "-Inf") return -HUGE_VAL;
  if (v == "NaN") return std::nan("");
  if (v.empty()) return absl::InvalidArgumentError("empty value");
  for (char c : v) {
    bool ok = (c >= '0' && c <= '9') || c == '.' || c == 'e' || c == 'E' ||
              c == '+' || c == '-';
    if (!ok) return absl::InvalidArgumentError(absl::StrCat("bad value ", v));
  }
  std::string text(v);
  char* end = nullptr;
  double d = std::strtod(text.c_str(), &end);
  if (end != text.c_str() + text.size()) {
    return absl::InvalidArgumentError(absl::StrCat("bad value ", v));
  }
  return d;
}

// Unescapes a label value (\\, \", \n) up to its closing quote.
inline absl::StatusOr<std::string> TakeQuoted(absl::string_view* s) {
  if (s->empty() || (*s)[0] != '"') {
    return absl::InvalidArgumentError("label value must start with a quote");
  }
  std::string out;
  for (size_t i = 1; i < s->size(); ++i) {
    char c = (*s)[i];
    if (c == '"') {
      s->remove_prefix(i + 1);
      return out;
    }
    if (c == '\n') return absl::InvalidArgumentError("raw newline in value");
    if (c != '\\') {
      out += c;
      continue;
    }
    if (++i == s->size()) break;
    char e = (*s)[i];
    if (e == '\\' || e == '"') {
      out += e;
    } else if (e == 'n') {
      out += '\n';
    } else {
      return absl::InvalidArgumentError(
          absl::StrCat("bad escape \\", std::string(1, e)));
    }
  }
  return absl::InvalidArgumentError("unterminated label value");
}

inline absl::StatusOr<std::string> UnescapeHelp(absl::string_view s) {
  std::string out;
  for (size_t i = 0; i < s.size(); ++i) {
    if (s[i] != '\\') {
      out += s[i];
      continue;
    }
    if (++i == s.size()) return absl::InvalidArgumentError("trailing \\");
    if (s[i] == '\\') {
      out += '\\';
    } else if (s[i] == 'n') {
      out += '\n';
    } else {
      return absl::InvalidArgumentError("bad escape in HELP");
    }
  }
  return out;
}

inline absl::StatusOr<ParsedSample> ParseSample(absl::string_view line) {
  ParsedSample s;
  s.name = TakeName(&line, true);
  if (s.name.empty()) return absl::InvalidArgumentError("no metric name");
  if (absl::ConsumePrefix(&line, "{")) {
    std::set<std::string> seen;
    while (!absl::ConsumePrefix(&line, "}")) {
      if (!s.labels.empty() && !absl::ConsumePrefix(&line, ",")) {
        return absl::InvalidArgumentError("expected ',' between labels");
      }
      std::string key = TakeName(&line, false);
      if (key.empty() || absl::StartsWith(key, "__")) {
        return absl::InvalidArgumentError("bad label name");
      }
      if (!seen.insert(key).second) {
        return absl::InvalidArgumentError("duplicate label " + key);
      }
      if (!absl::ConsumePrefix(&line, "=")) {
        return absl::InvalidArgumentError("expected '=' after label name");
      }
      absl::StatusOr<std::string> value = TakeQuoted(&line);
      if (!value.ok()) return value.status();
      s.labels.emplace_back(key, *value);
    }
    if (s.labels.empty()) return absl::InvalidArgumentError("empty braces");
  }
  if (!absl::ConsumePrefix(&line, " ")) {
    return absl::InvalidArgumentError("expected one space before the value");
  }
  absl::StatusOr<double> value = ParseValue(line);  // no timestamp allowed
  if (!value.ok()) return value.status();
  s.value = *value;
  return s;
}

}  // namespace exposition_internal

namespace exposition_internal {

inline std::string SeriesKey(const ParsedSample& s, bool without_le) {
  std::vector<std::string> parts;
  for (const auto& [k, v] : s.labels) {
    if (without_le && k == "le") continue;
    parts.push_back(absl::StrCat(k, "=", v));
  }
  std::sort(parts.begin(), parts.end());
  return absl::StrCat(without_le ? "" : s.name, "{",
                      absl::StrJoin(parts, "\x1f"), "}");
}

inline bool SampleBelongs(const ParsedFamily& f, const std::string& name) {
  if (f.type != "histogram") return name == f.name;
  return name == f.name + "_bucket" || name == f.name + "_sum" ||
         name == f.name + "_count";
}

struct HistogramSeries {
  std::vector<std::pair<double, double>> buckets;  // (le, cumulative count)
  bool has_sum = false;
  bool has_count = false;
  double count = 0;
};

inline absl::Status CheckHistogram(const ParsedFamily& f) {
  std::map<std::string, HistogramSeries> series;
  for (const ParsedSample& s : f.samples) {
    HistogramSeries& h = series[SeriesKey(s, true)];
    if (s.name == f.name + "_sum") {
      h.has_sum = true;
      continue;
    }
    if (s.name == f.name + "_count") {
      h.has_count = true;
      h.count = s.value;
      continue;
    }
    const std::string* le = nullptr;
    for (const auto& [k, v] : s.labels) {
      if (k == "le") le = &v;
    }
    if (le == nullptr) return absl::InvalidArgumentError("bucket without le");
    absl::StatusOr<double> bound = ParseValue(*le);
    if (!bound.ok()) return bound.status();
    if (!h.buckets.empty() && !(h.buckets.back().first < *bound)) {
      return absl::InvalidArgumentError(f.name + ": le not increasing");
    }
    if (!h.buckets.empty() && s.value < h.buckets.back().second) {
      return absl::InvalidArgumentError(f.name + ": bucket counts decrease");
    }
    h.buckets.emplace_back(*bound, s.value);
  }
  for (const auto& [key, h] : series) {
    if (h.buckets.empty() || !std::isinf(h.buckets.back().first)) {
      return absl::InvalidArgumentError(f.name + key + ": no +Inf bucket");
    }
    if (!h.has_sum || !h.has_count) {
      return absl::InvalidArgumentError(f.name + key + ": no _sum or _count");
    }
    if (h.count != h.buckets.back().second) {
      return absl::InvalidArgumentError(f.name + key + ": _count != +Inf");
    }
  }
  return absl::OkStatus();
}

// Handles a `# HELP` or `# TYPE` line, starting a new family when needed.
inline absl::Status ParseComment(absl::string_view line,
                                 std::vector<ParsedFamily>* families) {
  bool is_help = absl::ConsumePrefix(&line, "# HELP ");
  if (!is_help && !absl::ConsumePrefix(&line, "# TYPE ")) {
    return absl::InvalidArgumentError("unexpected comment line");
  }
  std::string name = TakeName(&line, true);
  if (name.empty()) return absl::InvalidArgumentError("comment without name");
  if (families->empty() || families->back().name != name) {
    if (!families->empty() && !(families->back().name < name)) {
      return absl::InvalidArgumentError(
          absl::StrCat("family ", name, " out of order or repeated"));
    }
    families->push_back(ParsedFamily{name, "", "", {}});
  }
  ParsedFamily& f = families->back();
  if (!f.samples.empty() || (is_help && (!f.help.empty() || !f.type.empty())) ||
      (!is_help && !f.type.empty())) {
    return absl::InvalidArgumentError(name + ": misplaced HELP/TYPE line");
  }
  if (!absl::ConsumePrefix(&line, " ")) {
    return absl::InvalidArgumentError(name + ": missing text");
  }
  if (is_help) {
    absl::StatusOr<std::string> help = UnescapeHelp(line);
    if (!help.ok()) return help.status();
    f.help = *help;
    return absl::OkStatus();
  }
  if (line != "counter" && line != "gauge" && line != "histogram") {
    return absl::InvalidArgumentError(name + ": unknown TYPE");
  }
  f.type = std::string(line);
  return absl::OkStatus();
}

}  // namespace exposition_internal

// Parses and checks a whole exposition; returns its families in order or the
// first violation, naming the line.
inline absl::StatusOr<std::vector<ParsedFamily>> ParseExposition(
    absl::string_view text) {
  namespace ei = exposition_internal;
  std::vector<ParsedFamily> families;
  if (text.empty()) return families;
  if (text.back() != '\n') {
    return absl::InvalidArgumentError("text does not end with a newline");
  }
  text.remove_suffix(1);
  std::set<std::string> series;
  int line_no = 0;
  for (absl::string_view line : absl::StrSplit(text, '\n')) {
    ++line_no;
    auto fail = [line_no, line](absl::string_view why) {
      return absl::InvalidArgumentError(
          absl::StrCat("line ", line_no, " \"", line, "\": ", why));
    };
    if (line.empty()) return fail("empty line");
    if (line[0] == '#') {
      absl::Status st = ei::ParseComment(line, &families);
      if (!st.ok()) return fail(st.message());
      continue;
    }
    absl::StatusOr<ParsedSample> s = ei::ParseSample(line);
    if (!s.ok()) return fail(s.status().message());
    if (families.empty() || families.back().type.empty() ||
        !ei::SampleBelongs(families.back(), s->name)) {
      return fail("sample outside its typed family");
    }
    if (!series.insert(ei::SeriesKey(*s, false)).second) {
      return fail("duplicate series");
    }
    families.back().samples.push_back(*std::move(s));
  }
  for (const ParsedFamily& f : families) {
    if (f.type.empty()) return absl::InvalidArgumentError(f.name + ": no TYPE");
    if (f.type != "histogram") continue;
    absl::Status st = ei::CheckHistogram(f);
    if (!st.ok()) return st;
  }
  return families;
}

}  // namespace pggitops::testing

#endif  // PGGITOPS_LIBPGGITOPS_METRICS_EXPOSITION_CHECKER_FOR_TEST_H_
