// Helpers for the delivery integration tests: migrated databases, webhook
// receivers on 127.0.0.1 (cpp-httplib servers, and a raw socket that drips
// its answer), an independent Standard Webhooks verifier, and polling
// waits (harness::WaitFor) with generous bounds.
#ifndef PGGITOPS_TESTS_INTEGRATION_DELIVERY_DELIVERY_TEST_UTIL_H_
#define PGGITOPS_TESTS_INTEGRATION_DELIVERY_DELIVERY_TEST_UTIL_H_

#include <httplib.h>
#include <netinet/in.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <cctype>
#include <chrono>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <pqxx/pqxx>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "doctest/doctest.h"
#include "pggitops/connection_pool.h"
#include "pggitops/delivery_queue.h"
#include "pggitops/schema.h"
#include "tests/harness/harness.h"

namespace pggitops::delivery_test {

using Clock = std::chrono::steady_clock;

inline std::string MigratedDatabase(const std::string& name) {
  const std::string dsn = harness::FreshDatabase(name);
  absl::StatusOr<MigrateResult> r = Migrate(dsn);
  REQUIRE_MESSAGE(r.ok(), r.status().ToString());
  return dsn;
}

// First column of the first row ("" for none or NULL), autocommit.
inline std::string Scalar(const std::string& dsn, const std::string& sql) {
  pqxx::connection c(dsn);
  pqxx::nontransaction tx(c);
  const pqxx::result r = tx.exec(sql);
  if (r.empty() || r[0][0].is_null()) return "";
  return r[0][0].as<std::string>();
}

inline int64_t Count(const std::string& dsn, const std::string& sql) {
  const std::string s = Scalar(dsn, sql);
  return s.empty() ? 0 : std::stoll(s);
}

inline void Exec(const std::string& dsn, const std::string& sql) {
  pqxx::connection c(dsn);
  pqxx::nontransaction tx(c);
  tx.exec(sql);
}

// A whsec_ secret of 24 fixed bytes (the API generates random ones).
inline std::string TestSecret(char fill = 'k') {
  const std::string raw(24, fill);
  std::string out(64, '\0');
  const int n =
      EVP_EncodeBlock(reinterpret_cast<unsigned char*>(&out[0]),
                      reinterpret_cast<const unsigned char*>(raw.data()),
                      static_cast<int>(raw.size()));
  out.resize(static_cast<size_t>(n));
  return "whsec_" + out;
}

// Inserts a webhook and returns its id. `extra` adds "column = value"
// pairs, e.g. {{"max_retries", "1"}, {"backoff_base", "1"}}.
inline int64_t AddWebhook(
    const std::string& dsn, const std::string& name, const std::string& url,
    const std::vector<std::pair<std::string, std::string>>& extra = {},
    const std::string& secret = TestSecret()) {
  std::string cols = "name, url, secret";
  std::string vals = "'" + name + "', '" + url + "', '" + secret + "'";
  for (const auto& [c, v] : extra) {
    cols += ", " + c;
    vals += ", " + v;
  }
  return std::stoll(Scalar(dsn, "INSERT INTO pggit.webhooks (" + cols +
                                    ") VALUES (" + vals + ") RETURNING id"));
}

inline int64_t AddAlert(const std::string& dsn,
                        const std::string& severity = "WARNING",
                        const std::string& operation = "commit",
                        const std::string& message = "hello") {
  return std::stoll(
      Scalar(dsn,
             "INSERT INTO pggit.alerts (operation_type, severity, message) "
             "VALUES ('" +
                 operation + "', '" + severity + "', '" + message +
                 "') RETURNING id"));
}

using harness::WaitFor;

// --- Standard Webhooks verification, written from the specification ------

inline std::string Base64Decode(const std::string& in) {
  std::string out(in.size(), '\0');
  const int n =
      EVP_DecodeBlock(reinterpret_cast<unsigned char*>(&out[0]),
                      reinterpret_cast<const unsigned char*>(in.data()),
                      static_cast<int>(in.size()));
  if (n < 0) return "";
  size_t len = static_cast<size_t>(n);
  // EVP_DecodeBlock counts padding as zero bytes.
  if (!in.empty() && in.back() == '=') --len;
  if (in.size() > 1 && in[in.size() - 2] == '=') --len;
  out.resize(len);
  return out;
}

inline std::string Base64Encode(const unsigned char* data, size_t len) {
  std::string out(4 * ((len + 2) / 3) + 1, '\0');
  const int n = EVP_EncodeBlock(reinterpret_cast<unsigned char*>(&out[0]), data,
                                static_cast<int>(len));
  out.resize(static_cast<size_t>(n));
  return out;
}

// The verify procedure of the Standard Webhooks specification: decode the
// whsec_ secret, check the timestamp is within `tolerance_s` of now, HMAC
// id.timestamp.body, compare in constant time with every "v1," signature
// of the header. Returns "" when valid, else the reason.
inline std::string VerifyStandardWebhook(const std::string& secret,
                                         const std::string& id,
                                         const std::string& timestamp,
                                         const std::string& signatures,
                                         const std::string& body, int64_t now_s,
                                         int64_t tolerance_s = 300) {
  if (secret.rfind("whsec_", 0) != 0) return "secret lacks whsec_";
  const std::string key = Base64Decode(secret.substr(6));
  if (key.empty()) return "secret is not base64";
  if (id.empty() || timestamp.empty()) return "missing id or timestamp";
  const int64_t ts = std::stoll(timestamp);
  if (ts < now_s - tolerance_s || ts > now_s + tolerance_s) {
    return "timestamp outside tolerance";
  }
  const std::string content = id + "." + timestamp + "." + body;
  unsigned char mac[EVP_MAX_MD_SIZE];
  unsigned int mac_len = 0;
  HMAC(EVP_sha256(), key.data(), static_cast<int>(key.size()),
       reinterpret_cast<const unsigned char*>(content.data()), content.size(),
       mac, &mac_len);
  const std::string expected = Base64Encode(mac, mac_len);
  size_t pos = 0;
  while (pos < signatures.size()) {
    size_t end = signatures.find(' ', pos);
    if (end == std::string::npos) end = signatures.size();
    const std::string one = signatures.substr(pos, end - pos);
    pos = end + 1;
    if (one.rfind("v1,", 0) != 0) continue;
    const std::string sig = one.substr(3);
    if (sig.size() == expected.size() &&
        CRYPTO_memcmp(sig.data(), expected.data(), sig.size()) == 0) {
      return "";
    }
  }
  return "no matching signature";
}

// --- receivers --------------------------------------------------------------

struct Received {
  std::string path;
  std::string body;
  std::map<std::string, std::string> headers;  // lower-case names
  Clock::time_point at;
  int64_t unix_at = 0;
};

// An HTTP server on 127.0.0.1 that records every request and answers with
// what `respond` says (default 200). Thread-safe.
class Receiver {
 public:
  struct Reply {
    int status = 200;
    std::string body = "ok";
    std::map<std::string, std::string> headers;
    std::chrono::milliseconds delay{0};
  };
  using Respond = std::function<Reply(const Received&, int count)>;

  explicit Receiver(Respond respond = nullptr, int threads = 32)
      : respond_(std::move(respond)) {
    server_.new_task_queue = [threads] {
      return new httplib::ThreadPool(static_cast<size_t>(threads));
    };
    server_.Post(".*", [this](const httplib::Request& req,
                              httplib::Response& res) { Handle(req, res); });
    port_ = server_.bind_to_any_port("127.0.0.1");
    REQUIRE(port_ > 0);
    thread_ = std::thread([this] { server_.listen_after_bind(); });
    const bool up = WaitFor([this] { return server_.is_running(); },
                            std::chrono::seconds(10));
    if (!up) {
      server_.stop();
      thread_.join();
    }
    REQUIRE(up);
  }
  ~Receiver() {
    server_.stop();
    thread_.join();
  }

  int port() const { return port_; }
  std::string url(const std::string& path = "/hook") const {
    return "http://127.0.0.1:" + std::to_string(port_) + path;
  }
  std::vector<Received> requests() {
    std::lock_guard<std::mutex> lock(mu_);
    return requests_;
  }
  int count() {
    std::lock_guard<std::mutex> lock(mu_);
    return static_cast<int>(requests_.size());
  }
  int max_concurrent() const { return max_concurrent_.load(); }

 private:
  void Handle(const httplib::Request& req, httplib::Response& res) {
    const int now_in = ++concurrent_;
    int seen = max_concurrent_.load();
    while (now_in > seen &&
           !max_concurrent_.compare_exchange_weak(seen, now_in)) {
    }
    Received r;
    r.path = req.path;
    r.body = req.body;
    for (const auto& [k, v] : req.headers) {
      std::string lower = k;
      for (char& c : lower) c = static_cast<char>(std::tolower(c));
      r.headers[lower] = v;
    }
    r.at = Clock::now();
    r.unix_at = std::chrono::duration_cast<std::chrono::seconds>(
                    std::chrono::system_clock::now().time_since_epoch())
                    .count();
    int n;
    {
      std::lock_guard<std::mutex> lock(mu_);
      requests_.push_back(r);
      n = static_cast<int>(requests_.size());
    }
    Reply reply = respond_ ? respond_(r, n) : Reply{};
    if (reply.delay.count() > 0) std::this_thread::sleep_for(reply.delay);
    res.status = reply.status;
    for (const auto& [k, v] : reply.headers) res.set_header(k, v);
    res.set_content(reply.body, "text/plain");
    --concurrent_;
  }

  Respond respond_;
  httplib::Server server_;
  int port_ = 0;
  std::thread thread_;
  std::mutex mu_;
  std::vector<Received> requests_;
  std::atomic<int> concurrent_{0};
  std::atomic<int> max_concurrent_{0};
};

// A raw TCP server on 127.0.0.1 that reads a request, sends a 200 status
// line and headers promising 100 bytes, then one byte per second.
class Dripper {
 public:
  Dripper() {
    fd_ = socket(AF_INET, SOCK_STREAM, 0);
    REQUIRE(fd_ >= 0);
    int one = 1;
    setsockopt(fd_, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    REQUIRE(bind(fd_, reinterpret_cast<sockaddr*>(&a), sizeof(a)) == 0);
    socklen_t len = sizeof(a);
    getsockname(fd_, reinterpret_cast<sockaddr*>(&a), &len);
    port_ = ntohs(a.sin_port);
    REQUIRE(listen(fd_, 16) == 0);
    thread_ = std::thread([this] { Serve(); });
  }
  ~Dripper() {
    stop_ = true;
    shutdown(fd_, SHUT_RDWR);
    close(fd_);
    thread_.join();
    for (std::thread& t : clients_) t.join();
  }
  std::string url() const {
    return "http://127.0.0.1:" + std::to_string(port_) + "/drip";
  }
  int accepted() const { return accepted_.load(); }

 private:
  void Serve() {
    while (!stop_) {
      const int c = accept(fd_, nullptr, nullptr);
      if (c < 0) return;
      ++accepted_;
      clients_.emplace_back([this, c] { Drip(c); });
    }
  }
  void Drip(int c) {
    char buf[4096];
    ssize_t n = recv(c, buf, sizeof(buf), 0);  // the request (small)
    (void)n;
    const std::string head =
        "HTTP/1.1 200 OK\r\nContent-Length: 100\r\n"
        "Content-Type: text/plain\r\n\r\n";
    if (send(c, head.data(), head.size(), MSG_NOSIGNAL) < 0) {
      close(c);
      return;
    }
    for (int i = 0; i < 100 && !stop_; ++i) {
      if (send(c, "x", 1, MSG_NOSIGNAL) < 0) break;
      for (int k = 0; k < 10 && !stop_; ++k) {
        std::this_thread::sleep_for(std::chrono::milliseconds(100));
      }
    }
    close(c);
  }

  int fd_ = -1;
  int port_ = 0;
  std::atomic<bool> stop_{false};
  std::atomic<int> accepted_{0};
  std::thread thread_;
  std::vector<std::thread> clients_;
};

// A pool for `dsn` small enough for many tests at once.
inline std::unique_ptr<ConnectionPool> MakePool(const std::string& dsn,
                                                int size = 6) {
  PoolOptions o;
  o.dsn = dsn;
  o.size = size;
  o.max_overflow = 4;
  o.timeout = absl::Seconds(10);
  absl::StatusOr<std::unique_ptr<ConnectionPool>> pool =
      ConnectionPool::Create(o);
  REQUIRE_MESSAGE(pool.ok(), pool.status().ToString());
  return *std::move(pool);
}

// Engine options for tests: loopback receivers allowed, short intervals.
inline DeliveryOptions TestOptions(const std::string& dsn) {
  DeliveryOptions o;
  o.dsn = dsn;
  o.allow_private_targets = true;
  o.poll_interval = absl::Milliseconds(500);
  o.lease = absl::Seconds(5);
  o.metrics_interval = absl::Milliseconds(200);
  return o;
}

inline std::unique_ptr<DeliveryEngine> StartEngine(ConnectionPool* pool,
                                                   DeliveryOptions o) {
  absl::StatusOr<std::unique_ptr<DeliveryEngine>> e =
      DeliveryEngine::Create(pool, std::move(o));
  REQUIRE_MESSAGE(e.ok(), e.status().ToString());
  absl::Status s = (*e)->Start();
  REQUIRE_MESSAGE(s.ok(), s.ToString());
  return *std::move(e);
}

}  // namespace pggitops::delivery_test

#endif  // PGGITOPS_TESTS_INTEGRATION_DELIVERY_DELIVERY_TEST_UTIL_H_
