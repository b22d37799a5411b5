// UTF-8, percent-decoding and host[:port]: the one implementation of each.
#include "pggitops/text.h"

#include <string>

#include "doctest/doctest.h"

namespace pggitops {
namespace {

TEST_CASE("Utf8SequenceLength: well-formed sequences and what is not") {
  CHECK(Utf8SequenceLength("a", 0) == 1);
  CHECK(Utf8SequenceLength(std::string("\0", 1), 0) == 1);
  CHECK(Utf8SequenceLength("\xC3\xA9", 0) == 2);          // é
  CHECK(Utf8SequenceLength("\xE2\x82\xAC", 0) == 3);      // €
  CHECK(Utf8SequenceLength("\xF0\x9F\x98\x80", 0) == 4);  // U+1F600
  CHECK(Utf8SequenceLength("x\xC3\xA9", 1) == 2);
  CHECK(Utf8SequenceLength("\x80", 0) == 0);              // continuation
  CHECK(Utf8SequenceLength("\xC3", 0) == 0);              // truncated
  CHECK(Utf8SequenceLength("\xC0\xAF", 0) == 0);          // overlong '/'
  CHECK(Utf8SequenceLength("\xE0\x80\xAF", 0) == 0);      // overlong
  CHECK(Utf8SequenceLength("\xED\xA0\x80", 0) == 0);      // surrogate
  CHECK(Utf8SequenceLength("\xF4\x90\x80\x80", 0) == 0);  // > U+10FFFF
  CHECK(Utf8SequenceLength("\xFF", 0) == 0);
  CHECK(Utf8SequenceLength("\xC3x", 0) == 0);  // bad continuation
}

TEST_CASE("IsUtf8Text: well-formed and without NUL") {
  CHECK(IsUtf8Text(""));
  CHECK(IsUtf8Text("d\xC3\xA9j\xC3\xA0 vu \xE2\x82\xAC"));
  CHECK_FALSE(IsUtf8Text(std::string("a\0b", 3)));
  CHECK_FALSE(IsUtf8Text("abc\xC3"));
  CHECK_FALSE(IsUtf8Text("\xED\xA0\x80"));
}

TEST_CASE("Utf8CharCount: code points as char_length counts them") {
  CHECK(Utf8CharCount("") == 0);
  CHECK(Utf8CharCount("abc") == 3);
  CHECK(Utf8CharCount("d\xC3\xA9j\xC3\xA0") == 4);
  CHECK(Utf8CharCount("\xF0\x9F\x98\x80!") == 2);
}

TEST_CASE("PercentDecode: escapes in either case, refusals") {
  std::string out;
  CHECK(PercentDecode("p%40ss%2fw%2Fd+x", &out));
  CHECK(out == "p@ss/w/d+x");
  CHECK(PercentDecode("", &out));
  CHECK(out.empty());
  CHECK(PercentDecode("%00", &out));
  CHECK(out == std::string("\0", 1));
  CHECK_FALSE(PercentDecode("%", &out));
  CHECK_FALSE(PercentDecode("a%4", &out));
  CHECK_FALSE(PercentDecode("%zz", &out));
}

TEST_CASE("ParsePort: 1 to 65535, digits only") {
  int port = 0;
  CHECK(ParsePort("1", &port));
  CHECK(port == 1);
  CHECK(ParsePort("65535", &port));
  CHECK(port == 65535);
  for (const char* bad :
       {"", "0", "65536", "-1", "+80", "80x", " 80", "000080"}) {
    CAPTURE(bad);
    port = 7;
    CHECK_FALSE(ParsePort(bad, &port));
    CHECK(port == 7);  // unchanged
  }
}

TEST_CASE("SplitHostPort: names, IPv6 in brackets, reasons") {
  std::string host;
  int port = 6379;
  CHECK(SplitHostPort("cache.local", &host, &port).empty());
  CHECK(host == "cache.local");
  CHECK(port == 6379);  // no port: unchanged
  CHECK(SplitHostPort("[::1]:6380", &host, &port).empty());
  CHECK(host == "::1");
  CHECK(port == 6380);
  CHECK(SplitHostPort("10.0.0.1:1", &host, &port).empty());
  CHECK(port == 1);
  CHECK(SplitHostPort("[::1", &host, &port) == "unterminated [ in the host");
  CHECK(SplitHostPort("[::1]x", &host, &port) == "unexpected text after ]");
  CHECK(SplitHostPort("h:", &host, &port) == "empty port");
  CHECK(SplitHostPort(":80", &host, &port) == "no host");
  CHECK(SplitHostPort("h:0", &host, &port) ==
        "the port must be from 1 to 65535");
}

}  // namespace
}  // namespace pggitops
