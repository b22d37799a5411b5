// App: builds the library components from a ServerConfig, wires them to the
// HTTP routes and runs the daemon's lifecycle (CONTRACT section 9).
#ifndef PGGITOPS_SERVER_APP_H_
#define PGGITOPS_SERVER_APP_H_

#include <memory>

#include "server/server_config.h"

namespace pggitops::server {

class App {
 public:
  explicit App(ServerConfig config);
  ~App();
  App(const App&) = delete;
  App& operator=(const App&) = delete;

  // Starts, serves until SIGTERM/SIGINT, drains and returns the exit code.
  // REQUIRES: BlockShutdownSignals() was called before any thread started.
  int Serve();

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace pggitops::server

#endif  // PGGITOPS_SERVER_APP_H_
