// libFuzzer target: the event stream's framing (FormatSseEvent and Chunk,
// server/routes/sse_hub.h) for any event name, id and data. The text is
// read back as a browser's EventSource reads it (the WHATWG
// "event stream interpretation": lines end at CRLF, LF or CR, a blank line
// dispatches), and must give back:
//   - exactly one event, with the data as sent (its line ends read as
//     "\n"), the event name and id as sent less any CR, LF and NUL;
//   - two events formatted one after the other read back as those two: no
//     raw newline in a field can end an event early or start another;
//   - Chunk(x) is "<hex size>\r\n" x "\r\n" with the size of x.
// Input: EVENT '\n' ID '\n' DATA. Seeds: tests/fuzz/sse_event/.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string>
#include <vector>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_replace.h"
#include "server/routes/sse_hub.h"
#include "tests/fuzz/fuzz_util.h"

using pggitops::fuzz::Bytes;
using pggitops::fuzz::Require;
using pggitops::server::SseEvent;

namespace {

struct Received {
  std::string type, data, id;
};

// The EventSource parser, as the HTML standard writes it.
std::vector<Received> Interpret(const std::string& stream) {
  std::vector<Received> out;
  std::string data, type, id, line;
  bool have_data = false;
  auto dispatch = [&] {
    if (have_data) {
      if (!data.empty() && data.back() == '\n') data.pop_back();
      out.push_back({type.empty() ? "message" : type, data, id});
    }
    data.clear();
    type.clear();
    have_data = false;
  };
  auto field = [&](const std::string& l) {
    if (l.empty()) return dispatch();
    if (l[0] == ':') return;
    size_t colon = l.find(':');
    std::string name = l.substr(0, colon), value;
    if (colon != std::string::npos) {
      value = l.substr(colon + 1);
      if (!value.empty() && value[0] == ' ') value.erase(0, 1);
    }
    if (name == "data") {
      data += value + "\n";
      have_data = true;
    } else if (name == "event") {
      type = value;
    } else if (name == "id" && value.find('\0') == std::string::npos) {
      id = value;
    }
  };
  for (size_t i = 0; i < stream.size(); ++i) {
    const char c = stream[i];
    if (c == '\r' || c == '\n') {
      field(line);
      line.clear();
      if (c == '\r' && i + 1 < stream.size() && stream[i + 1] == '\n') ++i;
    } else {
      line += c;
    }
  }
  // An unterminated last line is discarded, and so is an event without its
  // blank line.
  return out;
}

std::string Without(std::string s, const std::string& chars) {
  std::string out;
  for (char c : s) {
    if (chars.find(c) == std::string::npos) out += c;
  }
  return out;
}

void Expect(const Received& r, const SseEvent& e) {
  const std::string type = Without(e.event, std::string("\r\n\0", 3));
  Require(r.type == (type.empty() ? "message" : type), "event name changed");
  const std::string data = absl::StrReplaceAll(
      absl::StrReplaceAll(e.data, {{"\r\n", "\n"}}), {{"\r", "\n"}});
  Require(r.data == data, "data changed");
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* bytes, size_t n) {
  Bytes in(bytes, n);
  SseEvent e;
  e.event = in.Until('\n');
  e.id = in.Until('\n');
  e.data = in.Rest();
  const std::string text = pggitops::server::FormatSseEvent(e);
  Require(text.size() >= 2 && text.compare(text.size() - 2, 2, "\n\n") == 0,
          "an event does not end with a blank line");
  const std::vector<Received> one = Interpret(text);
  Require(one.size() == 1, "one event did not read back as one");
  Expect(one[0], e);
  Require(one[0].id == Without(e.id, std::string("\r\n\0", 3)), "id changed");

  SseEvent second{"system_status", "{\"ok\":true}", "7"};
  const std::vector<Received> two =
      Interpret(text + pggitops::server::FormatSseEvent(second));
  Require(two.size() == 2, "two events did not read back as two");
  Expect(two.back(), second);
  Require(two.back().id == "7", "the second event's id changed");

  const std::string chunk = pggitops::server::Chunk(text);
  const size_t crlf = chunk.find("\r\n");
  Require(crlf != std::string::npos, "a chunk without its size line");
  uint64_t size = 0;
  Require(
      absl::SimpleHexAtoi(chunk.substr(0, crlf), &size) && size == text.size(),
      "a chunk's size is not its data's");
  Require(chunk.substr(crlf + 2) == text + "\r\n", "a chunk's data changed");
  return 0;
}
