#include "pggitops/log.h"

#include <unistd.h>

#include <atomic>
#include <cstdio>
#include <string>

#include "absl/synchronization/mutex.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "nlohmann/json.hpp"

namespace pggitops {
namespace {

std::atomic<int> g_level{static_cast<int>(LogLevel::kInfo)};
thread_local std::string t_request_id;

struct FileSink {
  absl::Mutex mu;
  std::string path ABSL_GUARDED_BY(mu);
  FILE* file ABSL_GUARDED_BY(mu) = nullptr;
};

FileSink& Sink() {
  static FileSink* sink = new FileSink();  // never deleted
  return *sink;
}

absl::Status OpenLocked(FileSink& sink) ABSL_EXCLUSIVE_LOCKS_REQUIRED(sink.mu) {
  if (sink.file != nullptr) {
    std::fclose(sink.file);
    sink.file = nullptr;
  }
  if (sink.path.empty()) return absl::OkStatus();
  sink.file = std::fopen(sink.path.c_str(), "ae");
  if (sink.file == nullptr) {
    return absl::UnavailableError("cannot open log file " + sink.path);
  }
  std::setvbuf(sink.file, nullptr, _IOLBF, 0);
  return absl::OkStatus();
}

}  // namespace

void Log::SetLevel(LogLevel level) {
  g_level.store(static_cast<int>(level), std::memory_order_relaxed);
}

LogLevel Log::level() {
  return static_cast<LogLevel>(g_level.load(std::memory_order_relaxed));
}

absl::Status Log::SetFile(const std::string& path) {
  FileSink& sink = Sink();
  absl::MutexLock lock(&sink.mu);
  sink.path = path;
  return OpenLocked(sink);
}

absl::Status Log::ReopenFile() {
  FileSink& sink = Sink();
  absl::MutexLock lock(&sink.mu);
  return OpenLocked(sink);
}

void Log::Write(LogLevel level, absl::string_view message,
                std::initializer_list<LogField> fields) {
  if (level < Log::level()) return;
  nlohmann::json line = nlohmann::json::object();
  line["time"] = absl::FormatTime("%Y-%m-%dT%H:%M:%E3SZ", absl::Now(),
                                  absl::UTCTimeZone());
  line["level"] = LogLevelName(level);
  line["message"] = std::string(message);
  if (!t_request_id.empty()) line["request_id"] = t_request_id;
  for (const LogField& f : fields) line[std::string(f.first)] = f.second;
  std::string text =
      line.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
  text += '\n';
  // One write(2) per line keeps concurrent lines whole.
  ssize_t ignored = ::write(STDERR_FILENO, text.data(), text.size());
  (void)ignored;
  if (level >= LogLevel::kWarning) {
    FileSink& sink = Sink();
    absl::MutexLock lock(&sink.mu);
    if (sink.file != nullptr) std::fputs(text.c_str(), sink.file);
  }
}

ScopedLogRequestId::ScopedLogRequestId(std::string id)
    : previous_(std::move(t_request_id)) {
  t_request_id = std::move(id);
}

ScopedLogRequestId::~ScopedLogRequestId() {
  t_request_id = std::move(previous_);
}

}  // namespace pggitops
