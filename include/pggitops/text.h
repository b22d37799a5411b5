// File: pggitops/text.h
//
// Small text helpers the library and the daemon share, so each rule has one
// implementation: UTF-8 validity and length, percent-decoding, and the
// "host[:port]" form with its port range. Pure functions of their
// arguments: no state, no allocation beyond their outputs, safe from any
// thread.
#ifndef PGGITOPS_INCLUDE_TEXT_H_
#define PGGITOPS_INCLUDE_TEXT_H_

#include <cstddef>
#include <string>

#include "absl/strings/string_view.h"
#include "pggitops/export.h"

namespace pggitops {

// Length (1 to 4) of the well-formed UTF-8 sequence that starts at s[i], or
// 0 when none does (a stray continuation byte, a truncated sequence, an
// overlong form, a surrogate, a value above U+10FFFF). NUL is a valid
// one-byte sequence. REQUIRES: i < s.size().
PGGITOPS_EXPORT size_t Utf8SequenceLength(absl::string_view s, size_t i);

// True when all of `s` is well-formed UTF-8 without NUL: text PostgreSQL
// accepts as a parameter.
PGGITOPS_EXPORT bool IsUtf8Text(absl::string_view s);

// Characters (code points) of `s` as PostgreSQL's char_length counts them:
// the bytes that do not continue a multi-byte sequence.
PGGITOPS_EXPORT size_t Utf8CharCount(absl::string_view s);

// Decodes %XX escapes (either case) into *out; '+' stays '+'. Returns false,
// with *out unspecified, on a '%' not followed by two hex digits.
PGGITOPS_EXPORT bool PercentDecode(absl::string_view in, std::string* out);

// Parses a TCP port: 1 to 5 decimal digits, 1 to 65535, nothing else.
PGGITOPS_EXPORT bool ParsePort(absl::string_view s, int* port);

// Splits "host[:port]", where the host may be a bracketed IPv6 literal
// ("[::1]:6379"; *host is then without brackets). *port is set only when a
// port is present. Returns "" on success, else the reason: "unterminated [
// in the host", "unexpected text after ]", "empty port", "no host" or "the
// port must be from 1 to 65535".
PGGITOPS_EXPORT std::string SplitHostPort(absl::string_view host_port,
                                          std::string* host, int* port);

}  // namespace pggitops

#endif  // PGGITOPS_INCLUDE_TEXT_H_
