// SseHub over socket pairs: a fake hand-over gives the hub one end, the
// test reads the other as a client would.
#include "server/routes/sse_hub.h"

#include <fcntl.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "doctest/doctest.h"
#include "httplib.h"
#include "server/http/connection_layer.h"
#include "server/http/errors.h"
#include "server/http/request_context.h"

namespace pggitops::server {
namespace {

using Clock = std::chrono::steady_clock;

// The hub's end of a socket pair; closing it is what the edge would do.
class PairSocket : public StreamSocket {
 public:
  PairSocket(int fd, std::shared_ptr<std::atomic<int>> closed)
      : fd_(fd), closed_(std::move(closed)) {}
  ~PairSocket() override {
    ::close(fd_);
    ++*closed_;
  }
  int fd() const override { return fd_; }
  const std::string& peer_ip() const override { return ip_; }

 private:
  int fd_;
  std::shared_ptr<std::atomic<int>> closed_;  // outlives the Client
  std::string ip_ = "127.0.0.1";
};

// One client of the hub: the request, and the client's end of the pair.
struct Client {
  httplib::Request req;
  httplib::Response res;
  std::string id = "test";
  std::string route = "/stream";
  int fd = -1;
  int hub_fd = -1;
  std::string text;
  std::shared_ptr<std::atomic<int>> closed =
      std::make_shared<std::atomic<int>>(0);

  // `fill`: the hub's end is full before the hub gets it, so the client
  // is a slow reader until it reads.
  explicit Client(SseHub* hub, const std::string& last_event_id = "",
                  bool fill = false) {
    if (!last_event_id.empty()) req.set_header("Last-Event-ID", last_event_id);
    int sv[2];
    REQUIRE(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) == 0);
    fd = sv[0];
    hub_fd = sv[1];
    fcntl(hub_fd, F_SETFL, O_NONBLOCK);
    if (fill) {
      std::string blob(4096, 'x');
      while (send(hub_fd, blob.data(), blob.size(), MSG_DONTWAIT) > 0) {
      }
    }
    RequestContext ctx{req, res, id, route, {}, nullptr, false};
    ScopedStreamHandOffForTesting seam([this](StreamAdopter adopt) {
      adopt(std::make_unique<PairSocket>(hub_fd, closed),
            "HTTP/1.1 200 OK\r\n\r\n");
      return true;
    });
    try {
      hub->Serve(ctx);
    } catch (...) {
      ::close(fd);
      ::close(hub_fd);
      throw;
    }
  }
  ~Client() { ::close(fd); }
  // Reads until `needle` arrived (bounded); false on time-out or EOF.
  bool ReadUntil(const std::string& needle, int timeout_ms = 3000) {
    auto deadline = Clock::now() + std::chrono::milliseconds(timeout_ms);
    char buf[65536];
    while (text.find(needle) == std::string::npos) {
      if (Clock::now() > deadline) return false;
      pollfd p{fd, POLLIN, 0};
      if (poll(&p, 1, 50) <= 0) continue;
      ssize_t n = recv(fd, buf, sizeof(buf), 0);
      if (n <= 0) return false;
      text.append(buf, static_cast<size_t>(n));
    }
    return true;
  }
  bool Eof(int timeout_ms = 3000) {
    auto deadline = Clock::now() + std::chrono::milliseconds(timeout_ms);
    char buf[65536];
    while (Clock::now() < deadline) {
      pollfd p{fd, POLLIN, 0};
      if (poll(&p, 1, 50) <= 0) continue;
      ssize_t n = recv(fd, buf, sizeof(buf), 0);
      if (n <= 0) return true;
      text.append(buf, static_cast<size_t>(n));
    }
    return false;
  }
};

bool WaitFor(const std::function<bool()>& f, int ms = 3000) {
  auto end = Clock::now() + std::chrono::milliseconds(ms);
  while (Clock::now() < end) {
    if (f()) return true;
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
  return f();
}

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

TEST_CASE("Chunk: HTTP/1.1 chunk framing") {
  CHECK(Chunk("") == "");
  CHECK(Chunk("hello") == "5\r\nhello\r\n");
  CHECK(Chunk(std::string(26, 'a')).rfind("1a\r\n", 0) == 0);
}

TEST_CASE(
    "SseHub: events reach every stream, in order, with status and "
    "keep-alive lines") {
  std::atomic<bool> ending{false};
  SseHub hub(Options(&ending));
  hub.Notify("lost");  // nobody listens yet: dropped
  Client a(&hub), b(&hub);
  CHECK(a.res.get_header_value("Content-Type") == "text/event-stream");
  CHECK(a.res.get_header_value("Cache-Control") == "no-cache");
  REQUIRE(a.ReadUntil("event: system_status\ndata: {}\n\n"));
  CHECK(a.text.rfind("HTTP/1.1 200 OK\r\n\r\n", 0) == 0);
  CHECK(a.text.find("retry: 3000\n") != std::string::npos);
  hub.Notify("1");
  hub.Notify("2");
  REQUIRE(a.ReadUntil("id: 2\n"));
  REQUIRE(b.ReadUntil("id: 2\n"));
  for (const std::string* t : {&a.text, &b.text}) {
    CHECK(t->find("event: alert\nid: 1\ndata: 1\n\n") < t->find("id: 2\n"));
    CHECK(t->find("lost") == std::string::npos);
  }
  REQUIRE(a.ReadUntil(": keepalive\n\n"));
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
  a.reset();  // the client goes away: the hub notices and closes its end
  CHECK(WaitFor([&] { return hub.open_streams() == 1; }));
  Client c(&hub);
  CHECK(hub.open_streams() == 2);

  SseHubOptions none = Options(&ending);
  none.max_streams = 0;
  SseHub closed(std::move(none));
  CHECK_THROWS_AS(Client{&closed}, HttpError);
}

TEST_CASE("SseHub: a refused hand-over gives the slot back") {
  std::atomic<bool> ending{false};
  SseHub hub(Options(&ending));
  httplib::Request req;
  httplib::Response res;
  std::string id = "x", route = "/stream";
  RequestContext ctx{req, res, id, route, {}, nullptr, false};
  ScopedStreamHandOffForTesting seam([](StreamAdopter) { return false; });
  CHECK_THROWS_AS(hub.Serve(ctx), HttpError);
  CHECK(hub.open_streams() == 0);
}

TEST_CASE("SseHub: ending closes open streams cleanly and refuses new ones") {
  std::atomic<bool> ending{false};
  SseHub hub(Options(&ending));
  Client a(&hub);
  REQUIRE(a.ReadUntil("system_status"));
  auto start = Clock::now();
  hub.EndStreams();
  REQUIRE(a.ReadUntil(": server shutting down\n\n"));
  CHECK(a.Eof());
  CHECK(a.text.find("0\r\n\r\n") != std::string::npos);  // the last chunk
  CHECK(Clock::now() - start < std::chrono::seconds(2));
  CHECK(WaitFor([&] { return hub.open_streams() == 0; }));
  CHECK(WaitFor([&] { return *a.closed == 1; }));
  CHECK_THROWS_AS(Client{&hub}, HttpError);
  ending = true;
  SseHub other(Options(&ending));
  CHECK_THROWS_AS(Client{&other}, HttpError);
}

TEST_CASE("SseHub: a slow reader is told what it missed") {
  std::atomic<bool> ending{false};
  SseHubOptions o = Options(&ending);
  o.backlog = 3;
  o.max_unsent_bytes = 1;
  o.status_interval = absl::Hours(1);
  std::atomic<int> rendered{0};
  o.render = [&rendered, render = o.render](std::vector<std::string> p) {
    rendered += static_cast<int>(p.size());
    return render(std::move(p));
  };
  SseHub hub(std::move(o));
  Client a(&hub, "", /*fill=*/true);  // its socket is full: nothing moves
  for (int i = 0; i < 10; ++i) hub.Notify(std::to_string(i));
  REQUIRE(WaitFor([&] { return rendered == 10; }));
  REQUIRE(a.ReadUntil("id: 9\n"));
  CHECK(a.text.find("events dropped") != std::string::npos);
  CHECK(a.text.find("id: 0\n") == std::string::npos);
}

TEST_CASE("SseHub: a departed client's stream is closed") {
  std::atomic<bool> ending{false};
  SseHub hub(Options(&ending));
  auto a = std::make_unique<Client>(&hub);
  REQUIRE(a->ReadUntil("system_status"));
  ::shutdown(a->fd, SHUT_RDWR);
  CHECK(WaitFor([&] { return hub.open_streams() == 0; }));
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
  REQUIRE(a.ReadUntil("id: 43\n"));
  Client b(&hub);
  REQUIRE(b.ReadUntil("system_status"));
  CHECK(b.text.find("id: 43") == std::string::npos);
}

// Found by tests/fuzz/sse_event: a line end in the data ended the field,
// and a blank line in it dispatched a forged event.
TEST_CASE("FormatSseEvent: line ends in a field cannot end the event") {
  CHECK(FormatSseEvent({"alert", "{\"a\":1}", "7"}) ==
        "event: alert\nid: 7\ndata: {\"a\":1}\n\n");
  CHECK(FormatSseEvent({"alert", "", ""}) == "event: alert\ndata: \n\n");
  CHECK(FormatSseEvent({"alert", "a\nb\r\nc\rd", ""}) ==
        "event: alert\ndata: a\ndata: b\ndata: c\ndata: d\n\n");
  CHECK(FormatSseEvent({"alert", "x\n\ndata: forged\n", ""}) ==
        "event: alert\ndata: x\ndata: \ndata: data: forged\ndata: \n\n");
  CHECK(FormatSseEvent({"a\r\nevent: b", "d", std::string("1\n2\0", 4)}) ==
        "event: aevent: b\nid: 12\ndata: d\n\n");
}

}  // namespace
}  // namespace pggitops::server
