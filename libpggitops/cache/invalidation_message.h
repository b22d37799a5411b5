// Private: the invalidation messages instances exchange on the Redis
// channel, as compact JSON:
//   {"i": "<instance id>", "k": ["key", ...]}   keys
//   {"i": "<instance id>", "p": "webhooks:*"}   a pattern
//   {"i": "<instance id>", "a": true}           everything
#ifndef PGGITOPS_LIBPGGITOPS_CACHE_INVALIDATION_MESSAGE_H_
#define PGGITOPS_LIBPGGITOPS_CACHE_INVALIDATION_MESSAGE_H_

#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

namespace pggitops::internal {

struct InvalidationMessage {
  enum class Kind { kKeys, kPattern, kAll };
  std::string instance;
  Kind kind = Kind::kAll;
  std::vector<std::string> keys;  // kKeys
  std::string pattern;            // kPattern
};

std::string EncodeInvalidation(const InvalidationMessage& m);
// Error: kInvalidArgument for anything that is not one of the three shapes
// (keys and pattern are validated as the cache validates them).
absl::StatusOr<InvalidationMessage> DecodeInvalidation(absl::string_view text);

}  // namespace pggitops::internal

#endif  // PGGITOPS_LIBPGGITOPS_CACHE_INVALIDATION_MESSAGE_H_
