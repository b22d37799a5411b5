// The shared text helpers of pggitops/text.h.
#include "pggitops/text.h"

#include <cstdint>
#include <string>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"

namespace pggitops {

size_t Utf8SequenceLength(absl::string_view s, size_t i) {
  const auto b = [&](size_t k) { return static_cast<unsigned char>(s[k]); };
  const unsigned char c = b(i);
  size_t n;
  uint32_t cp;
  if (c < 0x80) return 1;
  if ((c & 0xe0) == 0xc0) {
    n = 2;
    cp = c & 0x1f;
  } else if ((c & 0xf0) == 0xe0) {
    n = 3;
    cp = c & 0x0f;
  } else if ((c & 0xf8) == 0xf0) {
    n = 4;
    cp = c & 0x07;
  } else {
    return 0;
  }
  if (i + n > s.size()) return 0;
  for (size_t k = 1; k < n; ++k) {
    if ((b(i + k) & 0xc0) != 0x80) return 0;
    cp = (cp << 6) | (b(i + k) & 0x3f);
  }
  const bool overlong = (n == 2 && cp < 0x80) || (n == 3 && cp < 0x800) ||
                        (n == 4 && cp < 0x10000);
  const bool surrogate = cp >= 0xd800 && cp <= 0xdfff;
  if (overlong || surrogate || cp > 0x10ffff) return 0;
  return n;
}

bool IsUtf8Text(absl::string_view s) {
  for (size_t i = 0; i < s.size();) {
    if (s[i] == '\0') return false;
    const size_t n = Utf8SequenceLength(s, i);
    if (n == 0) return false;
    i += n;
  }
  return true;
}

size_t Utf8CharCount(absl::string_view s) {
  size_t n = 0;
  for (unsigned char c : s) n += (c & 0xC0) != 0x80;
  return n;
}

bool PercentDecode(absl::string_view in, std::string* out) {
  out->clear();
  for (size_t i = 0; i < in.size(); ++i) {
    if (in[i] != '%') {
      out->push_back(in[i]);
      continue;
    }
    if (i + 2 >= in.size() ||
        !absl::ascii_isxdigit(static_cast<unsigned char>(in[i + 1])) ||
        !absl::ascii_isxdigit(static_cast<unsigned char>(in[i + 2]))) {
      return false;
    }
    int value = 0;
    for (int k = 1; k <= 2; ++k) {
      char c = absl::ascii_tolower(static_cast<unsigned char>(in[i + k]));
      value = value * 16 + (absl::ascii_isdigit(c) ? c - '0' : c - 'a' + 10);
    }
    out->push_back(static_cast<char>(value));
    i += 2;
  }
  return true;
}

bool ParsePort(absl::string_view s, int* port) {
  if (s.empty() || s.size() > 5) return false;
  for (char c : s) {
    if (!absl::ascii_isdigit(static_cast<unsigned char>(c))) return false;
  }
  int p = 0;
  if (!absl::SimpleAtoi(s, &p) || p < 1 || p > 65535) return false;
  *port = p;
  return true;
}

std::string SplitHostPort(absl::string_view hp, std::string* host_out,
                          int* port_out) {
  absl::string_view host = hp;
  absl::string_view port;
  if (absl::StartsWith(hp, "[")) {
    size_t close = hp.find(']');
    if (close == absl::string_view::npos) return "unterminated [ in the host";
    host = hp.substr(1, close - 1);
    absl::string_view rest = hp.substr(close + 1);
    if (!rest.empty()) {
      if (rest[0] != ':') return "unexpected text after ]";
      port = rest.substr(1);
      if (port.empty()) return "empty port";
    }
  } else {
    size_t colon = hp.rfind(':');
    if (colon != absl::string_view::npos) {
      host = hp.substr(0, colon);
      port = hp.substr(colon + 1);
      if (port.empty()) return "empty port";
    }
  }
  if (host.empty()) return "no host";
  if (!port.empty() && !ParsePort(port, port_out)) {
    return "the port must be from 1 to 65535";
  }
  *host_out = std::string(host);
  return "";
}

}  // namespace pggitops
