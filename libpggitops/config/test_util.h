// Test helpers for the config component: a temporary directory that is
// removed with its files when the object goes away.
#ifndef PGGITOPS_LIBPGGITOPS_CONFIG_TEST_UTIL_H_
#define PGGITOPS_LIBPGGITOPS_CONFIG_TEST_UTIL_H_

#include <dirent.h>
#include <stdlib.h>
#include <unistd.h>

#include <fstream>
#include <string>

namespace pggitops::internal::config {

// Not thread-safe; one per test case.
class TempDir {
 public:
  TempDir() {
    const char* base = std::getenv("TMPDIR");
    std::string tmpl =
        std::string(base != nullptr && *base != '\0' ? base : "/tmp") +
        "/pggitops-config-test-XXXXXX";
    char* made = mkdtemp(tmpl.data());
    path_ = made != nullptr ? made : "";
  }
  ~TempDir() {
    if (path_.empty()) return;
    if (DIR* d = opendir(path_.c_str())) {
      while (dirent* e = readdir(d)) {
        std::string name = e->d_name;
        if (name != "." && name != "..") unlink((path_ + "/" + name).c_str());
      }
      closedir(d);
    }
    rmdir(path_.c_str());
  }
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;

  const std::string& path() const { return path_; }

  // Writes `text` to `name` inside the directory; returns the full path.
  std::string Write(const std::string& name, const std::string& text) const {
    std::string full = path_ + "/" + name;
    std::ofstream out(full, std::ios::binary | std::ios::trunc);
    out << text;
    return full;
  }

 private:
  std::string path_;
};

}  // namespace pggitops::internal::config

#endif  // PGGITOPS_LIBPGGITOPS_CONFIG_TEST_UTIL_H_
