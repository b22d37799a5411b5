#include "pggitops/log.h"

#include <unistd.h>

#include <atomic>
#include <cstdio>
#include <memory>
#include <string>
#include <utility>

#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "nlohmann/json.hpp"

namespace pggitops {
namespace {

std::atomic<int> g_level{static_cast<int>(LogLevel::kInfo)};
thread_local std::string t_request_id;
// Read with std::atomic_load: a writer holds its own reference while it
// writes, so SetSink never waits and never frees a sink in use.
std::shared_ptr<LogSink> g_sink;

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

const char* LogLevelName(LogLevel level) {
  switch (level) {
    case LogLevel::kDebug:
      return "DEBUG";
    case LogLevel::kInfo:
      return "INFO";
    case LogLevel::kWarning:
      return "WARNING";
    case LogLevel::kError:
      return "ERROR";
  }
  return "INFO";
}

absl::StatusOr<LogLevel> ParseLogLevel(const std::string& s) {
  std::string upper = absl::AsciiStrToUpper(absl::StripAsciiWhitespace(s));
  if (upper == "DEBUG") return LogLevel::kDebug;
  if (upper == "INFO") return LogLevel::kInfo;
  if (upper == "WARNING" || upper == "WARN") return LogLevel::kWarning;
  if (upper == "ERROR") return LogLevel::kError;
  return absl::InvalidArgumentError(absl::StrCat(
      "unknown log level \"", s, "\": use DEBUG, INFO, WARNING or ERROR"));
}

std::string FormatLogLine(const LogRecord& record) {
  nlohmann::json line = nlohmann::json::object();
  line["time"] = absl::FormatTime("%Y-%m-%dT%H:%M:%E3SZ", record.time,
                                  absl::UTCTimeZone());
  line["level"] = LogLevelName(record.level);
  line["message"] = std::string(record.message);
  if (!record.request_id.empty()) {
    line["request_id"] = std::string(record.request_id);
  }
  for (const LogField& f : record.fields) line[std::string(f.first)] = f.second;
  std::string text =
      line.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
  text += '\n';
  return text;
}

absl::Status Log::Configure(const LogOptions& options) {
  SetLevel(options.level);
  SetSink(options.sink);
  return SetFile(options.file);
}

void Log::SetSink(std::shared_ptr<LogSink> sink) {
  std::atomic_store(&g_sink, std::move(sink));
}

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
  LogRecord record;
  record.time = absl::Now();
  record.level = level;
  record.message = message;
  record.request_id = t_request_id;
  record.fields = absl::MakeConstSpan(fields.begin(), fields.size());
  if (std::shared_ptr<LogSink> sink = std::atomic_load(&g_sink)) {
    sink->Write(record);
    return;
  }
  const std::string text = FormatLogLine(record);
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
