// Private: the glob patterns of cache invalidation ("webhooks:*") and the
// key families they name.
#ifndef PGGITOPS_LIBPGGITOPS_CACHE_GLOB_H_
#define PGGITOPS_LIBPGGITOPS_CACHE_GLOB_H_

#include <cstddef>

#include "absl/status/status.h"
#include "absl/strings/string_view.h"

namespace pggitops::internal {

// Longest key or pattern the cache accepts, in bytes.
constexpr size_t kMaxCacheKeyBytes = 1024;

// A pattern is valid when it is 1 to kMaxCacheKeyBytes bytes of printable
// characters (bytes >= 0x20 other than DEL; UTF-8 is fine) and uses only
// the wildcards `*` (any run of characters, empty included) and `?` (exactly
// one byte). The characters `[`, `]` and `\` are refused: they are wildcards
// in Redis and shell globs, and a pattern that silently meant something else
// here would invalidate the wrong keys. Error: kInvalidArgument saying why.
absl::Status ValidateGlob(absl::string_view pattern);

// A key is valid when it is 1 to kMaxCacheKeyBytes bytes with no control
// character. Error: kInvalidArgument saying why.
absl::Status ValidateKey(absl::string_view key);

// True when `text` matches `pattern` (see ValidateGlob). Linear in
// |text| * number of `*` in the worst case, without recursion.
bool GlobMatch(absl::string_view pattern, absl::string_view text);

// The family of a key: the text before its first ':' ("webhooks" for
// "webhooks:list:20:0"), or the whole key when it has no ':'.
absl::string_view KeyFamily(absl::string_view key);

// The family every key matched by `pattern` belongs to, when the pattern
// fixes it: the text before the first ':' if that text has no wildcard
// ("webhooks" for "webhooks:*"). Returns false when the pattern may match
// keys of several families ("*", "*:list", "web*").
bool PatternFamily(absl::string_view pattern, absl::string_view* family);

}  // namespace pggitops::internal

#endif  // PGGITOPS_LIBPGGITOPS_CACHE_GLOB_H_
