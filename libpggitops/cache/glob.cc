#include "libpggitops/cache/glob.h"

#include <string>

#include "absl/strings/str_cat.h"

namespace pggitops::internal {
namespace {

bool IsControl(unsigned char c) { return c < 0x20 || c == 0x7f; }

absl::Status CheckLength(absl::string_view what, absl::string_view s) {
  if (s.empty())
    return absl::InvalidArgumentError(absl::StrCat(what, " is empty"));
  if (s.size() > kMaxCacheKeyBytes) {
    return absl::InvalidArgumentError(absl::StrCat(what, " is ", s.size(),
                                                   " bytes long; the limit is ",
                                                   kMaxCacheKeyBytes));
  }
  return absl::OkStatus();
}

}  // namespace

absl::Status ValidateGlob(absl::string_view pattern) {
  absl::Status s = CheckLength("pattern", pattern);
  if (!s.ok()) return s;
  for (size_t i = 0; i < pattern.size(); ++i) {
    unsigned char c = static_cast<unsigned char>(pattern[i]);
    if (IsControl(c)) {
      return absl::InvalidArgumentError(
          absl::StrCat("pattern has a control character at byte ", i));
    }
    if (c == '[' || c == ']' || c == '\\') {
      return absl::InvalidArgumentError(absl::StrCat(
          "pattern uses '", std::string(1, static_cast<char>(c)), "' at byte ",
          i, "; only the wildcards * and ? are supported"));
    }
  }
  return absl::OkStatus();
}

absl::Status ValidateKey(absl::string_view key) {
  absl::Status s = CheckLength("key", key);
  if (!s.ok()) return s;
  for (size_t i = 0; i < key.size(); ++i) {
    if (IsControl(static_cast<unsigned char>(key[i]))) {
      return absl::InvalidArgumentError(
          absl::StrCat("key has a control character at byte ", i));
    }
  }
  return absl::OkStatus();
}

bool GlobMatch(absl::string_view pattern, absl::string_view text) {
  size_t p = 0, t = 0;
  size_t star = absl::string_view::npos, mark = 0;
  while (t < text.size()) {
    if (p < pattern.size() && (pattern[p] == '?' || pattern[p] == text[t])) {
      ++p;
      ++t;
    } else if (p < pattern.size() && pattern[p] == '*') {
      star = p++;
      mark = t;
    } else if (star != absl::string_view::npos) {
      p = star + 1;
      t = ++mark;
    } else {
      return false;
    }
  }
  while (p < pattern.size() && pattern[p] == '*') ++p;
  return p == pattern.size();
}

absl::string_view KeyFamily(absl::string_view key) {
  size_t colon = key.find(':');
  return colon == absl::string_view::npos ? key : key.substr(0, colon);
}

bool PatternFamily(absl::string_view pattern, absl::string_view* family) {
  size_t colon = pattern.find(':');
  absl::string_view head =
      colon == absl::string_view::npos ? pattern : pattern.substr(0, colon);
  if (head.find_first_of("*?") != absl::string_view::npos) return false;
  *family = head;
  return true;
}

}  // namespace pggitops::internal
