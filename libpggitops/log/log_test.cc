// Structured logging: one whole JSON object per line on stderr, with the
// level filter, the per-thread request id, caller fields, and the file for
// warnings and errors that SIGHUP reopens. stderr is captured in a memfd;
// the log file lives in a folder of the test's own, removed at the end.
#include "pggitops/log.h"

#include <fcntl.h>
#include <sys/mman.h>
#include <unistd.h>

#include <cstdio>
#include <filesystem>
#include <fstream>
#include <memory>
#include <regex>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_split.h"
#include "absl/synchronization/mutex.h"
#include "doctest/doctest.h"
#include "nlohmann/json.hpp"
#include "testing/temp_dir.h"

namespace pggitops {
namespace {

using nlohmann::json;

// Sends fd 2 to an anonymous file while alive; Lines() are what was
// written since. O_APPEND, because a memfd's file position lacks the lock
// the kernel gives files opened by name: concurrent writes without it may
// land on one another (seen here: 1599 lines of 1600).
class CaptureStderr {
 public:
  CaptureStderr()
      : file_(memfd_create("log_test", MFD_CLOEXEC)), saved_(dup(2)) {
    REQUIRE(file_ >= 0);
    REQUIRE(saved_ >= 0);
    REQUIRE(fcntl(file_, F_SETFL, O_APPEND) == 0);
    REQUIRE(dup2(file_, 2) == 2);
  }
  ~CaptureStderr() {
    dup2(saved_, 2);
    close(saved_);
    close(file_);
  }
  CaptureStderr(const CaptureStderr&) = delete;
  CaptureStderr& operator=(const CaptureStderr&) = delete;

  std::string Text() const {
    std::string out;
    char buf[4096];
    ssize_t n;
    while ((n = pread(file_, buf, sizeof buf, static_cast<off_t>(out.size()))) >
           0) {
      out.append(buf, static_cast<size_t>(n));
    }
    return out;
  }
  std::vector<std::string> Lines() const {
    return absl::StrSplit(Text(), '\n', absl::SkipEmpty());
  }

 private:
  int file_;
  int saved_;
};

// Restores the process-wide level and closes the log file when a test
// ends, however it ends.
struct RestoreLog {
  LogLevel level = Log::level();
  ~RestoreLog() {
    Log::SetLevel(level);
    Log::SetSink(nullptr);
    (void)Log::SetFile("");
  }
};

std::string ReadAll(const std::string& path) {
  std::ifstream in(path);
  std::ostringstream s;
  s << in.rdbuf();
  return s.str();
}

json One(const CaptureStderr& capture) {
  std::vector<std::string> lines = capture.Lines();
  REQUIRE(lines.size() == 1);
  json j = json::parse(lines[0], nullptr, /*allow_exceptions=*/false);
  REQUIRE_MESSAGE(j.is_object(), lines[0]);
  return j;
}

TEST_CASE("Log: one JSON object per line with time, level, message, fields") {
  RestoreLog restore;
  Log::SetLevel(LogLevel::kInfo);
  CaptureStderr capture;
  Log::Info("cache warmed", {{"entries", "3"}, {"failed", "0"}});
  const std::string text = capture.Text();
  REQUIRE(!text.empty());
  CHECK(text.back() == '\n');
  CHECK(text.find('\n') == text.size() - 1);
  json j = One(capture);
  CHECK(j["level"] == "INFO");
  CHECK(j["message"] == "cache warmed");
  CHECK(j["entries"] == "3");
  CHECK(j["failed"] == "0");
  CHECK_FALSE(j.contains("request_id"));
  static const std::regex kTime(R"(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z)");
  CHECK_MESSAGE(std::regex_match(j["time"].get<std::string>(), kTime),
                j["time"]);
  CHECK(j.size() == 5);
}

TEST_CASE("Log: the level names, and each level's line") {
  RestoreLog restore;
  Log::SetLevel(LogLevel::kDebug);
  CaptureStderr capture;
  Log::Debug("d");
  Log::Info("i");
  Log::Warning("w");
  Log::Error("e");
  Log::Write(LogLevel::kWarning, "written");
  std::vector<std::string> lines = capture.Lines();
  REQUIRE(lines.size() == 5);
  const char* levels[] = {"DEBUG", "INFO", "WARNING", "ERROR", "WARNING"};
  const char* messages[] = {"d", "i", "w", "e", "written"};
  for (size_t i = 0; i < lines.size(); ++i) {
    json j = json::parse(lines[i]);
    CHECK(j["level"] == levels[i]);
    CHECK(j["message"] == messages[i]);
  }
}

TEST_CASE("Log: lines below the level are not written") {
  RestoreLog restore;
  Log::SetLevel(LogLevel::kWarning);
  CHECK(Log::level() == LogLevel::kWarning);
  CHECK_FALSE(Log::Enabled(LogLevel::kDebug));
  CHECK_FALSE(Log::Enabled(LogLevel::kInfo));
  CHECK(Log::Enabled(LogLevel::kWarning));
  CHECK(Log::Enabled(LogLevel::kError));
  CaptureStderr capture;
  Log::Debug("no");
  Log::Info("no");
  Log::Write(LogLevel::kInfo, "no");
  Log::Warning("yes");
  Log::SetLevel(LogLevel::kError);
  Log::Warning("no");
  Log::Error("yes");
  std::vector<std::string> lines = capture.Lines();
  REQUIRE(lines.size() == 2);
  CHECK(json::parse(lines[0])["level"] == "WARNING");
  CHECK(json::parse(lines[1])["level"] == "ERROR");
  CHECK(capture.Text().find("\"no\"") == std::string::npos);
}

TEST_CASE("Log: the request id of this thread, nested and restored") {
  RestoreLog restore;
  Log::SetLevel(LogLevel::kInfo);
  CaptureStderr capture;
  {
    ScopedLogRequestId outer("req-1");
    Log::Info("a");
    {
      ScopedLogRequestId inner("req-2");
      Log::Info("b");
      // Another thread has none.
      std::thread([] { Log::Info("other thread"); }).join();
    }
    Log::Info("c");
  }
  Log::Info("d");
  std::vector<std::string> lines = capture.Lines();
  REQUIRE(lines.size() == 5);
  CHECK(json::parse(lines[0])["request_id"] == "req-1");
  CHECK(json::parse(lines[1])["request_id"] == "req-2");
  CHECK(json::parse(lines[2])["message"] == "other thread");
  CHECK_FALSE(json::parse(lines[2]).contains("request_id"));
  CHECK(json::parse(lines[3])["request_id"] == "req-1");
  CHECK_FALSE(json::parse(lines[4]).contains("request_id"));
}

TEST_CASE("Log: newlines and invalid UTF-8 still give one valid line") {
  RestoreLog restore;
  Log::SetLevel(LogLevel::kInfo);
  CaptureStderr capture;
  Log::Info("two\nlines \"quoted\"", {{"bytes", std::string("a\xff\xfe"
                                                            "b")}});
  json j = One(capture);
  CHECK(j["message"] == "two\nlines \"quoted\"");
  // Each invalid byte becomes U+FFFD.
  CHECK(j["bytes"] ==
        "a\xEF\xBF\xBD\xEF\xBF\xBD"
        "b");
}

TEST_CASE("Log: concurrent lines stay whole") {
  RestoreLog restore;
  Log::SetLevel(LogLevel::kInfo);
  CaptureStderr capture;
  constexpr int kThreads = 8;
  constexpr int kLines = 200;
  const std::string padding(300, 'x');
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([t, &padding] {
      for (int i = 0; i < kLines; ++i) {
        Log::Info("line", {{"thread", std::to_string(t)}, {"pad", padding}});
      }
    });
  }
  for (std::thread& t : threads) t.join();
  std::vector<std::string> lines = capture.Lines();
  CHECK(lines.size() == static_cast<size_t>(kThreads * kLines));
  std::vector<int> per_thread(kThreads, 0);
  for (const std::string& line : lines) {
    json j = json::parse(line, nullptr, /*allow_exceptions=*/false);
    REQUIRE_MESSAGE(j.is_object(), line);
    REQUIRE(j["pad"] == padding);
    ++per_thread[std::stoi(j["thread"].get<std::string>())];
  }
  for (int n : per_thread) CHECK(n == kLines);
}

TEST_CASE("Log file: warnings and errors appended, reopened after a move") {
  RestoreLog restore;
  Log::SetLevel(LogLevel::kInfo);
  testing::TempDir dir("pggitops-log-test-");
  const std::string path = dir.path() + "/error.log";
  {
    std::ofstream old(path);
    old << "kept\n";
  }
  CaptureStderr capture;
  REQUIRE(Log::SetFile(path).ok());
  Log::Info("not in the file");
  Log::Warning("first", {{"k", "v"}});
  Log::Error("second");
  std::vector<std::string> lines =
      absl::StrSplit(ReadAll(path), '\n', absl::SkipEmpty());
  REQUIRE(lines.size() == 3);
  CHECK(lines[0] == "kept");  // appended, not truncated
  CHECK(json::parse(lines[1])["message"] == "first");
  CHECK(json::parse(lines[1])["k"] == "v");
  CHECK(json::parse(lines[2])["level"] == "ERROR");
  // The same lines went to stderr, the INFO one too.
  CHECK(capture.Lines().size() == 3);

  // logrotate moves the file; ReopenFile starts a new one there.
  REQUIRE(std::rename(path.c_str(), (path + ".1").c_str()) == 0);
  Log::Warning("into the moved file");
  REQUIRE(Log::ReopenFile().ok());
  Log::Warning("third");
  CHECK(absl::StrContains(ReadAll(path + ".1"), "into the moved file"));
  lines = absl::StrSplit(ReadAll(path), '\n', absl::SkipEmpty());
  REQUIRE(lines.size() == 1);
  CHECK(json::parse(lines[0])["message"] == "third");

  // An empty path closes the file.
  REQUIRE(Log::SetFile("").ok());
  Log::Error("stderr only");
  CHECK(ReadAll(path).find("stderr only") == std::string::npos);
  CHECK(Log::ReopenFile().ok());  // nothing to reopen
}

TEST_CASE("Log file: a path that cannot be opened is Unavailable") {
  RestoreLog restore;
  testing::TempDir dir("pggitops-log-test-");
  const std::string path = dir.path() + "/missing/error.log";
  absl::Status s = Log::SetFile(path);
  CHECK(absl::IsUnavailable(s));
  CHECK(absl::StrContains(s.message(), path));
  // Logging goes on, to stderr alone.
  CaptureStderr capture;
  Log::Error("still logged");
  CHECK(capture.Lines().size() == 1);
  CHECK(!std::filesystem::exists(path));
}

// A sink that keeps what it receives (the embedder's logger).
class RecordingSink : public LogSink {
 public:
  struct Line {
    LogLevel level;
    std::string message, request_id, formatted;
    std::vector<std::pair<std::string, std::string>> fields;
  };
  void Write(const LogRecord& r) override {
    Line line{r.level,
              std::string(r.message),
              std::string(r.request_id),
              FormatLogLine(r),
              {}};
    for (const LogField& f : r.fields) {
      line.fields.emplace_back(std::string(f.first), f.second);
    }
    absl::MutexLock l(&mu_);
    lines_.push_back(std::move(line));
  }
  std::vector<Line> lines() {
    absl::MutexLock l(&mu_);
    return lines_;
  }

 private:
  absl::Mutex mu_;
  std::vector<Line> lines_ ABSL_GUARDED_BY(mu_);
};

TEST_CASE("Log sink: every line at the level goes to the sink, not stderr") {
  RestoreLog restore;
  testing::TempDir dir("pggitops-log-test-");
  auto sink = std::make_shared<RecordingSink>();
  LogOptions options;
  options.level = LogLevel::kWarning;
  options.sink = sink;
  options.file = dir.path() + "/error.log";
  REQUIRE(Log::Configure(options).ok());
  CaptureStderr capture;
  Log::Info("below the level");
  {
    ScopedLogRequestId id("req-7");
    Log::Warning("pool timeout", {{"waited_ms", "30000"}});
  }
  Log::Error("query failed");
  std::vector<RecordingSink::Line> lines = sink->lines();
  REQUIRE(lines.size() == 2);
  CHECK(lines[0].level == LogLevel::kWarning);
  CHECK(lines[0].message == "pool timeout");
  CHECK(lines[0].request_id == "req-7");
  REQUIRE(lines[0].fields.size() == 1);
  CHECK(lines[0].fields[0].first == "waited_ms");
  CHECK(lines[0].fields[0].second == "30000");
  // FormatLogLine is the default output's line.
  json j = json::parse(lines[0].formatted);
  CHECK(j["level"] == "WARNING");
  CHECK(j["request_id"] == "req-7");
  CHECK(j["waited_ms"] == "30000");
  CHECK(lines[1].request_id.empty());
  // Nothing reached stderr or the file meanwhile.
  CHECK(capture.Text().empty());
  CHECK(ReadAll(options.file).empty());

  // Null restores the default output.
  Log::SetSink(nullptr);
  Log::Error("back on stderr");
  CHECK(capture.Lines().size() == 1);
  CHECK(sink->lines().size() == 2);
}

TEST_CASE("Log sink: replaced while other threads log; each line reaches one") {
  RestoreLog restore;
  Log::SetLevel(LogLevel::kInfo);
  auto first = std::make_shared<RecordingSink>();
  auto second = std::make_shared<RecordingSink>();
  Log::SetSink(first);
  constexpr int kThreads = 4;
  constexpr int kLines = 500;
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([] {
      for (int i = 0; i < kLines; ++i) Log::Info("line");
    });
  }
  Log::SetSink(second);
  for (std::thread& t : threads) t.join();
  CHECK(first->lines().size() + second->lines().size() ==
        static_cast<size_t>(kThreads * kLines));
}

TEST_CASE("ParseLogLevel and LogLevelName") {
  CHECK(*ParseLogLevel("debug") == LogLevel::kDebug);
  CHECK(*ParseLogLevel("INFO") == LogLevel::kInfo);
  CHECK(*ParseLogLevel("Warn") == LogLevel::kWarning);
  CHECK(*ParseLogLevel("warning") == LogLevel::kWarning);
  CHECK(*ParseLogLevel("ERROR") == LogLevel::kError);
  CHECK(ParseLogLevel("trace").status().code() ==
        absl::StatusCode::kInvalidArgument);
  for (LogLevel l : {LogLevel::kDebug, LogLevel::kInfo, LogLevel::kWarning,
                     LogLevel::kError}) {
    CHECK(*ParseLogLevel(LogLevelName(l)) == l);
  }
}

}  // namespace
}  // namespace pggitops
