// libFuzzer target: the metrics exposition, round trip. Families of every
// kind with names, label names, help texts, label values and values taken
// from the input are registered through the library's API
// (MetricsRegistry, pggitops/metrics.h), rendered (Serialize), and parsed by
// the strict checker of the metrics tests
// (libpggitops/metrics/exposition_checker_for_test.h). Invariants: the
// checker accepts the text (format 0.0.4: escaping, grouping, sorting,
// histogram buckets) and reads back every family's help and type, and every
// series' label values and value (counters: the sum of the non-negative
// increments; gauges: the last value set; histograms: counts per bucket,
// _count and _sum), NaN and infinities included.
// Seeds: tests/fuzz/metrics_exposition/. See docs/TESTING.md.
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <map>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "libpggitops/metrics/exposition_checker_for_test.h"
#include "pggitops/metrics.h"
#include "tests/fuzz/fuzz_util.h"

using pggitops::fuzz::Bytes;
using pggitops::fuzz::Require;
using pggitops::testing::ParsedFamily;
using pggitops::testing::ParsedSample;

namespace {

const std::vector<double> kBounds = {0.5, 1, 10};
const char* const kBoundTexts[] = {"0.5", "1", "10", "+Inf"};

// A name: `prefix` (unique per family or label, so names never collide)
// and up to 7 characters of [a-z0-9_] (and ':' when `colon`).
std::string Name(Bytes* in, const std::string& prefix, bool colon) {
  static const char kChars[] = "abcdefghijklmnopqrstuvwxyz0123456789_:";
  std::string name = prefix;
  const int n = in->Byte() % 8;
  for (int i = 0; i < n; ++i) {
    name += kChars[in->Byte() % (colon ? 38 : 37)];
  }
  return name;
}

double Value(Bytes* in) {
  uint8_t raw[8];
  for (uint8_t& b : raw) b = in->Byte();
  double v;
  std::memcpy(&v, raw, sizeof(v));
  return v;
}

bool Same(double a, double b) {
  return (std::isnan(a) && std::isnan(b)) || a == b;
}

struct Series {
  double value = 0;                           // counter, gauge
  std::vector<uint64_t> buckets{0, 0, 0, 0};  // histogram, cumulative
  double sum = 0;
  uint64_t count = 0;
};

struct Expected {
  std::string name, help, type;
  std::vector<std::string> labels;
  std::map<std::vector<std::string>, Series> series;
};

std::vector<std::pair<std::string, std::string>> Labels(
    const Expected& f, const std::vector<std::string>& values) {
  std::vector<std::pair<std::string, std::string>> out;
  for (size_t i = 0; i < values.size(); ++i) {
    out.emplace_back(f.labels[i], values[i]);
  }
  return out;
}

// The sample of `f` called `name` with `labels`, or abort.
double Sample(const ParsedFamily& f, const std::string& name,
              const std::vector<std::pair<std::string, std::string>>& labels) {
  for (const ParsedSample& s : f.samples) {
    if (s.name == name && s.labels == labels) return s.value;
  }
  Require(false, "a series is missing from the exposition");
  return 0;
}

void CheckFamily(const Expected& e, const ParsedFamily& f) {
  Require(f.help == e.help, "a help text changed");
  Require(f.type == e.type, "a type changed");
  size_t samples = 0;
  for (const auto& [values, s] : e.series) {
    auto labels = Labels(e, values);
    if (e.type != "histogram") {
      Require(Same(Sample(f, e.name, labels), s.value), "a value changed");
      ++samples;
      continue;
    }
    for (size_t b = 0; b <= kBounds.size(); ++b) {
      auto with_le = labels;
      with_le.emplace_back("le", kBoundTexts[b]);
      Require(Sample(f, e.name + "_bucket", with_le) == s.buckets[b],
              "a bucket count changed");
    }
    Require(Sample(f, e.name + "_count", labels) == s.count,
            "a histogram's count changed");
    Require(Same(Sample(f, e.name + "_sum", labels), s.sum),
            "a histogram's sum changed");
    samples += kBounds.size() + 3;
  }
  Require(f.samples.size() == samples, "samples that were never written");
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  Bytes in(data, size);
  pggitops::MetricsRegistry registry;
  std::vector<Expected> families;
  const int n = 1 + in.Byte() % 4;
  for (int i = 0; i < n && !in.empty(); ++i) {
    Expected e;
    const int kind = in.Byte() % 3;
    e.name = Name(&in, absl::StrCat("f", i, "x"), true);
    const int labels = in.Byte() % 3;
    for (int l = 0; l < labels; ++l) {
      e.labels.push_back(Name(&in, absl::StrCat("l", l), false));
    }
    e.help = in.Until('\n');
    const int series = in.Byte() % 4;
    std::vector<std::vector<std::string>> values(series);
    for (auto& v : values) {
      for (int l = 0; l < labels; ++l) v.push_back(in.Until('\x01'));
    }
    if (labels == 0) values.assign(1, {});  // the family's single child
    const int updates = in.Byte() % 8;
    if (kind == 0) {
      e.type = "counter";
      auto& fam = registry.AddCounter(e.name, e.help, e.labels);
      for (const auto& v : values) e.series[v], fam.WithLabels(v);
      for (int u = 0; u < updates && !values.empty(); ++u) {
        const auto& v = values[in.Byte() % values.size()];
        const double x = Value(&in);
        fam.WithLabels(v).Inc(x);
        if (x >= 0) e.series[v].value += x;
      }
    } else if (kind == 1) {
      e.type = "gauge";
      auto& fam = registry.AddGauge(e.name, e.help, e.labels);
      for (const auto& v : values) e.series[v], fam.WithLabels(v);
      for (int u = 0; u < updates && !values.empty(); ++u) {
        const auto& v = values[in.Byte() % values.size()];
        const double x = Value(&in);
        fam.WithLabels(v).Set(x);
        e.series[v].value = x;
      }
    } else {
      e.type = "histogram";
      auto& fam = registry.AddHistogram(e.name, e.help, e.labels, kBounds);
      for (const auto& v : values) e.series[v], fam.WithLabels(v);
      for (int u = 0; u < updates && !values.empty(); ++u) {
        const auto& v = values[in.Byte() % values.size()];
        const double x = Value(&in);
        fam.WithLabels(v).Observe(x);
        Series& s = e.series[v];
        for (size_t b = 0; b <= kBounds.size(); ++b) {
          if (b == kBounds.size() || x <= kBounds[b]) ++s.buckets[b];
        }
        s.sum += x;
        ++s.count;
      }
    }
    families.push_back(std::move(e));
  }

  const std::string text = registry.Serialize();
  auto parsed = pggitops::testing::ParseExposition(text);
  if (!parsed.ok()) {
    std::fprintf(stderr, "%s\n---\n%s",
                 std::string(parsed.status().message()).c_str(), text.c_str());
  }
  Require(parsed.ok(), "the checker refuses the exposition");
  Require(parsed->size() == families.size(), "a family is missing or extra");
  for (const Expected& e : families) {
    const ParsedFamily* found = nullptr;
    for (const ParsedFamily& f : *parsed) {
      if (f.name == e.name) found = &f;
    }
    Require(found != nullptr, "a family is missing");
    CheckFamily(e, *found);
  }
  return 0;
}
