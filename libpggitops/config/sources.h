// File: libpggitops/config/sources.h
//
// Readers for the file sources of the configuration: the `.env` file
// (KEY=VALUE lines) and the YAML file (a flat map). Both only read; merging
// and validation happen in LoadConfig.
#ifndef PGGITOPS_LIBPGGITOPS_CONFIG_SOURCES_H_
#define PGGITOPS_LIBPGGITOPS_CONFIG_SOURCES_H_

#include <string>
#include <utility>
#include <vector>

#include "absl/status/statusor.h"
#include "libpggitops/config/key_spec.h"

namespace pggitops::internal::config {

using DotenvEntries = std::vector<std::pair<std::string, std::string>>;

// Parses .env text: KEY=VALUE lines, blank lines, `#` comment lines, an
// optional `export ` prefix, values optionally in single quotes (literal) or
// double quotes (\n, \t, \", \\ and \$ escapes), and ` # comment` after an
// unquoted or quoted value. Returns the entries in file order. Error:
// kInvalidArgument naming `origin` and the line (never its value).
absl::StatusOr<DotenvEntries> ParseDotenv(const std::string& text,
                                          const std::string& origin);

// Reads and parses the .env file at `path`. A missing file yields no
// entries; an unreadable one is an error.
absl::StatusOr<DotenvEntries> ReadDotenvFile(const std::string& path);

// Reads the YAML file at `path`: a flat map whose keys are key names in
// environment spelling ("API_PORT") or lower case ("api_port") and whose
// values are scalars or, for list keys, sequences of scalars. Returns each
// key's raw value (source "yaml") in file order. Errors: a missing file,
// YAML syntax, a root that is not a map, an unknown or repeated key, or a
// map value.
absl::StatusOr<std::vector<std::pair<const KeySpec*, RawValue>>> ReadYamlFile(
    const KeyList& table, const std::string& path);

}  // namespace pggitops::internal::config

#endif  // PGGITOPS_LIBPGGITOPS_CONFIG_SOURCES_H_
