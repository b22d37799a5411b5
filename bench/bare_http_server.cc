// The baseline of bench/http_bench: cpp-httplib's own server at its best
// for the load (64 threads, TCP_NODELAY, long keep-alive), answering every
// GET with the bytes of a file (the daemon's cached list, captured by the
// bench), so the two serve the same bytes.
//
//   bare_http_server --port N --body FILE [--threads 64]
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <sstream>
#include <string>

#include "httplib.h"

int main(int argc, char** argv) {
  int port = 0;
  int threads = 64;
  std::string body_path;
  for (int i = 1; i + 1 < argc; i += 2) {
    std::string a = argv[i];
    if (a == "--port") port = std::atoi(argv[i + 1]);
    if (a == "--threads") threads = std::atoi(argv[i + 1]);
    if (a == "--body") body_path = argv[i + 1];
  }
  if (port <= 0 || body_path.empty()) {
    std::fprintf(
        stderr, "usage: bare_http_server --port N --body FILE [--threads T]\n");
    return 2;
  }
  std::ifstream in(body_path, std::ios::binary);
  std::stringstream ss;
  ss << in.rdbuf();
  const std::string body = ss.str();
  httplib::Server svr;
  svr.new_task_queue = [threads] { return new httplib::ThreadPool(threads); };
  svr.set_tcp_nodelay(true);
  svr.set_keep_alive_max_count(1000000);
  svr.set_keep_alive_timeout(60);
  svr.Get(".*", [&body](const httplib::Request&, httplib::Response& res) {
    res.set_content(body, "application/json");
  });
  std::printf("listening on %d\n", port);
  std::fflush(stdout);
  return svr.listen("127.0.0.1", port) ? 0 : 1;
}
