#include "server/routes/sse_hub.h"

#include <algorithm>
#include <exception>
#include <memory>
#include <utility>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "pggitops/log.h"
#include "server/http/errors.h"

namespace pggitops::server {
namespace {

// Longest time one call of a stream's content provider waits, so a stream
// notices the daemon draining (and cpp-httplib its stop) promptly.
constexpr absl::Duration kPumpSlice = absl::Milliseconds(250);
// Notifications kept for the hub thread at most; a burst beyond is dropped.
constexpr size_t kMaxPending = 10000;
// Notifications rendered (and published) at once, so a burst reaches the
// streams in steps and never overruns the backlog in one go.
constexpr size_t kRenderBatch = 256;

std::chrono::microseconds Chrono(absl::Duration d) {
  return absl::ToChronoMicroseconds(std::max(d, absl::ZeroDuration()));
}

}  // namespace

struct SseHub::Stream {
  uint64_t cursor = 0;        // seq of the next event to send
  std::string first_status;   // the newest status when the stream opened
  std::string replayed;       // events missed before a reconnection
  bool greeted = false;       // the preamble was written
  absl::Time next_keepalive;  // when the next comment line is due
};

std::string FormatSseEvent(const SseEvent& e) {
  std::string out = absl::StrCat("event: ", e.event, "\n");
  if (!e.id.empty()) absl::StrAppend(&out, "id: ", e.id, "\n");
  absl::StrAppend(&out, "data: ", e.data, "\n\n");
  return out;
}

SseHub::SseHub(SseHubOptions options) : options_(std::move(options)) {
  thread_ = std::thread([this] { Run(); });
}

SseHub::~SseHub() {
  {
    std::lock_guard<std::mutex> l(mu_);
    stop_ = true;
  }
  hub_cv_.notify_all();
  streams_cv_.notify_all();
  thread_.join();
}

bool SseHub::Ending() const { return options_.ending && options_.ending(); }

int SseHub::open_streams() const {
  std::lock_guard<std::mutex> l(mu_);
  return open_;
}

void SseHub::Notify(std::string payload) {
  {
    std::lock_guard<std::mutex> l(mu_);
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
  hub_cv_.notify_one();
}

void SseHub::Serve(RequestContext& ctx) {
  if (Ending()) throw Unavailable("the server is shutting down");
  auto stream = std::make_shared<Stream>();
  {
    std::lock_guard<std::mutex> l(mu_);
    if (stop_ || open_ >= options_.max_streams) {
      HttpError e = Unavailable(absl::StrCat(
          "too many open alert streams (SSE_MAX_STREAMS=", options_.max_streams,
          "); try again later"));
      e.headers.emplace_back("Retry-After", "5");
      throw e;
    }
    ++open_;
    stream->cursor = next_seq_;
    if (open_ == 1) {
      // The status was not rendered while nobody listened: render one now.
      last_status_.clear();
      status_due_ = true;
    } else {
      stream->first_status = last_status_;
    }
  }
  hub_cv_.notify_one();
  // Registered first, replayed second: an alert committed in between comes
  // twice rather than never (clients can tell by its id).
  std::string last_id = ctx.req.get_header_value("Last-Event-ID");
  if (!last_id.empty() && options_.replay) {
    try {
      for (const SseEvent& e : options_.replay(last_id)) {
        stream->replayed += FormatSseEvent(e);
      }
    } catch (const std::exception& e) {
      Log::Warning("alert stream: replay failed", {{"error", e.what()}});
    }
  }
  stream->next_keepalive = absl::Now() + options_.keepalive_interval;
  ctx.res.status = 200;
  ctx.res.set_header("Cache-Control", "no-cache");
  ctx.res.set_header("X-Accel-Buffering", "no");  // nginx: do not buffer
  ctx.res.set_chunked_content_provider(
      "text/event-stream",
      [this, stream](size_t, httplib::DataSink& sink) {
        return Pump(
            *stream,
            [&sink](const std::string& s) {
              return sink.write(s.data(), s.size());
            },
            [&sink] { sink.done(); });
      },
      // Runs when the response is destroyed, however the stream ended.
      [this](bool) {
        std::lock_guard<std::mutex> l(mu_);
        --open_;
      });
}

bool SseHub::Pump(Stream& s,
                  const std::function<bool(const std::string&)>& write,
                  const std::function<void()>& done) {
  std::string out;
  if (!s.greeted) {
    // Reconnect after 3 s; the comment makes the client see the stream open.
    s.greeted = true;
    out = "retry: 3000\n: connected\n\n";
    out += s.first_status;
    out += s.replayed;
    s.replayed.clear();
  }
  bool stopping = false;
  {
    std::unique_lock<std::mutex> l(mu_);
    if (out.empty() && !stop_ && next_seq_ == s.cursor) {
      absl::Duration wait =
          std::min(kPumpSlice, s.next_keepalive - absl::Now());
      streams_cv_.wait_for(l, Chrono(wait),
                           [&] { return stop_ || next_seq_ != s.cursor; });
    }
    stopping = stop_;
    if (!backlog_.empty() && s.cursor < next_seq_) {
      // A stream that fell behind the backlog skips what was dropped.
      uint64_t first = backlog_.front().first;
      if (s.cursor < first) {
        absl::StrAppend(&out, ": ", first - s.cursor,
                        " events dropped: this stream fell behind\n\n");
        s.cursor = first;
      }
      for (size_t i = s.cursor - first; i < backlog_.size(); ++i) {
        out += backlog_[i].second;
      }
    }
    s.cursor = next_seq_;
  }
  if (stopping || Ending()) {
    out += ": server shutting down\n\n";
    bool ok = write(out);
    if (ok) done();
    return ok;
  }
  absl::Time now = absl::Now();
  if (now >= s.next_keepalive) {
    out += ": keepalive\n\n";
    s.next_keepalive = now + options_.keepalive_interval;
  }
  if (out.empty()) return true;
  return write(out);
}

void SseHub::Publish(const std::vector<SseEvent>& events, bool is_status) {
  if (events.empty()) return;
  {
    std::lock_guard<std::mutex> l(mu_);
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
  streams_cv_.notify_all();
}

void SseHub::Run() {
  std::unique_lock<std::mutex> l(mu_);
  absl::Time next_status = absl::InfinitePast();
  auto has_work = [&] {
    return stop_ || (open_ > 0 && (!pending_.empty() || status_due_));
  };
  while (!stop_) {
    if (open_ > 0) {
      if (!hub_cv_.wait_for(l, Chrono(next_status - absl::Now()), has_work)) {
        status_due_ = true;  // the interval passed
      }
    } else {
      hub_cv_.wait(l, [&] { return stop_ || open_ > 0; });
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
    l.unlock();
    try {
      if (!payloads.empty())
        Publish(options_.render(std::move(payloads)), false);
      if (render_status) {
        Publish({options_.status()}, true);
        next_status = absl::Now() + options_.status_interval;
      }
    } catch (const std::exception& e) {
      Log::Error("alert stream: rendering failed", {{"error", e.what()}});
      if (render_status) next_status = absl::Now() + options_.status_interval;
    }
    l.lock();
  }
}

}  // namespace pggitops::server
