#include "server/routes/sse_hub.h"

#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <exception>
#include <utility>

#include "absl/container/flat_hash_map.h"
#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "pggitops/log.h"
#include "server/http/connection_layer.h"
#include "server/http/errors.h"

namespace pggitops::server {
namespace {

// Notifications kept for the render thread at most; a burst beyond is
// dropped.
constexpr size_t kMaxPending = 10000;
// Notifications rendered (and published) at once, so a burst reaches the
// streams in steps and never overruns the backlog in one go.
constexpr size_t kRenderBatch = 256;
// The writer checks keep-alives and write time-outs at least this often.
constexpr int kWriterTickMs = 250;

// `field` without the characters that would end its line (and NUL, which
// makes a browser ignore an id).
std::string OneLine(absl::string_view field) {
  std::string out;
  out.reserve(field.size());
  for (char c : field) {
    if (c != '\r' && c != '\n' && c != '\0') out += c;
  }
  return out;
}

}  // namespace

// A stream between Serve and the writer: its slot is reserved, and given
// back if the hand-over never happens.
struct SseHub::Adoption {
  SseHub* hub = nullptr;  // set once the slot is reserved
  std::unique_ptr<StreamSocket> socket;
  std::string first;  // response head, then the first chunk
  uint64_t cursor = 0;
  bool handed = false;
  ~Adoption() {
    if (hub != nullptr && !handed) {
      absl::MutexLock l(&hub->mu_);
      --hub->open_;
    }
  }
};

// An open stream, owned by the writer thread.
struct SseHub::Stream {
  std::unique_ptr<StreamSocket> socket;
  uint64_t cursor = 0;  // seq of the next backlog event to send
  std::string out;      // bytes not sent yet, from `off`
  size_t off = 0;
  absl::Time next_keepalive;
  absl::Time last_progress;
  bool ending = false;  // the last chunk is queued: close once it is sent
  size_t unsent() const { return out.size() - off; }
};

std::string FormatSseEvent(const SseEvent& e) {
  std::string out = absl::StrCat("event: ", OneLine(e.event), "\n");
  if (!e.id.empty()) absl::StrAppend(&out, "id: ", OneLine(e.id), "\n");
  // One data line per line of the data: a line end inside it (CRLF, LF or
  // CR, as EventSource reads them) would otherwise end the field, and a
  // blank line would dispatch a forged event. The client joins the lines
  // with "\n".
  size_t begin = 0;
  while (true) {
    const size_t end = e.data.find_first_of("\r\n", begin);
    absl::StrAppend(&out, "data: ",
                    absl::string_view(e.data).substr(begin, end - begin), "\n");
    if (end == std::string::npos) break;
    begin = end + (e.data.compare(end, 2, "\r\n") == 0 ? 2 : 1);
  }
  out += '\n';
  return out;
}

std::string Chunk(const std::string& data) {
  if (data.empty()) return "";
  return absl::StrCat(absl::Hex(data.size()), "\r\n", data, "\r\n");
}

SseHub::SseHub(SseHubOptions options) : options_(std::move(options)) {
  epoll_fd_ = epoll_create1(EPOLL_CLOEXEC);
  wake_fd_ = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
  epoll_event ev{};
  ev.events = EPOLLIN;
  ev.data.fd = wake_fd_;
  epoll_ctl(epoll_fd_, EPOLL_CTL_ADD, wake_fd_, &ev);
  render_thread_ = std::thread([this] { RunRender(); });
  writer_thread_ = std::thread([this] { RunWriter(); });
}

SseHub::~SseHub() { Shutdown(); }

void SseHub::Shutdown() {
  {
    absl::MutexLock l(&mu_);
    stop_ = true;
  }
  Wake();
  if (render_thread_.joinable()) render_thread_.join();
  if (writer_thread_.joinable()) writer_thread_.join();
  if (epoll_fd_ >= 0) ::close(epoll_fd_);
  if (wake_fd_ >= 0) ::close(wake_fd_);
  epoll_fd_ = wake_fd_ = -1;
}

bool SseHub::Ending() const { return options_.ending && options_.ending(); }

int SseHub::open_streams() const {
  absl::MutexLock l(&mu_);
  return open_;
}

void SseHub::Wake() {
  uint64_t one = 1;
  ssize_t ignored = ::write(wake_fd_, &one, sizeof(one));
  (void)ignored;
}

void SseHub::Notify(std::string payload) {
  absl::MutexLock l(&mu_);
  if (open_ == 0 || stop_) return;  // nobody listens
  if (pending_.size() >= kMaxPending) {
    if (dropped_++ % 1000 == 0) {  // one line per thousand, not a flood
      Log::Warning("alert stream: notification burst, notifications dropped",
                   {{"dropped_total", absl::StrCat(dropped_)}});
    }
    return;
  }
  pending_.push_back(std::move(payload));
}

void SseHub::EndStreams() {
  {
    absl::MutexLock l(&mu_);
    ending_ = true;
  }
  Wake();
}

void SseHub::Serve(RequestContext& ctx) {
  if (Ending()) throw Unavailable("the server is shutting down");
  auto a = std::make_unique<Adoption>();
  std::string first_status;
  {
    absl::MutexLock l(&mu_);
    if (stop_ || ending_ || open_ >= options_.max_streams) {
      HttpError e = Unavailable(
          ending_ || stop_
              ? std::string("the server is shutting down")
              : absl::StrCat("too many open alert streams (SSE_MAX_STREAMS=",
                             options_.max_streams, "); try again later"));
      e.headers.emplace_back("Retry-After", "5");
      throw e;
    }
    ++open_;
    a->hub = this;
    a->cursor = next_seq_;
    if (open_ == 1) {
      // The status was not rendered while nobody listened: render one now.
      last_status_.clear();
      status_due_ = true;
    } else {
      first_status = last_status_;
    }
  }
  // Reserved first, replayed second: an alert committed in between comes
  // twice rather than never (clients can tell by its id).
  std::string greeting = "retry: 3000\n: connected\n\n" + first_status;
  std::string last_id = ctx.req.get_header_value("Last-Event-ID");
  if (!last_id.empty() && options_.replay) {
    try {
      for (const SseEvent& e : options_.replay(last_id)) {
        greeting += FormatSseEvent(e);
      }
    } catch (const std::exception& e) {
      Log::Warning("alert stream: replay failed", {{"error", e.what()}});
    }
  }
  ctx.res.status = 200;
  ctx.res.set_header("Content-Type", "text/event-stream");
  ctx.res.set_header("Cache-Control", "no-cache");
  ctx.res.set_header("X-Accel-Buffering", "no");  // nginx: do not buffer
  a->first = Chunk(greeting);
  auto held = std::make_shared<std::unique_ptr<Adoption>>(std::move(a));
  bool handed = ctx.HandOffStream(
      [this, held](std::unique_ptr<StreamSocket> socket, std::string head) {
        std::unique_ptr<Adoption> adoption = std::move(*held);
        adoption->socket = std::move(socket);
        adoption->first = head + adoption->first;
        Adopt(std::move(adoption));
      });
  if (!handed) {
    held->reset();  // gives the slot back
    throw Unavailable("the connection cannot be turned into a stream");
  }
}

void SseHub::Adopt(std::unique_ptr<Adoption> a) {
  {
    absl::MutexLock l(&mu_);
    if (!stop_) {
      adopted_.push_back(std::move(a));
      a = nullptr;
    }
  }
  Wake();
  // When stopped, `a` is destroyed here: socket closed, slot given back.
}

void SseHub::Publish(const std::vector<SseEvent>& events, bool is_status) {
  if (events.empty()) return;
  {
    absl::MutexLock l(&mu_);
    for (const SseEvent& e : events) {
      std::string text = FormatSseEvent(e);
      if (is_status) last_status_ = text;
      backlog_bytes_ += text.size();
      backlog_.emplace_back(next_seq_++, std::move(text));
    }
    while (backlog_.size() > 1 && (backlog_.size() > options_.backlog ||
                                   backlog_bytes_ > options_.backlog_bytes)) {
      backlog_bytes_ -= backlog_.front().second.size();
      backlog_.pop_front();
    }
  }
  Wake();
}

bool SseHub::RenderWork() const {
  return stop_ || (open_ > 0 && (!pending_.empty() || status_due_));
}

void SseHub::RunRender() {
  absl::Time next_status = absl::InfinitePast();
  absl::MutexLock l(&mu_);
  while (!stop_) {
    absl::Time deadline = open_ > 0 ? next_status : absl::InfiniteFuture();
    if (!mu_.AwaitWithDeadline(absl::Condition(this, &SseHub::RenderWork),
                               deadline) &&
        open_ > 0) {
      status_due_ = true;  // the interval passed
    }
    if (stop_) break;
    if (open_ == 0) {
      pending_.clear();
      status_due_ = false;
      continue;
    }
    std::vector<std::string> payloads;
    if (pending_.size() <= kRenderBatch) {
      payloads.swap(pending_);
    } else {
      auto end = pending_.begin() + kRenderBatch;
      payloads.assign(std::make_move_iterator(pending_.begin()),
                      std::make_move_iterator(end));
      pending_.erase(pending_.begin(), end);
    }
    bool render_status = status_due_;
    status_due_ = false;
    mu_.Unlock();
    try {
      if (!payloads.empty()) {
        Publish(options_.render(std::move(payloads)), false);
      }
      if (render_status) {
        Publish({options_.status()}, true);
        next_status = absl::Now() + options_.status_interval;
      }
    } catch (const std::exception& e) {
      Log::Error("alert stream: rendering failed", {{"error", e.what()}});
      if (render_status) next_status = absl::Now() + options_.status_interval;
    }
    mu_.Lock();
  }
}

// Sends what the socket takes. False when the stream must close: the
// client is gone, the last chunk is out, or nothing was accepted for
// write_timeout.
bool SseHub::Send(Stream& s, absl::Time now) {
  while (s.unsent() > 0) {
    ssize_t n = ::send(s.socket->fd(), s.out.data() + s.off, s.unsent(),
                       MSG_NOSIGNAL | MSG_DONTWAIT);
    if (n > 0) {
      s.off += static_cast<size_t>(n);
      s.last_progress = now;
      continue;
    }
    if (n < 0 && errno == EINTR) continue;
    if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) break;
    return false;
  }
  if (s.unsent() == 0) {
    s.out.clear();
    s.off = 0;
    if (s.ending) return false;
    s.last_progress = now;
  } else if (s.off > (64 << 10)) {
    s.out.erase(0, s.off);
    s.off = 0;
  }
  return s.unsent() == 0 || now - s.last_progress < options_.write_timeout;
}

void SseHub::CloseStream(int fd) {
  epoll_ctl(epoll_fd_, EPOLL_CTL_DEL, fd, nullptr);
  absl::MutexLock l(&mu_);
  --open_;
}

void SseHub::RunWriter() {
  absl::flat_hash_map<int, std::unique_ptr<Stream>> streams;
  std::vector<epoll_event> events(256);
  auto close = [&](int fd) {
    CloseStream(fd);
    streams.erase(fd);  // the StreamSocket closes the connection
  };
  for (;;) {
    int n = epoll_wait(epoll_fd_, events.data(),
                       static_cast<int>(events.size()), kWriterTickMs);
    absl::Time now = absl::Now();
    std::vector<int> gone;
    for (int i = 0; i < n; ++i) {
      int fd = events[i].data.fd;
      if (fd == wake_fd_) {
        uint64_t v;
        while (::read(wake_fd_, &v, sizeof(v)) > 0) {
        }
      } else if (events[i].events & (EPOLLRDHUP | EPOLLHUP | EPOLLERR)) {
        gone.push_back(fd);
      }
    }
    for (int fd : gone) {
      if (streams.count(fd) > 0) close(fd);
    }
    std::vector<std::unique_ptr<Adoption>> adopted;
    bool stop, ending;
    {
      absl::MutexLock l(&mu_);
      adopted.swap(adopted_);
      stop = stop_;
      ending = ending_ || Ending();
      if (stop) {
        for (auto& [fd, s] : streams) {
          epoll_ctl(epoll_fd_, EPOLL_CTL_DEL, fd, nullptr);
          --open_;
        }
      }
    }
    if (stop) return;  // `streams` and `adopted` close their sockets
    for (std::unique_ptr<Adoption>& a : adopted) {
      a->handed = true;  // from here the stream gives its slot back
      auto s = std::make_unique<Stream>();
      s->socket = std::move(a->socket);
      s->cursor = a->cursor;
      s->out = std::move(a->first);
      s->next_keepalive = now + options_.keepalive_interval;
      s->last_progress = now;
      int fd = s->socket->fd();
      epoll_event ev{};
      ev.events = EPOLLOUT | EPOLLRDHUP | EPOLLET;
      ev.data.fd = fd;
      epoll_ctl(epoll_fd_, EPOLL_CTL_ADD, fd, &ev);
      streams[fd] = std::move(s);
    }
    {
      // New events, for every stream with room for them.
      absl::MutexLock l(&mu_);
      for (auto& [fd, sp] : streams) {
        Stream& s = *sp;
        if (s.ending || s.cursor >= next_seq_ ||
            s.unsent() >= options_.max_unsent_bytes) {
          continue;
        }
        std::string text;
        uint64_t first = backlog_.empty() ? next_seq_ : backlog_.front().first;
        if (s.cursor < first) {
          // A stream that fell behind the backlog skips what was dropped.
          absl::StrAppend(&text, ": ", first - s.cursor,
                          " events dropped: this stream fell behind\n\n");
          s.cursor = first;
        }
        for (size_t i = s.cursor - first;
             i < backlog_.size() && text.size() < options_.max_unsent_bytes;
             ++i) {
          text += backlog_[i].second;
          s.cursor = backlog_[i].first + 1;
        }
        s.out += Chunk(text);
      }
    }
    std::vector<int> done;
    for (auto& [fd, sp] : streams) {
      Stream& s = *sp;
      if (ending && !s.ending) {
        s.out += Chunk(": server shutting down\n\n") + "0\r\n\r\n";
        s.ending = true;
      } else if (!s.ending && now >= s.next_keepalive) {
        s.out += Chunk(": keepalive\n\n");
        s.next_keepalive = now + options_.keepalive_interval;
      }
      if (!Send(s, now)) done.push_back(fd);
    }
    for (int fd : done) close(fd);
  }
}

}  // namespace pggitops::server
