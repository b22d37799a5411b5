// The connection layer over loopback sockets, with a fake handler: what the
// loop does alone (heads, limits, time-outs, caps, bodies, pipelining,
// drain, stream hand-over). The daemon's own behaviour on top of it is
// tested against the real binary (tests/integration/edge).
#include "server/http/connection_layer.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <functional>
#include <string>
#include <thread>

#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"
#include "absl/synchronization/notification.h"
#include "doctest/doctest.h"

namespace pggitops::server {
namespace {

using Clock = std::chrono::steady_clock;

// Answers every request with "<method> <target> <body>" and records what it
// saw; hooks let a test block, refuse or take over.
struct FakeHandler : RequestHandler {
  std::atomic<int> admitted{0};
  std::atomic<int> served{0};
  bool refuse = false;
  std::function<void(EdgeRequest&)> hook;
  absl::Mutex mu;
  std::string last_read;  // what cpp-httplib would have parsed

  Admission Admit(absl::string_view, const RequestHead&, const std::string&,
                  int) override {
    ++admitted;
    Admission a;
    a.accept = !refuse;
    a.record = std::make_shared<int>(refuse ? 1 : 0);
    return a;
  }
  bool Serve(EdgeRequest& r) override {
    std::string all;
    char buf[1024];
    for (size_t n; (n = r.Read(buf, sizeof(buf))) > 0;) all.append(buf, n);
    {
      absl::MutexLock l(&mu);
      last_read = all;
    }
    if (hook) hook(r);
    ++served;
    std::string raw(r.raw_head());
    std::string line = raw.substr(0, raw.find("\r\n"));
    std::string body = absl::StrCat(line, " ", r.body());
    std::string res = absl::StrCat(
        "HTTP/1.1 200 OK\r\nContent-Length: ", body.size(),
        r.closing() ? "\r\nConnection: close" : "", "\r\n\r\n", body);
    r.Write(res.data(), res.size());
    return false;
  }
};

struct Edge {
  FakeHandler handler;
  std::unique_ptr<ConnectionLayer> layer;
  std::thread thread;

  explicit Edge(ConnectionLayerOptions o = {},
                std::function<void(FakeHandler&)> setup = nullptr) {
    o.host = "127.0.0.1";
    o.port = 0;
    if (setup) setup(handler);
    auto made = ConnectionLayer::Create(o, &handler);
    REQUIRE(made.ok());
    layer = *std::move(made);
    thread = std::thread([this] { layer->Run(); });
  }
  ~Edge() {
    layer->Drain(absl::Now() + absl::Seconds(2));
    thread.join();
  }
};

int Connect(int port) {
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_port = htons(static_cast<uint16_t>(port));
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  REQUIRE(connect(fd, reinterpret_cast<sockaddr*>(&a), sizeof(a)) == 0);
  timeval tv{5, 0};
  setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
  return fd;
}

void Send(int fd, const std::string& s) {
  REQUIRE(send(fd, s.data(), s.size(), MSG_NOSIGNAL) ==
          static_cast<ssize_t>(s.size()));
}

// Reads until `needle` has arrived, the peer closes, or 5 s pass.
std::string ReadUntil(int fd, const std::string& needle) {
  std::string out;
  char buf[4096];
  while (out.find(needle) == std::string::npos) {
    ssize_t n = recv(fd, buf, sizeof(buf), 0);
    if (n <= 0) break;
    out.append(buf, static_cast<size_t>(n));
  }
  return out;
}

// True when the peer closed (EOF or reset) within `ms`.
bool Closed(int fd, int ms = 5000) {
  auto end = Clock::now() + std::chrono::milliseconds(ms);
  char buf[4096];
  while (Clock::now() < end) {
    pollfd p{fd, POLLIN, 0};
    if (poll(&p, 1, 100) > 0) {
      ssize_t n = recv(fd, buf, sizeof(buf), 0);
      if (n <= 0) return true;
    }
  }
  return false;
}

bool WaitFor(const std::function<bool()>& f, int ms = 5000) {
  auto end = Clock::now() + std::chrono::milliseconds(ms);
  while (Clock::now() < end) {
    if (f()) return true;
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
  return f();
}

const std::string kGet = "GET /a HTTP/1.1\r\nHost: x\r\n\r\n";

TEST_CASE("Edge: keep-alive and pipelined requests are answered in order") {
  Edge e;
  int fd = Connect(e.layer->port());
  Send(fd, kGet);
  CHECK(ReadUntil(fd, "GET /a HTTP/1.1 ").find("200 OK") != std::string::npos);
  Send(fd,
       "GET /1 HTTP/1.1\r\nHost: x\r\n\r\nGET /2 HTTP/1.1\r\nHost: x\r\n"
       "\r\nGET /3 HTTP/1.1\r\nHost: x\r\n\r\n");
  std::string got = ReadUntil(fd, "GET /3 HTTP/1.1 ");
  size_t a = got.find("GET /1 "), b = got.find("GET /2 "),
         c = got.find("GET /3 ");
  CHECK(a < b);
  CHECK(b < c);
  CHECK(c != std::string::npos);
  CHECK(e.handler.served == 4);
  close(fd);
}

TEST_CASE("Edge: a head that is too large is 431 and the connection closes") {
  ConnectionLayerOptions o;
  o.limits.max_head_bytes = 2048;
  Edge e(o);
  int fd = Connect(e.layer->port());
  std::string big = "GET / HTTP/1.1\r\nHost: x\r\n";
  while (big.size() < 4000) big += "X-Filler: 0123456789\r\n";
  Send(fd, big);
  std::string got = ReadUntil(fd, "}");
  CHECK(got.find("HTTP/1.1 431 ") == 0);
  CHECK(got.find("Connection: close") != std::string::npos);
  CHECK(got.find("\"error_code\":\"HEADERS_TOO_LARGE\"") != std::string::npos);
  CHECK(Closed(fd));
  CHECK(e.handler.served == 0);
  close(fd);
}

TEST_CASE("Edge: a slow head gets 408 while others are served") {
  ConnectionLayerOptions o;
  o.header_timeout = absl::Milliseconds(300);
  Edge e(o);
  int slow = Connect(e.layer->port());
  Send(slow, "GET / HTTP/1.1\r\n");
  int fast = Connect(e.layer->port());
  Send(fast, kGet);
  CHECK(ReadUntil(fast, "GET /a").find("200 OK") != std::string::npos);
  std::string got = ReadUntil(slow, "}");
  CHECK(got.find("HTTP/1.1 408 ") == 0);
  CHECK(Closed(slow));
  close(slow);
  close(fast);
}

TEST_CASE("Edge: idle keep-alive connections close after the time-out") {
  ConnectionLayerOptions o;
  o.keepalive_timeout = absl::Milliseconds(200);
  Edge e(o);
  int fd = Connect(e.layer->port());
  Send(fd, kGet);
  ReadUntil(fd, "GET /a");
  CHECK(Closed(fd, 3000));
  CHECK(WaitFor([&] { return e.layer->open_connections() == 0; }));
  close(fd);
}

TEST_CASE("Edge: a body is decided before it is read; refused, it never is") {
  Edge e({}, [](FakeHandler& h) { h.refuse = true; });
  int fd = Connect(e.layer->port());
  Send(fd,
       "POST /x HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n"
       "Expect: 100-continue\r\n\r\n");
  std::string got = ReadUntil(fd, "POST /x HTTP/1.1 ");
  CHECK(got.find("100 Continue") == std::string::npos);
  CHECK(got.find("Connection: close") != std::string::npos);
  CHECK(e.handler.admitted == 1);
  CHECK(Closed(fd));
  close(fd);
}

TEST_CASE("Edge: 100 Continue after admission, then the whole body") {
  Edge e;
  int fd = Connect(e.layer->port());
  Send(fd,
       "POST /x HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n"
       "Expect: 100-continue\r\n\r\n");
  CHECK(ReadUntil(fd, "\r\n\r\n") == "HTTP/1.1 100 Continue\r\n\r\n");
  Send(fd, "hel");
  Send(fd, "lo");
  CHECK(ReadUntil(fd, "hello").find("POST /x HTTP/1.1 hello") !=
        std::string::npos);
  CHECK(e.handler.admitted == 1);
  close(fd);
}

TEST_CASE("Edge: a complete small body needs no admission") {
  Edge e;
  int fd = Connect(e.layer->port());
  Send(fd, "POST /x HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\n\r\nok");
  CHECK(ReadUntil(fd, " ok").find("POST /x HTTP/1.1 ok") != std::string::npos);
  CHECK(e.handler.admitted == 0);
  close(fd);
}

TEST_CASE("Edge: a large body sent at once is read to its end") {
  // More than the loop reads with a head: the rest is already in the
  // kernel's buffer, and no new readiness edge will announce it.
  Edge e;
  int fd = Connect(e.layer->port());
  std::string body(300000, 'b');
  body.back() = 'E';
  std::string req = absl::StrCat(
      "POST /x HTTP/1.1\r\nHost: x\r\n"
      "Content-Length: ",
      body.size(), "\r\n\r\n", body);
  std::thread writer([&] { Send(fd, req); });
  CHECK(ReadUntil(fd, "bE").find("200 OK") != std::string::npos);
  writer.join();
  CHECK(e.handler.admitted == 1);
  close(fd);
}

TEST_CASE("Edge: chunked bodies are decoded and handed on with a length") {
  Edge e;
  int fd = Connect(e.layer->port());
  Send(fd,
       "POST /x HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n"
       "3\r\nabc\r\n");
  Send(fd, "2\r\nde\r\n0\r\n\r\n");
  CHECK(ReadUntil(fd, "abcde").find("POST /x HTTP/1.1 abcde") !=
        std::string::npos);
  absl::MutexLock l(&e.handler.mu);
  CHECK(e.handler.last_read.find("Transfer-Encoding") == std::string::npos);
  CHECK(e.handler.last_read.find("Content-Length: 5\r\n\r\nabcde") !=
        std::string::npos);
  close(fd);
}

TEST_CASE("Edge: a chunked body over the limit is 413 as it arrives") {
  ConnectionLayerOptions o;
  o.limits.max_body_bytes = 1000;
  Edge e(o);
  int fd = Connect(e.layer->port());
  Send(fd, "POST /x HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n");
  std::string chunk = "200\r\n" + std::string(512, 'a') + "\r\n";
  Send(fd, chunk);
  send(fd, chunk.data(), chunk.size(), MSG_NOSIGNAL);
  std::string got = ReadUntil(fd, "}");
  CHECK(got.find("HTTP/1.1 413 ") == 0);
  CHECK(e.handler.served == 0);
  close(fd);
}

TEST_CASE("Edge: at the global cap the longest-idle connection goes first") {
  ConnectionLayerOptions o;
  o.max_connections = 3;
  Edge e(o);
  int a = Connect(e.layer->port());
  Send(a, kGet);
  ReadUntil(a, "GET /a");  // a is idle now
  int b = Connect(e.layer->port());
  int c = Connect(e.layer->port());
  REQUIRE(WaitFor([&] { return e.layer->open_connections() == 3; }));
  int d = Connect(e.layer->port());
  CHECK(Closed(a));  // the idle one made room
  Send(d, kGet);
  CHECK(ReadUntil(d, "GET /a").find("200 OK") != std::string::npos);
  for (int fd : {a, b, c, d}) close(fd);
}

TEST_CASE("Edge: when every connection is busy, a new one gets 503") {
  ConnectionLayerOptions o;
  o.max_connections = 2;
  o.exempt_loopback = false;
  absl::Notification release;
  Edge e(o, [&](FakeHandler& h) {
    h.hook = [&](EdgeRequest&) { release.WaitForNotification(); };
  });
  int a = Connect(e.layer->port());
  int b = Connect(e.layer->port());
  Send(a, kGet);
  Send(b, kGet);
  REQUIRE(WaitFor([&] { return e.layer->in_flight() == 2; }));
  int c = Connect(e.layer->port());
  std::string got = ReadUntil(c, "}");
  CHECK(got.find("HTTP/1.1 503 ") == 0);
  CHECK(got.find("Retry-After: 1") != std::string::npos);
  release.Notify();
  CHECK(ReadUntil(a, "GET /a").find("200 OK") != std::string::npos);
  for (int fd : {a, b, c}) close(fd);
}

TEST_CASE("Edge: the per-client cap applies unless the peer is exempt") {
  ConnectionLayerOptions o;
  o.max_connections_per_client = 2;
  o.exempt_loopback = false;
  o.header_timeout = absl::Seconds(30);
  {
    Edge e(o);
    int a = Connect(e.layer->port());
    Send(a, "GET / HTTP/1.1\r\n");  // a head arriving
    int b = Connect(e.layer->port());
    Send(b, "GET / HTTP/1.1\r\n");
    REQUIRE(WaitFor([&] { return e.layer->open_connections() == 2; }));
    int c = Connect(e.layer->port());
    CHECK(Closed(a));  // the head arriving longest made room
    // a is closed before c is counted: wait for c (seen failing under ASan).
    CHECK(WaitFor([&] { return e.layer->open_connections() == 2; }));
    for (int fd : {a, b, c}) close(fd);
  }
  o.exempt_peer = [](absl::string_view ip) { return ip == "127.0.0.1"; };
  Edge e(o);
  int fds[4];
  for (int& fd : fds) fd = Connect(e.layer->port());
  CHECK(WaitFor([&] { return e.layer->open_connections() == 4; }));
  for (int fd : fds) close(fd);
}

TEST_CASE("Edge: priority requests are served while every worker waits") {
  ConnectionLayerOptions o;
  o.workers = 1;
  o.priority_workers = 1;
  o.is_priority = [](absl::string_view target) { return target == "/health"; };
  absl::Notification entered, release;
  Edge e(o, [&](FakeHandler& h) {
    h.hook = [&](EdgeRequest& r) {
      if (r.raw_head().find("/slow") != absl::string_view::npos) {
        entered.Notify();
        release.WaitForNotification();
      }
    };
  });
  int busy = Connect(e.layer->port());
  Send(busy, "GET /slow HTTP/1.1\r\nHost: x\r\n\r\n");
  entered.WaitForNotification();
  int probe = Connect(e.layer->port());
  Send(probe, "GET /health HTTP/1.1\r\nHost: x\r\n\r\n");
  CHECK(ReadUntil(probe, "GET /health").find("200 OK") != std::string::npos);
  release.Notify();
  CHECK(ReadUntil(busy, "GET /slow").find("200 OK") != std::string::npos);
  close(busy);
  close(probe);
}

TEST_CASE("Edge: drain closes idle connections and finishes requests") {
  absl::Notification entered, release;
  Edge e({}, [&](FakeHandler& h) {
    h.hook = [&](EdgeRequest& r) {
      if (r.raw_head().find("/slow") != absl::string_view::npos) {
        entered.Notify();
        release.WaitForNotification();
      }
    };
  });
  int idle = Connect(e.layer->port());
  Send(idle, kGet);
  ReadUntil(idle, "GET /a");
  int busy = Connect(e.layer->port());
  Send(busy, "GET /slow HTTP/1.1\r\nHost: x\r\n\r\n");
  entered.WaitForNotification();
  e.layer->Drain(absl::Now() + absl::Seconds(10));
  CHECK(Closed(idle));
  release.Notify();
  std::string got = ReadUntil(busy, "GET /slow HTTP/1.1 ");
  CHECK(got.find("200 OK") != std::string::npos);
  CHECK(got.find("Connection: close") != std::string::npos);
  CHECK(Closed(busy));
  close(idle);
  close(busy);
}

TEST_CASE("Edge: a taken-over stream holds no worker and closes on release") {
  ConnectionLayerOptions o;
  o.workers = 1;
  std::unique_ptr<StreamSocket> taken;
  absl::Mutex mu;
  Edge e(o, [&](FakeHandler& h) {
    h.hook = [&](EdgeRequest& r) {
      if (r.raw_head().find("/stream") == absl::string_view::npos) return;
      std::unique_ptr<StreamSocket> s = r.TakeOver();
      REQUIRE(s != nullptr);
      absl::MutexLock l(&mu);
      taken = std::move(s);
    };
  });
  int st = Connect(e.layer->port());
  Send(st, "GET /stream HTTP/1.1\r\nHost: x\r\n\r\n");
  REQUIRE(WaitFor([&] {
    absl::MutexLock l(&mu);
    return taken != nullptr;
  }));
  {
    absl::MutexLock l(&mu);
    std::string hi = "hello from the stream owner";
    CHECK(send(taken->fd(), hi.data(), hi.size(), MSG_NOSIGNAL) > 0);
  }
  std::string got = ReadUntil(st, "owner");
  CHECK(got == "hello from the stream owner");  // the handler's reply dropped
  // The only worker is free for others.
  int other = Connect(e.layer->port());
  Send(other, kGet);
  CHECK(ReadUntil(other, "GET /a").find("200 OK") != std::string::npos);
  {
    absl::MutexLock l(&mu);
    taken.reset();
  }
  CHECK(Closed(st));
  close(st);
  close(other);
}

TEST_CASE("Edge: strict framing before the handler sees anything") {
  Edge e;
  struct Case {
    std::string request;
    const char* status;
  };
  for (const Case& c : std::vector<Case>{
           {"GET / HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n\r\nhello",
            "400"},
           {"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\n"
            "Transfer-Encoding: chunked\r\n\r\n",
            "400"},
           {"POST / HTTP/1.1\r\nHost: x\r\nContent-Encoding: gzip\r\n"
            "Content-Length: 3\r\n\r\nabc",
            "415"},
           {"POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: gzip\r\n\r\n",
            "501"},
           {"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 9999999\r\n\r\n",
            "413"},
       }) {
    CAPTURE(c.request);
    int fd = Connect(e.layer->port());
    Send(fd, c.request);
    std::string got = ReadUntil(fd, "}");
    CHECK(got.find(std::string("HTTP/1.1 ") + c.status + " ") == 0);
    CHECK(Closed(fd));
    close(fd);
  }
  CHECK(e.handler.served == 0);
}

}  // namespace
}  // namespace pggitops::server
