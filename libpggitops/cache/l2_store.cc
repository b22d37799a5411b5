#include "libpggitops/cache/l2_store.h"

#include <algorithm>
#include <utility>

#include "absl/random/random.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "libpggitops/cache/glob.h"
#include "pggitops/log.h"

namespace pggitops::internal {
namespace {

// KEYS: global token key, family token key. ARGV: data key prefix, key.
// Returns {g, f} on a miss, {g, f, value, pttl} on a hit.
constexpr char kGetScript[] = R"lua(
local g = redis.call('GET', KEYS[1]) or '0'
local f = redis.call('GET', KEYS[2]) or '0'
local k = ARGV[1] .. g .. ':' .. f .. ':' .. ARGV[2]
local v = redis.call('GET', k)
if not v then return {g, f} end
return {g, f, v, redis.call('PTTL', k)}
)lua";

// KEYS: global token key, family token key. ARGV: data key prefix, key,
// value, ttl in ms (0: none).
constexpr char kPutScript[] = R"lua(
local g = redis.call('GET', KEYS[1]) or '0'
local f = redis.call('GET', KEYS[2]) or '0'
local k = ARGV[1] .. g .. ':' .. f .. ':' .. ARGV[2]
if ARGV[4] == '0' then
  redis.call('SET', k, ARGV[3])
else
  redis.call('SET', k, ARGV[3], 'PX', ARGV[4])
end
return 1
)lua";

std::string TtlMillis(absl::Duration ttl) {
  if (ttl == absl::InfiniteDuration()) return "0";
  return absl::StrCat(std::max<int64_t>(1, absl::ToInt64Milliseconds(ttl)));
}

}  // namespace

L2Store::L2Store(L2Options options, std::unique_ptr<RedisConnector> connector,
                 Env* env)
    : options_(std::move(options)),
      connector_(std::move(connector)),
      env_(env),
      nonce_(absl::Uniform<uint32_t>(absl::BitGen())) {
  {
    absl::MutexLock lock(&mu_);
    stats_.enabled = true;
  }
  absl::Status s = Ping();
  if (!s.ok()) {
    Log::Warning(
        "redis unavailable at start; the cache runs on L1 and keeps "
        "retrying",
        {{"error", std::string(s.message())}});
  }
}

L2Store::~L2Store() { Close(); }

std::string L2Store::GlobalGenKey() const {
  return absl::StrCat(options_.prefix, "gen");
}

std::string L2Store::GenKey(absl::string_view family) const {
  return absl::StrCat(options_.prefix, "gen:", family);
}

std::string L2Store::DataKey(absl::string_view g, absl::string_view f,
                             absl::string_view key) const {
  return absl::StrCat(options_.prefix, "d:", g, ":", f, ":", key);
}

std::string L2Store::NewToken() {
  absl::MutexLock lock(&mu_);
  return absl::StrFormat("%s-%08x-%x", options_.instance_id, nonce_,
                         ++token_counter_);
}

void L2Store::Fail(const absl::Status& s) {
  ++stats_.errors;
  stats_.last_error = std::string(s.message());
  if (!breaker_open_) {
    Log::Warning("redis call failed; L2 skipped until the retry interval ends",
                 {{"error", stats_.last_error}});
  }
  breaker_open_ = true;
  retry_at_ = env_->MonotonicNow() + options_.retry_interval;
  open_connections_ -= static_cast<int>(idle_.size());
  idle_.clear();  // they are most likely dead too
}

std::unique_ptr<RedisConnection> L2Store::Connect(bool probe) {
  absl::StatusOr<std::unique_ptr<RedisConnection>> c = connector_->Connect();
  absl::Status s = c.status();
  if (s.ok() && probe) {
    // A frozen Redis still accepts TCP connections (the kernel does): only
    // an answer proves it is back.
    absl::StatusOr<RedisReply> pong = (*c)->Command({"PING"});
    s = pong.status();
    if (s.ok() && pong->type == RedisReply::Type::kError) {
      s = absl::UnavailableError(absl::StrCat("redis PING: ", pong->str));
    }
  }
  absl::MutexLock lock(&mu_);
  if (!s.ok()) {
    --open_connections_;
    probing_ = false;
    Fail(s);
    return nullptr;
  }
  if (breaker_open_) {
    Log::Info("redis reachable again; L2 resumed");
    ++stats_.reconnects;
  }
  breaker_open_ = false;
  probing_ = false;
  return *std::move(c);
}

std::unique_ptr<RedisConnection> L2Store::Acquire(Wait wait) {
  std::unique_ptr<RedisConnection> c;
  bool connect = false, probe = false;
  {
    absl::MutexLock lock(&mu_);
    const absl::Time deadline = absl::Now() + options_.busy_wait;
    for (;;) {
      if (closed_) return nullptr;
      if (breaker_open_) {
        if (probing_ || env_->MonotonicNow() < retry_at_) {
          ++stats_.skipped;
          return nullptr;
        }
        probing_ = true;  // this call probes
        connect = probe = true;
      } else if (!idle_.empty()) {
        c = std::move(idle_.back());
        idle_.pop_back();
      } else if (open_connections_ < options_.max_connections) {
        connect = true;
      } else if (wait == Wait::kYes &&
                 !freed_.WaitWithDeadline(&mu_, deadline)) {
        continue;
      } else {
        ++stats_.skipped;
        return nullptr;
      }
      break;
    }
    if (connect) ++open_connections_;
  }
  if (connect) c = Connect(probe);
  if (c == nullptr) return nullptr;
  return FlushIfPending(std::move(c));
}

std::unique_ptr<RedisConnection> L2Store::FlushIfPending(
    std::unique_ptr<RedisConnection> c) {
  {
    absl::MutexLock lock(&mu_);
    if (!flush_pending_) return c;
  }
  absl::StatusOr<RedisReply> r =
      c->Command({"SET", GlobalGenKey(), NewToken()});
  absl::Status s = r.status();
  if (r.ok() && r->type == RedisReply::Type::kError) {
    s = absl::UnavailableError(absl::StrCat("redis SET: ", r->str));
  }
  if (!s.ok()) {
    Release(std::move(c), s);
    return nullptr;
  }
  absl::MutexLock lock(&mu_);
  flush_pending_ = false;
  ++stats_.invalidations;
  return c;
}

void L2Store::Release(std::unique_ptr<RedisConnection> conn,
                      const absl::Status& result) {
  absl::MutexLock lock(&mu_);
  if (!result.ok()) {
    --open_connections_;
    Fail(result);
  } else if (closed_) {
    --open_connections_;
  } else {
    idle_.push_back(std::move(conn));
  }
  freed_.Signal();
}

absl::StatusOr<RedisReply> L2Store::Run(Wait wait,
                                        const std::vector<std::string>& argv) {
  std::unique_ptr<RedisConnection> c = Acquire(wait);
  if (c == nullptr) return absl::UnavailableError("redis skipped");
  absl::StatusOr<RedisReply> r = c->Command(argv);
  absl::Status s = r.status();
  if (r.ok() && r->type == RedisReply::Type::kError) {
    s = absl::UnavailableError(absl::StrCat("redis ", argv[0], ": ", r->str));
  }
  Release(std::move(c), s);
  if (!s.ok()) return s;
  return r;
}

L2Store::Lookup L2Store::Get(absl::string_view key) {
  Lookup out;
  absl::StatusOr<RedisReply> r =
      Run(Wait::kNo,
          {"EVAL", kGetScript, "2", GlobalGenKey(), GenKey(KeyFamily(key)),
           absl::StrCat(options_.prefix, "d:"), std::string(key)});
  if (!r.ok()) return out;
  const auto& e = r->elements;
  if (r->type != RedisReply::Type::kArray || e.size() < 2) return out;
  out.reached = true;
  out.data_key = DataKey(e[0].str, e[1].str, key);
  absl::MutexLock lock(&mu_);
  if (e.size() >= 4 && e[2].type == RedisReply::Type::kString) {
    out.value = std::make_shared<const std::string>(e[2].str);
    if (e[3].integer > 0) out.ttl = absl::Milliseconds(e[3].integer);
    ++stats_.hits;
  } else {
    ++stats_.misses;
  }
  return out;
}

void L2Store::WriteBack(const Lookup& lookup, const std::string& value,
                        absl::Duration ttl) {
  if (!lookup.reached) return;
  std::vector<std::string> argv = {"SET", lookup.data_key, value};
  if (ttl != absl::InfiniteDuration()) {
    argv.push_back("PX");
    argv.push_back(TtlMillis(ttl));
  }
  if (Run(Wait::kNo, argv).ok()) {
    absl::MutexLock lock(&mu_);
    ++stats_.writes;
  }
}

void L2Store::Put(absl::string_view key, const std::string& value,
                  absl::Duration ttl) {
  absl::StatusOr<RedisReply> r = Run(
      Wait::kNo, {"EVAL", kPutScript, "2", GlobalGenKey(),
                  GenKey(KeyFamily(key)), absl::StrCat(options_.prefix, "d:"),
                  std::string(key), value, TtlMillis(ttl)});
  if (r.ok()) {
    absl::MutexLock lock(&mu_);
    ++stats_.writes;
  }
}

void L2Store::NoteFlushNeeded() {
  absl::MutexLock lock(&mu_);
  flush_pending_ = true;
}

void L2Store::InvalidateFamilies(const std::vector<std::string>& families) {
  if (families.empty()) return;
  std::vector<std::string> argv = {"MSET"};
  for (const std::string& f : families) {
    argv.push_back(GenKey(f));
    argv.push_back(NewToken());
  }
  if (!Run(Wait::kYes, argv).ok()) return NoteFlushNeeded();
  absl::MutexLock lock(&mu_);
  stats_.invalidations += static_cast<int64_t>(families.size());
}

void L2Store::InvalidateAll() {
  if (!Run(Wait::kYes, {"SET", GlobalGenKey(), NewToken()}).ok()) {
    return NoteFlushNeeded();
  }
  absl::MutexLock lock(&mu_);
  ++stats_.invalidations;
}

void L2Store::Publish(const std::string& message) {
  if (Run(Wait::kNo, {"PUBLISH", options_.channel, message}).ok()) {
    absl::MutexLock lock(&mu_);
    ++stats_.published;
  }
}

absl::Status L2Store::Ping() {
  absl::StatusOr<RedisReply> r = Run(Wait::kYes, {"PING"});
  if (!r.ok()) {
    absl::MutexLock lock(&mu_);
    return absl::UnavailableError(stats_.last_error.empty()
                                      ? std::string(r.status().message())
                                      : stats_.last_error);
  }
  if (r->str != "PONG") {
    return absl::UnavailableError(absl::StrCat("redis PING answered ", r->str));
  }
  return absl::OkStatus();
}

void L2Store::Close() {
  absl::MutexLock lock(&mu_);
  closed_ = true;
  open_connections_ -= static_cast<int>(idle_.size());
  idle_.clear();
}

L2Stats L2Store::Stats() const {
  absl::MutexLock lock(&mu_);
  L2Stats s = stats_;
  s.status = breaker_open_ || closed_ ? "unavailable" : "connected";
  return s;
}

}  // namespace pggitops::internal
