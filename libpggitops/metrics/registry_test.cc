// Tests of MetricsRegistry: exposition goldens, format validity, collect
// hooks and the aborts on programming errors.
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <thread>

#include "absl/synchronization/notification.h"
#include "doctest/doctest.h"
#include "libpggitops/metrics/exposition_checker_for_test.h"
#include "pggitops/metrics.h"

namespace pggitops {
namespace {

using testing::ParseExposition;

// Runs `fn` in a forked child and returns what it wrote to stderr; checks
// that the child died of SIGABRT.
std::string StderrOfAbort(const std::function<void()>& fn) {
  int fds[2];
  REQUIRE(pipe(fds) == 0);
  pid_t pid = fork();
  REQUIRE(pid >= 0);
  if (pid == 0) {
    signal(SIGABRT, SIG_DFL);  // not doctest's crash reporter
    dup2(fds[1], STDERR_FILENO);
    close(fds[0]);
    fn();
    _exit(0);
  }
  close(fds[1]);
  std::string err;
  char buf[512];
  ssize_t n;
  while ((n = read(fds[0], buf, sizeof(buf))) > 0) err.append(buf, n);
  close(fds[0]);
  int status = 0;
  REQUIRE(waitpid(pid, &status, 0) == pid);
  CHECK(WIFSIGNALED(status));
  CHECK(WTERMSIG(status) == SIGABRT);
  return err;
}

TEST_CASE("Registry: counter exposition with labels and escaping") {
  MetricsRegistry r;
  auto& f = r.AddCounter("http_requests_total", "Requests.\nBy \\route.",
                         {"method", "route"});
  f.WithLabels({"GET", "/a\"b\\c\nd"}).Inc(2);
  f.WithLabels({"DELETE", "/x"}).Inc(0.5);
  CHECK(r.Serialize() ==
        "# HELP http_requests_total Requests.\\nBy \\\\route.\n"
        "# TYPE http_requests_total counter\n"
        "http_requests_total{method=\"DELETE\",route=\"/x\"} 0.5\n"
        "http_requests_total{method=\"GET\",route=\"/a\\\"b\\\\c\\nd\"} 2\n");
}

TEST_CASE("Registry: gauges, unlabelled families exposed from the start") {
  MetricsRegistry r;
  r.AddGauge("queue_depth", "Pending deliveries.");
  r.AddCounter("hits_total", "");
  auto& temp = r.AddGauge("temp", "T.", {"room"});
  CHECK(r.Serialize() ==
        "# TYPE hits_total counter\n"
        "hits_total 0\n"
        "# HELP queue_depth Pending deliveries.\n"
        "# TYPE queue_depth gauge\n"
        "queue_depth 0\n"
        "# HELP temp T.\n"
        "# TYPE temp gauge\n");
  temp.WithLabels({"b"}).Set(-1.25);
  temp.WithLabels({"a"}).Set(std::numeric_limits<double>::infinity());
  r.AddGauge("queue_depth", "Pending deliveries.").WithLabels({}).Set(7);
  CHECK(r.Serialize() ==
        "# TYPE hits_total counter\n"
        "hits_total 0\n"
        "# HELP queue_depth Pending deliveries.\n"
        "# TYPE queue_depth gauge\n"
        "queue_depth 7\n"
        "# HELP temp T.\n"
        "# TYPE temp gauge\n"
        "temp{room=\"a\"} +Inf\n"
        "temp{room=\"b\"} -1.25\n");
}

TEST_CASE("Registry: histogram exposition is cumulative with +Inf") {
  MetricsRegistry r;
  auto& f =
      r.AddHistogram("req_seconds", "Latency.", {"route"}, {0.005, 0.5, 1});
  Histogram& h = f.WithLabels({"/r"});
  for (double v : {0.0009765625, 0.00390625, 0.25, 0.75, 3.0}) h.Observe(v);
  r.AddHistogram("a_seconds", "A.", {}, {1}).WithLabels({}).Observe(0.25);
  CHECK(r.Serialize() ==
        "# HELP a_seconds A.\n"
        "# TYPE a_seconds histogram\n"
        "a_seconds_bucket{le=\"1\"} 1\n"
        "a_seconds_bucket{le=\"+Inf\"} 1\n"
        "a_seconds_sum 0.25\n"
        "a_seconds_count 1\n"
        "# HELP req_seconds Latency.\n"
        "# TYPE req_seconds histogram\n"
        "req_seconds_bucket{route=\"/r\",le=\"0.005\"} 2\n"
        "req_seconds_bucket{route=\"/r\",le=\"0.5\"} 3\n"
        "req_seconds_bucket{route=\"/r\",le=\"1\"} 4\n"
        "req_seconds_bucket{route=\"/r\",le=\"+Inf\"} 5\n"
        "req_seconds_sum{route=\"/r\"} 4.0048828125\n"
        "req_seconds_count{route=\"/r\"} 5\n");
}

TEST_CASE("Registry: families sorted by name, children by label values") {
  MetricsRegistry r;
  r.AddCounter("zz_total", "Z.", {"k"}).WithLabels({"b"}).Inc();
  r.AddCounter("zz_total", "Z.", {"k"}).WithLabels({"a"}).Inc();
  r.AddGauge("aa", "A.");
  r.AddGauge("mm:sub", "M.");
  std::string out = r.Serialize();
  size_t aa = out.find("# TYPE aa "), mm = out.find("# TYPE mm:sub ");
  size_t zz = out.find("# TYPE zz_total ");
  CHECK(aa < mm);
  CHECK(mm < zz);
  CHECK(out.find("zz_total{k=\"a\"} 1") < out.find("zz_total{k=\"b\"} 1"));
}

TEST_CASE("Registry: re-registration returns the same family") {
  MetricsRegistry r;
  auto& c = r.AddCounter("c_total", "C.", {"a"});
  CHECK(&r.AddCounter("c_total", "C.", {"a"}) == &c);
  auto& h = r.AddHistogram("h", "H.", {}, {1, 2});
  CHECK(&r.AddHistogram("h", "H.", {}, {1, 2}) == &h);
}

TEST_CASE("Registry: the whole output passes a strict format parser") {
  MetricsRegistry r;
  RegisterProcessMetrics(&r);
  r.AddCounter("http_requests_total", "Requests\\ by\nroute.",
               {"method", "route", "status"})
      .WithLabels({"GET", "/api/v1/webhooks/{id}", "200"})
      .Inc(41);
  r.AddGauge("weird", "W.", {"v"}).WithLabels({"q\"\\\n"}).Set(std::nan(""));
  auto& h = r.AddHistogram("http_request_duration_seconds", "D.",
                           {"method", "route"});
  h.WithLabels({"GET", "/x"}).Observe(0.03);
  h.WithLabels({"POST", "/x"}).Observe(12);
  r.AddHistogram("empty_seconds", "E.", {"k"}, ExponentialBuckets(1e-6, 10, 3));
  absl::StatusOr<std::vector<testing::ParsedFamily>> parsed =
      ParseExposition(r.Serialize());
  REQUIRE_MESSAGE(parsed.ok(), parsed.status().ToString());
  CHECK(parsed->size() == 11);
  bool saw_weird = false;
  for (const testing::ParsedFamily& f : *parsed) {
    if (f.name == "http_requests_total") {
      CHECK(f.help == "Requests\\ by\nroute.");
      REQUIRE(f.samples.size() == 1);
      CHECK(f.samples[0].labels[1].second == "/api/v1/webhooks/{id}");
      CHECK(f.samples[0].value == 41);
    }
    if (f.name == "weird") {
      saw_weird = true;
      REQUIRE(f.samples.size() == 1);
      CHECK(f.samples[0].labels[0].second == "q\"\\\n");
      CHECK(std::isnan(f.samples[0].value));
    }
    if (f.name == "http_request_duration_seconds") {
      CHECK(f.samples.size() == 2 * (11 + 1 + 2));
    }
  }
  CHECK(saw_weird);
}

TEST_CASE("ExpositionChecker: rejects malformed text") {
  const char* bad[] = {
      "x 1",                                 // no newline at the end
      "x 1\n",                               // sample before TYPE
      "# TYPE x counter\nx 1 1700000000\n",  // timestamp
      "# TYPE x counter\nx{a=\"1\",} 1\n",   // trailing comma
      "# TYPE x counter\nx{a=\"\\t\"} 1\n",  // bad escape
      "# TYPE x counter\nx{__a=\"1\"} 1\n",  // reserved label
      "# TYPE x counter\nx 1\nx 2\n",        // duplicate series
      "# TYPE x counter\nx inf\n",           // only canonical +Inf
      "# TYPE x counter\ny 1\n",             // sample of another family
      "# TYPE b gauge\n# TYPE a gauge\n",    // not sorted
      "# TYPE x counter\n\nx 1\n",           // empty line
      "# TYPE x summary\n",                  // never emitted
      "# TYPE x counter\n# TYPE x counter\n",
      "# TYPE x counter\nx  1\n",
      "# TYPE h histogram\nh_bucket{le=\"1\"} 1\nh_sum 1\nh_count 1\n",
      ("# TYPE h histogram\nh_bucket{le=\"1\"} 2\nh_bucket{le=\"+Inf\"} 1\n"
       "h_sum 1\nh_count 1\n"),
      "# TYPE h histogram\nh_bucket{le=\"+Inf\"} 2\nh_sum 1\nh_count 1\n",
  };
  for (const char* text : bad) {
    CAPTURE(text);
    CHECK_FALSE(ParseExposition(text).ok());
  }
  CHECK(ParseExposition("# HELP x a\\\\b\n# TYPE x counter\nx 1e-07\n").ok());
}

TEST_CASE("Registry: collect hooks run first, without locks, and go away") {
  MetricsRegistry r;
  Gauge& g = r.AddGauge("refreshed", "R.").WithLabels({});
  int runs = 0;
  int id = r.AddCollectHook([&] {
    g.Set(++runs * 10);
    // Registering from a hook would deadlock if a registry lock were held.
    r.AddCounter("from_hook_total", "F.");
  });
  std::string out = r.Serialize();
  CHECK(out.find("refreshed 10\n") != std::string::npos);
  CHECK(out.find("from_hook_total 0\n") != std::string::npos);
  r.Serialize();
  CHECK(runs == 2);
  r.RemoveCollectHook(id);
  r.RemoveCollectHook(id);     // unknown ids are ignored
  r.RemoveCollectHook(12345);  // never issued
  CHECK(r.Serialize().find("refreshed 20\n") != std::string::npos);
  CHECK(runs == 2);
}

TEST_CASE("Registry: a hook may remove itself") {
  MetricsRegistry r;
  int runs = 0;
  int id = 0;
  id = r.AddCollectHook([&] {
    ++runs;
    r.RemoveCollectHook(id);
  });
  r.Serialize();
  r.Serialize();
  CHECK(runs == 1);
}

TEST_CASE("Registry: RemoveCollectHook waits for a running hook") {
  MetricsRegistry r;
  absl::Notification hook_started, release_hook, remover_started;
  std::atomic<bool> hook_done{false};
  int id = r.AddCollectHook([&] {
    hook_started.Notify();
    release_hook.WaitForNotification();
    hook_done = true;
  });
  std::thread scraper([&] { r.Serialize(); });
  hook_started.WaitForNotification();
  bool done_when_removed = false;
  std::thread remover([&] {
    remover_started.Notify();
    r.RemoveCollectHook(id);
    done_when_removed = hook_done.load();
  });
  remover_started.WaitForNotification();
  // Give a wrong implementation the chance to return early (no sleep: a
  // correct one blocks until the release below whatever the timing).
  for (int i = 0; i < 1000; ++i) std::this_thread::yield();
  release_hook.Notify();
  remover.join();
  scraper.join();
  CHECK(done_when_removed);
}

TEST_CASE("Registry: programming errors abort with a clear message") {
  MetricsRegistry r;
  r.AddCounter("c_total", "C.", {"a"});
  r.AddHistogram("h", "H.", {}, {1, 2});
  r.AddGauge("q_sum", "Q.");
  auto has = [](const std::string& err, const char* text) {
    CAPTURE(err);
    CHECK(err.find("pggitops metrics: ") == 0);
    CHECK(err.find(text) != std::string::npos);
  };
  has(StderrOfAbort([&] { r.AddCounter("bad-name", "x"); }),
      "invalid metric name \"bad-name\"");
  has(StderrOfAbort([&] { r.AddGauge("g", "x", {"__x"}); }),
      "invalid label name \"__x\"");
  has(StderrOfAbort([&] { r.AddGauge("c_total", "C.", {"a"}); }),
      "already registered as a counter, not a gauge");
  has(StderrOfAbort([&] { r.AddCounter("c_total", "C.", {"b"}); }),
      "already registered with labels [a], not [b]");
  has(StderrOfAbort([&] {
        r.AddHistogram("h", "H.", {}, {1, 3});
      }),
      "already registered with buckets [1,2], not [1,3]");
  has(StderrOfAbort([&] {
        r.AddHistogram("h2", "H.", {}, {2, 1});
      }),
      "strictly increasing");
  has(StderrOfAbort([&] { r.AddCounter("h_count", "x"); }),
      "collides with histogram \"h\"");
  has(StderrOfAbort([&] { r.AddHistogram("q", "x", {}, {1}); }),
      "would collide with metric \"q_sum\"");
  has(StderrOfAbort(
          [&] { r.AddCounter("c_total", "C.", {"a"}).WithLabels({}); }),
      "has labels [a] but WithLabels got 0 value(s)");
  has(StderrOfAbort([] { ExponentialBuckets(0, 2, 3); }), "start > 0");
  has(StderrOfAbort([] { Histogram h({1, std::nan("")}); }), "not finite");
}

}  // namespace
}  // namespace pggitops
