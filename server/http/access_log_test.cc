// AccessLog: lines in Log's shape, written in batches; JSON escaping.
#include "server/http/access_log.h"

#include <string>
#include <vector>

#include "doctest/doctest.h"
#include "nlohmann/json.hpp"

namespace pggitops::server {
namespace {

TEST_CASE("AppendJsonString: escapes, and replaces invalid UTF-8") {
  std::string out;
  AppendJsonString("a\"b\\c\n\x01", &out);
  CHECK(out == "\"a\\\"b\\\\c\\u000a\\u0001\"");
  out.clear();
  AppendJsonString("caf\xc3\xa9 \xff \xc0\xaf \xed\xa0\x80", &out);
  nlohmann::json j = nlohmann::json::parse(out);  // valid JSON
  CHECK(j.get<std::string>() ==
        "caf\xc3\xa9 \xef\xbf\xbd \xef\xbf\xbd\xef\xbf\xbd "
        "\xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbd");
}

TEST_CASE("AccessLog: many lines, few writes, each line whole JSON") {
  std::vector<std::string> writes;
  absl::Mutex mu;
  AccessLog::Options o;
  o.interval = absl::Hours(1);  // only Flush() and the size bound write
  o.max_batch_bytes = 4096;
  o.sink = [&](absl::string_view batch) {
    absl::MutexLock l(&mu);
    writes.emplace_back(batch);
  };
  Log::SetLevel(LogLevel::kInfo);
  {
    AccessLog log(o);
    for (int i = 0; i < 100; ++i) {
      log.Write(LogLevel::kInfo, "req-1",
                {{"method", "GET"}, {"path", "/x\"y"}, {"status", "200"}});
    }
    log.Write(LogLevel::kDebug, "req-2", {{"path", "/quiet"}});  // below level
    log.Flush();
  }
  std::string all;
  for (const std::string& w : writes) all += w;
  CHECK(writes.size() < 10);
  size_t lines = 0;
  for (size_t pos = 0; (pos = all.find('\n', pos)) != std::string::npos;
       ++pos) {
    ++lines;
  }
  CHECK(lines == 100);
  nlohmann::json first = nlohmann::json::parse(all.substr(0, all.find('\n')));
  CHECK(first["message"] == "request");
  CHECK(first["level"] == "INFO");
  CHECK(first["request_id"] == "req-1");
  CHECK(first["path"] == "/x\"y");
  CHECK(first["time"].get<std::string>().back() == 'Z');
  CHECK(all.find("/quiet") == std::string::npos);
}

}  // namespace
}  // namespace pggitops::server
