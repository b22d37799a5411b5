// SseHub: the Server-Sent Events fan-out behind GET /api/v1/alerts/stream
// (CONTRACT sections 5 and 10).
//
// One hub thread turns notifications (e.g. the `pggit_alerts` payloads of the
// daemon's PgListener) into rendered events once, and renders a status event
// every `status_interval` while any stream is open; every open stream relays
// them from a bounded backlog, plus a keep-alive comment of its own every
// `keepalive_interval`. Nothing touches the database while no stream is open.
//
// Each stream occupies one HTTP worker (cpp-httplib serves a connection per
// thread), so streams are capped at `max_streams` and a stream never blocks
// its worker for long: its content provider waits at most a quarter second
// per call, ends the stream cleanly once `ending()` turns true (the daemon
// drains), and fails as soon as a write to a departed client fails.
//
//   SseHubOptions o;
//   o.max_streams = config.sse_max_streams;
//   o.render = [](std::vector<std::string> payloads) { ... };
//   auto hub = std::make_unique<SseHub>(std::move(o));
//   listener->Subscribe("pggit_alerts",
//                       [h = hub.get()](const std::string& p) { h->Notify(p);
//                       });
//   router->Add({"GET", "/api/v1/alerts/stream", ...,
//                [h = hub.get()](RequestContext& ctx) { h->Serve(ctx); },
//                /*streaming=*/true});
//
// Thread-safe.
#ifndef PGGITOPS_SERVER_ROUTES_SSE_HUB_H_
#define PGGITOPS_SERVER_ROUTES_SSE_HUB_H_

#include <condition_variable>
#include <cstdint>
#include <deque>
#include <functional>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "absl/time/time.h"
#include "server/http/request_context.h"

namespace pggitops::server {

// One message. `data` must be one line (compact JSON).
struct SseEvent {
  std::string event;  // "alert", "system_status"
  std::string data;
  std::string id;  // optional "id:" field ("" for none)
};

// "event: E\nid: I\ndata: D\n\n" (no id line when id is empty).
std::string FormatSseEvent(const SseEvent& e);

struct SseHubOptions {
  // Open streams allowed at once; more are answered 503. 0 refuses all.
  int max_streams = 32;
  // How often `status` is rendered and sent while streams are open.
  absl::Duration status_interval = absl::Seconds(5);
  // How often each stream writes a comment line.
  absl::Duration keepalive_interval = absl::Seconds(15);
  // Events (and bytes of them) kept for streams that fell behind; older
  // ones are dropped, and a stream that missed some is told so in a comment.
  size_t backlog = 4096;
  size_t backlog_bytes = 8 << 20;
  // Renders the events for the notification payloads received since the
  // last call (in arrival order). Runs on the hub thread; may query the
  // database. Required.
  std::function<std::vector<SseEvent>(std::vector<std::string> payloads)>
      render;
  // Renders the status event. Runs on the hub thread. Required.
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
  // Starts the hub thread.
  explicit SseHub(SseHubOptions options);
  // Ends every stream and joins the hub thread.
  ~SseHub();
  SseHub(const SseHub&) = delete;
  SseHub& operator=(const SseHub&) = delete;

  // Queues a notification payload for `render`. Never blocks for long (it
  // runs on the listener's thread); dropped while no stream is open.
  void Notify(std::string payload);

  // Answers the request with an event stream, or throws HttpError 503 when
  // `max_streams` are open or `ending()` is true.
  void Serve(RequestContext& ctx);

  int open_streams() const;

 private:
  struct Stream;
  void Run();
  // Appends rendered events to the backlog and wakes the streams.
  void Publish(const std::vector<SseEvent>& events, bool is_status);
  // One call of a stream's content provider; false when the client is gone.
  bool Pump(Stream& s, const std::function<bool(const std::string&)>& write,
            const std::function<void()>& done);
  bool Ending() const;

  const SseHubOptions options_;
  mutable std::mutex mu_;
  std::condition_variable streams_cv_;  // new events, stop
  std::condition_variable hub_cv_;      // notifications, first stream, stop
  std::deque<std::pair<uint64_t, std::string>> backlog_;  // (seq, text)
  size_t backlog_bytes_ = 0;
  uint64_t next_seq_ = 0;
  std::string last_status_;  // text of the newest status event
  std::vector<std::string> pending_;
  int open_ = 0;
  int64_t dropped_ = 0;  // notifications dropped in bursts
  bool status_due_ = false;
  bool stop_ = false;
  std::thread thread_;
};

}  // namespace pggitops::server

#endif  // PGGITOPS_SERVER_ROUTES_SSE_HUB_H_
