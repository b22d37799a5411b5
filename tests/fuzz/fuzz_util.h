// Shared by the libFuzzer targets of tests/fuzz: Require, which turns a
// broken invariant into a finding (a message and abort, so libFuzzer saves
// the input), and Bytes, which splits one input into the parts a target
// needs.
#ifndef PGGITOPS_TESTS_FUZZ_FUZZ_UTIL_H_
#define PGGITOPS_TESTS_FUZZ_FUZZ_UTIL_H_

#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string>

#include "absl/strings/string_view.h"

namespace pggitops::fuzz {

// Aborts with `what` on stderr unless `ok`.
inline void Require(bool ok, const char* what) {
  if (!ok) {
    std::fprintf(stderr, "fuzz invariant broken: %s\n", what);
    std::abort();
  }
}

// Reads an input from the front: single bytes, and strings that end at a
// separator byte (or at the end of the input).
class Bytes {
 public:
  Bytes(const uint8_t* data, size_t size)
      : rest_(reinterpret_cast<const char*>(data), size) {}

  bool empty() const { return rest_.empty(); }
  // The next byte, or 0 at the end.
  uint8_t Byte() {
    if (rest_.empty()) return 0;
    uint8_t b = static_cast<uint8_t>(rest_.front());
    rest_.remove_prefix(1);
    return b;
  }
  // Up to (not including) the next `sep`, which is consumed.
  std::string Until(char sep) {
    size_t at = rest_.find(sep);
    std::string out(rest_.substr(0, at));
    rest_.remove_prefix(at == absl::string_view::npos ? rest_.size() : at + 1);
    return out;
  }
  // Everything left.
  std::string Rest() {
    std::string out(rest_);
    rest_ = {};
    return out;
  }

 private:
  absl::string_view rest_;
};

}  // namespace pggitops::fuzz

#endif  // PGGITOPS_TESTS_FUZZ_FUZZ_UTIL_H_
