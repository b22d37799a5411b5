// SseHub: the Server-Sent Events fan-out behind GET /api/v1/alerts/stream
// (CONTRACT sections 5, 8 and 10).
//
// A stream holds no HTTP worker: once a request is authenticated, Serve
// reserves a slot and hands the connection over (RequestContext::
// HandOffStream); the hub's writer thread then owns the socket and writes
// to every open stream without blocking (epoll). So SSE_MAX_STREAMS can be
// far above API_WORKERS, and open streams never starve other requests.
//
// One render thread turns notifications (the `pggit_alerts` payloads of the
// daemon's PgListener) into rendered events once, and renders a status
// event every `status_interval` while any stream is open; every stream
// relays them from a bounded backlog, plus a keep-alive comment of its own
// every `keepalive_interval`. A stream whose client stops reading keeps at
// most about `max_unsent_bytes` queued and skips what the backlog dropped
// (it is told so in a comment); one that cannot be written for
// `write_timeout` is closed. Nothing touches the database while no stream is
// open.
//
//   SseHubOptions o;
//   o.max_streams = config.sse_max_streams;
//   o.render = [](std::vector<std::string> payloads) { ... };
//   o.status = [] { ... };
//   auto hub = std::make_unique<SseHub>(std::move(o));
//   listener->Subscribe("pggit_alerts",
//                       [h = hub.get()](const std::string& p) { h->Notify(p);
//                       });
//   router->Add({"GET", "/api/v1/alerts/stream", ...,
//                [h = hub.get()](RequestContext& ctx) { h->Serve(ctx); },
//                /*streaming=*/true});
//   ...
//   hub->EndStreams();  // SIGTERM: every stream ends cleanly
//   hub->Shutdown();    // before the HTTP server is destroyed
//
// Thread-safe.
#ifndef PGGITOPS_SERVER_ROUTES_SSE_HUB_H_
#define PGGITOPS_SERVER_ROUTES_SSE_HUB_H_

#include <cstddef>
#include <cstdint>
#include <deque>
#include <functional>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "server/http/request_context.h"

namespace pggitops::server {

// One message. `data` may hold line ends (one "data:" line is written per
// line); CR, LF and NUL are left out of `event` and `id`.
struct SseEvent {
  std::string event;  // "alert", "system_status"
  std::string data;
  std::string id;  // optional "id:" field ("" for none)
};

// "event: E\nid: I\ndata: D\n\n" (no id line when id is empty; one
// "data: " line per line of D, which EventSource joins with "\n").
std::string FormatSseEvent(const SseEvent& e);

// `data` as one HTTP/1.1 chunk ("<hex size>\r\n<data>\r\n"); "" for "".
std::string Chunk(const std::string& data);

struct SseHubOptions {
  // Open streams allowed at once; more are answered 503. 0 refuses all.
  int max_streams = 1000;
  // How often `status` is rendered and sent while streams are open.
  absl::Duration status_interval = absl::Seconds(5);
  // How often each stream writes a comment line.
  absl::Duration keepalive_interval = absl::Seconds(15);
  // Events (and bytes of them) kept for streams that fell behind; older
  // ones are dropped, and a stream that missed some is told so in a comment.
  size_t backlog = 4096;
  size_t backlog_bytes = 8 << 20;
  // A stream takes more events from the backlog only while less than this
  // is waiting to be sent to its client.
  size_t max_unsent_bytes = 64 << 10;
  // A stream whose socket accepts nothing for this long is closed.
  absl::Duration write_timeout = absl::Seconds(30);
  // Renders the events for the notification payloads received since the
  // last call (in arrival order). Runs on the render thread; may query the
  // database. Required.
  std::function<std::vector<SseEvent>(std::vector<std::string> payloads)>
      render;
  // Renders the status event. Runs on the render thread. Required.
  std::function<SseEvent()> status;
  // Events a reconnecting client missed, given its Last-Event-ID header;
  // runs on the request's worker once the stream is registered (so nothing
  // is missed, though an event may come twice). Optional.
  std::function<std::vector<SseEvent>(const std::string& last_event_id)> replay;
  // True once streams must end (the daemon drains). Default: never.
  std::function<bool()> ending;
};

class SseHub {
 public:
  // Starts the render and writer threads.
  explicit SseHub(SseHubOptions options);
  // Shutdown().
  ~SseHub();
  SseHub(const SseHub&) = delete;
  SseHub& operator=(const SseHub&) = delete;

  // Queues a notification payload for `render`. Never blocks for long (it
  // runs on the listener's thread); dropped while no stream is open.
  void Notify(std::string payload);

  // Answers the request with an event stream and takes its connection, or
  // throws HttpError 503 when `max_streams` are open, the hub is ending, or
  // the connection cannot be handed over.
  void Serve(RequestContext& ctx);

  // Ends every stream (": server shutting down", then the last chunk) and
  // refuses new ones. Returns at once; open_streams() reaches 0 as the
  // writer closes them.
  void EndStreams();
  // Closes every stream and joins the threads. Idempotent.
  void Shutdown();

  int open_streams() const;

 private:
  struct Stream;
  struct Adoption;
  void RunRender();
  void RunWriter();
  // Appends rendered events to the backlog and wakes the writer.
  void Publish(const std::vector<SseEvent>& events, bool is_status);
  bool Ending() const;
  bool RenderWork() const ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void Wake();
  void Adopt(std::unique_ptr<Adoption> a);
  // Writer thread: moves new backlog events into a stream's buffer, adds a
  // keep-alive when due, and sends what the socket takes. False when the
  // stream must close.
  bool Pump(Stream& s, absl::Time now);
  bool Send(Stream& s, absl::Time now);
  void CloseStream(int fd);

  const SseHubOptions options_;
  mutable absl::Mutex mu_;
  std::deque<std::pair<uint64_t, std::string>> backlog_
      ABSL_GUARDED_BY(mu_);  // (seq, text)
  size_t backlog_bytes_ ABSL_GUARDED_BY(mu_) = 0;
  uint64_t next_seq_ ABSL_GUARDED_BY(mu_) = 0;
  std::string last_status_ ABSL_GUARDED_BY(mu_);  // the newest status event
  std::vector<std::string> pending_ ABSL_GUARDED_BY(mu_);
  std::vector<std::unique_ptr<Adoption>> adopted_ ABSL_GUARDED_BY(mu_);
  int open_ ABSL_GUARDED_BY(mu_) = 0;         // streams reserved or open
  int64_t dropped_ ABSL_GUARDED_BY(mu_) = 0;  // notifications dropped
  bool status_due_ ABSL_GUARDED_BY(mu_) = false;
  bool ending_ ABSL_GUARDED_BY(mu_) = false;
  bool stop_ ABSL_GUARDED_BY(mu_) = false;
  int epoll_fd_ = -1;
  int wake_fd_ = -1;
  std::thread render_thread_;
  std::thread writer_thread_;
};

}  // namespace pggitops::server

#endif  // PGGITOPS_SERVER_ROUTES_SSE_HUB_H_
