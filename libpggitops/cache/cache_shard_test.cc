#include "libpggitops/cache/cache_shard.h"

#include <functional>
#include <memory>
#include <random>
#include <string>
#include <string_view>
#include <unordered_map>

#include "absl/strings/str_cat.h"
#include "absl/time/time.h"
#include "doctest/doctest.h"

namespace pggitops::internal {
namespace {

const absl::Time kT0 = absl::FromUnixSeconds(1'000'000);
const absl::Time kNever = absl::InfiniteFuture();

SharedBytes Bytes(std::string s) {
  return std::make_shared<const std::string>(std::move(s));
}

uint64_t H(absl::string_view k) { return HashKey(k); }

bool Put(CacheShard& s, const std::string& k, std::string v,
         absl::Time expires = kNever, absl::Time now = kT0) {
  return s.Insert(k, H(k), Bytes(std::move(v)), expires, now);
}

TEST_CASE("CacheShard: a hit returns the same shared bytes, no copy") {
  CacheShard s(10'000);
  SharedBytes v = Bytes("hello");
  REQUIRE(s.Insert("k", H("k"), v, kNever, kT0));
  SharedBytes got = s.Lookup("k", H("k"), kT0);
  CHECK(got.get() == v.get());
  CHECK(s.Lookup("other", H("other"), kT0) == nullptr);
}

TEST_CASE("CacheShard: charge is key + value + the fixed overhead") {
  CacheShard s(10'000);
  REQUIRE(Put(s, "abc", "12345"));
  CHECK(s.Stats().bytes == 3 + 5 + kEntryOverheadBytes);
  CHECK(EntryCharge(3, 5) == 8 + kEntryOverheadBytes);
}

TEST_CASE("CacheShard: byte accounting stays exact after many replacements") {
  CacheShard s(40'000);
  std::mt19937 rng(7);
  std::unordered_map<std::string, std::string> model;  // what may be present
  for (int i = 0; i < 20'000; ++i) {
    std::string k = absl::StrCat("key:", rng() % 300);
    switch (rng() % 4) {
      case 0:
        s.Erase(k, H(k));
        break;
      case 1:
        s.Lookup(k, H(k), kT0);
        break;
      default:
        Put(s, k, std::string(rng() % 400, 'v'));
    }
  }
  // Recompute the sum of charges from what is really there.
  int64_t sum = 0, entries = 0;
  for (int i = 0; i < 300; ++i) {
    std::string k = absl::StrCat("key:", i);
    if (SharedBytes v = s.Lookup(k, H(k), kT0)) {
      sum += EntryCharge(k.size(), v->size());
      ++entries;
    }
  }
  CacheShard::Snapshot snap = s.Stats();
  CHECK(snap.entries == entries);
  CHECK(snap.bytes == sum);
  CHECK(snap.bytes <= s.capacity());
  CHECK(snap.evictions > 0);
}

TEST_CASE(
    "CacheShard: the byte budget is never exceeded; too large is refused") {
  const int64_t cap = 10 * EntryCharge(2, 100);
  CacheShard s(cap);
  for (int i = 0; i < 100; ++i) {
    REQUIRE(Put(s, absl::StrCat("k", i % 10 + 10), std::string(100, 'x')));
    CHECK(s.Stats().bytes <= cap);
  }
  REQUIRE(Put(s, "big", "small first"));
  CHECK_FALSE(Put(s, "big", std::string(cap, 'x')));
  // The older value of a key that no longer fits is gone, not stale.
  CHECK(s.Lookup("big", H("big"), kT0) == nullptr);
}

TEST_CASE("CacheShard: an entry expires exactly at its expiry time") {
  CacheShard s(10'000);
  REQUIRE(Put(s, "k", "v", kT0 + absl::Seconds(10)));
  CHECK(s.Lookup("k", H("k"), kT0 + absl::Seconds(9)) != nullptr);
  CHECK(s.Lookup("k", H("k"), kT0 + absl::Seconds(10)) == nullptr);
  CacheShard::Snapshot snap = s.Stats();
  CHECK(snap.entries == 0);
  CHECK(snap.bytes == 0);
  CHECK(snap.expirations == 1);
}

TEST_CASE("CacheShard: PurgeExpired removes only expired entries") {
  CacheShard s(100'000);
  REQUIRE(Put(s, "a", "1", kT0 + absl::Seconds(5)));
  REQUIRE(Put(s, "b", "2", kT0 + absl::Seconds(50)));
  REQUIRE(Put(s, "c", "3"));
  CHECK(s.PurgeExpired(kT0 + absl::Seconds(1)) == 0);
  CHECK(s.PurgeExpired(kT0 + absl::Seconds(6)) == 1);
  CHECK(s.Stats().entries == 2);
  CHECK(s.PurgeExpired(kT0 + absl::Seconds(60)) == 1);
  CHECK(s.Lookup("c", H("c"), kT0 + absl::Hours(1000)) != nullptr);
  CHECK(s.Stats().expirations == 2);
}

TEST_CASE("CacheShard: an insert is refused when the epoch moved") {
  CacheShard s(10'000);
  std::atomic<uint64_t> epoch{5};
  CHECK_FALSE(s.Insert("k", H("k"), Bytes("v"), kNever, kT0, &epoch, 4));
  CHECK(s.Lookup("k", H("k"), kT0) == nullptr);
  CHECK(s.Insert("k", H("k"), Bytes("v"), kNever, kT0, &epoch, 5));
  CHECK(s.Lookup("k", H("k"), kT0) != nullptr);
}

TEST_CASE("CacheShard: EraseIf and Clear count what they remove") {
  CacheShard s(100'000);
  for (const char* k : {"webhooks:1", "webhooks:2", "alerts:1"}) {
    REQUIRE(Put(s, k, "v"));
  }
  CHECK(s.EraseIf([](absl::string_view k) { return k[0] == 'w'; }) == 2);
  CHECK(s.Lookup("alerts:1", H("alerts:1"), kT0) != nullptr);
  CHECK(s.Clear() == 1);
  CHECK(s.Stats().bytes == 0);
  CHECK(s.Stats().evictions == 0);  // invalidation is not eviction
}

TEST_CASE("CacheShard: S3-FIFO keeps a hot set through a scan") {
  // 20 entries fit. 10 hot keys are read often; then 200 one-hit keys pass.
  const int64_t cap = 20 * EntryCharge(6, 10);
  CacheShard s(cap);
  for (int i = 0; i < 10; ++i)
    REQUIRE(Put(s, absl::StrCat("hot:", i), "0123456789"));
  for (int round = 0; round < 3; ++round) {
    for (int i = 0; i < 10; ++i) {
      std::string k = absl::StrCat("hot:", i);
      s.Lookup(k, H(k), kT0);
    }
  }
  for (int i = 0; i < 200; ++i) {
    REQUIRE(Put(s, absl::StrCat("s:", 1000 + i), "0123456789"));
  }
  int hot_left = 0;
  for (int i = 0; i < 10; ++i) {
    std::string k = absl::StrCat("hot:", i);
    hot_left += s.Lookup(k, H(k), kT0) != nullptr ? 1 : 0;
  }
  CHECK(hot_left == 10);  // an LRU of 20 would have lost them all
}

TEST_CASE("CacheShard: a key evicted from S and seen again enters M (ghost)") {
  const int64_t cap = 10 * EntryCharge(4, 10);
  CacheShard s(cap);
  REQUIRE(Put(s, "g:00", "0123456789"));
  for (int i = 1; i <= 20; ++i)
    REQUIRE(Put(s, absl::StrCat("g:", 10 + i), "0123456789"));
  REQUIRE(s.Lookup("g:00", H("g:00"), kT0) ==
          nullptr);  // evicted, in the ghost
  CHECK(s.Stats().ghost_size > 0);
  REQUIRE(Put(s, "g:00", "0123456789"));  // back: straight into M
  for (int i = 0; i < 30; ++i)
    REQUIRE(Put(s, absl::StrCat("n:", 100 + i), "0123456789"));
  // New one-hit keys churn through S; "g:00" sits in M until M must evict.
  CHECK(s.Lookup("g:00", H("g:00"), kT0) != nullptr);
}

}  // namespace
}  // namespace pggitops::internal
