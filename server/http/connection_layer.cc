#include "server/http/connection_layer.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <time.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <atomic>
#include <cerrno>
#include <cstring>
#include <deque>
#include <thread>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/container/flat_hash_map.h"
#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"
#include "pggitops/log.h"
#include "server/http/chunked_body.h"
#include "server/http/client_address.h"
#include "server/http/errors.h"

namespace pggitops::server {
namespace {

constexpr uint32_t kListenTag = 0xffffffffu;
constexpr uint32_t kWakeTag = 0xfffffffeu;
constexpr size_t kReadChunk = 64 << 10;
// A worker serves at most this many pipelined requests of one connection
// before the connection queues again behind the others.
constexpr int kPipelineTurn = 16;
// Output a worker sends as it goes instead of buffering it all.
constexpr size_t kEagerSendBytes = 256 << 10;
// Writes at least this large are sent without a copy (WriteDirect).
constexpr size_t kDirectSendBytes = 4096;
// Lingering close: after the last response the edge reads and discards
// what a client still sends, so its response is not lost to a reset.
constexpr int64_t kLingerNs = 2'000'000'000;
constexpr size_t kLingerBytes = 1 << 20;
constexpr int64_t kSweepNs = 100'000'000;  // timers are checked this often
constexpr int64_t kRefusalLogNs = 60'000'000'000;

int64_t MonoNs() {
  timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return static_cast<int64_t>(ts.tv_sec) * 1'000'000'000 + ts.tv_nsec;
}

int64_t ToNs(absl::Duration d) { return absl::ToInt64Nanoseconds(d); }

using ClientKey = std::array<uint8_t, 16>;

enum class State : uint8_t {
  kHead,      // a request head is arriving (or nothing yet on a new one)
  kIdle,      // keep-alive, between requests
  kBody,      // admitted; its body is arriving
  kQueued,    // waiting for a worker
  kServing,   // a worker has it
  kFlushing,  // the loop sends the rest of a response
  kLinger,    // closing: the last response is out, input is discarded
  kStream,    // handed to the stream hub
};

// Events seen by the loop while a worker owned the connection.
enum Pending : uint8_t { kPendingIn = 1, kPendingOut = 2, kPendingHup = 4 };

struct Conn {
  int fd = -1;
  uint32_t slot = 0;
  uint32_t gen = 0;
  std::string peer_ip;
  int peer_port = 0;
  ClientKey client{};
  bool capped = false;  // counted against the per-client cap
  // Loop-owned unless a worker owns it (kQueued, kServing).
  State state = State::kHead;
  int64_t since = 0;  // when the current state began
  std::string in;     // received bytes from the current request on
  size_t scanned = 0;
  bool head_ready = false;
  bool body_ready = false;  // the whole body is here (or there is none)
  RequestHead head;
  ChunkedDecoder decoder;
  std::string body;  // a decoded chunked body
  std::shared_ptr<void> admission;
  std::string out;  // response bytes the loop still has to send
  size_t out_off = 0;
  bool close_after_out = false;
  bool peer_closed = false;     // read returned 0
  bool maybe_readable = false;  // the kernel may hold bytes not read yet
  int served = 0;
  size_t lingered = 0;
  // Set by a worker for the loop: close once handed back.
  bool close_now = false;

  absl::Mutex mu;
  bool worker_owned ABSL_GUARDED_BY(mu) = false;
  uint8_t pending ABSL_GUARDED_BY(mu) = 0;
  bool stream_closed ABSL_GUARDED_BY(mu) = false;

  void ResetRequest() {
    scanned = 0;
    head_ready = false;
    body_ready = false;
    head = RequestHead();
    body.clear();
    admission.reset();
  }
};

ClientKey KeyOf(const sockaddr_storage& ss, int v6_prefix) {
  ClientKey k{};
  if (ss.ss_family == AF_INET) {
    const auto* a = reinterpret_cast<const sockaddr_in*>(&ss);
    k[10] = k[11] = 0xff;
    std::memcpy(&k[12], &a->sin_addr, 4);
    return k;
  }
  const auto* a = reinterpret_cast<const sockaddr_in6*>(&ss);
  std::memcpy(k.data(), &a->sin6_addr, 16);
  bool mapped = std::all_of(k.begin(), k.begin() + 10,
                            [](uint8_t b) { return b == 0; }) &&
                k[10] == 0xff && k[11] == 0xff;
  if (mapped) return k;
  int prefix = std::clamp(v6_prefix, 0, 128);
  for (int bit = prefix; bit < 128; ++bit) {
    k[bit / 8] &= static_cast<uint8_t>(~(0x80 >> (bit % 8)));
  }
  return k;
}

std::string IpOf(const sockaddr_storage& ss, int* port) {
  char buf[INET6_ADDRSTRLEN] = {0};
  if (ss.ss_family == AF_INET) {
    const auto* a = reinterpret_cast<const sockaddr_in*>(&ss);
    inet_ntop(AF_INET, &a->sin_addr, buf, sizeof(buf));
    *port = ntohs(a->sin_port);
    return buf;
  }
  const auto* a = reinterpret_cast<const sockaddr_in6*>(&ss);
  *port = ntohs(a->sin6_port);
  if (IN6_IS_ADDR_V4MAPPED(&a->sin6_addr)) {
    inet_ntop(AF_INET, &a->sin6_addr.s6_addr[12], buf, sizeof(buf));
  } else {
    inet_ntop(AF_INET6, &a->sin6_addr, buf, sizeof(buf));
  }
  return buf;
}

uint64_t Tag(const Conn* c) {
  return (static_cast<uint64_t>(c->gen) << 32) | c->slot;
}

class Layer;

class StreamSocketImpl : public StreamSocket {
 public:
  StreamSocketImpl(Layer* layer, Conn* c) : layer_(layer), c_(c) {}
  ~StreamSocketImpl() override;
  int fd() const override { return c_->fd; }
  const std::string& peer_ip() const override { return c_->peer_ip; }

 private:
  Layer* layer_;
  Conn* c_;
};

class Layer : public ConnectionLayer {
 public:
  Layer(ConnectionLayerOptions o, RequestHandler* handler)
      : o_(std::move(o)), handler_(handler) {}
  ~Layer() override;

  absl::Status Open();
  int port() const override { return port_; }
  void Run() override;
  void Drain(absl::Time deadline) override;
  int in_flight() const override {
    return in_flight_.load(std::memory_order_relaxed);
  }
  int open_connections() const override {
    return open_count_.load(std::memory_order_relaxed);
  }

  // Called by the owner of a stream socket when it is done with it.
  void StreamClosed(Conn* c);

 private:
  friend class WorkerRequest;

  // Loop.
  void Accept(int64_t now);
  bool MakeRoom(const ClientKey* key, int64_t now);
  void HandleEvent(Conn* c, uint32_t events, int64_t now);
  void OnReadable(Conn* c, int64_t now);
  bool ReadSome(Conn* c, size_t limit);
  void Progress(Conn* c, int64_t now);
  void StartHead(Conn* c, int64_t now);
  void OnHeadComplete(Conn* c, int64_t now);
  void GatherBody(Conn* c, int64_t now);
  void Dispatch(Conn* c);
  void Refuse(Conn* c, int status, const char* reason,
              const std::string& detail, int64_t now);
  void Flush(Conn* c, int64_t now);
  void AfterResponse(Conn* c, int64_t now);
  void StartLinger(Conn* c, int64_t now);
  void Linger(Conn* c, int64_t now);
  void Close(Conn* c);
  void Sweep(int64_t now);
  void ProcessReturns(int64_t now);
  void BeginDrainOnLoop(int64_t now);
  bool OwnedByWorker(Conn* c);
  void CountRefusal(const char* reason, const std::string& peer,
                    const ClientKey& key, const std::string& detail,
                    int64_t now);
  Conn* Lookup(uint64_t tag);
  void SetOpen(int delta);

  // Workers.
  // Lane 0 serves everything else, lane 1 the priority requests.
  void WorkerMain(int lane);
  bool WorkFor0() const ABSL_EXCLUSIVE_LOCKS_REQUIRED(queue_mu_) {
    return stop_workers_ || !queue_[0].empty();
  }
  bool WorkFor1() const ABSL_EXCLUSIVE_LOCKS_REQUIRED(queue_mu_) {
    return stop_workers_ || !queue_[1].empty();
  }
  void ServeConnection(Conn* c, std::string* out);
  void HandBack(Conn* c, bool notify);
  void PushReturn(Conn* c);
  bool Draining() const { return draining_.load(std::memory_order_acquire); }
  bool OverBudget(size_t more) const;
  bool SendAll(Conn* c, const std::string& data, size_t* off, bool wait);

  const ConnectionLayerOptions o_;
  RequestHandler* const handler_;
  int listen_fd_ = -1;
  int epoll_fd_ = -1;
  int wake_fd_ = -1;
  int reserve_fd_ = -1;
  int port_ = 0;

  // Loop-owned.
  std::vector<std::unique_ptr<Conn>> slots_;
  std::vector<uint32_t> free_slots_;
  std::vector<std::unique_ptr<Conn>> graveyard_;
  absl::flat_hash_map<ClientKey, int> per_client_;
  absl::flat_hash_map<ClientKey, int64_t> refusal_logged_;
  int open_ = 0;
  bool drain_started_ = false;
  int64_t next_sweep_ = 0;

  std::atomic<int> open_count_{0};
  std::atomic<int> in_flight_{0};
  std::atomic<bool> draining_{false};
  std::atomic<int64_t> drain_deadline_{0};
  std::atomic<size_t> pending_output_{0};

  absl::Mutex queue_mu_;
  std::deque<Conn*> queue_[2] ABSL_GUARDED_BY(queue_mu_);
  bool stop_workers_ ABSL_GUARDED_BY(queue_mu_) = false;
  std::vector<std::thread> workers_;

  absl::Mutex returns_mu_;
  std::vector<uint64_t> returns_ ABSL_GUARDED_BY(returns_mu_);  // tags

  // Metrics (null without a registry).
  Gauge* open_gauge_ = nullptr;
  Family<Counter>* refused_ = nullptr;
  Family<Counter>* evicted_ = nullptr;
};

StreamSocketImpl::~StreamSocketImpl() { layer_->StreamClosed(c_); }

Layer::~Layer() {
  {
    absl::MutexLock l(&queue_mu_);
    stop_workers_ = true;
  }
  for (std::thread& t : workers_) {
    if (t.joinable()) t.join();
  }
  for (auto& c : slots_) {
    if (c != nullptr && c->fd >= 0 && c->state != State::kStream) {
      ::close(c->fd);
    }
  }
  if (listen_fd_ >= 0) ::close(listen_fd_);
  if (epoll_fd_ >= 0) ::close(epoll_fd_);
  if (wake_fd_ >= 0) ::close(wake_fd_);
  if (reserve_fd_ >= 0) ::close(reserve_fd_);
}

absl::Status Layer::Open() {
  addrinfo hints{};
  hints.ai_family = AF_UNSPEC;
  hints.ai_socktype = SOCK_STREAM;
  hints.ai_flags = AI_PASSIVE | AI_NUMERICSERV;
  addrinfo* res = nullptr;
  std::string port = absl::StrCat(o_.port);
  const char* host = o_.host.empty() ? nullptr : o_.host.c_str();
  int rc = getaddrinfo(host, port.c_str(), &hints, &res);
  if (rc != 0) {
    return absl::InvalidArgumentError(absl::StrCat(
        "cannot resolve listen address ", o_.host, ": ", gai_strerror(rc)));
  }
  std::string error = "no address";
  for (addrinfo* ai = res; ai != nullptr; ai = ai->ai_next) {
    int fd =
        ::socket(ai->ai_family, ai->ai_socktype | SOCK_NONBLOCK | SOCK_CLOEXEC,
                 ai->ai_protocol);
    if (fd < 0) continue;
    int yes = 1;
    // SO_REUSEADDR only: SO_REUSEPORT would let a second daemon share the
    // port silently.
    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &yes, sizeof(yes));
    if (::bind(fd, ai->ai_addr, ai->ai_addrlen) == 0 &&
        ::listen(fd, o_.listen_backlog) == 0) {
      listen_fd_ = fd;
      break;
    }
    error = std::strerror(errno);
    ::close(fd);
  }
  freeaddrinfo(res);
  if (listen_fd_ < 0) {
    return absl::UnavailableError(
        absl::StrCat("cannot listen on ", o_.host, ":", o_.port, ": ", error));
  }
  sockaddr_storage ss{};
  socklen_t len = sizeof(ss);
  getsockname(listen_fd_, reinterpret_cast<sockaddr*>(&ss), &len);
  IpOf(ss, &port_);

  epoll_fd_ = epoll_create1(EPOLL_CLOEXEC);
  wake_fd_ = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
  reserve_fd_ = ::open("/dev/null", O_RDONLY | O_CLOEXEC);
  if (epoll_fd_ < 0 || wake_fd_ < 0) {
    return absl::InternalError(
        absl::StrCat("epoll/eventfd: ", std::strerror(errno)));
  }
  epoll_event ev{};
  ev.events = EPOLLIN;
  ev.data.u64 = kListenTag;
  epoll_ctl(epoll_fd_, EPOLL_CTL_ADD, listen_fd_, &ev);
  ev.data.u64 = kWakeTag;
  epoll_ctl(epoll_fd_, EPOLL_CTL_ADD, wake_fd_, &ev);

  if (o_.metrics != nullptr) {
    open_gauge_ = &o_.metrics
                       ->AddGauge("http_connections_open",
                                  "Open HTTP connections (streams included).")
                       .WithLabels({});
    refused_ = &o_.metrics->AddCounter(
        "http_connections_refused_total",
        "Connections or requests refused by the HTTP edge, by reason.",
        {"reason"});
    evicted_ = &o_.metrics->AddCounter(
        "http_connections_evicted_total",
        "Connections closed to make room at a connection cap, by state.",
        {"state"});
    for (const char* r :
         {"per_client_cap", "global_cap", "header_timeout", "body_timeout",
          "header_too_large", "body_too_large", "bad_framing", "bad_request",
          "unsupported_encoding", "write_timeout", "fd_limit"}) {
      refused_->WithLabels({r});
    }
    evicted_->WithLabels({"idle"});
    evicted_->WithLabels({"head"});
  }
  return absl::OkStatus();
}

// ---------------------------------------------------------------- the loop

void Layer::Run() {
  for (int i = 0; i < std::max(1, o_.workers); ++i) {
    workers_.emplace_back([this] { WorkerMain(0); });
  }
  for (int i = 0; o_.is_priority && i < o_.priority_workers; ++i) {
    workers_.emplace_back([this] { WorkerMain(1); });
  }
  std::vector<epoll_event> events(512);
  next_sweep_ = MonoNs() + kSweepNs;
  for (;;) {
    int n = epoll_wait(epoll_fd_, events.data(),
                       static_cast<int>(events.size()), 100);
    int64_t now = MonoNs();
    for (int i = 0; i < n; ++i) {
      uint64_t tag = events[i].data.u64;
      uint32_t slot = static_cast<uint32_t>(tag);
      if (slot == kListenTag) {
        Accept(now);
      } else if (slot == kWakeTag) {
        uint64_t v;
        while (::read(wake_fd_, &v, sizeof(v)) > 0) {
        }
        ProcessReturns(now);
      } else if (Conn* c = Lookup(tag)) {
        HandleEvent(c, events[i].events, now);
      }
    }
    if (Draining() && !drain_started_) BeginDrainOnLoop(now);
    if (now >= next_sweep_) {
      Sweep(now);
      next_sweep_ = now + kSweepNs;
    }
    graveyard_.clear();
    if (drain_started_ &&
        (open_ == 0 ||
         now >= drain_deadline_.load(std::memory_order_relaxed))) {
      break;
    }
  }
  {
    absl::MutexLock l(&queue_mu_);
    stop_workers_ = true;
  }
  for (std::thread& t : workers_) t.join();
  workers_.clear();
}

void Layer::Drain(absl::Time deadline) {
  int64_t left = ToNs(deadline - absl::Now());
  drain_deadline_.store(MonoNs() + std::max<int64_t>(0, left),
                        std::memory_order_relaxed);
  bool was = draining_.exchange(true, std::memory_order_acq_rel);
  if (!was) {
    uint64_t one = 1;
    ssize_t ignored = ::write(wake_fd_, &one, sizeof(one));
    (void)ignored;
  }
}

void Layer::BeginDrainOnLoop(int64_t now) {
  drain_started_ = true;
  if (listen_fd_ >= 0) {
    epoll_ctl(epoll_fd_, EPOLL_CTL_DEL, listen_fd_, nullptr);
    ::close(listen_fd_);
    listen_fd_ = -1;
  }
  for (auto& slot : slots_) {
    Conn* c = slot.get();
    if (c == nullptr || OwnedByWorker(c)) continue;
    if (c->state == State::kIdle || c->state == State::kHead ||
        c->state == State::kBody) {
      Close(c);
    }
  }
  (void)now;
}

Conn* Layer::Lookup(uint64_t tag) {
  uint32_t slot = static_cast<uint32_t>(tag);
  uint32_t gen = static_cast<uint32_t>(tag >> 32);
  if (slot >= slots_.size()) return nullptr;
  Conn* c = slots_[slot].get();
  return c != nullptr && c->gen == gen ? c : nullptr;
}

void Layer::SetOpen(int delta) {
  open_ += delta;
  open_count_.store(open_, std::memory_order_relaxed);
  if (open_gauge_ != nullptr) open_gauge_->Set(open_);
}

bool Layer::OwnedByWorker(Conn* c) {
  absl::MutexLock l(&c->mu);
  return c->worker_owned;
}

void Layer::CountRefusal(const char* reason, const std::string& peer,
                         const ClientKey& key, const std::string& detail,
                         int64_t now) {
  if (refused_ != nullptr) refused_->WithLabels({reason}).Inc();
  // At most one line per client per minute, so an attack cannot fill the
  // log; the counter has the totals.
  if (refusal_logged_.size() > 10000) refusal_logged_.clear();
  auto [it, fresh] = refusal_logged_.try_emplace(key, now);
  if (!fresh && now - it->second < kRefusalLogNs) return;
  it->second = now;
  Log::Warning("http edge: refused",
               {{"reason", reason}, {"client", peer}, {"detail", detail}});
}

void Layer::Accept(int64_t now) {
  for (int i = 0; i < 64 && listen_fd_ >= 0; ++i) {
    sockaddr_storage ss{};
    socklen_t len = sizeof(ss);
    int fd = accept4(listen_fd_, reinterpret_cast<sockaddr*>(&ss), &len,
                     SOCK_NONBLOCK | SOCK_CLOEXEC);
    if (fd < 0) {
      if (errno == EINTR || errno == ECONNABORTED) continue;
      if (errno == EMFILE || errno == ENFILE) {
        // Out of descriptors: shed the connection with the one kept in
        // reserve, so the listener does not stay readable and spin.
        if (reserve_fd_ >= 0) {
          ::close(reserve_fd_);
          int shed = accept4(listen_fd_, nullptr, nullptr, SOCK_CLOEXEC);
          if (shed >= 0) ::close(shed);
          reserve_fd_ = ::open("/dev/null", O_RDONLY | O_CLOEXEC);
        }
        CountRefusal("fd_limit", "", ClientKey{}, "out of file descriptors",
                     now);
      }
      return;  // EAGAIN, or an error the next readiness retries
    }
    int peer_port = 0;
    std::string ip = IpOf(ss, &peer_port);
    ClientKey key = KeyOf(ss, o_.ipv6_client_prefix);
    bool exempt = (o_.exempt_loopback && IsLoopbackAddress(ip)) ||
                  (o_.exempt_peer && o_.exempt_peer(ip));
    const char* refusal = nullptr;
    if (open_ >= o_.max_connections && !MakeRoom(nullptr, now)) {
      refusal = "global_cap";
    } else if (!exempt && per_client_[key] >= o_.max_connections_per_client &&
               !MakeRoom(&key, now)) {
      refusal = "per_client_cap";
    }
    if (refusal != nullptr) {
      std::string body = RawErrorResponse(
          503, "SERVICE_UNAVAILABLE",
          "too many open connections; try again later", {{"Retry-After", "1"}});
      ssize_t ignored = ::send(fd, body.data(), body.size(), MSG_NOSIGNAL);
      (void)ignored;
      ::close(fd);
      CountRefusal(refusal, ip, key, "connection cap reached", now);
      continue;
    }
    int yes = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &yes, sizeof(yes));
    auto conn = std::make_unique<Conn>();
    Conn* c = conn.get();
    c->fd = fd;
    c->peer_ip = std::move(ip);
    c->peer_port = peer_port;
    c->client = key;
    c->capped = !exempt;
    c->decoder = ChunkedDecoder(o_.limits.max_body_bytes, 1024,
                                o_.limits.max_head_bytes);
    if (free_slots_.empty()) {
      c->slot = static_cast<uint32_t>(slots_.size());
      slots_.push_back(std::move(conn));
    } else {
      c->slot = free_slots_.back();
      free_slots_.pop_back();
      slots_[c->slot] = std::move(conn);
    }
    static uint32_t generation = 0;
    c->gen = ++generation;
    if (c->capped) ++per_client_[key];
    SetOpen(+1);
    StartHead(c, now);
    epoll_event ev{};
    ev.events = EPOLLIN | EPOLLOUT | EPOLLRDHUP | EPOLLET;
    ev.data.u64 = Tag(c);
    epoll_ctl(epoll_fd_, EPOLL_CTL_ADD, fd, &ev);
  }
}

// Closes the connection that matters least, among all or among the
// connections of `key`: a lingering one, then the longest idle, then the
// one whose head has been arriving longest. False when all are busy.
bool Layer::MakeRoom(const ClientKey* key, int64_t now) {
  Conn* best = nullptr;
  int best_rank = 3;
  for (auto& slot : slots_) {
    Conn* c = slot.get();
    if (c == nullptr || (key != nullptr && c->client != *key)) continue;
    if (OwnedByWorker(c)) continue;
    int rank = c->state == State::kLinger ? 0
               : c->state == State::kIdle ? 1
               : c->state == State::kHead ? 2
                                          : 3;
    if (rank < best_rank ||
        (rank == best_rank && best != nullptr && c->since < best->since)) {
      best = c;
      best_rank = rank;
    }
  }
  if (best == nullptr || best_rank == 3) return false;
  if (evicted_ != nullptr && best_rank > 0) {
    evicted_->WithLabels({best_rank == 1 ? "idle" : "head"}).Inc();
  }
  Close(best);
  (void)now;
  return true;
}

void Layer::HandleEvent(Conn* c, uint32_t events, int64_t now) {
  {
    absl::MutexLock l(&c->mu);
    if (c->worker_owned) {
      if (events & EPOLLIN) c->pending |= kPendingIn;
      if (events & EPOLLOUT) c->pending |= kPendingOut;
      if (events & (EPOLLRDHUP | EPOLLHUP | EPOLLERR)) {
        c->pending |= kPendingHup | kPendingIn;
      }
      return;
    }
  }
  if (c->state == State::kStream) return;
  if (events & EPOLLERR) {
    Close(c);
    return;
  }
  if (events & (EPOLLIN | EPOLLRDHUP | EPOLLHUP)) c->maybe_readable = true;
  if ((events & EPOLLOUT) && c->state == State::kFlushing) {
    Flush(c, now);
    return;  // Flush goes on with reading when it is done
  }
  if (c->maybe_readable) OnReadable(c, now);
}

// Reads while the kernel has bytes and `in` is below `limit`. False on a
// read error; peer_closed on end of input.
bool Layer::ReadSome(Conn* c, size_t limit) {
  static thread_local std::vector<char> buf(kReadChunk);
  while (c->maybe_readable && c->in.size() < limit && !c->peer_closed) {
    size_t want = std::min(kReadChunk, limit - c->in.size());
    ssize_t n = ::recv(c->fd, buf.data(), want, 0);
    if (n > 0) {
      c->in.append(buf.data(), static_cast<size_t>(n));
      if (static_cast<size_t>(n) < want) c->maybe_readable = false;
    } else if (n == 0) {
      c->peer_closed = true;
      c->maybe_readable = false;
    } else if (errno == EAGAIN || errno == EWOULDBLOCK) {
      c->maybe_readable = false;
    } else if (errno != EINTR) {
      return false;
    }
  }
  return true;
}

void Layer::OnReadable(Conn* c, int64_t now) {
  switch (c->state) {
    case State::kLinger:
      Linger(c, now);
      return;
    case State::kIdle:
    case State::kHead:
    case State::kBody:
      break;
    default:
      return;  // flushing or busy: read later
  }
  for (;;) {
    size_t limit = o_.limits.max_head_bytes + kReadChunk;
    if (c->state == State::kBody && !c->head.chunked) {
      limit = c->head.size + c->head.content_length;
    }
    if (!ReadSome(c, limit)) {
      Close(c);
      return;
    }
    Progress(c, now);
    // A chunked body is decoded out of `in` as it is read, so the bytes
    // still in the kernel are read now: no new readiness edge may come
    // while the client waits for its window to open.
    if (c->fd < 0 || c->state != State::kBody || !c->head.chunked ||
        !c->maybe_readable) {
      return;
    }
  }
}

void Layer::StartHead(Conn* c, int64_t now) {
  c->state = State::kHead;
  c->since = now;
}

// Moves a loop-owned connection on after new bytes (or none).
void Layer::Progress(Conn* c, int64_t now) {
  if (c->state == State::kIdle) {
    // Empty lines before a request line are ignored (RFC 9112 2.2).
    size_t skip = 0;
    while (c->in.size() >= skip + 2 && c->in[skip] == '\r' &&
           c->in[skip + 1] == '\n') {
      skip += 2;
    }
    if (skip > 0) c->in.erase(0, skip);
    if (!c->in.empty()) StartHead(c, now);
  }
  if (c->state == State::kHead && !c->in.empty()) {
    HeadResult r = ScanRequestHead(c->in, o_.limits, &c->scanned);
    if (r.verdict == HeadVerdict::kRejected) {
      Refuse(c, r.status, r.reason, r.detail, now);
      return;
    }
    if (r.verdict == HeadVerdict::kComplete) {
      c->head = std::move(r.head);
      c->head_ready = true;
      OnHeadComplete(c, now);
      return;
    }
  }
  if (c->state == State::kBody) {
    GatherBody(c, now);
    return;
  }
  if (c->peer_closed) Close(c);  // nothing complete will come any more
}

void Layer::OnHeadComplete(Conn* c, int64_t now) {
  if (!c->head.has_body()) {
    c->body_ready = true;
    Dispatch(c);
    return;
  }
  // Bytes of the body that came with the head.
  if (c->head.chunked) {
    size_t used = c->decoder.Feed(absl::string_view(c->in).substr(c->head.size),
                                  &c->body);
    c->in.erase(c->head.size, used);
  }
  bool complete = c->head.chunked
                      ? c->decoder.done()
                      : c->in.size() >= c->head.size + c->head.content_length;
  if (c->decoder.failed()) {
    Refuse(c, c->decoder.error_status(),
           c->decoder.error_status() == 413 ? "body_too_large" : "bad_framing",
           c->decoder.error(), now);
    return;
  }
  if (complete) {
    c->body_ready = true;
    Dispatch(c);
    return;
  }
  // Decide before reading (or asking for) the rest of the body.
  RequestHandler::Admission a =
      handler_->Admit(absl::string_view(c->in).substr(0, c->head.size), c->head,
                      c->peer_ip, c->peer_port);
  c->admission = std::move(a.record);
  if (!a.accept) {
    Dispatch(c);  // the worker writes the refusal; the body is never read
    return;
  }
  if (c->head.expect_continue) {
    static constexpr char kContinue[] = "HTTP/1.1 100 Continue\r\n\r\n";
    ssize_t n = ::send(c->fd, kContinue, sizeof(kContinue) - 1, MSG_NOSIGNAL);
    if (n != static_cast<ssize_t>(sizeof(kContinue) - 1)) {
      Close(c);
      return;
    }
  }
  c->state = State::kBody;
  c->since = now;
  if (c->maybe_readable) {
    OnReadable(c, now);  // more of the body may be waiting already
  } else if (c->peer_closed) {
    Close(c);
  }
}

void Layer::GatherBody(Conn* c, int64_t now) {
  if (c->head.chunked) {
    size_t used = c->decoder.Feed(absl::string_view(c->in).substr(c->head.size),
                                  &c->body);
    c->in.erase(c->head.size, used);
    if (c->decoder.failed()) {
      Refuse(
          c, c->decoder.error_status(),
          c->decoder.error_status() == 413 ? "body_too_large" : "bad_framing",
          c->decoder.error(), now);
      return;
    }
    c->body_ready = c->decoder.done();
  } else {
    c->body_ready = c->in.size() >= c->head.size + c->head.content_length;
  }
  if (c->body_ready) {
    Dispatch(c);
  } else if (c->peer_closed) {
    Close(c);
  }
}

void Layer::Dispatch(Conn* c) {
  {
    absl::MutexLock l(&c->mu);
    c->worker_owned = true;
    c->pending = 0;
  }
  c->state = State::kQueued;
  const bool priority = o_.is_priority && o_.priority_workers > 0 &&
                        o_.is_priority(c->head.target.In(c->in));
  absl::MutexLock l(&queue_mu_);
  queue_[priority ? 1 : 0].push_back(c);
}

void Layer::Refuse(Conn* c, int status, const char* reason,
                   const std::string& detail, int64_t now) {
  CountRefusal(reason, c->peer_ip, c->client, detail, now);
  c->out = RawErrorResponse(status, EdgeErrorCode(status), detail, {});
  c->out_off = 0;
  pending_output_.fetch_add(c->out.size(), std::memory_order_relaxed);
  c->close_after_out = true;
  c->state = State::kFlushing;
  c->since = now;
  Flush(c, now);
}

// Sends what the loop holds of a response. Every byte in `out` is counted
// in pending_output_ until it is sent or dropped.
void Layer::Flush(Conn* c, int64_t now) {
  c->state = State::kFlushing;
  while (c->out_off < c->out.size()) {
    ssize_t n = ::send(c->fd, c->out.data() + c->out_off,
                       c->out.size() - c->out_off, MSG_NOSIGNAL);
    if (n > 0) {
      c->out_off += static_cast<size_t>(n);
      pending_output_.fetch_sub(static_cast<size_t>(n),
                                std::memory_order_relaxed);
      c->since = now;  // progress: the write timeout starts again
    } else if (n < 0 && errno == EINTR) {
      continue;
    } else if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
      return;  // EPOLLOUT brings us back
    } else {
      Close(c);
      return;
    }
  }
  c->out.clear();
  c->out.shrink_to_fit();
  c->out_off = 0;
  AfterResponse(c, now);
}

// The response is out: close, or wait for (or start on) the next request.
void Layer::AfterResponse(Conn* c, int64_t now) {
  if (c->close_after_out || Draining()) {
    StartLinger(c, now);
    return;
  }
  c->state = State::kIdle;
  c->since = now;
  if (c->maybe_readable) {
    OnReadable(c, now);
  } else {
    Progress(c, now);
  }
}

void Layer::StartLinger(Conn* c, int64_t now) {
  ::shutdown(c->fd, SHUT_WR);
  c->state = State::kLinger;
  c->since = now;
  c->in.clear();
  c->in.shrink_to_fit();
  c->lingered = 0;
  Linger(c, now);
}

void Layer::Linger(Conn* c, int64_t now) {
  static thread_local std::vector<char> buf(kReadChunk);
  for (;;) {
    ssize_t n = ::recv(c->fd, buf.data(), buf.size(), 0);
    if (n > 0) {
      c->lingered += static_cast<size_t>(n);
      if (c->lingered > kLingerBytes) break;
      continue;
    }
    if (n < 0 && errno == EINTR) continue;
    if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
      c->maybe_readable = false;
      return;  // wait for the client's FIN (or the linger time)
    }
    break;  // end of input or an error
  }
  (void)now;
  Close(c);
}

void Layer::Close(Conn* c) {
  if (c->fd >= 0) ::close(c->fd);
  c->fd = -1;
  if (c->capped) {
    auto it = per_client_.find(c->client);
    if (it != per_client_.end() && --it->second <= 0) per_client_.erase(it);
  }
  if (c->out_off < c->out.size()) {
    pending_output_.fetch_sub(c->out.size() - c->out_off,
                              std::memory_order_relaxed);
    c->out.clear();
    c->out_off = 0;
  }
  SetOpen(-1);
  uint32_t slot = c->slot;
  graveyard_.push_back(std::move(slots_[slot]));
  free_slots_.push_back(slot);
}

void Layer::Sweep(int64_t now) {
  const int64_t header = ToNs(o_.header_timeout);
  const int64_t body = ToNs(o_.body_timeout);
  const int64_t idle = ToNs(o_.keepalive_timeout);
  const int64_t write = ToNs(o_.write_timeout);
  for (auto& slot : slots_) {
    Conn* c = slot.get();
    if (c == nullptr || OwnedByWorker(c)) continue;
    const int64_t age = now - c->since;
    switch (c->state) {
      case State::kIdle:
        if (age > idle) Close(c);
        break;
      case State::kHead:
        if (age > header) {
          Refuse(c, 408, "header_timeout",
                 "the request head did not arrive in time "
                 "(API_HEADER_TIMEOUT)",
                 now);
        }
        break;
      case State::kBody:
        if (age > body) {
          Refuse(c, 408, "body_timeout",
                 "the request body did not arrive in time (API_BODY_TIMEOUT)",
                 now);
        }
        break;
      case State::kFlushing:
        if (age > write) {
          CountRefusal("write_timeout", c->peer_ip, c->client,
                       "the client did not read its response", now);
          Close(c);
        }
        break;
      case State::kLinger:
        if (age > kLingerNs) Close(c);
        break;
      default:
        break;
    }
  }
}

void Layer::ProcessReturns(int64_t now) {
  std::vector<uint64_t> batch;
  {
    absl::MutexLock l(&returns_mu_);
    batch.swap(returns_);
  }
  for (uint64_t tag : batch) {
    Conn* c = Lookup(tag);
    if (c == nullptr) continue;  // closed since
    uint8_t pending;
    bool stream_closed;
    {
      absl::MutexLock l(&c->mu);
      pending = c->pending;
      c->pending = 0;
      stream_closed = c->stream_closed;
    }
    if (c->state == State::kStream) {
      if (stream_closed) Close(c);
      continue;
    }
    if (pending & (kPendingIn | kPendingHup)) c->maybe_readable = true;
    if (c->close_now) {
      c->close_now = false;
      if (c->state == State::kFlushing) {
        Flush(c, now);
      } else {
        StartLinger(c, now);
      }
      continue;
    }
    if (c->state == State::kFlushing) {
      Flush(c, now);
    } else if (c->maybe_readable) {
      OnReadable(c, now);
    } else {
      Progress(c, now);
    }
  }
}

void Layer::StreamClosed(Conn* c) {
  absl::MutexLock l(&c->mu);
  c->stream_closed = true;
  if (!c->worker_owned) PushReturn(c);  // else the worker's hand-back does
}

void Layer::PushReturn(Conn* c) {
  bool wake;
  {
    absl::MutexLock l(&returns_mu_);
    wake = returns_.empty();
    returns_.push_back(Tag(c));
  }
  if (wake) {
    uint64_t one = 1;
    ssize_t ignored = ::write(wake_fd_, &one, sizeof(one));
    (void)ignored;
  }
}

// ---------------------------------------------------------------- workers

// One request as a worker serves it: reads come from what the loop
// gathered, writes go to a per-thread buffer sent when Serve returns.
class WorkerRequest : public EdgeRequest {
 public:
  WorkerRequest(Layer* layer, Conn* c, std::string* out, bool closing)
      : layer_(layer), c_(c), out_(out), closing_(closing) {
    absl::string_view raw = raw_head();
    size_t pos = 0;
    for (const ByteSpan& h : c->head.hidden) {
      if (h.offset > pos) parts_.push_back(raw.substr(pos, h.offset - pos));
      pos = h.offset + h.size;
    }
    parts_.push_back(raw.substr(pos, c->head.size - 2 - pos));
    if (c->head.chunked) {
      length_line_ = absl::StrCat("Content-Length: ", c->body.size(), "\r\n");
      parts_.push_back(length_line_);
    }
    parts_.push_back("\r\n");
    if (c->body_ready) parts_.push_back(body());
  }

  size_t Read(char* out, size_t n) override {
    size_t done = 0;
    while (done < n && part_ < parts_.size()) {
      absl::string_view p = parts_[part_];
      size_t k = std::min(n - done, p.size() - offset_);
      std::memcpy(out + done, p.data() + offset_, k);
      done += k;
      offset_ += k;
      if (offset_ == p.size()) {
        ++part_;
        offset_ = 0;
      }
    }
    return done;
  }
  const RequestHead& head() const override { return c_->head; }
  absl::string_view raw_head() const override {
    return absl::string_view(c_->in).substr(0, c_->head.size);
  }
  absl::string_view body() const override {
    if (c_->head.chunked) return c_->body;
    return absl::string_view(c_->in).substr(
        c_->head.size, static_cast<size_t>(c_->head.content_length));
  }
  const std::string& peer_ip() const override { return c_->peer_ip; }
  int peer_port() const override { return c_->peer_port; }
  const std::shared_ptr<void>& admission() const override {
    return c_->admission;
  }
  bool closing() const override { return closing_ || layer_->Draining(); }

  bool Write(const char* data, size_t n) override {
    if (taken_) return true;
    if (failed_) return false;
    if (n >= kDirectSendBytes) return WriteDirect(data, n);
    out_->append(data, n);
    if (out_->size() - sent_ >= kEagerSendBytes) {
      if (!layer_->SendAll(c_, *out_, &sent_,
                           layer_->OverBudget(out_->size() - sent_))) {
        failed_ = true;
      }
      if (sent_ >= kEagerSendBytes) {
        out_->erase(0, sent_);
        sent_ = 0;
      }
    }
    return !failed_;
  }

  std::unique_ptr<StreamSocket> TakeOver() override {
    if (taken_ || failed_ || c_->peer_closed) return nullptr;
    epoll_ctl(layer_->epoll_fd_, EPOLL_CTL_DEL, c_->fd, nullptr);
    taken_ = true;
    return std::make_unique<StreamSocketImpl>(layer_, c_);
  }

  bool taken() const { return taken_; }

  // A large piece (a response body) goes out with what is buffered in one
  // sendmsg, without being copied; only what the socket does not take now
  // is kept.
  bool WriteDirect(const char* data, size_t n) {
    iovec iov[2] = {{&(*out_)[0] + sent_, out_->size() - sent_},
                    {const_cast<char*>(data), n}};
    msghdr msg{};
    msg.msg_iov = iov;
    msg.msg_iovlen = 2;
    ssize_t k;
    do {
      k = ::sendmsg(c_->fd, &msg, MSG_NOSIGNAL | MSG_DONTWAIT);
    } while (k < 0 && errno == EINTR);
    if (k < 0 && errno != EAGAIN && errno != EWOULDBLOCK) {
      failed_ = true;
      return false;
    }
    size_t took = k < 0 ? 0 : static_cast<size_t>(k);
    size_t from_buffer = std::min(took, iov[0].iov_len);
    sent_ += from_buffer;
    size_t from_data = took - from_buffer;
    if (sent_ == out_->size()) {
      out_->clear();
      sent_ = 0;
    }
    out_->append(data + from_data, n - from_data);
    return true;
  }

  // Sends what is buffered; what the socket will not take now moves to the
  // connection for the loop (or, over the output budget, is waited for).
  // False when the connection is broken.
  bool Finish() {
    if (taken_) {
      out_->clear();
      return true;
    }
    bool ok = !failed_ && layer_->SendAll(c_, *out_, &sent_, false);
    size_t left = out_->size() - sent_;
    if (ok && left > 0 && layer_->OverBudget(left)) {
      ok = layer_->SendAll(c_, *out_, &sent_, true);
      left = out_->size() - sent_;
    }
    if (ok && left > 0) {
      c_->out.assign(*out_, sent_, left);
      c_->out_off = 0;
      layer_->pending_output_.fetch_add(left, std::memory_order_relaxed);
    }
    out_->clear();
    if (out_->capacity() > (1 << 20)) std::string().swap(*out_);
    return ok;
  }

 private:
  Layer* const layer_;
  Conn* const c_;
  std::string* const out_;
  const bool closing_;
  absl::InlinedVector<absl::string_view, 8> parts_;
  std::string length_line_;
  size_t part_ = 0;
  size_t offset_ = 0;
  size_t sent_ = 0;
  bool failed_ = false;
  bool taken_ = false;
};

bool Layer::OverBudget(size_t more) const {
  return pending_output_.load(std::memory_order_relaxed) + more >
         o_.max_pending_output;
}

// Sends data[*off..]; without `wait`, only what the socket takes now. With
// `wait`, waits for the socket up to write_timeout. False on an error or a
// time-out.
bool Layer::SendAll(Conn* c, const std::string& data, size_t* off, bool wait) {
  int64_t deadline = MonoNs() + ToNs(o_.write_timeout);
  while (*off < data.size()) {
    ssize_t n = ::send(c->fd, data.data() + *off, data.size() - *off,
                       MSG_NOSIGNAL | MSG_DONTWAIT);
    if (n > 0) {
      *off += static_cast<size_t>(n);
      continue;
    }
    if (n < 0 && errno == EINTR) continue;
    if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
      if (!wait) return true;
      int64_t left_ms = (deadline - MonoNs()) / 1'000'000;
      if (left_ms <= 0) return false;
      pollfd p{c->fd, POLLOUT, 0};
      if (::poll(&p, 1, static_cast<int>(std::min<int64_t>(left_ms, 1000))) <
              0 &&
          errno != EINTR) {
        return false;
      }
      continue;
    }
    return false;
  }
  return true;
}

void Layer::WorkerMain(int lane) {
  std::string out;
  for (;;) {
    Conn* c;
    {
      absl::MutexLock l(&queue_mu_);
      queue_mu_.Await(lane == 0 ? absl::Condition(this, &Layer::WorkFor0)
                                : absl::Condition(this, &Layer::WorkFor1));
      if (stop_workers_) return;
      c = queue_[lane].front();
      queue_[lane].pop_front();
    }
    in_flight_.fetch_add(1, std::memory_order_relaxed);
    ServeConnection(c, &out);
    in_flight_.fetch_sub(1, std::memory_order_relaxed);
  }
}

void Layer::ServeConnection(Conn* c, std::string* out) {
  c->state = State::kServing;
  for (int turn = 0;; ++turn) {
    const bool closing = !c->head.keep_alive ||
                         c->served + 1 >= o_.keepalive_max || Draining() ||
                         c->peer_closed || !c->body_ready;
    bool close = true;
    bool flushed = false;
    bool taken = false;
    {
      WorkerRequest req(this, c, out, closing);
      close = handler_->Serve(req) || req.closing();
      taken = req.taken();
      flushed = req.Finish();
    }
    ++c->served;
    if (taken) {
      c->state = State::kStream;
      c->in.clear();
      c->ResetRequest();
      HandBack(c, false);
      return;
    }
    // The bytes of the request just served.
    size_t used =
        c->body_ready
            ? c->head.size + (c->head.chunked
                                  ? 0
                                  : static_cast<size_t>(c->head.content_length))
            : c->in.size();
    c->in.erase(0, std::min(used, c->in.size()));
    c->ResetRequest();
    c->decoder = ChunkedDecoder(o_.limits.max_body_bytes, 1024,
                                o_.limits.max_head_bytes);
    c->since = MonoNs();
    if (!flushed) {
      c->out.clear();
      c->close_now = true;
      c->state = State::kLinger;
      HandBack(c, true);
      return;
    }
    if (!c->out.empty()) {
      c->close_after_out = close;
      c->state = State::kFlushing;
      HandBack(c, true);
      return;
    }
    if (close) {
      c->close_now = true;
      c->state = State::kIdle;
      HandBack(c, true);
      return;
    }
    // A pipelined request that is all here is served at once; anything
    // else (half a head, a body to gather, a refusal) goes to the loop.
    size_t skip = 0;
    while (c->in.size() >= skip + 2 && c->in[skip] == '\r' &&
           c->in[skip + 1] == '\n') {
      skip += 2;
    }
    c->in.erase(0, skip);
    if (c->in.empty()) {
      if (c->in.capacity() > (16 << 10)) std::string().swap(c->in);
      c->state = State::kIdle;
      HandBack(c, false);
      return;
    }
    c->state = State::kHead;
    if (turn + 1 < kPipelineTurn) {
      HeadResult r = ScanRequestHead(c->in, o_.limits, &c->scanned);
      if (r.verdict == HeadVerdict::kComplete &&
          (!r.head.has_body() ||
           (!r.head.chunked &&
            c->in.size() >= r.head.size + r.head.content_length))) {
        c->head = std::move(r.head);
        c->head_ready = true;
        c->body_ready = true;
        c->state = State::kServing;
        continue;
      }
      c->scanned = 0;
    }
    HandBack(c, true);
    return;
  }
}

// Returns a connection to the loop. The loop is told when it has work to
// do (`notify`) or when events came while the worker had the connection.
void Layer::HandBack(Conn* c, bool notify) {
  absl::MutexLock l(&c->mu);
  if (c->pending != 0 || c->stream_closed) notify = true;
  if (notify) PushReturn(c);
  c->worker_owned = false;
}

}  // namespace

absl::StatusOr<std::unique_ptr<ConnectionLayer>> ConnectionLayer::Create(
    ConnectionLayerOptions options, RequestHandler* handler) {
  auto layer = std::make_unique<Layer>(std::move(options), handler);
  absl::Status s = layer->Open();
  if (!s.ok()) return s;
  return std::unique_ptr<ConnectionLayer>(std::move(layer));
}

}  // namespace pggitops::server
