// The integration-test harness (see harness.h): thin wrappers around
// tests/harness/services, pg_ctl, psql, redis-server and fork/exec.
#include "tests/harness/harness.h"

#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <sys/file.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <regex>
#include <sstream>
#include <stdexcept>
#include <thread>

extern char** environ;

#ifndef PGGITOPS_SOURCE_DIR
#error "PGGITOPS_SOURCE_DIR must be defined by tests/harness/meson.build"
#endif
#ifndef PGGITOPS_BUILD_DIR
#error "PGGITOPS_BUILD_DIR must be defined by tests/harness/meson.build"
#endif

namespace pggitops::harness {
namespace {

void SleepMs(int ms) {
  std::this_thread::sleep_for(std::chrono::milliseconds(ms));
}

std::string EnvOr(const char* name, const std::string& fallback) {
  const char* v = std::getenv(name);
  return v != nullptr && *v != '\0' ? v : fallback;
}

// Single-quotes `s` for sh -c.
std::string Quote(const std::string& s) {
  std::string q = "'";
  for (char c : s) q += c == '\'' ? std::string("'\\''") : std::string(1, c);
  return q + "'";
}

std::string ReadFile(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::ostringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

std::string TrimNewlines(std::string s) {
  while (!s.empty() && (s.back() == '\n' || s.back() == '\r')) s.pop_back();
  return s;
}

// `cmd` as the postgres user when we are root (PostgreSQL refuses to run as
// root), from / so that an unreadable working folder does not matter.
std::string AsPostgres(const std::string& cmd) {
  return geteuid() == 0 ? "cd / && runuser -u postgres -- " + cmd
                        : "cd / && " + cmd;
}

void RunOrFail(const std::string& what, const std::string& cmd) {
  std::string out;
  int code = Run(cmd, &out);
  if (code != 0) {
    Fail(what + " failed (exit " + std::to_string(code) + "): " + cmd + "\n" +
         out);
  }
}

// Mutable state behind Get(); see harness.h for the threading rules.
Services* g_services = nullptr;
std::string g_own_state_dir;  // set when this process started the services

std::string ServicesScript() { return SourcePath("tests/harness/services"); }

std::string ProvisionScript() {
  return EnvOr("PGGITOPS_PROVISION_DB", SourcePath("ops/scripts/provision-db"));
}

void StopOwnServices() {
  if (g_own_state_dir.empty()) return;
  Run(ServicesScript() + " stop " + Quote(g_own_state_dir));
}

// Starts services into a fresh /var/tmp folder and exports DIR/env into this
// process, so that children (the daemon under test, psql) see it too.
void StartOwnServices() {
  char tmpl[] = "/var/tmp/pggitops-test.XXXXXX";
  if (mkdtemp(tmpl) == nullptr)
    Fail(std::string("mkdtemp: ") + strerror(errno));
  chmod(tmpl, 0755);
  const std::string dir = tmpl;
  RunOrFail("services start", ServicesScript() + " start " + Quote(dir) +
                                  " --owner-pid " + std::to_string(getpid()));
  g_own_state_dir = dir;
  std::atexit(StopOwnServices);
  static const std::regex kLine(R"(^export ([A-Z0-9_]+)=(.*)$)");
  std::istringstream env(ReadFile(dir + "/env"));
  std::string line;
  std::smatch m;
  while (std::getline(env, line)) {
    if (std::regex_match(line, m, kLine)) {
      setenv(m[1].str().c_str(), m[2].str().c_str(), 1);
    }
  }
}

Services FromEnvironment() {
  Services s;
  std::string missing;
  auto get = [&missing](const char* name) {
    const char* v = std::getenv(name);
    if (v == nullptr || *v == '\0') missing += std::string(" ") + name;
    return std::string(v == nullptr ? "" : v);
  };
  s.pgbin = get("PGGITOPS_TEST_PGBIN");
  s.pgdata = get("PGGITOPS_TEST_PGDATA");
  s.pghost = get("PGGITOPS_TEST_PGHOST");
  s.admin_dsn = get("PGGITOPS_TEST_ADMIN_DSN");
  s.dsn = get("PGGITOPS_TEST_DSN");
  s.redis_url = get("PGGITOPS_TEST_REDIS_URL");
  s.state_dir = get("PGGITOPS_TEST_STATE_DIR");
  s.pgport = std::atoi(get("PGGITOPS_TEST_PGPORT").c_str());
  s.redis_port = std::atoi(get("PGGITOPS_TEST_REDIS_PORT").c_str());
  s.redis_pid = std::atoi(get("PGGITOPS_TEST_REDIS_PID").c_str());
  if (!missing.empty()) {
    Fail("incomplete test environment, missing:" + missing +
         " (source DIR/env from `tests/harness/services start DIR`, or unset "
         "PGGITOPS_TEST_DSN to let the harness start its own servers)");
  }
  return s;
}

// The pid in DIR/redis.pid: an earlier test may have restarted Redis since
// the environment was written.
pid_t RedisPidFromFile(const Services& s) {
  return std::atoi(ReadFile(s.state_dir + "/redis.pid").c_str());
}

// Process state letter from /proc/PID/stat ('T' stopped, 'Z' zombie), or 0
// when there is no such process.
char ProcState(pid_t pid) {
  std::string stat = ReadFile("/proc/" + std::to_string(pid) + "/stat");
  size_t paren = stat.rfind(')');
  if (paren == std::string::npos || paren + 2 >= stat.size()) return 0;
  return stat[paren + 2];
}

bool PostgresRunning(const Services& s) {
  std::string out;
  return Run(AsPostgres(Quote(s.pgbin + "/pg_ctl") + " status -D " +
                        Quote(s.pgdata)),
             &out) == 0;
}

// Brings back servers an earlier test of the run left stopped or paused.
void EnsureRunning(Services* s) {
  if (!PostgresRunning(*s)) {
    std::fprintf(stderr, "harness: PostgreSQL was stopped; starting it\n");
    StartPostgres();
  }
  pid_t pid = RedisPidFromFile(*s);
  if (pid > 0) s->redis_pid = pid;
  char state = s->redis_pid > 0 ? ProcState(s->redis_pid) : 0;
  if (state == 'T') {
    std::fprintf(stderr, "harness: Redis was paused; resuming it\n");
    ResumeRedis();
  } else if (state == 0 || state == 'Z') {
    std::fprintf(stderr, "harness: Redis was stopped; starting it\n");
    StartRedis();
  }
}

Services& Mutable() {
  static Services* services = [] {
    if (std::getenv("PGGITOPS_TEST_DSN") == nullptr) StartOwnServices();
    g_services = new Services(FromEnvironment());
    EnsureRunning(g_services);
    return g_services;
  }();
  return *services;
}

// The state, also while Mutable() is still initialising (EnsureRunning
// calls the public Start* functions).
Services& State() { return g_services != nullptr ? *g_services : Mutable(); }

// Holds an exclusive flock on a file while alive (serialises provisioning
// across the test processes of one run).
class FileLock {
 public:
  explicit FileLock(const std::string& path)
      : fd_(open(path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0644)) {
    if (fd_ < 0) Fail("open " + path + ": " + strerror(errno));
    while (flock(fd_, LOCK_EX) != 0 && errno == EINTR) {
    }
  }
  ~FileLock() { close(fd_); }
  FileLock(const FileLock&) = delete;
  FileLock& operator=(const FileLock&) = delete;

 private:
  int fd_;
};

std::string PsqlOrFail(const Services& s, const std::vector<std::string>& args,
                       const std::string& what) {
  std::vector<std::string> argv = {
      s.pgbin + "/psql", "-X", "-q", "-A", "-t", "-v", "ON_ERROR_STOP=1"};
  argv.insert(argv.end(), args.begin(), args.end());
  Process p(argv, {{"PGOPTIONS", "-c client_min_messages=warning"},
                   {"PGCONNECT_TIMEOUT", "10"}});
  int code = p.Wait(120'000);
  if (code != 0) {
    Fail(what + " failed (exit " + std::to_string(code) + "):\n" + p.Output());
  }
  return TrimNewlines(p.Output());
}

}  // namespace

const Services& Get() { return Mutable(); }

std::string AdminQuery(const std::string& db, const std::string& sql) {
  const Services& s = State();
  return PsqlOrFail(s,
                    {"-h", s.pghost, "-p", std::to_string(s.pgport), "-U",
                     "postgres", "-d", db, "-c", sql},
                    "AdminQuery on " + db + " (" + sql + ")");
}

std::string FreshDatabase(const std::string& name) {
  static const std::regex kName("[a-z][a-z0-9_]{0,62}");
  if (!std::regex_match(name, kName)) {
    Fail("FreshDatabase: invalid name '" + name +
         "' (want [a-z][a-z0-9_]{0,62})");
  }
  const Services& s = State();
  FileLock lock(s.state_dir + "/provision.lock");
  AdminQuery("postgres",
             "DROP DATABASE IF EXISTS \"" + name + "\" WITH (FORCE)");
  Process p({ProvisionScript(), "--host", s.pghost, "--port",
             std::to_string(s.pgport), "--superuser", "postgres", "--database",
             name, "--role", "pggit", "--password", "pggit"});
  int code = p.Wait(300'000);
  if (code != 0) {
    Fail("provision-db --database " + name + " failed (exit " +
         std::to_string(code) + "):\n" + p.Output());
  }
  return "postgresql://pggit:pggit@" + s.pghost + ":" +
         std::to_string(s.pgport) + "/" + name;
}

void StopPostgres() {
  const Services& s = State();
  RunOrFail("StopPostgres",
            AsPostgres(Quote(s.pgbin + "/pg_ctl") + " -D " + Quote(s.pgdata) +
                       " -m fast -w -t 60 stop"));
}

void StartPostgres() {
  const Services& s = State();
  if (PostgresRunning(s)) return;
  RunOrFail(
      "StartPostgres",
      AsPostgres(Quote(s.pgbin + "/pg_ctl") + " -D " + Quote(s.pgdata) +
                 " -l " + Quote(s.state_dir + "/pg.log") + " -w -t 60 start"));
}

void RestartPostgres() {
  const Services& s = State();
  RunOrFail("RestartPostgres",
            AsPostgres(Quote(s.pgbin + "/pg_ctl") + " -D " + Quote(s.pgdata) +
                       " -l " + Quote(s.state_dir + "/pg.log") +
                       " -m fast -w -t 60 restart"));
}

void StopRedis() {
  pid_t pid = State().redis_pid;
  if (pid <= 0 || ProcState(pid) == 0) return;
  kill(pid, SIGTERM);
  kill(pid, SIGCONT);  // a paused server handles the SIGTERM now
  const bool gone = WaitFor(
      [pid] {
        char state = ProcState(pid);
        return state == 0 || state == 'Z';
      },
      std::chrono::seconds(10));
  if (gone) return;
  kill(pid, SIGKILL);
  Fail("Redis (pid " + std::to_string(pid) + ") ignored SIGTERM for 10 s");
}

void StartRedis() {
  Services& s = State();
  if (RedisPing(500)) return;
  const std::string& d = s.state_dir;
  RunOrFail("StartRedis",
            "redis-server --port " + std::to_string(s.redis_port) +
                " --bind 127.0.0.1 --save '' --appendonly no --daemonize yes" +
                " --pidfile " + Quote(d + "/redis.pid") + " --dir " + Quote(d) +
                " --logfile " + Quote(d + "/redis.log"));
  WaitFor([] { return RedisPing(100); }, std::chrono::seconds(15));
  pid_t pid = 0;
  WaitFor([&] { return (pid = RedisPidFromFile(s)) > 0; },
          std::chrono::seconds(5));
  if (pid <= 0 || !RedisPing(1000)) {
    Fail("redis-server did not come back on port " +
         std::to_string(s.redis_port) + " (log: " + d + "/redis.log)");
  }
  s.redis_pid = pid;
  setenv("PGGITOPS_TEST_REDIS_PID", std::to_string(pid).c_str(), 1);
}

void PauseRedis() {
  pid_t pid = State().redis_pid;
  if (kill(pid, SIGSTOP) != 0)
    Fail("SIGSTOP Redis: " + std::string(strerror(errno)));
  if (!WaitFor([pid] { return ProcState(pid) == 'T'; },
               std::chrono::seconds(5))) {
    Fail("Redis did not stop on SIGSTOP");
  }
}

void ResumeRedis() {
  pid_t pid = State().redis_pid;
  if (kill(pid, SIGCONT) != 0)
    Fail("SIGCONT Redis: " + std::string(strerror(errno)));
}

bool RedisPing(int timeout_ms) {
  const Services& s = State();
  auto deadline =
      std::chrono::steady_clock::now() + std::chrono::milliseconds(timeout_ms);
  int fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (fd < 0) return false;
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(static_cast<uint16_t>(s.redis_port));
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  std::string reply;
  bool sent = false;
  if (connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0 ||
      errno == EINPROGRESS) {
    while (reply.find("\r\n") == std::string::npos) {
      auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
          deadline - std::chrono::steady_clock::now());
      if (left.count() <= 0) break;
      pollfd pfd{fd, static_cast<short>(sent ? POLLIN : POLLOUT), 0};
      if (poll(&pfd, 1, static_cast<int>(left.count())) <= 0) break;
      if (!sent) {
        int err = 0;
        socklen_t len = sizeof err;
        getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &len);
        if (err != 0 || send(fd, "PING\r\n", 6, MSG_NOSIGNAL) != 6) break;
        sent = true;
        continue;
      }
      char buf[64];
      ssize_t n = recv(fd, buf, sizeof buf, 0);
      if (n <= 0) break;
      reply.append(buf, static_cast<size_t>(n));
    }
  }
  close(fd);
  return reply.rfind("+PONG\r\n", 0) == 0;
}

int FreePort() {
  int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) Fail(std::string("socket: ") + strerror(errno));
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = 0;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t len = sizeof addr;
  if (bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0 ||
      getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len) != 0) {
    int err = errno;
    close(fd);
    Fail(std::string("FreePort: ") + strerror(err));
  }
  close(fd);
  return ntohs(addr.sin_port);
}

bool WaitFor(const std::function<bool()>& done,
             std::chrono::milliseconds limit) {
  const auto end = std::chrono::steady_clock::now() + limit;
  for (;;) {
    const bool last = std::chrono::steady_clock::now() >= end;
    if (done()) return true;
    if (last) return false;
    SleepMs(20);
  }
}

std::string BuildPath(const std::string& relative) {
  return EnvOr("PGGITOPS_BUILD_DIR", PGGITOPS_BUILD_DIR) + "/" + relative;
}

std::string SourcePath(const std::string& relative) {
  return EnvOr("PGGITOPS_SOURCE_DIR", PGGITOPS_SOURCE_DIR) + "/" + relative;
}

Process::Process(const std::vector<std::string>& argv,
                 const std::map<std::string, std::string>& env) {
  if (argv.empty()) Fail("Process: empty argv");
  // The output file has no name from the start, so nothing is left behind
  // even if this process dies: the child writes to it, Output() reads it.
  std::string tmpl = EnvOr("TMPDIR", "/tmp") + "/pggitops-process-XXXXXX";
  int out_fd = mkostemp(tmpl.data(), O_CLOEXEC);
  if (out_fd < 0) Fail(std::string("mkostemp: ") + strerror(errno));
  unlink(tmpl.c_str());
  output_fd_ = out_fd;
  // Everything the child needs is built before fork(): only async-signal-safe
  // calls happen between fork() and exec.
  std::map<std::string, std::string> merged;
  for (char** e = environ; *e != nullptr; ++e) {
    const char* eq = std::strchr(*e, '=');
    if (eq != nullptr)
      merged[std::string(*e, static_cast<size_t>(eq - *e))] = eq + 1;
  }
  for (const auto& [k, v] : env) merged[k] = v;
  std::vector<std::string> env_strings;
  for (const auto& [k, v] : merged) env_strings.push_back(k + "=" + v);
  std::vector<char*> envp, args;
  for (auto& e : env_strings) envp.push_back(e.data());
  envp.push_back(nullptr);
  std::vector<std::string> argv_copy = argv;
  for (auto& a : argv_copy) args.push_back(a.data());
  args.push_back(nullptr);
  std::fflush(nullptr);
  pid_ = fork();
  if (pid_ < 0) {
    close(output_fd_);
    Fail(std::string("fork: ") + strerror(errno));
  }
  if (pid_ == 0) {
    int in_fd = open("/dev/null", O_RDONLY);
    dup2(in_fd, 0);
    dup2(out_fd, 1);
    dup2(out_fd, 2);
    close_range(3, ~0U, 0);
    execvpe(args[0], args.data(), envp.data());
    dprintf(2, "harness: cannot run %s: %s\n", args[0], strerror(errno));
    _exit(127);
  }
}

Process::~Process() {
  if (pid_ > 0 && !reaped_) {
    kill(pid_, SIGKILL);
    int status;
    while (waitpid(pid_, &status, 0) < 0 && errno == EINTR) {
    }
  }
  close(output_fd_);
}

void Process::Signal(int sig) {
  if (!reaped_) kill(pid_, sig);
}

int Process::Wait(int timeout_ms) {
  auto deadline =
      std::chrono::steady_clock::now() + std::chrono::milliseconds(timeout_ms);
  while (!reaped_) {
    int status;
    pid_t r = waitpid(pid_, &status, WNOHANG);
    if (r == pid_) {
      reaped_ = true;
      exit_code_ =
          WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
    } else if (r < 0 && errno != EINTR) {
      Fail("waitpid " + std::to_string(pid_) + ": " + strerror(errno));
    } else if (timeout_ms >= 0 &&
               std::chrono::steady_clock::now() >= deadline) {
      return -1;
    } else {
      SleepMs(5);
    }
  }
  return exit_code_;
}

bool Process::Running() { return Wait(0) == -1; }

std::string Process::Output() {
  std::string out;
  char buf[65536];
  for (;;) {
    const ssize_t n =
        pread(output_fd_, buf, sizeof buf, static_cast<off_t>(out.size()));
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return out;
    out.append(buf, static_cast<size_t>(n));
  }
}

void Fail(const std::string& what) {
  std::fprintf(stderr, "harness: %s\n", what.c_str());
  std::fflush(stderr);
  throw std::runtime_error("harness: " + what);
}

int Run(const std::string& command, std::string* out) {
  std::fflush(nullptr);
  FILE* pipe = popen(("(" + command + ") 2>&1").c_str(), "r");
  if (pipe == nullptr) Fail("popen: " + std::string(strerror(errno)));
  std::string output;
  char buf[4096];
  size_t n;
  while ((n = fread(buf, 1, sizeof buf, pipe)) > 0) output.append(buf, n);
  int status = pclose(pipe);
  int code = WIFEXITED(status)     ? WEXITSTATUS(status)
             : WIFSIGNALED(status) ? 128 + WTERMSIG(status)
                                   : -1;
  if (out != nullptr) {
    *out = output;
  } else if (code != 0) {
    std::fprintf(stderr, "harness: `%s` exited %d:\n%s", command.c_str(), code,
                 output.c_str());
  }
  return code;
}

}  // namespace pggitops::harness
