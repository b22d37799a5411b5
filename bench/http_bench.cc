// http_bench: the daemon's HTTP edge against cpp-httplib's own server at
// its best for the load, serving the same bytes, in one run (issue 11).
//
//   1. pggit-api with its default settings (rate limit on, with a limit it
//      never reaches) on a database with 20 webhooks; its cached
//      GET /api/v1/webhooks body is captured;
//   2. bench/bare_http_server (64 threads, TCP_NODELAY, long keep-alive)
//      serves those bytes;
//   3. 32 connections: wrk (-t2 -c32 --latency), alternating daemon / bare,
//      `--rounds` times, the daemon without a key (protected mode) and with
//      one (Authorization: Bearer, after `pggit-api keys create`);
//   4. 1 000 keep-alive connections: our own load generator (one epoll
//      thread) counts every connection's answers, since wrk cannot: req/s,
//      p50/p99, the least answers any connection got and how many got none;
//   5. the daemon's idle RSS after start, and its CPU time per request
//      (user + system, which time slices lost to other processes do not
//      inflate) next to the bare server's.
//
// Run: meson test -C <build> --benchmark http_bench --verbose, or
// <build>/bench/http_bench [--seconds 5] [--rounds 3] [--wide 1000].
// PostgreSQL comes from the PGGITOPS_TEST_* services, or the harness starts
// one. wrk is a Debian package (scripts/install-deps installs it).
#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <memory>
#include <regex>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "httplib.h"
#include "tests/harness/harness.h"

namespace {

using Clock = std::chrono::steady_clock;
using pggitops::harness::Process;

int Flag(int argc, char** argv, const std::string& name, int fallback) {
  for (int i = 1; i + 1 < argc; ++i) {
    if (argv[i] == "--" + name) return std::atoi(argv[i + 1]);
  }
  return fallback;
}

bool Ready(int port, const std::string& path) {
  for (int i = 0; i < 600; ++i) {
    httplib::Client c("127.0.0.1", port);
    c.set_connection_timeout(1, 0);
    auto r = c.Get(path);
    if (r && r->status == 200) return true;
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  return false;
}

// utime + stime of `pid`, in seconds.
double CpuSeconds(pid_t pid) {
  std::ifstream in("/proc/" + std::to_string(pid) + "/stat");
  std::string text((std::istreambuf_iterator<char>(in)),
                   std::istreambuf_iterator<char>());
  std::istringstream rest(text.substr(text.rfind(')') + 2));
  std::string field;
  double ticks = 0;
  for (int i = 3; i <= 15 && rest >> field; ++i) {
    if (i == 14 || i == 15) ticks += std::atof(field.c_str());
  }
  return ticks / static_cast<double>(sysconf(_SC_CLK_TCK));
}

int64_t RssKiB(pid_t pid) {
  std::ifstream in("/proc/" + std::to_string(pid) + "/status");
  std::string line;
  while (std::getline(in, line)) {
    if (line.rfind("VmRSS:", 0) == 0) return std::atoll(line.c_str() + 6);
  }
  return -1;
}

struct Result {
  double rps = 0;
  double p50_ms = 0;
  double p99_ms = 0;
  double cpu_us_per_request = 0;
  // 1 000 connections only.
  int least = 0;
  int starved = 0;
  int connections = 0;
};

double WrkMs(const std::string& out, const std::string& label) {
  std::smatch m;
  std::regex re(label + R"(\s+([0-9.]+)(us|ms|s))");
  if (!std::regex_search(out, m, re)) return -1;
  double v = std::atof(m[1].str().c_str());
  if (m[2] == "us") v /= 1000;
  if (m[2] == "s") v *= 1000;
  return v;
}

Result Wrk(pid_t pid, int port, const std::string& path,
           const std::string& header, int seconds) {
  std::string cmd = "wrk -t2 -c32 -d" + std::to_string(seconds) +
                    "s --latency " +
                    (header.empty() ? "" : "-H '" + header + "' ") +
                    "http://127.0.0.1:" + std::to_string(port) + path;
  double cpu0 = CpuSeconds(pid);
  std::string out;
  pggitops::harness::Run(cmd, &out);
  double cpu1 = CpuSeconds(pid);
  Result r;
  std::smatch m;
  if (std::regex_search(out, m, std::regex(R"(Requests/sec:\s+([0-9.]+))"))) {
    r.rps = std::atof(m[1].str().c_str());
  }
  long requests = 0;
  if (std::regex_search(out, m, std::regex(R"((\d+) requests in)"))) {
    requests = std::atol(m[1].str().c_str());
  }
  if (out.find("Non-2xx") != std::string::npos) {
    std::printf("  warning: non-2xx answers:\n%s\n", out.c_str());
  }
  r.p50_ms = WrkMs(out, "50%");
  r.p99_ms = WrkMs(out, "99%");
  if (requests > 0) r.cpu_us_per_request = (cpu1 - cpu0) * 1e6 / requests;
  return r;
}

// `n` keep-alive connections, each sending its next request as soon as the
// previous answer is complete, for `seconds`, from one epoll thread.
Result Wide(pid_t pid, int port, const std::string& path,
            const std::string& header, int n, int seconds) {
  struct Conn {
    int fd = -1;
    std::string in;
    Clock::time_point sent;
    int answers = 0;
  };
  const std::string req = "GET " + path + " HTTP/1.1\r\nHost: 127.0.0.1\r\n" +
                          (header.empty() ? "" : header + "\r\n") + "\r\n";
  int ep = epoll_create1(0);
  std::vector<Conn> conns(n);
  std::vector<bool> started(n, false);
  double cpu0 = CpuSeconds(pid);
  auto start = Clock::now();
  auto end = start + std::chrono::seconds(seconds);
  for (int i = 0; i < n; ++i) {
    Conn& c = conns[i];
    // Non-blocking connect: a server with a short listen backlog (the bare
    // one has 5) must not stall the others' start.
    c.fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0);
    int one = 1;
    setsockopt(c.fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_port = htons(static_cast<uint16_t>(port));
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    connect(c.fd, reinterpret_cast<sockaddr*>(&a), sizeof(a));
    epoll_event ev{};
    ev.events = EPOLLIN | EPOLLOUT;
    ev.data.u32 = static_cast<uint32_t>(i);
    epoll_ctl(ep, EPOLL_CTL_ADD, c.fd, &ev);
  }
  std::vector<double> latencies;
  latencies.reserve(1 << 20);
  std::vector<epoll_event> events(1024);
  char buf[65536];
  long total = 0;
  while (Clock::now() < end) {
    int k = epoll_wait(ep, events.data(), static_cast<int>(events.size()), 50);
    for (int e = 0; e < k; ++e) {
      const uint32_t i = events[e].data.u32;
      Conn& c = conns[i];
      if (!started[i] && (events[e].events & EPOLLOUT)) {
        started[i] = true;  // connected: the first request
        epoll_event ev{};
        ev.events = EPOLLIN;
        ev.data.u32 = i;
        epoll_ctl(ep, EPOLL_CTL_MOD, c.fd, &ev);
        c.sent = Clock::now();
        send(c.fd, req.data(), req.size(), MSG_NOSIGNAL);
        continue;
      }
      ssize_t got = recv(c.fd, buf, sizeof(buf), 0);
      if (got <= 0) {
        if (got == 0) epoll_ctl(ep, EPOLL_CTL_DEL, c.fd, nullptr);
        continue;
      }
      c.in.append(buf, static_cast<size_t>(got));
      for (;;) {
        size_t head = c.in.find("\r\n\r\n");
        if (head == std::string::npos) break;
        // Both servers write "Content-Length: N" (no regex here: the load
        // generator must stay cheaper than what it measures).
        size_t length = 0;
        size_t at = c.in.find("Content-Length: ");
        if (at != std::string::npos && at < head) {
          length = std::strtoul(c.in.c_str() + at + 16, nullptr, 10);
        }
        if (c.in.size() < head + 4 + length) break;
        c.in.erase(0, head + 4 + length);
        auto now = Clock::now();
        latencies.push_back(
            std::chrono::duration<double, std::milli>(now - c.sent).count());
        ++c.answers;
        ++total;
        c.sent = now;
        send(c.fd, req.data(), req.size(), MSG_NOSIGNAL);
      }
    }
  }
  double elapsed = std::chrono::duration<double>(Clock::now() - start).count();
  double cpu1 = CpuSeconds(pid);
  Result r;
  r.connections = n;
  r.rps = total / elapsed;
  if (total > 0) r.cpu_us_per_request = (cpu1 - cpu0) * 1e6 / total;
  std::sort(latencies.begin(), latencies.end());
  if (!latencies.empty()) {
    r.p50_ms = latencies[latencies.size() / 2];
    r.p99_ms = latencies[latencies.size() * 99 / 100];
  }
  r.least = conns.front().answers;
  for (Conn& c : conns) {
    r.least = std::min(r.least, c.answers);
    if (c.answers == 0) ++r.starved;
    close(c.fd);
  }
  close(ep);
  return r;
}

void Print(const char* what, const Result& r) {
  std::printf("| %-34s | %9.0f | %7.2f | %7.2f | %6.1f |", what, r.rps,
              r.p50_ms, r.p99_ms, r.cpu_us_per_request);
  if (r.connections > 0) {
    std::printf(" %5d | %5d |", r.least, r.starved);
  }
  std::printf("\n");
}

Result Median(std::vector<Result> runs) {
  auto mid = [&](auto field) {
    std::vector<double> v;
    for (const Result& r : runs) v.push_back(r.*field);
    std::sort(v.begin(), v.end());
    return v[v.size() / 2];
  };
  Result m;
  m.rps = mid(&Result::rps);
  m.p50_ms = mid(&Result::p50_ms);
  m.p99_ms = mid(&Result::p99_ms);
  m.cpu_us_per_request = mid(&Result::cpu_us_per_request);
  return m;
}

}  // namespace

int main(int argc, char** argv) {
  const int seconds = Flag(argc, argv, "seconds", 5);
  const int rounds = Flag(argc, argv, "rounds", 3);
  const int wide = Flag(argc, argv, "wide", 1000);
  namespace h = pggitops::harness;
  const std::string api = h::BuildPath("server/pggit-api");
  const std::string dsn = h::FreshDatabase("bench_http");
  Process migrate({api, "migrate"}, {{"DATABASE_URL", dsn}});
  if (migrate.Wait(60000) != 0) {
    std::fprintf(stderr, "migrate failed: %s\n", migrate.Output().c_str());
    return 1;
  }
  h::AdminQuery("bench_http",
                "INSERT INTO pggit.webhooks (name, url, secret, description) "
                "SELECT 'hook-' || i, 'https://hooks.example.com/r/' || i, "
                "'whsec_x', repeat('d', 300) FROM generate_series(1, 20) i");
  const int port = h::FreePort();
  Process daemon({api, "serve"}, {{"DATABASE_URL", dsn},
                                  {"API_PORT", std::to_string(port)},
                                  {"RATE_LIMIT_PER_MINUTE", "1000000"},
                                  {"RATE_LIMIT_BURST", "1000000"},
                                  {"API_KEY_CACHE_SECONDS", "0.5"}});
  if (!Ready(port, "/health/ready")) {
    std::fprintf(stderr, "daemon not ready: %s\n", daemon.Output().c_str());
    return 1;
  }
  std::this_thread::sleep_for(std::chrono::seconds(1));
  const int64_t idle_rss = RssKiB(daemon.pid());
  const std::string path = "/api/v1/webhooks";
  httplib::Client c("127.0.0.1", port);
  auto body = c.Get(path);
  if (!body || body->status != 200) {
    std::fprintf(stderr, "no webhook list\n");
    return 1;
  }
  const std::string body_file = "/tmp/http_bench_body.json";
  std::ofstream(body_file, std::ios::binary) << body->body;
  const int bare_port = h::FreePort();
  Process bare({h::BuildPath("bench/bare_http_server"), "--port",
                std::to_string(bare_port), "--body", body_file});
  if (!Ready(bare_port, path)) {
    std::fprintf(stderr, "bare server not ready: %s\n", bare.Output().c_str());
    return 1;
  }
  std::printf("http_bench: %zu-byte body, %d s per run, %d rounds, %u cores\n",
              body->body.size(), seconds, rounds,
              std::thread::hardware_concurrency());
  std::printf("daemon idle RSS after start: %.1f MB\n\n", idle_rss / 1024.0);

  std::vector<Result> d_runs, b_runs, k_runs;
  for (int i = 0; i < rounds; ++i) {
    d_runs.push_back(Wrk(daemon.pid(), port, path, "", seconds));
    b_runs.push_back(Wrk(bare.pid(), bare_port, path, "", seconds));
  }
  // With a key: protected mode ends, every request carries the key.
  Process keys({api, "keys", "create", "--name", "bench", "--scopes", "read"},
               {{"DATABASE_URL", dsn}});
  keys.Wait(30000);
  std::string out = keys.Output();
  out.erase(out.find_last_not_of('\n') + 1);
  const std::string key = out.substr(out.rfind('\n') + 1);
  const std::string auth = "Authorization: Bearer " + key;
  for (int i = 0; i < 100; ++i) {
    httplib::Client probe("127.0.0.1", port);
    auto r = probe.Get(path);  // 401 once the key is loaded
    if (r && r->status == 401) break;
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
  for (int i = 0; i < rounds; ++i) {
    k_runs.push_back(Wrk(daemon.pid(), port, path, auth, seconds));
    b_runs.push_back(Wrk(bare.pid(), bare_port, path, "", seconds));
  }
  Result d = Median(d_runs), b = Median(b_runs), k = Median(k_runs);
  std::printf("32 connections (wrk -t2 -c32), median of %d runs:\n\n", rounds);
  std::printf("| %-34s | %9s | %7s | %7s | %6s |\n", "server", "req/s",
              "p50 ms", "p99 ms", "cpu us");
  std::printf("| --- | ---: | ---: | ---: | ---: |\n");
  Print("pggit-api, no key (protected mode)", d);
  Print("pggit-api, Bearer key", k);
  Print("bare cpp-httplib, 64 threads", b);
  std::printf(
      "\nratios to the bare server: req/s %.2f / %.2f (no key / key), "
      "p99 %.2f / %.2f, CPU per request %.2f / %.2f\n\n",
      d.rps / b.rps, k.rps / b.rps, d.p99_ms / b.p99_ms, k.p99_ms / b.p99_ms,
      d.cpu_us_per_request / b.cpu_us_per_request,
      k.cpu_us_per_request / b.cpu_us_per_request);

  std::printf("%d keep-alive connections, %d s each:\n\n", wide, seconds * 2);
  std::printf("| %-34s | %9s | %7s | %7s | %6s | %5s | %5s |\n", "server",
              "req/s", "p50 ms", "p99 ms", "cpu us", "least", "none");
  std::printf("| --- | ---: | ---: | ---: | ---: | ---: | ---: |\n");
  Print("pggit-api, Bearer key",
        Wide(daemon.pid(), port, path, auth, wide, seconds * 2));
  Print("bare cpp-httplib, 64 threads",
        Wide(bare.pid(), bare_port, path, "", wide, seconds * 2));
  std::printf("\ndaemon RSS after the run: %.1f MB\n",
              RssKiB(daemon.pid()) / 1024.0);
  return 0;
}
