#include "libpggitops/cache/redis_subscriber.h"

#include <hiredis/hiredis.h>
#include <poll.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include <algorithm>
#include <utility>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "libpggitops/cache/redis_client.h"
#include "pggitops/log.h"

namespace pggitops::internal {

RedisSubscriber::RedisSubscriber(SubscriberOptions options)
    : options_(std::move(options)),
      wake_fd_(eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK)) {}

RedisSubscriber::~RedisSubscriber() {
  Stop();
  if (wake_fd_ >= 0) close(wake_fd_);
}

absl::Status RedisSubscriber::Start() {
  absl::Status first = Subscribe(/*after_loss=*/false);
  thread_ = std::thread([this] { Run(); });
  return first;
}

void RedisSubscriber::Stop() {
  stop_ = true;
  if (wake_fd_ >= 0) {
    uint64_t one = 1;
    ssize_t ignored = write(wake_fd_, &one, sizeof(one));
    (void)ignored;
  }
  if (thread_.joinable()) thread_.join();
  Close();
}

void RedisSubscriber::Close() {
  if (ctx_ != nullptr) redisFree(ctx_);
  ctx_ = nullptr;
  subscribed_ = false;
  ping_outstanding_ = false;
}

absl::Status RedisSubscriber::Subscribe(bool after_loss) {
  Close();
  absl::StatusOr<redisContext*> c = HiredisOpen(options_.url, options_.timeout);
  if (!c.ok()) return c.status();
  ctx_ = *c;
  const char* argv[] = {"SUBSCRIBE", options_.channel.c_str()};
  const size_t lens[] = {9, options_.channel.size()};
  void* raw = redisCommandArgv(ctx_, 2, argv, lens);
  if (raw == nullptr) {
    std::string why = ctx_->errstr;
    Close();
    return absl::UnavailableError(absl::StrCat("redis SUBSCRIBE: ", why));
  }
  RedisReply r = ConvertReply(raw);
  freeReplyObject(raw);
  if (r.type != RedisReply::Type::kArray || r.elements.empty() ||
      r.elements[0].str != "subscribe") {
    Close();
    return absl::UnavailableError("redis SUBSCRIBE refused: " + r.str);
  }
  subscribed_ = true;
  last_pong_ = absl::Now();
  if (after_loss) {
    ++reconnects_;
    Log::Info("cache invalidation channel subscribed again; L1 dropped",
              {{"channel", options_.channel}});
    if (options_.on_resubscribed) options_.on_resubscribed();
  }
  return absl::OkStatus();
}

void RedisSubscriber::Pause(absl::Duration d) {
  bool readable = false;
  Close();
  WaitReadable(d, &readable);
}

bool RedisSubscriber::WaitReadable(absl::Duration timeout, bool* readable) {
  pollfd fds[2] = {{wake_fd_, POLLIN, 0}, {-1, POLLIN, 0}};
  if (ctx_ != nullptr) fds[1].fd = ctx_->fd;
  int ms = static_cast<int>(std::clamp<int64_t>(
      absl::ToInt64Milliseconds(absl::Ceil(timeout, absl::Milliseconds(1))), 0,
      60000));
  int n = poll(fds, 2, ms);
  if (stop_ || (n > 0 && (fds[0].revents & POLLIN) != 0)) return false;
  *readable = n > 0 && fds[1].fd >= 0 && fds[1].revents != 0;
  return true;
}

bool RedisSubscriber::ReadAndDispatch() {
  if (redisBufferRead(ctx_) != REDIS_OK) return false;
  void* raw = nullptr;
  while (redisGetReplyFromReader(ctx_, &raw) == REDIS_OK && raw != nullptr) {
    RedisReply r = ConvertReply(raw);
    freeReplyObject(raw);
    raw = nullptr;
    if (r.type != RedisReply::Type::kArray || r.elements.empty()) continue;
    const std::string& kind = r.elements[0].str;
    if (kind == "pong") {
      ping_outstanding_ = false;
      last_pong_ = absl::Now();
    } else if (kind == "message" && r.elements.size() == 3) {
      ++received_;
      if (options_.on_message) options_.on_message(r.elements[2].str);
    }
  }
  return ctx_->err == 0;
}

bool RedisSubscriber::SendPing() {
  const char* argv[] = {"PING"};
  const size_t lens[] = {4};
  if (redisAppendCommandArgv(ctx_, 1, argv, lens) != REDIS_OK) return false;
  int done = 0;
  while (!done) {
    if (redisBufferWrite(ctx_, &done) != REDIS_OK) return false;
  }
  ping_outstanding_ = true;
  ping_sent_ = absl::Now();
  return true;
}

void RedisSubscriber::Run() {
  while (!stop_) {
    if (ctx_ == nullptr) {
      absl::Status s = Subscribe(/*after_loss=*/true);
      if (!s.ok()) {
        Pause(options_.retry_interval);
        continue;
      }
    }
    const absl::Time now = absl::Now();
    absl::Duration wait = ping_outstanding_
                              ? ping_sent_ + options_.timeout - now
                              : last_pong_ + options_.ping_interval - now;
    bool readable = false;
    if (!WaitReadable(std::max(wait, absl::ZeroDuration()), &readable)) break;
    bool ok = true;
    if (readable) ok = ReadAndDispatch();
    const absl::Time after = absl::Now();
    if (ok && ping_outstanding_ && after >= ping_sent_ + options_.timeout) {
      ok = false;  // Redis did not answer in time
    } else if (ok && !ping_outstanding_ &&
               after >= last_pong_ + options_.ping_interval) {
      ok = SendPing();
    }
    if (!ok) {
      Log::Warning("cache invalidation subscriber lost redis; retrying",
                   {{"channel", options_.channel}});
      Pause(options_.retry_interval);
    }
  }
  Close();
}

}  // namespace pggitops::internal
