// The L2 logic over a scripted fake Redis: generation tokens, the breaker
// (one probe per retry interval), the pending flush after an outage.
#include "libpggitops/cache/l2_store.h"

#include <map>
#include <memory>
#include <string>
#include <vector>

#include "absl/strings/match.h"
#include "absl/synchronization/mutex.h"
#include "doctest/doctest.h"
#include "testing/fake_env.h"

namespace pggitops::internal {
namespace {

using testing::FakeEnv;

// An in-memory Redis that understands the commands L2Store sends (the Lua
// scripts are recognised by their argument count and run natively here;
// the real scripts run against a real Redis in the integration tests).
struct FakeRedis {
  absl::Mutex mu;
  bool up = true;
  int connects = 0;
  std::map<std::string, std::string> kv;
  std::vector<std::vector<std::string>> log;

  absl::StatusOr<RedisReply> Handle(const std::vector<std::string>& a) {
    absl::MutexLock lock(&mu);
    if (!up) return absl::DeadlineExceededError("redis: timed out");
    log.push_back(a);
    RedisReply r;
    const std::string& cmd = a[0];
    if (cmd == "PING") {
      r.type = RedisReply::Type::kStatus;
      r.str = "PONG";
    } else if (cmd == "SET" || cmd == "MSET") {
      for (size_t i = 1; i + 1 < a.size(); i += cmd == "SET" ? a.size() : 2) {
        kv[a[i]] = a[i + 1];
      }
      r.type = RedisReply::Type::kStatus;
      r.str = "OK";
    } else if (cmd == "PUBLISH") {
      r.type = RedisReply::Type::kInteger;
    } else if (cmd == "EVAL") {
      // a: EVAL script 2 globalkey familykey dataprefix key [value ttl]
      std::string g = Get(a[3]), f = Get(a[4]);
      std::string data = a[5] + g + ":" + f + ":" + a[6];
      r.type = RedisReply::Type::kArray;
      if (a.size() == 9) {  // put
        kv[data] = a[7];
        r.type = RedisReply::Type::kInteger;
        r.integer = 1;
      } else {
        r.elements.push_back(Str(g));
        r.elements.push_back(Str(f));
        auto it = kv.find(data);
        if (it != kv.end()) {
          r.elements.push_back(Str(it->second));
          RedisReply ttl;
          ttl.type = RedisReply::Type::kInteger;
          ttl.integer = 30000;
          r.elements.push_back(ttl);
        }
      }
    } else {
      r.type = RedisReply::Type::kError;
      r.str = "ERR unknown command";
    }
    return r;
  }
  std::string Get(const std::string& k) {
    auto it = kv.find(k);
    return it == kv.end() ? "0" : it->second;
  }
  static RedisReply Str(std::string s) {
    RedisReply r;
    r.type = RedisReply::Type::kString;
    r.str = std::move(s);
    return r;
  }
  void SetUp(bool u) {
    absl::MutexLock lock(&mu);
    up = u;
  }
  int Connects() {
    absl::MutexLock lock(&mu);
    return connects;
  }
  size_t Commands() {
    absl::MutexLock lock(&mu);
    return log.size();
  }
};

class FakeConnection : public RedisConnection {
 public:
  explicit FakeConnection(FakeRedis* r) : r_(r) {}
  absl::StatusOr<RedisReply> Command(
      const std::vector<std::string>& argv) override {
    return r_->Handle(argv);
  }

 private:
  FakeRedis* r_;
};

class FakeConnector : public RedisConnector {
 public:
  explicit FakeConnector(FakeRedis* r) : r_(r) {}
  absl::StatusOr<std::unique_ptr<RedisConnection>> Connect() override {
    absl::MutexLock lock(&r_->mu);
    ++r_->connects;
    if (!r_->up) return absl::UnavailableError("connection refused");
    return std::unique_ptr<RedisConnection>(new FakeConnection(r_));
  }

 private:
  FakeRedis* r_;
};

std::unique_ptr<L2Store> MakeStore(FakeRedis* redis, FakeEnv* env) {
  L2Options o;
  o.instance_id = "me";
  o.retry_interval = absl::Seconds(2);
  o.max_connections = 2;
  return std::make_unique<L2Store>(o, std::make_unique<FakeConnector>(redis),
                                   env);
}

TEST_CASE("L2Store: write-back after a miss, then a hit with its TTL") {
  FakeRedis redis;
  FakeEnv env;
  auto l2 = MakeStore(&redis, &env);
  L2Store::Lookup miss = l2->Get("webhooks:list");
  CHECK(miss.reached);
  CHECK(miss.value == nullptr);
  CHECK(miss.data_key == "pggit:cache:d:0:0:webhooks:list");
  l2->WriteBack(miss, "page", absl::Seconds(30));
  L2Store::Lookup hit = l2->Get("webhooks:list");
  REQUIRE(hit.value != nullptr);
  CHECK(*hit.value == "page");
  CHECK(hit.ttl == absl::Seconds(30));
  L2Stats st = l2->Stats();
  CHECK(st.status == "connected");
  CHECK(st.hits == 1);
  CHECK(st.misses == 1);
  CHECK(st.writes == 1);
}

TEST_CASE("L2Store: a family invalidation hides values loaded before it") {
  FakeRedis redis;
  FakeEnv env;
  auto l2 = MakeStore(&redis, &env);
  L2Store::Lookup before = l2->Get("webhooks:list");  // a load starts here
  l2->InvalidateFamilies({"webhooks"});               // the data changes
  l2->WriteBack(before, "stale", absl::Seconds(30));  // the load ends
  CHECK(l2->Get("webhooks:list").value == nullptr);   // never served
  l2->Put("alerts:list", "a", absl::Seconds(30));
  l2->InvalidateFamilies({"webhooks"});
  CHECK(l2->Get("alerts:list").value != nullptr);  // other families stay
  l2->InvalidateAll();
  CHECK(l2->Get("alerts:list").value == nullptr);
  CHECK(l2->Stats().invalidations == 3);
}

TEST_CASE("L2Store: tokens are unique per invalidation") {
  FakeRedis redis;
  FakeEnv env;
  auto l2 = MakeStore(&redis, &env);
  l2->InvalidateFamilies({"webhooks"});
  std::string first = redis.Get("pggit:cache:gen:webhooks");
  l2->InvalidateFamilies({"webhooks"});
  std::string second = redis.Get("pggit:cache:gen:webhooks");
  CHECK(first != "0");
  CHECK(first != second);
  CHECK(absl::StartsWith(first, "me-"));
}

TEST_CASE("L2Store: a failure opens the breaker; one probe per interval") {
  FakeRedis redis;
  FakeEnv env;
  auto l2 = MakeStore(&redis, &env);
  REQUIRE(l2->Get("k:1").reached);
  redis.SetUp(false);
  CHECK_FALSE(l2->Get("k:1").reached);  // costs one (fake) timeout
  CHECK(l2->Stats().status == "unavailable");
  CHECK(l2->Stats().errors == 1);
  const int connects = redis.Connects();
  for (int i = 0; i < 100; ++i) CHECK_FALSE(l2->Get("k:1").reached);
  CHECK(redis.Connects() == connects);  // skipped, not tried
  CHECK(l2->Stats().skipped == 100);
  env.AdvanceBy(absl::Seconds(2));
  CHECK_FALSE(l2->Get("k:1").reached);  // the probe, still down
  CHECK(redis.Connects() == connects + 1);
  CHECK_FALSE(l2->Get("k:1").reached);  // skipped again for an interval
  CHECK(redis.Connects() == connects + 1);
  redis.SetUp(true);
  env.AdvanceBy(absl::Seconds(1));
  CHECK_FALSE(l2->Get("k:1").reached);  // interval not over yet
  env.AdvanceBy(absl::Seconds(1));
  CHECK(l2->Get("k:1").reached);  // probe succeeds: closed again
  L2Stats st = l2->Stats();
  CHECK(st.status == "connected");
  CHECK(st.reconnects == 1);
  CHECK(l2->Ping().ok());
}

TEST_CASE("L2Store: an invalidation lost in an outage flushes on reconnect") {
  FakeRedis redis;
  FakeEnv env;
  auto l2 = MakeStore(&redis, &env);
  l2->Put("webhooks:list", "old", absl::Seconds(30));
  redis.SetUp(false);
  l2->InvalidateFamilies({"webhooks"});  // cannot reach Redis
  CHECK(l2->Stats().status == "unavailable");
  redis.SetUp(true);
  env.AdvanceBy(absl::Seconds(2));
  // Redis kept the old value, but the first call after the outage replaces
  // the global token before anything is read.
  L2Store::Lookup after = l2->Get("webhooks:list");
  CHECK(after.reached);
  CHECK(after.value == nullptr);
  CHECK(redis.Get("pggit:cache:gen") != "0");
  CHECK(l2->Stats().invalidations >= 1);
}

TEST_CASE("L2Store: Ping reports the breaker state and the last error") {
  FakeRedis redis;
  FakeEnv env;
  auto l2 = MakeStore(&redis, &env);
  CHECK(l2->Ping().ok());
  redis.SetUp(false);
  absl::Status s = l2->Ping();
  CHECK(s.code() == absl::StatusCode::kUnavailable);
  CHECK(absl::StrContains(s.message(), "timed out"));
  s = l2->Ping();  // breaker open: answers at once with the cause
  CHECK(absl::StrContains(s.message(), "timed out"));
  l2->Close();
  redis.SetUp(true);
  env.AdvanceBy(absl::Seconds(10));
  CHECK_FALSE(l2->Get("k").reached);  // closed for good
}

TEST_CASE("L2Store: publish goes to the channel") {
  FakeRedis redis;
  FakeEnv env;
  auto l2 = MakeStore(&redis, &env);
  l2->Publish("{\"i\":\"me\",\"a\":true}");
  absl::MutexLock lock(&redis.mu);
  REQUIRE_FALSE(redis.log.empty());
  CHECK(redis.log.back() ==
        std::vector<std::string>{"PUBLISH", "pggit:cache:invalidate",
                                 "{\"i\":\"me\",\"a\":true}"});
}

}  // namespace
}  // namespace pggitops::internal
