// BenchReceiver: a webhook receiver for benchmarks, on 127.0.0.1.
//
// One thread, epoll, keep-alive connections: it reads each HTTP/1.1 POST
// (headers and a Content-Length body), notes its webhook-id, and answers
// 200 at once. It is as cheap as a receiver can be, so a benchmark run on a
// small machine measures the sender and the database, not the receiver.
// (cpp-httplib's server, used before, closes a keep-alive connection after
// 5 requests by default and costs a thread switch per request.)
//
// Thread-safe: the accessors may be called from any thread while it runs.
#ifndef PGGITOPS_BENCH_BENCH_RECEIVER_H_
#define PGGITOPS_BENCH_BENCH_RECEIVER_H_

#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <cctype>
#include <chrono>
#include <cstdlib>
#include <cstring>
#include <map>
#include <memory>
#include <mutex>
#include <stdexcept>
#include <string>
#include <thread>
#include <unordered_map>
#include <vector>

namespace pggitops::bench {

class BenchReceiver {
 public:
  using Clock = std::chrono::steady_clock;
  struct Receipt {
    int count = 0;
    Clock::time_point first;
  };

  BenchReceiver() {
    listen_fd_ = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    int one = 1;
    setsockopt(listen_fd_, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (bind(listen_fd_, reinterpret_cast<sockaddr*>(&a), sizeof(a)) != 0 ||
        listen(listen_fd_, 1024) != 0) {
      throw std::runtime_error("BenchReceiver: bind/listen failed");
    }
    socklen_t len = sizeof(a);
    getsockname(listen_fd_, reinterpret_cast<sockaddr*>(&a), &len);
    port_ = ntohs(a.sin_port);
    epoll_fd_ = epoll_create1(EPOLL_CLOEXEC);
    stop_fd_ = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    Watch(listen_fd_);
    Watch(stop_fd_);
    thread_ = std::thread([this] { Run(); });
  }
  ~BenchReceiver() {
    const uint64_t one = 1;
    if (write(stop_fd_, &one, sizeof(one)) < 0) std::abort();
    thread_.join();
    for (auto& [fd, buf] : conns_) close(fd);
    close(listen_fd_);
    close(stop_fd_);
    close(epoll_fd_);
  }
  BenchReceiver(const BenchReceiver&) = delete;
  BenchReceiver& operator=(const BenchReceiver&) = delete;

  std::string url() const {
    return "http://127.0.0.1:" + std::to_string(port_) + "/hook";
  }
  // Requests received (duplicates included).
  size_t requests() const { return requests_.load(); }
  // Distinct webhook-ids received.
  size_t distinct() {
    std::lock_guard<std::mutex> lock(mu_);
    return receipts_.size();
  }
  std::unordered_map<std::string, Receipt> receipts() {
    std::lock_guard<std::mutex> lock(mu_);
    return receipts_;
  }

 private:
  void Watch(int fd) {
    epoll_event ev{};
    ev.events = EPOLLIN;
    ev.data.fd = fd;
    epoll_ctl(epoll_fd_, EPOLL_CTL_ADD, fd, &ev);
  }

  void Run() {
    std::vector<epoll_event> events(256);
    while (true) {
      const int n = epoll_wait(epoll_fd_, events.data(),
                               static_cast<int>(events.size()), 1000);
      for (int i = 0; i < n; ++i) {
        const int fd = events[i].data.fd;
        if (fd == stop_fd_) return;
        if (fd == listen_fd_) {
          Accept();
        } else {
          Read(fd);
        }
      }
    }
  }

  void Accept() {
    while (true) {
      const int c =
          accept4(listen_fd_, nullptr, nullptr, SOCK_NONBLOCK | SOCK_CLOEXEC);
      if (c < 0) return;
      int one = 1;
      setsockopt(c, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
      conns_[c];
      Watch(c);
    }
  }

  void Read(int fd) {
    std::string& buf = conns_[fd];
    char chunk[16384];
    while (true) {
      const ssize_t n = recv(fd, chunk, sizeof(chunk), 0);
      if (n > 0) {
        buf.append(chunk, static_cast<size_t>(n));
        continue;
      }
      if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) break;
      close(fd);  // closed by the peer, or an error
      conns_.erase(fd);
      return;
    }
    while (HandleOne(fd, &buf)) {
    }
  }

  // Answers one complete request at the front of `buf`, if there is one.
  bool HandleOne(int fd, std::string* buf) {
    const size_t head_end = buf->find("\r\n\r\n");
    if (head_end == std::string::npos) return false;
    const std::string head = buf->substr(0, head_end);
    const size_t length =
        std::strtoul(Header(head, "content-length").c_str(), nullptr, 10);
    if (buf->size() < head_end + 4 + length) return false;
    const std::string id = Header(head, "webhook-id");
    buf->erase(0, head_end + 4 + length);
    static constexpr char kReply[] =
        "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok";
    if (send(fd, kReply, sizeof(kReply) - 1, MSG_NOSIGNAL) < 0) return false;
    const Clock::time_point now = Clock::now();
    {
      std::lock_guard<std::mutex> lock(mu_);
      Receipt& r = receipts_[id];
      if (r.count++ == 0) r.first = now;
    }
    ++requests_;
    return true;
  }

  // The value of header `name` (lower case) in `head`, or "".
  static std::string Header(const std::string& head, const char* name) {
    const size_t len = std::strlen(name);
    size_t pos = head.find("\r\n");
    while (pos != std::string::npos) {
      const size_t start = pos + 2;
      pos = head.find("\r\n", start);
      const size_t end = pos == std::string::npos ? head.size() : pos;
      if (end - start <= len || head[start + len] != ':') continue;
      bool match = true;
      for (size_t i = 0; i < len && match; ++i) {
        match = std::tolower(static_cast<unsigned char>(head[start + i])) ==
                name[i];
      }
      if (!match) continue;
      size_t v = start + len + 1;
      while (v < end && head[v] == ' ') ++v;
      return head.substr(v, end - v);
    }
    return "";
  }

  int listen_fd_ = -1;
  int epoll_fd_ = -1;
  int stop_fd_ = -1;
  int port_ = 0;
  std::thread thread_;
  std::map<int, std::string> conns_;  // the receiver thread's only
  std::atomic<size_t> requests_{0};
  std::mutex mu_;
  std::unordered_map<std::string, Receipt> receipts_;
};

}  // namespace pggitops::bench

#endif  // PGGITOPS_BENCH_BENCH_RECEIVER_H_
