// Private: the migrations compiled into the library (see sql/).
#ifndef PGGITOPS_LIBPGGITOPS_SCHEMA_MIGRATIONS_H_
#define PGGITOPS_LIBPGGITOPS_SCHEMA_MIGRATIONS_H_

#include <vector>

namespace pggitops::internal {

struct Migration {
  int version;       // 1, 2, 3, ...
  const char* name;  // from the file name
  const char* sql;   // the file's text
};

// In version order; generated from sql/*.sql by scripts/embed_sql.py.
const std::vector<Migration>& EmbeddedMigrations();

}  // namespace pggitops::internal

#endif  // PGGITOPS_LIBPGGITOPS_SCHEMA_MIGRATIONS_H_
