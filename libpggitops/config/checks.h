// File: libpggitops/config/checks.h
//
// Validators for string-valued configuration keys, the Redis URL parser the
// cache uses, and the redaction of passwords in connection strings. Each
// Check* returns "" when the value is acceptable, else the reason, phrased to
// follow "KEY=value (source): ".
#ifndef PGGITOPS_LIBPGGITOPS_CONFIG_CHECKS_H_
#define PGGITOPS_LIBPGGITOPS_CONFIG_CHECKS_H_

#include <string>

#include "absl/status/statusor.h"

namespace pggitops::internal::config {

// PGGIT_LOG_FILE: empty, or a file path without control characters.
std::string CheckLogFile(const std::string& value);
// DATABASE_URL: a postgresql:// or postgres:// URI or a libpq key=value
// string, as libpq itself parses it. Empty is accepted here; LoadConfig
// reports a missing value.
std::string CheckDatabaseUrl(const std::string& value);
// REDIS_URL: empty, or what ParseRedisUrl (redis_url.h) accepts:
// redis://[[user]:password@]host[:port][/db] or
// unix://[[user]:password@]/path[?db=N&password=P]; rediss:// is refused.
std::string CheckRedisUrl(const std::string& value);

// Returns `dsn` with every password replaced by "***": the password of a
// scheme://user:password@host URI and the value of any key ending in
// "password" (key=value strings and URI query parameters).
std::string RedactSecrets(const std::string& dsn);

}  // namespace pggitops::internal::config

#endif  // PGGITOPS_LIBPGGITOPS_CONFIG_CHECKS_H_
