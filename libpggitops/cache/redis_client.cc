#include "libpggitops/cache/redis_client.h"

#include <hiredis/hiredis.h>
#include <sys/time.h>

#include <algorithm>
#include <cerrno>
#include <utility>

#include "absl/strings/str_cat.h"

namespace pggitops::internal {
namespace {

timeval TimevalOf(absl::Duration d) {
  return absl::ToTimeval(std::max(d, absl::Milliseconds(1)));
}

absl::Status ContextError(const redisContext* c, absl::string_view what) {
  std::string detail = c == nullptr ? "out of memory" : c->errstr;
  if (c != nullptr && c->err == REDIS_ERR_IO &&
      (errno == EAGAIN || errno == EWOULDBLOCK)) {
    return absl::DeadlineExceededError(
        absl::StrCat("redis ", what, ": timed out"));
  }
  return absl::UnavailableError(absl::StrCat("redis ", what, ": ", detail));
}

// Runs one command on a raw context.
absl::StatusOr<RedisReply> RunCommand(redisContext* c,
                                      const std::vector<std::string>& argv) {
  std::vector<const char*> args;
  std::vector<size_t> lens;
  args.reserve(argv.size());
  lens.reserve(argv.size());
  for (const std::string& a : argv) {
    args.push_back(a.data());
    lens.push_back(a.size());
  }
  errno = 0;
  void* raw = redisCommandArgv(c, static_cast<int>(args.size()), args.data(),
                               lens.data());
  if (raw == nullptr) return ContextError(c, argv.empty() ? "" : argv[0]);
  RedisReply reply = ConvertReply(raw);
  freeReplyObject(raw);
  return reply;
}

class HiredisConnection final : public RedisConnection {
 public:
  explicit HiredisConnection(redisContext* c) : c_(c) {}
  ~HiredisConnection() override { redisFree(c_); }
  absl::StatusOr<RedisReply> Command(
      const std::vector<std::string>& argv) override {
    if (c_->err != 0) return ContextError(c_, "connection");
    return RunCommand(c_, argv);
  }

 private:
  redisContext* c_;
};

class HiredisConnector final : public RedisConnector {
 public:
  HiredisConnector(RedisUrl url, absl::Duration timeout)
      : url_(std::move(url)), timeout_(timeout) {}
  absl::StatusOr<std::unique_ptr<RedisConnection>> Connect() override {
    absl::StatusOr<redisContext*> c = HiredisOpen(url_, timeout_);
    if (!c.ok()) return c.status();
    return std::unique_ptr<RedisConnection>(
        std::make_unique<HiredisConnection>(*c));
  }

 private:
  const RedisUrl url_;
  const absl::Duration timeout_;
};

absl::Status Handshake(redisContext* c, const RedisUrl& url) {
  std::vector<std::vector<std::string>> commands;
  if (!url.password.empty()) {
    if (url.username.empty()) {
      commands.push_back({"AUTH", url.password});
    } else {
      commands.push_back({"AUTH", url.username, url.password});
    }
  }
  if (url.db != 0) commands.push_back({"SELECT", absl::StrCat(url.db)});
  for (const auto& argv : commands) {
    absl::StatusOr<RedisReply> r = RunCommand(c, argv);
    if (!r.ok()) return r.status();
    if (r->type == RedisReply::Type::kError) {
      return absl::UnavailableError(
          absl::StrCat("redis ", argv[0], " refused: ", r->str));
    }
  }
  return absl::OkStatus();
}

}  // namespace

RedisReply ConvertReply(const void* raw) {
  const redisReply* r = static_cast<const redisReply*>(raw);
  RedisReply out;
  switch (r->type) {
    case REDIS_REPLY_STRING:
      out.type = RedisReply::Type::kString;
      out.str.assign(r->str, r->len);
      break;
    case REDIS_REPLY_STATUS:
      out.type = RedisReply::Type::kStatus;
      out.str.assign(r->str, r->len);
      break;
    case REDIS_REPLY_ERROR:
      out.type = RedisReply::Type::kError;
      out.str.assign(r->str, r->len);
      break;
    case REDIS_REPLY_INTEGER:
      out.type = RedisReply::Type::kInteger;
      out.integer = r->integer;
      break;
    case REDIS_REPLY_ARRAY:
      out.type = RedisReply::Type::kArray;
      out.elements.reserve(r->elements);
      for (size_t i = 0; i < r->elements; ++i) {
        out.elements.push_back(ConvertReply(r->element[i]));
      }
      break;
    default:
      out.type = RedisReply::Type::kNil;
  }
  return out;
}

absl::StatusOr<redisContext*> HiredisOpen(const RedisUrl& url,
                                          absl::Duration timeout) {
  const timeval tv = TimevalOf(timeout);
  redisContext* c =
      url.unix_path.empty()
          ? redisConnectWithTimeout(url.host.c_str(), url.port, tv)
          : redisConnectUnixWithTimeout(url.unix_path.c_str(), tv);
  if (c == nullptr || c->err != 0) {
    absl::Status s = ContextError(c, absl::StrCat("connect to ", url.redacted));
    if (c != nullptr) redisFree(c);
    return absl::UnavailableError(s.message());
  }
  absl::Status s = absl::OkStatus();
  if (redisSetTimeout(c, tv) != REDIS_OK) {
    s = ContextError(c, "set timeout");
  } else {
    s = Handshake(c, url);
  }
  if (!s.ok()) {
    redisFree(c);
    return s;
  }
  return c;
}

std::unique_ptr<RedisConnector> NewHiredisConnector(RedisUrl url,
                                                    absl::Duration timeout) {
  return std::make_unique<HiredisConnector>(std::move(url), timeout);
}

}  // namespace pggitops::internal
