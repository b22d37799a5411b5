// A folder of a test's own, so that a test leaves nothing behind.
#ifndef PGGITOPS_TESTING_TEMP_DIR_H_
#define PGGITOPS_TESTING_TEMP_DIR_H_

#include <stdlib.h>

#include <cerrno>
#include <cstring>
#include <filesystem>
#include <stdexcept>
#include <string>
#include <system_error>

namespace pggitops::testing {

// A new, empty folder $TMPDIR/`prefix`XXXXXX (/tmp without TMPDIR),
// removed with everything in it when the object goes. Throws
// std::runtime_error when it cannot be made.
class TempDir {
 public:
  explicit TempDir(const std::string& prefix) {
    const char* base = std::getenv("TMPDIR");
    std::string tmpl =
        std::string(base != nullptr && *base != '\0' ? base : "/tmp") + "/" +
        prefix + "XXXXXX";
    if (mkdtemp(tmpl.data()) == nullptr) {
      throw std::runtime_error("mkdtemp " + tmpl + ": " + std::strerror(errno));
    }
    path_ = tmpl;
  }
  ~TempDir() {
    std::error_code ignored;
    std::filesystem::remove_all(path_, ignored);
  }
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;

  const std::string& path() const { return path_; }

 private:
  std::string path_;
};

}  // namespace pggitops::testing

#endif  // PGGITOPS_TESTING_TEMP_DIR_H_
