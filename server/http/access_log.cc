#include "server/http/access_log.h"

#include <unistd.h>

#include <cstdio>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "pggitops/text.h"

namespace pggitops::server {
namespace {

// "2026-12-04T18:43:17.123Z": the part up to the seconds is formatted once
// per second and thread.
void AppendTime(std::string* out) {
  thread_local int64_t second = -1;
  thread_local std::string prefix;
  absl::Time now = absl::Now();
  int64_t ms = absl::ToUnixMillis(now);
  int64_t s = ms / 1000;
  if (s != second) {
    second = s;
    prefix = absl::FormatTime("%Y-%m-%dT%H:%M:%S", absl::FromUnixSeconds(s),
                              absl::UTCTimeZone());
  }
  char frac[8];
  std::snprintf(frac, sizeof(frac), ".%03dZ", static_cast<int>(ms % 1000));
  absl::StrAppend(out, prefix, frac);
}

}  // namespace

void AppendJsonString(absl::string_view s, std::string* out) {
  out->push_back('"');
  for (size_t i = 0; i < s.size();) {
    unsigned char c = static_cast<unsigned char>(s[i]);
    if (c >= 0x80) {
      size_t n = Utf8SequenceLength(s, i);
      if (n == 0) {
        out->append("\xef\xbf\xbd");  // U+FFFD
        ++i;
      } else {
        out->append(s.data() + i, n);
        i += n;
      }
      continue;
    }
    if (c == '"' || c == '\\') {
      out->push_back('\\');
      out->push_back(static_cast<char>(c));
    } else if (c < 0x20) {
      char buf[8];
      std::snprintf(buf, sizeof(buf), "\\u%04x", c);
      out->append(buf);
    } else {
      out->push_back(static_cast<char>(c));
    }
    ++i;
  }
  out->push_back('"');
}

AccessLog::AccessLog(Options options) : options_(std::move(options)) {
  thread_ = std::thread([this] { Run(); });
}

AccessLog::~AccessLog() {
  {
    absl::MutexLock l(&mu_);
    stop_ = true;
  }
  thread_.join();
  Flush();
}

void AccessLog::Write(
    LogLevel level, absl::string_view request_id,
    std::initializer_list<std::pair<absl::string_view, absl::string_view>>
        fields) {
  if (!Log::Enabled(level)) return;
  std::string line;
  line.reserve(256);
  line.append("{\"time\":\"");
  AppendTime(&line);
  absl::StrAppend(&line, "\",\"level\":\"", LogLevelName(level),
                  "\",\"message\":\"request\"");
  if (!request_id.empty()) {
    line.append(",\"request_id\":");
    AppendJsonString(request_id, &line);
  }
  for (const auto& [k, v] : fields) {
    line.push_back(',');
    AppendJsonString(k, &line);
    line.push_back(':');
    AppendJsonString(v, &line);
  }
  line.append("}\n");
  bool flush_now = false;
  {
    absl::MutexLock l(&mu_);
    if (batch_.size() + line.size() > options_.max_backlog_bytes) {
      ++dropped_;
      return;
    }
    batch_.append(line);
    flush_now = batch_.size() >= options_.max_batch_bytes;
  }
  if (flush_now) Flush();
}

void AccessLog::Flush() {
  absl::MutexLock w(&write_mu_);
  std::string out;
  {
    absl::MutexLock l(&mu_);
    out.swap(batch_);
  }
  if (out.empty()) return;
  if (options_.sink) {
    options_.sink(out);
    return;
  }
  size_t off = 0;
  while (off < out.size()) {
    ssize_t n = ::write(STDERR_FILENO, out.data() + off, out.size() - off);
    if (n <= 0) break;
    off += static_cast<size_t>(n);
  }
}

int64_t AccessLog::dropped() const {
  absl::MutexLock l(&mu_);
  return dropped_;
}

bool AccessLog::Due() const { return stop_; }

void AccessLog::Run() {
  for (;;) {
    {
      absl::MutexLock l(&mu_);
      mu_.AwaitWithTimeout(absl::Condition(this, &AccessLog::Due),
                           options_.interval);
      if (stop_) return;
    }
    Flush();
  }
}

}  // namespace pggitops::server
