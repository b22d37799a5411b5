// File: pggitops/log.h
//
// Structured logging: one JSON object per line on stderr (journald keeps
// it), with time, level, message, the current request id when there is one,
// and caller fields. Warnings and errors can also go to a file (PGGIT_LOG_FILE)
// which ReopenFile() reopens for logrotate (the daemon calls it on SIGHUP).
#ifndef PGGITOPS_INCLUDE_LOG_H_
#define PGGITOPS_INCLUDE_LOG_H_

#include <initializer_list>
#include <string>
#include <utility>

#include "absl/status/status.h"
#include "absl/strings/string_view.h"
#include "pggitops/config.h"
#include "pggitops/export.h"

namespace pggitops {

using LogField = std::pair<absl::string_view, std::string>;

// Process-wide and thread-safe.
class PGGITOPS_EXPORT Log {
 public:
  static void SetLevel(LogLevel level);
  static LogLevel level();
  static bool Enabled(LogLevel level) { return level >= Log::level(); }

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
