// The tests of the real daemon (`pggit-api serve`): waiting until it
// answers over HTTP.
#ifndef PGGITOPS_TESTS_HARNESS_DAEMON_H_
#define PGGITOPS_TESTS_HARNESS_DAEMON_H_

#include <chrono>
#include <map>
#include <string>

#include "httplib.h"
#include "tests/harness/harness.h"

namespace pggitops::harness {

// Polls GET http://127.0.0.1:`port``path` (with `headers`, a new connection
// each time) with WaitFor until it answers `status`; returns whether it did
// within `limit`.
bool WaitForHttp(int port, const std::string& path, int status,
                 std::chrono::milliseconds limit,
                 const httplib::Headers& headers = {});

}  // namespace pggitops::harness

#endif  // PGGITOPS_TESTS_HARNESS_DAEMON_H_
