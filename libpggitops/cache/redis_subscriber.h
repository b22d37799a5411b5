// Private: the invalidation subscriber. One thread owns one hiredis
// connection SUBSCRIBEd to the channel and hands every message to a
// callback. It PINGs every `ping_interval` and reconnects when Redis does not
// answer within `timeout`, when the connection drops, or after a failed
// attempt (every `retry_interval`). Messages sent while it was not
// subscribed are lost, so after every subscription but the one Start()
// makes it calls `on_resubscribed` (the cache then drops its L1).
//
// Its timing is real time (it waits in poll(2)), not Env time.
//
// Thread-safe: Start, Stop and the accessors may be called from any thread.
#ifndef PGGITOPS_LIBPGGITOPS_CACHE_REDIS_SUBSCRIBER_H_
#define PGGITOPS_LIBPGGITOPS_CACHE_REDIS_SUBSCRIBER_H_

#include <atomic>
#include <cstdint>
#include <functional>
#include <string>
#include <thread>

#include "absl/status/status.h"
#include "absl/time/time.h"
#include "libpggitops/config/redis_url.h"

struct redisContext;

namespace pggitops::internal {

struct SubscriberOptions {
  RedisUrl url;
  std::string channel;
  absl::Duration timeout = absl::Milliseconds(250);
  absl::Duration retry_interval = absl::Seconds(2);
  absl::Duration ping_interval = absl::Seconds(2);
  // Called on the subscriber thread for every message on the channel.
  std::function<void(const std::string& payload)> on_message;
  // Called on the subscriber thread after a re-subscription.
  std::function<void()> on_resubscribed;
};

class RedisSubscriber {
 public:
  explicit RedisSubscriber(SubscriberOptions options);
  // Stops the thread.
  ~RedisSubscriber();
  RedisSubscriber(const RedisSubscriber&) = delete;
  RedisSubscriber& operator=(const RedisSubscriber&) = delete;

  // Subscribes once on the calling thread (bounded by the timeout, so the
  // caller knows the subscription is live before it fills the cache), then
  // starts the thread, which keeps (re)subscribing. Returns the first
  // attempt's result; the thread runs either way. Call once.
  absl::Status Start();
  // Ends the thread and closes the connection. Idempotent.
  void Stop();

  bool subscribed() const { return subscribed_.load(); }
  int64_t received() const { return received_.load(); }
  int64_t reconnects() const { return reconnects_.load(); }

 private:
  // Connects and subscribes; `after_loss` (every attempt but Start's)
  // calls on_resubscribed on success, since messages may have been missed.
  absl::Status Subscribe(bool after_loss);
  void Close();
  void Run();
  // Waits for input or the wake-up fd; returns false when told to stop.
  bool WaitReadable(absl::Duration timeout, bool* readable);
  // Reads what arrived and dispatches complete replies. False when the
  // connection failed.
  bool ReadAndDispatch();
  bool SendPing();
  void Pause(absl::Duration d);

  const SubscriberOptions options_;
  redisContext* ctx_ = nullptr;  // only the owning thread touches it
  int wake_fd_ = -1;             // eventfd written by Stop()
  std::thread thread_;
  std::atomic<bool> stop_{false};
  std::atomic<bool> subscribed_{false};
  std::atomic<int64_t> received_{0};
  std::atomic<int64_t> reconnects_{0};
  absl::Time last_pong_;
  absl::Time ping_sent_ = absl::InfinitePast();
  bool ping_outstanding_ = false;
};

}  // namespace pggitops::internal

#endif  // PGGITOPS_LIBPGGITOPS_CACHE_REDIS_SUBSCRIBER_H_
