#include "server/http/request_head.h"

#include <algorithm>
#include <optional>
#include <vector>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"

namespace pggitops::server {
namespace {

// RFC 9110 section 5.6.2: token characters.
bool IsTchar(char c) {
  if (absl::ascii_isalnum(c)) return true;
  switch (c) {
    case '!':
    case '#':
    case '$':
    case '%':
    case '&':
    case '\'':
    case '*':
    case '+':
    case '-':
    case '.':
    case '^':
    case '_':
    case '`':
    case '|':
    case '~':
      return true;
    default:
      return false;
  }
}

bool IsToken(absl::string_view s) {
  return !s.empty() && std::all_of(s.begin(), s.end(), IsTchar);
}

// Field values: visible characters, obs-text and inner SP/HTAB; no other
// control characters.
bool IsFieldValue(absl::string_view s) {
  for (char ch : s) {
    auto c = static_cast<unsigned char>(ch);
    if ((c < 0x20 && c != '\t') || c == 0x7f) return false;
  }
  return true;
}

absl::string_view TrimOws(absl::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) {
    s.remove_prefix(1);
  }
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t')) {
    s.remove_suffix(1);
  }
  return s;
}

ByteSpan SpanOf(absl::string_view data, absl::string_view part) {
  return ByteSpan{static_cast<uint32_t>(part.data() - data.data()),
                  static_cast<uint32_t>(part.size())};
}

HeadResult Reject(int status, const char* reason, std::string detail) {
  HeadResult r;
  r.verdict = HeadVerdict::kRejected;
  r.status = status;
  r.reason = reason;
  r.detail = std::move(detail);
  return r;
}

bool IsKnownMethod(absl::string_view m) {
  static constexpr absl::string_view kMethods[] = {
      "GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS", "TRACE"};
  return std::find(std::begin(kMethods), std::end(kMethods), m) !=
         std::end(kMethods);
}

bool MethodTakesNoBody(absl::string_view m) {
  return m == "GET" || m == "HEAD" || m == "OPTIONS" || m == "DELETE" ||
         m == "TRACE";
}

// Content-Length: one or more equal decimal values ("5" or "5, 5").
bool ParseContentLength(absl::string_view value, uint64_t* out) {
  bool any = false;
  uint64_t first = 0;
  for (absl::string_view part : absl::StrSplit(value, ',')) {
    part = TrimOws(part);
    if (part.empty() || part.size() > 18 ||
        !std::all_of(part.begin(), part.end(), absl::ascii_isdigit)) {
      return false;
    }
    uint64_t v = 0;
    for (char c : part) v = v * 10 + static_cast<uint64_t>(c - '0');
    if (any && v != first) return false;
    first = v;
    any = true;
  }
  *out = first;
  return any;
}

// Whether Accept-Encoding allows gzip: listed (or `*`) without q=0.
bool AllowsGzip(absl::string_view value) {
  bool gzip = false;
  bool star = false;
  for (absl::string_view item : absl::StrSplit(value, ',')) {
    std::pair<absl::string_view, absl::string_view> parts =
        absl::StrSplit(item, absl::MaxSplits(';', 1));
    absl::string_view coding = TrimOws(parts.first);
    absl::string_view params = TrimOws(parts.second);
    bool refused = false;
    if (absl::StartsWithIgnoreCase(params, "q=")) {
      absl::string_view q = TrimOws(params.substr(2));
      refused = !q.empty() && std::all_of(q.begin(), q.end(), [](char c) {
        return c == '0' || c == '.';
      });
    }
    if (absl::EqualsIgnoreCase(coding, "gzip")) {
      if (refused) return false;
      gzip = true;
    } else if (coding == "*") {
      star = !refused;
    }
  }
  return gzip || star;
}

// The line [begin, end) of `data` ends in CRLF at `end`; the line itself
// must hold no CR or LF.
bool CleanLine(absl::string_view line) {
  return line.find_first_of("\r\n") == absl::string_view::npos;
}

struct FieldState {
  int hosts = 0;
  int lengths = 0;
  bool transfer_encoding = false;
  bool te_chunked = true;
  bool close = false;
  bool keep_alive_token = false;
};

// Applies one header field to the head. Returns a rejection, or nullopt.
std::optional<HeadResult> ApplyField(absl::string_view data,
                                     absl::string_view line,
                                     absl::string_view name,
                                     absl::string_view value, RequestHead* head,
                                     FieldState* st) {
  // The whole line with its CRLF, for hiding it from cpp-httplib.
  ByteSpan whole{static_cast<uint32_t>(line.data() - data.data()),
                 static_cast<uint32_t>(line.size() + 2)};
  if (absl::EqualsIgnoreCase(name, "Content-Length")) {
    uint64_t v = 0;
    if (!ParseContentLength(value, &v) ||
        (st->lengths > 0 && v != head->content_length)) {
      return Reject(400, "bad_framing",
                    "invalid or conflicting Content-Length");
    }
    head->content_length = v;
    ++st->lengths;
  } else if (absl::EqualsIgnoreCase(name, "Transfer-Encoding")) {
    st->transfer_encoding = true;
    st->te_chunked = st->te_chunked &&
                     absl::EqualsIgnoreCase(value, "chunked") &&
                     !head->chunked;  // "chunked" twice is not exactly chunked
    head->chunked = true;
    head->hidden.push_back(whole);
  } else if (absl::EqualsIgnoreCase(name, "Content-Encoding")) {
    if (!value.empty() && !absl::EqualsIgnoreCase(value, "identity")) {
      return Reject(415, "unsupported_encoding",
                    absl::StrCat("Content-Encoding '", value,
                                 "' is not accepted: send the body "
                                 "uncompressed"));
    }
  } else if (absl::EqualsIgnoreCase(name, "Host")) {
    ++st->hosts;
  } else if (absl::EqualsIgnoreCase(name, "Connection")) {
    for (absl::string_view t : absl::StrSplit(value, ',')) {
      t = TrimOws(t);
      if (absl::EqualsIgnoreCase(t, "close")) st->close = true;
      if (absl::EqualsIgnoreCase(t, "keep-alive")) st->keep_alive_token = true;
    }
  } else if (absl::EqualsIgnoreCase(name, "Expect")) {
    if (!absl::EqualsIgnoreCase(value, "100-continue")) {
      return Reject(417, "bad_request",
                    absl::StrCat("Expect '", value,
                                 "' cannot be met; only 100-continue is"));
    }
    head->expect_continue = true;
    head->hidden.push_back(whole);
  } else if (absl::EqualsIgnoreCase(name, "Accept-Encoding")) {
    head->accepts_gzip = head->accepts_gzip || AllowsGzip(value);
    head->hidden.push_back(whole);
  } else if (absl::EqualsIgnoreCase(name, "Range") ||
             absl::EqualsIgnoreCase(name, "If-Range") ||
             absl::EqualsIgnoreCase(name, "REMOTE_ADDR") ||
             absl::EqualsIgnoreCase(name, "REMOTE_PORT")) {
    head->hidden.push_back(whole);
  }
  return std::nullopt;
}

// Checks the request line; fills method, target and version.
std::optional<HeadResult> ParseRequestLine(absl::string_view data,
                                           absl::string_view line,
                                           const HeadLimits& limits,
                                           RequestHead* head) {
  std::vector<absl::string_view> parts = absl::StrSplit(line, ' ');
  if (parts.size() != 3 || !IsToken(parts[0]) || parts[1].empty()) {
    return Reject(400, "bad_request", "malformed request line");
  }
  absl::string_view method = parts[0], target = parts[1], version = parts[2];
  if (target.size() > limits.max_target_bytes) {
    return Reject(414, "header_too_large",
                  absl::StrCat("request target longer than ",
                               limits.max_target_bytes, " bytes"));
  }
  for (char ch : target) {
    auto c = static_cast<unsigned char>(ch);
    if (c < 0x21 || c == 0x7f) {
      return Reject(400, "bad_request", "malformed request target");
    }
  }
  if (target.front() != '/' && target != "*") {
    return Reject(400, "bad_request",
                  "the request target must be a path (origin-form)");
  }
  if (version == "HTTP/1.1") {
    head->minor_version = 1;
  } else if (version == "HTTP/1.0") {
    head->minor_version = 0;
  } else if (version.size() == 8 && absl::StartsWith(version, "HTTP/") &&
             absl::ascii_isdigit(version[5]) && version[6] == '.' &&
             absl::ascii_isdigit(version[7])) {
    return Reject(505, "bad_request",
                  absl::StrCat(version, " is not supported; use HTTP/1.1"));
  } else {
    return Reject(400, "bad_request", "malformed HTTP version");
  }
  if (!IsKnownMethod(method)) {
    return Reject(501, "bad_request",
                  absl::StrCat("method ", method, " is not implemented"));
  }
  head->method = SpanOf(data, method);
  head->target = SpanOf(data, target);
  return std::nullopt;
}

// The framing rules that depend on several fields.
std::optional<HeadResult> CheckFraming(absl::string_view data,
                                       const HeadLimits& limits,
                                       const FieldState& st,
                                       RequestHead* head) {
  if (head->minor_version == 1 && st.hosts != 1) {
    return Reject(400, "bad_request",
                  st.hosts == 0 ? "HTTP/1.1 requests need a Host header"
                                : "more than one Host header");
  }
  if (st.hosts > 1)
    return Reject(400, "bad_request", "more than one Host header");
  if (st.transfer_encoding) {
    if (st.lengths > 0) {
      return Reject(400, "bad_framing",
                    "Content-Length together with Transfer-Encoding");
    }
    if (head->minor_version == 0) {
      return Reject(400, "bad_framing",
                    "Transfer-Encoding is not allowed in HTTP/1.0");
    }
    if (!st.te_chunked) {
      return Reject(501, "unsupported_encoding",
                    "Transfer-Encoding other than exactly 'chunked' is not "
                    "implemented");
    }
  }
  absl::string_view method = head->method.In(data);
  if (head->has_body() && MethodTakesNoBody(method)) {
    return Reject(400, "bad_framing",
                  absl::StrCat(method, " requests must not carry a body"));
  }
  if (!head->chunked && head->content_length > limits.max_body_bytes) {
    return Reject(
        413, "body_too_large",
        absl::StrCat("request body exceeds ", limits.max_body_bytes, " bytes"));
  }
  head->keep_alive =
      !st.close && (head->minor_version == 1 || st.keep_alive_token);
  return std::nullopt;
}

// Parses the complete head data[0, size).
HeadResult ParseHead(absl::string_view data, size_t size,
                     const HeadLimits& limits) {
  HeadResult r;
  RequestHead& head = r.head;
  head.size = size;
  absl::string_view rest = data.substr(0, size - 2);  // up to the blank line
  size_t eol = rest.find("\r\n");
  absl::string_view line = rest.substr(0, eol);
  if (!CleanLine(line)) return Reject(400, "bad_request", "bare CR or LF");
  if (auto bad = ParseRequestLine(data, line, limits, &head)) return *bad;
  rest.remove_prefix(eol + 2);
  FieldState st;
  while (!rest.empty()) {
    eol = rest.find("\r\n");
    line = rest.substr(0, eol);
    rest.remove_prefix(eol + 2);
    if (!CleanLine(line)) return Reject(400, "bad_request", "bare CR or LF");
    if (line.empty() || line.front() == ' ' || line.front() == '\t') {
      return Reject(400, "bad_request", "header line folding is not allowed");
    }
    size_t colon = line.find(':');
    absl::string_view name = line.substr(0, colon);
    if (colon == absl::string_view::npos || !IsToken(name)) {
      return Reject(400, "bad_request", "malformed header field name");
    }
    absl::string_view value = TrimOws(line.substr(colon + 1));
    if (!IsFieldValue(value)) {
      return Reject(400, "bad_request",
                    absl::StrCat("control character in header ", name));
    }
    if (head.fields.size() >= limits.max_fields) {
      return Reject(
          431, "header_too_large",
          absl::StrCat("more than ", limits.max_fields, " header fields"));
    }
    head.fields.emplace_back(SpanOf(data, name), SpanOf(data, value));
    if (auto bad = ApplyField(data, line, name, value, &head, &st)) return *bad;
  }
  if (auto bad = CheckFraming(data, limits, st, &head)) return *bad;
  r.verdict = HeadVerdict::kComplete;
  return r;
}

}  // namespace

absl::string_view RequestHead::Field(absl::string_view data,
                                     absl::string_view name) const {
  for (const auto& [n, v] : fields) {
    if (absl::EqualsIgnoreCase(n.In(data), name)) return v.In(data);
  }
  return {};
}

HeadResult ScanRequestHead(absl::string_view data, const HeadLimits& limits,
                           size_t* scanned) {
  const size_t line_limit =
      std::min(limits.max_head_bytes, limits.max_target_bytes + 32);
  size_t from = *scanned > 3 ? *scanned - 3 : 0;
  size_t end = data.find("\r\n\r\n", from);
  if (end == absl::string_view::npos) {
    *scanned = data.size();
    size_t first_eol = data.find('\n');
    if (first_eol == absl::string_view::npos) {
      if (data.size() > line_limit) {
        return Reject(
            414, "header_too_large",
            absl::StrCat("request line longer than ", line_limit, " bytes"));
      }
    } else if (first_eol > line_limit) {
      return Reject(
          414, "header_too_large",
          absl::StrCat("request line longer than ", line_limit, " bytes"));
    }
    if (data.size() >= limits.max_head_bytes) {
      return Reject(431, "header_too_large",
                    absl::StrCat("request head larger than ",
                                 limits.max_head_bytes, " bytes"));
    }
    return HeadResult{};
  }
  const size_t size = end + 4;
  size_t first_eol = data.find("\r\n");
  if (first_eol > line_limit) {
    return Reject(
        414, "header_too_large",
        absl::StrCat("request line longer than ", line_limit, " bytes"));
  }
  if (size > limits.max_head_bytes) {
    return Reject(431, "header_too_large",
                  absl::StrCat("request head larger than ",
                               limits.max_head_bytes, " bytes"));
  }
  return ParseHead(data, size, limits);
}

}  // namespace pggitops::server
