// Private: REDIS_URL (CONTRACT section 3), the one parser of its grammar.
// The config component checks the key with it; the cache connects with it.
#ifndef PGGITOPS_LIBPGGITOPS_CONFIG_REDIS_URL_H_
#define PGGITOPS_LIBPGGITOPS_CONFIG_REDIS_URL_H_

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
//   redis://password@host[:port][/db]      (a lone credential: redis-py)
//   unix://[[username]:password@]/path/to/socket[?db=N][&password=P]
// (a socket path without spaces or control characters)
// The scheme is case-insensitive; percent-escapes are decoded in the
// username and password. Errors are kInvalidArgument with the reason only
// (never the URL, so never its password): "rediss://" (TLS is not
// supported), another scheme, an empty host or path, an IPv6 host without
// its brackets, a port outside 1-65535, a db that is not a non-negative
// integer, anything after the db, an unknown or repeated query parameter, a
// password given twice.
absl::StatusOr<RedisUrl> ParseRedisUrl(absl::string_view url);

// The TLS refusal's reason (also what ParseRedisUrl says for rediss://).
inline constexpr char kRedisTlsRefused[] =
    "TLS to Redis is not supported; use stunnel or a unix socket";

}  // namespace pggitops::internal

#endif  // PGGITOPS_LIBPGGITOPS_CONFIG_REDIS_URL_H_
