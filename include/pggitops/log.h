// File: pggitops/log.h
//
// Structured logging. Every line the library writes goes through Log: a
// level, a message, the current request id when there is one, and caller
// fields. By default a line is one JSON object on stderr (journald keeps
// it), and warnings and errors can also go to a file (PGGIT_LOG_FILE) which
// ReopenFile() reopens for logrotate (the daemon calls it on SIGHUP).
//
// An application with a logger of its own routes the library's lines there
// with a LogSink (LevelDB's Options::info_log is the model):
//
//   class MyLogSink : public pggitops::LogSink {
//    public:
//     void Write(const pggitops::LogRecord& r) override {
//       my_logger.log(ToMyLevel(r.level), std::string(r.message));
//     }
//   };
//   pggitops::Log::SetSink(std::make_shared<MyLogSink>());
//
// Log is process-wide and thread-safe: every function may be called from
// any thread at any time.
#ifndef PGGITOPS_INCLUDE_LOG_H_
#define PGGITOPS_INCLUDE_LOG_H_

#include <initializer_list>
#include <memory>
#include <string>
#include <utility>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "absl/types/span.h"
#include "pggitops/export.h"

namespace pggitops {

// NOTE: values are compared (a level and everything above it is logged);
// do not renumber.
enum class LogLevel { kDebug = 0, kInfo = 1, kWarning = 2, kError = 3 };

// "DEBUG", "INFO", "WARNING", "ERROR".
PGGITOPS_EXPORT const char* LogLevelName(LogLevel level);

// Parses a level name (DEBUG, INFO, WARNING or WARN, ERROR;
// case-insensitive). Error: kInvalidArgument naming the accepted names.
PGGITOPS_EXPORT absl::StatusOr<LogLevel> ParseLogLevel(const std::string& s);

using LogField = std::pair<absl::string_view, std::string>;

// One line, as a LogSink receives it. The views are valid only during the
// Write call.
struct PGGITOPS_EXPORT LogRecord {
  absl::Time time;  // when it was written (wall clock)
  LogLevel level = LogLevel::kInfo;
  absl::string_view message;
  // The request id of the writing thread (ScopedLogRequestId); "" when none.
  absl::string_view request_id;
  // Caller fields in the order given, e.g. {"error", "..."}.
  absl::Span<const LogField> fields;
};

// Where log lines go instead of stderr. Write is called from any thread,
// concurrently, for every line at or above Log::level(): implementations
// must be thread-safe and should not block for long. A sink must not log
// through Log itself (the line would come back to it).
class PGGITOPS_EXPORT LogSink {
 public:
  virtual ~LogSink() = default;
  virtual void Write(const LogRecord& record) = 0;
};

// The JSON line the default output writes for `record` (with its newline):
// {"time": "...Z", "level": "INFO", "message": "...", "request_id": "...",
//  <fields>}. For a sink that wants the library's format.
PGGITOPS_EXPORT std::string FormatLogLine(const LogRecord& record);

// Settings of the process-wide log (LogOptionsFromConfig in config.h reads
// API_LOG_LEVEL and PGGIT_LOG_FILE).
struct PGGITOPS_EXPORT LogOptions {
  // Least severe level written. Default: kInfo (API_LOG_LEVEL).
  LogLevel level = LogLevel::kInfo;
  // Also append warnings and errors to this file; empty: none. Ignored
  // while a sink is set. Default: "" (PGGIT_LOG_FILE).
  std::string file;
  // Null: JSON lines on stderr (and `file`). Default: null.
  std::shared_ptr<LogSink> sink;
};

class PGGITOPS_EXPORT Log {
 public:
  // Applies every option (level, file, sink). Error: kUnavailable when the
  // file cannot be opened (level and sink are applied anyway).
  static absl::Status Configure(const LogOptions& options);

  static void SetLevel(LogLevel level);
  static LogLevel level();
  static bool Enabled(LogLevel level) { return level >= Log::level(); }

  // Sends every line to `sink` from now on instead of stderr and the file;
  // null restores the default output. The log keeps a reference: a line
  // being written while the sink is replaced still reaches the old one,
  // which lives until that line is done.
  static void SetSink(std::shared_ptr<LogSink> sink);

  // Opens (appending) `path` for warnings and errors; empty closes it.
  static absl::Status SetFile(const std::string& path);
  // Reopens the file set by SetFile (after logrotate moved it).
  static absl::Status ReopenFile();

  static void Write(LogLevel level, absl::string_view message,
                    std::initializer_list<LogField> fields = {});

  static void Debug(absl::string_view m,
                    std::initializer_list<LogField> f = {}) {
    if (Enabled(LogLevel::kDebug)) Write(LogLevel::kDebug, m, f);
  }
  static void Info(absl::string_view m,
                   std::initializer_list<LogField> f = {}) {
    if (Enabled(LogLevel::kInfo)) Write(LogLevel::kInfo, m, f);
  }
  static void Warning(absl::string_view m,
                      std::initializer_list<LogField> f = {}) {
    Write(LogLevel::kWarning, m, f);
  }
  static void Error(absl::string_view m,
                    std::initializer_list<LogField> f = {}) {
    Write(LogLevel::kError, m, f);
  }
};

// Sets the request id included in log lines written by this thread while
// the object lives.
class PGGITOPS_EXPORT ScopedLogRequestId {
 public:
  explicit ScopedLogRequestId(std::string id);
  ~ScopedLogRequestId();
  ScopedLogRequestId(const ScopedLogRequestId&) = delete;
  ScopedLogRequestId& operator=(const ScopedLogRequestId&) = delete;

 private:
  std::string previous_;
};

}  // namespace pggitops

#endif  // PGGITOPS_INCLUDE_LOG_H_
