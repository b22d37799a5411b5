// SseHub without sockets: the stream's content provider is driven by hand
// with a DataSink that collects what it writes.
#include "server/routes/sse_hub.h"

#include <atomic>
#include <chrono>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "doctest/doctest.h"
#include "httplib.h"
#include "server/http/errors.h"
#include "server/http/request_context.h"

namespace pggitops::server {
namespace {

using Clock = std::chrono::steady_clock;

// One request answered by the hub, and what its provider wrote so far.
struct Client {
  httplib::Request req;
  std::unique_ptr<httplib::Response> res =
      std::make_unique<httplib::Response>();
  std::string id = "test";
  std::string route = "/stream";
  std::string text;
  bool done = false;
  bool write_ok = true;

  explicit Client(SseHub* hub, const std::string& last_event_id = "") {
    if (!last_event_id.empty()) req.set_header("Last-Event-ID", last_event_id);
    RequestContext ctx{req, *res, id, route, {}, nullptr};
    hub->Serve(ctx);
  }
  // Calls the provider once; returns its answer.
  bool Pump() {
    httplib::DataSink sink;
    sink.write = [this](const char* d, size_t n) {
      if (write_ok) text.append(d, n);
      return write_ok;
    };
    sink.done = [this] { done = true; };
    sink.is_writable = [] { return true; };
    return res->content_provider_(0, 0, sink);
  }
  // Pumps until `needle` was written (bounded).
  bool PumpUntil(const std::string& needle, int timeout_ms = 3000) {
    auto deadline = Clock::now() + std::chrono::milliseconds(timeout_ms);
    while (text.find(needle) == std::string::npos) {
      if (Clock::now() > deadline || done || !Pump()) return false;
    }
    return true;
  }
  // Ends the response (runs the hub's releaser).
  void Close() { res.reset(); }
};

SseHubOptions Options(std::atomic<bool>* ending) {
  SseHubOptions o;
  o.max_streams = 2;
  o.status_interval = absl::Milliseconds(100);
  o.keepalive_interval = absl::Milliseconds(150);
  o.render = [](std::vector<std::string> payloads) {
    std::vector<SseEvent> events;
    for (const std::string& p : payloads) events.push_back({"alert", p, p});
    return events;
  };
  o.status = [] { return SseEvent{"system_status", "{}", ""}; };
  o.ending = [ending] { return ending->load(); };
  return o;
}

TEST_CASE(
    "SseHub: events reach every stream, in order, with status and "
    "keep-alive lines") {
  std::atomic<bool> ending{false};
  SseHub hub(Options(&ending));
  hub.Notify("lost");  // nobody listens yet: dropped
  Client a(&hub), b(&hub);
  CHECK(a.res->get_header_value("Content-Type") == "text/event-stream");
  CHECK(a.res->get_header_value("Cache-Control") == "no-cache");
  REQUIRE(a.PumpUntil("event: system_status\ndata: {}\n\n"));
  CHECK(a.text.rfind("retry: 3000\n", 0) == 0);
  hub.Notify("1");
  hub.Notify("2");
  REQUIRE(a.PumpUntil("id: 2\n"));
  REQUIRE(b.PumpUntil("id: 2\n"));
  for (const std::string* t : {&a.text, &b.text}) {
    CHECK(t->find("event: alert\nid: 1\ndata: 1\n\n") < t->find("id: 2\n"));
    CHECK(t->find("lost") == std::string::npos);
  }
  REQUIRE(a.PumpUntil(": keepalive\n\n"));
  CHECK(hub.open_streams() == 2);
}

TEST_CASE("SseHub: the cap answers 503 until a stream closes") {
  std::atomic<bool> ending{false};
  SseHub hub(Options(&ending));
  auto a = std::make_unique<Client>(&hub);
  Client b(&hub);
  try {
    Client c(&hub);
    FAIL("a third stream was accepted");
  } catch (const HttpError& e) {
    CHECK(e.status() == 503);
    CHECK(std::string(e.what()).find("SSE_MAX_STREAMS=2") != std::string::npos);
  }
  a->Close();
  CHECK(hub.open_streams() == 1);
  Client c(&hub);
  CHECK(hub.open_streams() == 2);

  SseHubOptions none = Options(&ending);
  none.max_streams = 0;
  SseHub closed(std::move(none));
  CHECK_THROWS_AS(Client{&closed}, HttpError);
}

TEST_CASE("SseHub: draining ends open streams and refuses new ones") {
  std::atomic<bool> ending{false};
  SseHub hub(Options(&ending));
  Client a(&hub);
  REQUIRE(a.PumpUntil("system_status"));
  ending = true;
  auto start = Clock::now();
  REQUIRE(a.PumpUntil(": server shutting down\n\n"));
  CHECK(a.done);
  CHECK(Clock::now() - start < std::chrono::seconds(1));
  CHECK_THROWS_AS(Client{&hub}, HttpError);
}

TEST_CASE(
    "SseHub: a departed client fails the provider; a slow one is told "
    "what it missed") {
  std::atomic<bool> ending{false};
  SseHubOptions o = Options(&ending);
  o.backlog = 3;
  o.status_interval = absl::Hours(1);
  std::atomic<int> rendered{0};
  o.render = [&rendered, render = o.render](std::vector<std::string> p) {
    rendered += static_cast<int>(p.size());
    return render(std::move(p));
  };
  SseHub hub(std::move(o));
  Client a(&hub);
  REQUIRE(a.PumpUntil("system_status"));
  for (int i = 0; i < 10; ++i) hub.Notify(std::to_string(i));
  // Let the hub render all ten before the stream reads again.
  for (int i = 0; i < 300 && rendered < 10; ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  REQUIRE(rendered == 10);
  REQUIRE(a.PumpUntil("id: 9\n"));
  CHECK(a.text.find("events dropped") != std::string::npos);
  CHECK(a.text.find("id: 0\n") == std::string::npos);
  a.write_ok = false;
  hub.Notify("10");
  bool failed = false;
  for (int i = 0; i < 20 && !failed; ++i) failed = !a.Pump();
  CHECK(failed);
}

TEST_CASE("SseHub: Last-Event-ID replays before live events") {
  std::atomic<bool> ending{false};
  SseHubOptions o = Options(&ending);
  std::string seen;
  o.replay = [&seen](const std::string& last) {
    seen = last;
    return std::vector<SseEvent>{{"alert", "r", "43"}};
  };
  SseHub hub(std::move(o));
  Client a(&hub, "42");
  CHECK(seen == "42");
  REQUIRE(a.PumpUntil("id: 43\n"));
  Client b(&hub);
  REQUIRE(b.PumpUntil("system_status"));
  CHECK(b.text.find("id: 43") == std::string::npos);
}

}  // namespace
}  // namespace pggitops::server
