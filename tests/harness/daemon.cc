// The tests of the real daemon (see daemon.h).
#include "tests/harness/daemon.h"

namespace pggitops::harness {

bool WaitForHttp(int port, const std::string& path, int status,
                 std::chrono::milliseconds limit,
                 const httplib::Headers& headers) {
  return WaitFor(
      [&] {
        httplib::Client c("127.0.0.1", port);
        c.set_connection_timeout(1, 0);
        c.set_read_timeout(10, 0);
        auto r = c.Get(path, headers);
        return r && r->status == status;
      },
      limit);
}

}  // namespace pggitops::harness
