// The HTTP edge against the real daemon (CONTRACT section 8, issue 11): each
// attack that once cost other clients their service or the daemon its
// memory, replayed. Every case checks that the daemon's RSS stays bounded,
// that /health keeps answering on a new connection, that nothing was
// created, and that the attacker's connections are closed. Latency goals
// live in bench/http_bench, not here; bounds are about ten times what is
// expected.
#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <signal.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "doctest/doctest.h"
#include "httplib.h"
#include "nlohmann/json.hpp"
#include "tests/harness/daemon.h"
#include "tests/harness/harness.h"

namespace pggitops {
namespace {

using Clock = std::chrono::steady_clock;
using harness::Daemon;
using std::chrono::milliseconds;

constexpr int64_t kMiB = 1 << 20;

// A raw loopback connection, for what an HTTP client library would not
// send.
class Raw {
 public:
  explicit Raw(int port) {
    fd_ = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_port = htons(static_cast<uint16_t>(port));
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    ok_ = connect(fd_, reinterpret_cast<sockaddr*>(&a), sizeof(a)) == 0;
  }
  ~Raw() {
    if (fd_ >= 0) close(fd_);
  }
  Raw(const Raw&) = delete;
  Raw& operator=(const Raw&) = delete;
  bool ok() const { return ok_; }
  int fd() const { return fd_; }

  // Sends all of `s`; false once the daemon stops taking it (it closed the
  // connection, or its buffers stay full for `limit_ms`).
  bool Send(const std::string& s, int limit_ms = 5000) {
    size_t off = 0;
    auto end = Clock::now() + milliseconds(limit_ms);
    while (off < s.size()) {
      pollfd p{fd_, POLLOUT, 0};
      if (poll(&p, 1, 100) <= 0) {
        if (Clock::now() > end) return false;
        continue;
      }
      ssize_t n = send(fd_, s.data() + off, s.size() - off,
                       MSG_NOSIGNAL | MSG_DONTWAIT);
      if (n <= 0) return false;
      off += static_cast<size_t>(n);
    }
    return true;
  }
  // Reads what arrives until `needle`, end of input, or `limit_ms`.
  std::string ReadUntil(const std::string& needle, int limit_ms = 5000) {
    auto end = Clock::now() + milliseconds(limit_ms);
    char buf[65536];
    while (got_.find(needle) == std::string::npos && Clock::now() < end) {
      pollfd p{fd_, POLLIN, 0};
      if (poll(&p, 1, 50) <= 0) continue;
      ssize_t n = recv(fd_, buf, sizeof(buf), 0);
      if (n <= 0) {
        closed_ = true;
        break;
      }
      got_.append(buf, static_cast<size_t>(n));
    }
    return got_;
  }
  // True when the daemon closed the connection within `limit_ms` (what
  // arrives meanwhile is kept).
  bool ClosedWithin(int limit_ms) {
    auto end = Clock::now() + milliseconds(limit_ms);
    char buf[65536];
    // At least one look, even with limit_ms 0.
    for (bool first = true; !closed_ && (first || Clock::now() < end);
         first = false) {
      pollfd p{fd_, POLLIN, 0};
      if (poll(&p, 1, limit_ms == 0 ? 0 : 50) <= 0) continue;
      ssize_t n = recv(fd_, buf, sizeof(buf), 0);
      if (n <= 0) {
        closed_ = true;
      } else {
        got_.append(buf, static_cast<size_t>(n));
      }
    }
    return closed_;
  }
  const std::string& got() const { return got_; }

 private:
  int fd_ = -1;
  bool ok_ = false;
  bool closed_ = false;
  std::string got_;
};

// The status code of the first response in `text`, or 0.
int StatusOf(const std::string& text) {
  int status = 0;
  if (text.size() < 12 || !absl::StartsWith(text, "HTTP/1.1 ")) return 0;
  return absl::SimpleAtoi(text.substr(9, 3), &status) ? status : 0;
}

int64_t Metric(const Daemon& d, const std::string& series) {
  httplib::Client c = d.Client();
  auto r = c.Get("/metrics");
  if (!r) return -1;
  size_t at = r->body.find("\n" + series + " ");
  if (at == std::string::npos) return 0;
  double v = 0;
  size_t start = at + series.size() + 2;
  if (!absl::SimpleAtod(
          r->body.substr(start, r->body.find('\n', start) - start), &v)) {
    return -1;
  }
  return static_cast<int64_t>(v);
}

// /health on a new connection answers 200 within `limit_ms`.
bool HealthAnswers(const Daemon& d, int limit_ms = 2000) {
  httplib::Client c("127.0.0.1", d.port());
  c.set_connection_timeout(0, limit_ms * 1000);
  c.set_read_timeout(0, limit_ms * 1000);
  auto start = Clock::now();
  auto r = c.Get("/health");
  return r && r->status == 200 && Clock::now() - start < milliseconds(limit_ms);
}

int64_t Alerts(const Daemon& d) {
  return std::stoll(d.Sql("SELECT count(*) FROM pggit.alerts"));
}

// The environment of every daemon here: rate limit off (the attacks would
// be refused by it first, and the edge is what is tested), short time-outs
// so the cases take seconds.
harness::EnvMap Env(harness::EnvMap extra = {}) {
  harness::EnvMap env = {{"RATE_LIMIT_PER_MINUTE", "0"},
                         {"API_LOG_LEVEL", "WARNING"},
                         {"API_HEADER_TIMEOUT", "2"},
                         {"API_BODY_TIMEOUT", "2"},
                         {"SHUTDOWN_TIMEOUT", "10"}};
  for (const auto& [k, v] : extra) env[k] = v;
  return env;
}

const std::string kAlert =
    R"({"operation_type":"commit","severity":"INFO","message":"edge"})";

TEST_CASE("Edge: a Range bomb is served as one plain response") {
  Daemon d("edge_range", Env());
  const int64_t base = d.RssBytes();
  std::string ranges = "bytes=0-";
  while (ranges.size() < 8000) ranges += ",0-";
  std::vector<std::unique_ptr<Raw>> attackers;
  for (int i = 0; i < 30; ++i) {
    auto r = std::make_unique<Raw>(d.port());
    REQUIRE(r->Send("GET /dashboard HTTP/1.1\r\nHost: 127.0.0.1\r\nRange: " +
                    ranges + "\r\n\r\n"));
    attackers.push_back(std::move(r));  // never read
  }
  Raw one(d.port());
  REQUIRE(one.Send("GET /dashboard HTTP/1.1\r\nHost: 127.0.0.1\r\nRange: " +
                   ranges + "\r\nConnection: close\r\n\r\n"));
  REQUIRE(one.ClosedWithin(10000));
  const std::string& res = one.got();
  CHECK(StatusOf(res) == 200);
  CHECK(res.find("multipart/byteranges") == std::string::npos);
  CHECK(res.find("Content-Type: text/html") != std::string::npos);
  CHECK(res.size() < 1 * kMiB);
  CHECK(HealthAnswers(d));
  CHECK(d.RssBytes() - base < 64 * kMiB);
}

TEST_CASE("Edge: chunked bodies count against 1 MiB as they arrive") {
  Daemon d("edge_chunked", Env());
  const int64_t base = d.RssBytes();
  // A small chunked alert is accepted: chunked itself is fine.
  {
    Raw r(d.port());
    REQUIRE(
        r.Send("POST /api/v1/alerts HTTP/1.1\r\nHost: localhost\r\n"
               "Content-Type: application/json\r\n"
               "Transfer-Encoding: chunked\r\n\r\n" +
               absl::StrCat(absl::Hex(kAlert.size())) + "\r\n" + kAlert +
               "\r\n0\r\n\r\n"));
    CHECK(StatusOf(r.ReadUntil("\r\n\r\n")) == 201);
  }
  CHECK(Alerts(d) == 1);
  // 300 MiB announced in 1 MiB chunks: refused after the first MiB, and
  // the connection is closed long before the rest could be sent.
  Raw big(d.port());
  REQUIRE(
      big.Send("POST /api/v1/alerts HTTP/1.1\r\nHost: localhost\r\n"
               "Content-Type: application/json\r\n"
               "Transfer-Encoding: chunked\r\n\r\n"));
  std::string chunk = "100000\r\n" + std::string(kMiB, ' ') + "\r\n";
  int sent = 0;
  while (sent < 300 && big.Send(chunk, 3000)) ++sent;
  CHECK(sent < 10);
  big.ClosedWithin(5000);
  CHECK(StatusOf(big.got()) == 413);
  CHECK(Alerts(d) == 1);
  CHECK(HealthAnswers(d));
  CHECK(d.RssBytes() - base < 64 * kMiB);
  CHECK(
      Metric(d, "http_connections_refused_total{reason=\"body_too_large\"}") >=
      1);
}

TEST_CASE("Edge: compressed bodies are refused, never inflated") {
  Daemon d("edge_gzip", Env());
  Raw r(d.port());
  std::string body(4096, '\0');  // whatever it is, it is not inflated
  REQUIRE(r.Send(absl::StrCat(
      "POST /api/v1/alerts HTTP/1.1\r\nHost: localhost\r\n"
      "Content-Type: application/json\r\nContent-Encoding: gzip\r\n"
      "Content-Length: ",
      body.size(), "\r\n\r\n", body)));
  CHECK(r.ClosedWithin(5000));
  CHECK(StatusOf(r.got()) == 415);
  CHECK(r.got().find("UNSUPPORTED_MEDIA_TYPE") != std::string::npos);
  Raw te(d.port());
  REQUIRE(
      te.Send("POST /api/v1/alerts HTTP/1.1\r\nHost: localhost\r\n"
              "Transfer-Encoding: gzip, chunked\r\n\r\n"));
  CHECK(te.ClosedWithin(5000));
  CHECK(StatusOf(te.got()) == 501);
  CHECK(Alerts(d) == 0);
}

TEST_CASE("Edge: request-line and header bombs are cut at the limit") {
  Daemon d("edge_bombs", Env());
  const int64_t base = d.RssBytes();
  // A 200 MiB request line: 414 once the limit is passed.
  Raw line(d.port());
  REQUIRE(line.Send("GET /"));
  std::string a(kMiB, 'a');
  int sent = 0;
  while (sent < 200 && line.Send(a, 3000)) ++sent;
  CHECK(sent < 10);
  line.ClosedWithin(5000);
  CHECK(StatusOf(line.got()) == 414);
  // 25,000 headers: 431.
  Raw headers(d.port());
  std::string many = "GET /health HTTP/1.1\r\nHost: localhost\r\n";
  for (int i = 0; i < 25000; ++i) absl::StrAppend(&many, "X-H", i, ": v\r\n");
  headers.Send(many + "\r\n", 3000);
  headers.ClosedWithin(5000);
  CHECK(StatusOf(headers.got()) == 431);
  CHECK(headers.got().find("HEADERS_TOO_LARGE") != std::string::npos);
  CHECK(HealthAnswers(d));
  CHECK(d.RssBytes() - base < 64 * kMiB);
  CHECK(Metric(d,
               "http_connections_refused_total{reason=\"header_too_large\"}") ==
        2);
}

TEST_CASE("Edge: a GET with a body cannot smuggle a second request") {
  Daemon d("edge_smuggle", Env());
  const std::string inner = absl::StrCat(
      "POST /api/v1/alerts HTTP/1.1\r\nHost: localhost\r\n"
      "Content-Type: application/json\r\nContent-Length: ",
      kAlert.size(), "\r\n\r\n", kAlert);
  // Behind X-Forwarded-For the outer request is not a loopback client; the
  // inner one, read as a request of its own, would have been.
  Raw r(d.port());
  REQUIRE(
      r.Send(absl::StrCat("GET /health HTTP/1.1\r\nHost: localhost\r\n"
                          "X-Forwarded-For: 203.0.113.9\r\n"
                          "Content-Length: ",
                          inner.size(), "\r\n\r\n", inner)));
  CHECK(r.ClosedWithin(5000));
  CHECK(StatusOf(r.got()) == 400);
  CHECK(r.got().find("HTTP/1.1 201") == std::string::npos);
  // Content-Length with Transfer-Encoding, and two lengths: 400 and close.
  Raw cl_te(d.port());
  REQUIRE(
      cl_te.Send("POST /api/v1/alerts HTTP/1.1\r\nHost: localhost\r\n"
                 "Content-Length: 4\r\nTransfer-Encoding: chunked\r\n\r\n"
                 "0\r\n\r\n" +
                 inner));
  CHECK(cl_te.ClosedWithin(5000));
  CHECK(StatusOf(cl_te.got()) == 400);
  Raw two(d.port());
  REQUIRE(
      two.Send("POST /api/v1/alerts HTTP/1.1\r\nHost: localhost\r\n"
               "Content-Length: 0\r\nContent-Length: 7\r\n\r\n" +
               inner));
  CHECK(two.ClosedWithin(5000));
  CHECK(StatusOf(two.got()) == 400);
  CHECK(Alerts(d) == 0);
}

TEST_CASE("Edge: 200 slow-header clients cost others nothing") {
  Daemon d("edge_slow_headers", Env());
  const int64_t base = d.RssBytes();
  std::vector<std::unique_ptr<Raw>> slow;
  for (int i = 0; i < 200; ++i) {
    slow.push_back(std::make_unique<Raw>(d.port()));
    REQUIRE(slow.back()->Send("GET /health HTTP/1.1\r\nHost: localhost\r\n"));
  }
  // One header line each, well within the head time-out.
  for (auto& s : slow) s->Send("X-Drip: 1\r\n");
  for (int i = 0; i < 5; ++i) CHECK(HealthAnswers(d, 1000));
  // API_HEADER_TIMEOUT=2: each gets 408 and is closed.
  int closed = 0;
  for (auto& s : slow) {
    if (s->ClosedWithin(10000) && StatusOf(s->got()) == 408) ++closed;
  }
  CHECK(closed == 200);
  CHECK(d.RssBytes() - base < 64 * kMiB);
  CHECK(
      Metric(d, "http_connections_refused_total{reason=\"header_timeout\"}") ==
      200);
}

TEST_CASE("Edge: 2,000 idle connections, /health answers") {
  Daemon d("edge_idle", Env({{"API_HEADER_TIMEOUT", "30"}}));
  const int64_t base = d.RssBytes();
  std::vector<std::unique_ptr<Raw>> idle;
  for (int i = 0; i < 2000; ++i) {
    idle.push_back(std::make_unique<Raw>(d.port()));
    REQUIRE(idle.back()->ok());
  }
  REQUIRE(harness::WaitFor(
      [&] { return Metric(d, "http_connections_open") >= 2000; },
      milliseconds(20000)));
  for (int i = 0; i < 5; ++i) CHECK(HealthAnswers(d, 1000));
  CHECK(d.RssBytes() - base < 64 * kMiB);
}

// Keeps `n` keep-alive clients busy for `seconds` from one thread; returns
// each client's count of answers.
std::vector<int> BusyClients(int port, int n, int seconds) {
  std::vector<std::unique_ptr<Raw>> c;
  std::vector<std::string> buf(n);
  std::vector<int> answers(n, 0);
  const std::string req = "GET /health HTTP/1.1\r\nHost: localhost\r\n\r\n";
  for (int i = 0; i < n; ++i) {
    c.push_back(std::make_unique<Raw>(port));
    c.back()->Send(req);
  }
  std::vector<pollfd> fds(n);
  for (int i = 0; i < n; ++i) fds[i] = {c[i]->fd(), POLLIN, 0};
  auto end = Clock::now() + std::chrono::seconds(seconds);
  char tmp[65536];
  while (Clock::now() < end) {
    if (poll(fds.data(), fds.size(), 50) <= 0) continue;
    for (int i = 0; i < n; ++i) {
      if (!(fds[i].revents & POLLIN)) continue;
      ssize_t k = recv(fds[i].fd, tmp, sizeof(tmp), 0);
      if (k <= 0) {
        fds[i].fd = -1;
        continue;
      }
      buf[i].append(tmp, static_cast<size_t>(k));
      // /health answers are small and complete once their body closes.
      size_t end_of = buf[i].find("}");
      while (end_of != std::string::npos) {
        ++answers[i];
        buf[i].erase(0, end_of + 1);
        send(fds[i].fd, req.data(), req.size(), MSG_NOSIGNAL);
        end_of = buf[i].find("}");
      }
    }
  }
  return answers;
}

TEST_CASE("Edge: 500 busy keep-alive clients are all served") {
  Daemon d("edge_busy", Env());
  std::vector<int> answers = BusyClients(d.port(), 500, 4);
  int least = *std::min_element(answers.begin(), answers.end());
  int64_t total = 0;
  for (int a : answers) total += a;
  MESSAGE("answers: least ", least, ", total ", total);
  CHECK(least >= 1);
  CHECK(total >= 500);
  CHECK(HealthAnswers(d));
}

TEST_CASE("Edge: 200 open event streams, the API still answers") {
  Daemon d("edge_streams", Env({{"API_WORKERS", "4"}}));
  std::vector<std::unique_ptr<Raw>> streams;
  for (int i = 0; i < 200; ++i) {
    auto s = std::make_unique<Raw>(d.port());
    REQUIRE(s->Send(
        "GET /api/v1/alerts/stream HTTP/1.1\r\nHost: localhost\r\n\r\n"));
    streams.push_back(std::move(s));
  }
  for (auto& s : streams) {
    CHECK(s->ReadUntil(": connected", 10000).find("text/event-stream") !=
          std::string::npos);
  }
  CHECK(Metric(d, "http_connections_open") >= 200);
  httplib::Client c = d.Client();
  auto start = Clock::now();
  auto r = c.Get("/api/v1/webhooks");
  REQUIRE(r);
  CHECK(r->status == 200);
  CHECK(Clock::now() - start < milliseconds(2000));
  // A new alert reaches the streams.
  auto created = c.Post("/api/v1/alerts", kAlert, "application/json");
  REQUIRE(created);
  CHECK(created->status == 201);
  CHECK(
      streams.front()->ReadUntil("event: alert", 10000).find("event: alert") !=
      std::string::npos);
}

TEST_CASE("Edge: SIGTERM drains within SHUTDOWN_TIMEOUT under slow headers") {
  Daemon d("edge_drain",
           Env({{"API_HEADER_TIMEOUT", "60"}, {"SHUTDOWN_TIMEOUT", "5"}}));
  std::vector<std::unique_ptr<Raw>> slow;
  for (int i = 0; i < 100; ++i) {
    slow.push_back(std::make_unique<Raw>(d.port()));
    slow.back()->Send("GET /health HTTP/1.1\r\n");
  }
  auto stream = std::make_unique<Raw>(d.port());
  REQUIRE(stream->Send(
      "GET /api/v1/alerts/stream HTTP/1.1\r\nHost: localhost\r\n\r\n"));
  REQUIRE(stream->ReadUntil(": connected").find(": connected") !=
          std::string::npos);
  auto start = Clock::now();
  d.Signal(SIGTERM);
  d.Signal(SIGINT);  // a second signal changes nothing
  CHECK(d.Wait(15000) == 0);
  CHECK(Clock::now() - start < std::chrono::seconds(6));
  CHECK(stream->ClosedWithin(2000));
  CHECK(stream->got().find(": server shutting down") != std::string::npos);
  for (auto& s : slow) CHECK(s->ClosedWithin(2000));
}

TEST_CASE("Edge: the connection cap closes the longest-idle connection") {
  Daemon d("edge_cap",
           Env({{"API_MAX_CONNECTIONS", "50"}, {"API_HEADER_TIMEOUT", "30"}}));
  // Nothing else is open (the readiness probes' connections are gone, a
  // lingering one would go first, rightly, and spoil the count); the
  // reading connection is the one left.
  REQUIRE(
      harness::WaitFor([&] { return Metric(d, "http_connections_open") <= 1; },
                       milliseconds(10000)));
  std::vector<std::unique_ptr<Raw>> idle;
  for (int i = 0; i < 50; ++i) {
    idle.push_back(std::make_unique<Raw>(d.port()));
    REQUIRE(
        idle.back()->Send("GET /health HTTP/1.1\r\nHost: localhost\r\n\r\n"));
    CAPTURE(i);
    REQUIRE_MESSAGE(
        idle.back()->ReadUntil("}").find("200 OK") != std::string::npos,
        idle.back()->got());
  }
  // The new client is served: one idle connection makes room, one of the
  // longest idle. (The first one, on a quiet machine; under heavy load the
  // run saw its neighbour go instead, once: the order of connections idle
  // within the same few microseconds is not asserted. Noted for the team.)
  CHECK(HealthAnswers(d));
  std::vector<size_t> closed;
  harness::WaitFor(
      [&] {
        closed.clear();
        for (size_t i = 0; i < idle.size(); ++i) {
          if (idle[i]->ClosedWithin(0)) closed.push_back(i);
        }
        return !closed.empty();
      },
      milliseconds(5000));
  CHECK_MESSAGE(closed.size() == 1, "closed: ", absl::StrJoin(closed, " "));
  CHECK_MESSAGE((!closed.empty() && closed.front() < 5),
                "closed: ", absl::StrJoin(closed, " "));
  CHECK(Metric(d, "http_connections_evicted_total{state=\"idle\"}") >= 1);
}

TEST_CASE("Edge: answers that say Connection: close really close") {
  Daemon d("edge_close", Env());
  Raw old(d.port());
  REQUIRE(old.Send("GET /health HTTP/1.0\r\n\r\n"));
  CHECK(old.ClosedWithin(5000));
  CHECK(StatusOf(old.got()) == 200);
  Raw asked(d.port());
  REQUIRE(
      asked.Send("GET /health HTTP/1.1\r\nHost: localhost\r\n"
                 "Connection: keep-alive, Close\r\n\r\n"));
  CHECK(asked.ClosedWithin(5000));
  CHECK(asked.got().find("Connection: close") != std::string::npos);
}

TEST_CASE("Edge: one compression rule, gzip for large text bodies") {
  Daemon d("edge_gzip_rule", Env());
  Raw gz(d.port());
  REQUIRE(
      gz.Send("GET /dashboard HTTP/1.1\r\nHost: localhost\r\n"
              "Accept-Encoding: br, gzip\r\nConnection: close\r\n\r\n"));
  REQUIRE(gz.ClosedWithin(10000));
  CHECK(StatusOf(gz.got()) == 200);
  CHECK(gz.got().find("Content-Encoding: gzip") != std::string::npos);
  CHECK(gz.got().find("Vary: Accept-Encoding") != std::string::npos);
  // Never Brotli (cpp-httplib's own default, quality 11), never small ones.
  Raw br(d.port());
  REQUIRE(
      br.Send("GET /dashboard HTTP/1.1\r\nHost: localhost\r\n"
              "Accept-Encoding: br\r\nConnection: close\r\n\r\n"));
  REQUIRE(br.ClosedWithin(10000));
  CHECK(br.got().find("Content-Encoding") == std::string::npos);
  Raw small(d.port());
  REQUIRE(
      small.Send("GET /health HTTP/1.1\r\nHost: localhost\r\n"
                 "Accept-Encoding: gzip\r\nConnection: close\r\n\r\n"));
  REQUIRE(small.ClosedWithin(10000));
  CHECK(small.got().find("Content-Encoding") == std::string::npos);
  // The compressed page is the page.
  httplib::Client c = d.Client();
  c.set_decompress(true);
  auto plain = c.Get("/dashboard");
  REQUIRE(plain);
  c.set_compress(false);
  auto inflated = c.Get("/dashboard", {{"Accept-Encoding", "gzip"}});
  REQUIRE(inflated);
  CHECK(inflated->body == plain->body);
}

TEST_CASE("Edge: the open-file limit must exceed the connection cap") {
  const std::string dsn = harness::MigratedDatabase("edge_nofile");
  harness::EnvMap env = Daemon::BaseEnv(dsn, harness::FreePort());
  env["API_MAX_CONNECTIONS"] = "1000000";
  harness::Process p({harness::ApiBinary(), "serve"}, env);
  CHECK(p.Wait(30000) == 1);
  CHECK(p.Output().find("API_MAX_CONNECTIONS=1000000") != std::string::npos);
}

}  // namespace
}  // namespace pggitops
