// Private: REDIS_URL (CONTRACT section 3).
#ifndef PGGITOPS_LIBPGGITOPS_CACHE_REDIS_URL_H_
#define PGGITOPS_LIBPGGITOPS_CACHE_REDIS_URL_H_

#include <string>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

namespace pggitops::internal {

struct RedisUrl {
  std::string host;       // TCP host (IPv6 without brackets); "" for unix
  int port = 6379;        // TCP port
  std::string unix_path;  // socket path; "" for TCP
  std::string username;   // ACL user (Redis 6+); "" for the default user
  std::string password;   // "" for none
  int db = 0;             // SELECT index, 0 to 15... any non-negative
  // The URL with the password replaced by "***", for logs and errors.
  std::string redacted;
};

// Parses
//   redis://[[username]:password@]host[:port][/db]
//   unix://[[username]:password@]/path/to/socket[?db=N]
// Percent-escapes are decoded in the username and password. Errors
// (kInvalidArgument, with the URL redacted): "rediss://" ("TLS is not
// supported; use a local stunnel or a unix socket"), another scheme, an
// empty host or path, an IPv6 host without its brackets, a port outside
// 1-65535, a db that is not a non-negative integer, anything after the db.
absl::StatusOr<RedisUrl> ParseRedisUrl(absl::string_view url);

}  // namespace pggitops::internal

#endif  // PGGITOPS_LIBPGGITOPS_CACHE_REDIS_URL_H_
