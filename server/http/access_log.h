// File: access_log.h
//
// The access log of pggit-api: one JSON line per request, in the shape of
// pggitops::Log's lines (time, level, message "request", request_id, then
// method, path, route, status, duration_ms, remote_addr), but gathered in
// memory and written to stderr in batches (CONTRACT section 8: not one
// write(2) per request). For DEBUG and INFO lines: lines at WARNING and
// above go through Log::Write at once, so PGGIT_LOG_FILE receives them.
//
// Thread-safe. A background thread writes every `interval` or when the
// batch reaches `max_batch_bytes`; a full backlog (stderr stuck) drops lines
// and counts them rather than growing.
#ifndef PGGITOPS_SERVER_HTTP_ACCESS_LOG_H_
#define PGGITOPS_SERVER_HTTP_ACCESS_LOG_H_

#include <cstddef>
#include <cstdint>
#include <functional>
#include <initializer_list>
#include <string>
#include <thread>
#include <utility>

#include "absl/base/thread_annotations.h"
#include "absl/strings/string_view.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "pggitops/log.h"

namespace pggitops::server {

// Appends `s` to *out as a JSON string (quotes included); invalid UTF-8 is
// replaced by U+FFFD, as Log does.
void AppendJsonString(absl::string_view s, std::string* out);

class AccessLog {
 public:
  struct Options {
    absl::Duration interval = absl::Milliseconds(100);
    size_t max_batch_bytes = 64 << 10;
    size_t max_backlog_bytes = 8 << 20;
    // Where batches go; default: write(2) to stderr.
    std::function<void(absl::string_view)> sink;
  };
  AccessLog() : AccessLog(Options{}) {}
  explicit AccessLog(Options options);
  // Writes what is left.
  ~AccessLog();
  AccessLog(const AccessLog&) = delete;
  AccessLog& operator=(const AccessLog&) = delete;

  // Logs one line at `level` (DEBUG or INFO; nothing when Log would not log
  // that level) with `request_id` and `fields`, in order.
  void Write(
      LogLevel level, absl::string_view request_id,
      std::initializer_list<std::pair<absl::string_view, absl::string_view>>
          fields);
  // Writes what is batched now.
  void Flush();
  int64_t dropped() const;

 private:
  void Run();
  bool Due() const ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);

  const Options options_;
  mutable absl::Mutex mu_;
  std::string batch_ ABSL_GUARDED_BY(mu_);
  int64_t dropped_ ABSL_GUARDED_BY(mu_) = 0;
  bool stop_ ABSL_GUARDED_BY(mu_) = false;
  // One batch written at a time, in order; taken before mu_.
  absl::Mutex write_mu_ ABSL_ACQUIRED_BEFORE(mu_);
  std::thread thread_;
};

}  // namespace pggitops::server

#endif  // PGGITOPS_SERVER_HTTP_ACCESS_LOG_H_
