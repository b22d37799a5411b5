// Tests of the metric types, Family and the text-format helpers.
#include "pggitops/metrics.h"

#include <cmath>
#include <limits>
#include <thread>
#include <vector>

#include "doctest/doctest.h"
#include "libpggitops/metrics/text_format.h"

namespace pggitops {
namespace {

using internal::FormatNumber;

TEST_CASE("TextFormat: metric and label name validation") {
  CHECK(internal::IsValidMetricName("http_requests_total"));
  CHECK(internal::IsValidMetricName("ns:sub_metric"));
  CHECK(internal::IsValidMetricName("_x9"));
  CHECK_FALSE(internal::IsValidMetricName(""));
  CHECK_FALSE(internal::IsValidMetricName("9lives"));
  CHECK_FALSE(internal::IsValidMetricName("has-dash"));
  CHECK_FALSE(internal::IsValidMetricName("has space"));
  CHECK_FALSE(internal::IsValidMetricName("caf\xc3\xa9"));

  CHECK(internal::IsValidLabelName("route"));
  CHECK(internal::IsValidLabelName("_private"));
  CHECK(internal::IsValidLabelName("a1"));
  CHECK_FALSE(internal::IsValidLabelName(""));
  CHECK_FALSE(internal::IsValidLabelName("__reserved"));
  CHECK_FALSE(internal::IsValidLabelName("has:colon"));
  CHECK_FALSE(internal::IsValidLabelName("1st"));
}

TEST_CASE("TextFormat: ValidateFamily names the offending part") {
  CHECK(internal::ValidateFamily("ok_total", {"a", "b"}, false).ok());
  absl::Status s = internal::ValidateFamily("bad name", {}, false);
  CHECK(s.code() == absl::StatusCode::kInvalidArgument);
  CHECK(s.message().find("bad name") != absl::string_view::npos);
  s = internal::ValidateFamily("m", {"a", "__b"}, false);
  CHECK(s.message().find("__b") != absl::string_view::npos);
  s = internal::ValidateFamily("m", {"a", "a"}, false);
  CHECK(s.message().find("duplicate label name \"a\"") !=
        absl::string_view::npos);
  CHECK(internal::ValidateFamily("m", {"le"}, false).ok());
  s = internal::ValidateFamily("m", {"le"}, true);
  CHECK(s.message().find("reserved") != absl::string_view::npos);
}

TEST_CASE("TextFormat: escaping of HELP text and label values") {
  CHECK(internal::EscapeHelp("a\\b\nc \"q\"") == "a\\\\b\\nc \"q\"");
  CHECK(internal::EscapeLabelValue("a\\b\nc \"q\"") == "a\\\\b\\nc \\\"q\\\"");
  CHECK(internal::EscapeLabelValue("/api/v1/webhooks/{id}") ==
        "/api/v1/webhooks/{id}");
}

TEST_CASE("TextFormat: numbers Prometheus parses back exactly") {
  CHECK(FormatNumber(0) == "0");
  CHECK(FormatNumber(-0.0) == "0");
  CHECK(FormatNumber(3) == "3");
  CHECK(FormatNumber(-2) == "-2");
  CHECK(FormatNumber(1e6) == "1000000");
  CHECK(FormatNumber(123456789012) == "123456789012");
  CHECK(FormatNumber(0.005) == "0.005");
  CHECK(FormatNumber(2.5) == "2.5");
  CHECK(FormatNumber(0.1) == "0.1");
  CHECK(FormatNumber(1e-7) == "1e-07");
  CHECK(FormatNumber(1e300) == "1e+300");
  CHECK(FormatNumber(std::numeric_limits<double>::infinity()) == "+Inf");
  CHECK(FormatNumber(-std::numeric_limits<double>::infinity()) == "-Inf");
  CHECK(FormatNumber(std::nan("")) == "NaN");
  for (double v : {0.1 + 0.2, 1.0 / 3, 12345.678, 9007199254740993.0}) {
    CHECK(std::strtod(FormatNumber(v).c_str(), nullptr) == v);
  }
}

TEST_CASE("Counter: Inc adds, ignores negative and NaN") {
  Counter c;
  CHECK(c.Value() == 0);
  c.Inc();
  c.Inc(2.5);
  CHECK(c.Value() == 3.5);
  c.Inc(-1);
  c.Inc(std::nan(""));
  CHECK(c.Value() == 3.5);
}

TEST_CASE("Gauge: Set, Inc and Dec") {
  Gauge g;
  g.Set(10);
  g.Inc();
  g.Inc(4);
  g.Dec(2.5);
  CHECK(g.Value() == 12.5);
  g.Dec(20);
  CHECK(g.Value() == -7.5);
}

TEST_CASE("Histogram: buckets are inclusive upper bounds, cumulative") {
  Histogram h({1, 2, 5});
  for (double v : {0.5, 1.0, 1.5, 5.0, 7.0, -3.0}) h.Observe(v);
  Histogram::Snapshot s = h.Collect();
  CHECK(s.bounds == std::vector<double>{1, 2, 5});
  CHECK(s.cumulative_counts == std::vector<uint64_t>{3, 4, 5, 6});
  CHECK(s.count == 6);
  CHECK(s.sum == doctest::Approx(12.0));
  h.ObserveDuration(absl::Milliseconds(1500));
  s = h.Collect();
  CHECK(s.cumulative_counts == std::vector<uint64_t>{3, 5, 6, 7});
  CHECK(s.sum == doctest::Approx(13.5));
}

TEST_CASE("Histogram: NaN counts only in +Inf; empty bounds") {
  Histogram h({1});
  h.Observe(std::nan(""));
  Histogram::Snapshot s = h.Collect();
  CHECK(s.cumulative_counts == std::vector<uint64_t>{0, 1});
  CHECK(std::isnan(s.sum));
  Histogram only_inf({});
  only_inf.Observe(42);
  s = only_inf.Collect();
  CHECK(s.cumulative_counts == std::vector<uint64_t>{1});
  CHECK(s.sum == 42);
}

TEST_CASE("Buckets: default and exponential") {
  std::vector<double> d = DefaultBuckets();
  REQUIRE(d.size() == 11);
  CHECK(d.front() == 0.005);
  CHECK(d.back() == 10);
  for (size_t i = 1; i < d.size(); ++i) CHECK(d[i - 1] < d[i]);
  std::vector<double> e = ExponentialBuckets(0.001, 10, 4);
  REQUIRE(e.size() == 4);
  CHECK(e[0] == 0.001);
  CHECK(e[3] == doctest::Approx(1));
  CHECK(ExponentialBuckets(1, 2, 5) == std::vector<double>{1, 2, 4, 8, 16});
}

TEST_CASE("Family: WithLabels returns stable references") {
  Family<Counter> f("c_total", "help", {"a", "b"},
                    [] { return std::make_unique<Counter>(); });
  Counter& first = f.WithLabels({"x", "y"});
  first.Inc(3);
  for (int i = 0; i < 2000; ++i) {
    f.WithLabels({std::to_string(i), "z"}).Inc();  // forces rehashes
  }
  Counter& again = f.WithLabels(std::vector<std::string>{"x", "y"});
  CHECK(&again == &first);
  CHECK(again.Value() == 3);
  CHECK(&f.WithLabels({"y", "x"}) != &first);
  CHECK(f.name() == "c_total");
  CHECK(f.label_names() == std::vector<std::string>{"a", "b"});
}

TEST_CASE("Family: ForEach visits children sorted by label values") {
  Family<Gauge> f("g", "help", {"k", "v"},
                  [] { return std::make_unique<Gauge>(); });
  f.WithLabels({"b", "1"}).Set(1);
  f.WithLabels({"a", "2"}).Set(2);
  f.WithLabels({"a", "10"}).Set(3);
  std::vector<std::string> order;
  f.ForEach([&](const std::vector<std::string>& values, const Gauge& g) {
    order.push_back(values[0] + values[1] + "=" + FormatNumber(g.Value()));
  });
  CHECK(order == std::vector<std::string>{"a10=3", "a2=2", "b1=1"});
}

TEST_CASE("Concurrency: increments from several threads give exact totals") {
  constexpr int kThreads = 4;
  constexpr int kPerThread = 100000;
  Counter counter;
  Gauge gauge;
  Histogram histogram({0.5, 1.5});
  Family<Counter> family("f_total", "help", {"k"},
                         [] { return std::make_unique<Counter>(); });
  std::vector<Counter*> seen(kThreads);
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      seen[t] = &family.WithLabels({"shared"});
      for (int i = 0; i < kPerThread; ++i) {
        counter.Inc();
        gauge.Inc(2);
        gauge.Dec();
        histogram.Observe(1);
        family.WithLabels({i % 2 ? "odd" : "even"}).Inc();
      }
    });
  }
  for (std::thread& t : threads) t.join();
  constexpr double kTotal = double{kThreads} * kPerThread;
  CHECK(counter.Value() == kTotal);
  CHECK(gauge.Value() == kTotal);
  Histogram::Snapshot s = histogram.Collect();
  CHECK(s.cumulative_counts == std::vector<uint64_t>{0, 400000, 400000});
  CHECK(s.sum == kTotal);
  CHECK(family.WithLabels({"odd"}).Value() == kTotal / 2);
  CHECK(family.WithLabels({"even"}).Value() == kTotal / 2);
  for (Counter* c : seen) CHECK(c == seen[0]);
}

}  // namespace
}  // namespace pggitops
