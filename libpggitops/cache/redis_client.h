// Private: the seam between the L2 logic and hiredis. RedisConnection runs
// one command at a time (a hiredis context is single-threaded); the L2 store
// keeps a few of them. HiredisConnector is the only hiredis user besides
// the subscriber (redis_subscriber.cc); tests substitute fakes.
#ifndef PGGITOPS_LIBPGGITOPS_CACHE_REDIS_CLIENT_H_
#define PGGITOPS_LIBPGGITOPS_CACHE_REDIS_CLIENT_H_

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "libpggitops/config/redis_url.h"

struct redisContext;

namespace pggitops::internal {

struct RedisReply {
  enum class Type { kNil, kString, kStatus, kInteger, kArray, kError };
  Type type = Type::kNil;
  std::string str;  // kString, kStatus, kError
  int64_t integer = 0;
  std::vector<RedisReply> elements;  // kArray
};

// Not thread-safe: one caller at a time.
class RedisConnection {
 public:
  virtual ~RedisConnection() = default;
  // Sends `argv` and returns Redis's reply (an error reply is a kError
  // reply, not an error status). Errors: kUnavailable or
  // kDeadlineExceeded when the connection failed or timed out; the
  // connection is then unusable.
  virtual absl::StatusOr<RedisReply> Command(
      const std::vector<std::string>& argv) = 0;
};

// Thread-safe.
class RedisConnector {
 public:
  virtual ~RedisConnector() = default;
  // Opens an authenticated connection with the database selected.
  virtual absl::StatusOr<std::unique_ptr<RedisConnection>> Connect() = 0;
};

// Connects with hiredis: TCP or unix socket, connect and command timeouts
// of `timeout`, AUTH and SELECT as the URL says.
std::unique_ptr<RedisConnector> NewHiredisConnector(RedisUrl url,
                                                    absl::Duration timeout);

// Opens a raw hiredis context (connected, authenticated, db selected, the
// command timeout set). For the subscriber. Error: kUnavailable naming the
// redacted URL.
absl::StatusOr<redisContext*> HiredisOpen(const RedisUrl& url,
                                          absl::Duration timeout);

// Converts a hiredis reply object (redisReply*) to a RedisReply.
RedisReply ConvertReply(const void* reply);

}  // namespace pggitops::internal

#endif  // PGGITOPS_LIBPGGITOPS_CACHE_REDIS_CLIENT_H_
