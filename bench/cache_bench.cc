// cache_bench: the L1 cache against simple baselines, in one run.
//
//   1. Get-hit throughput, 1 and 2 threads: pggitops::Cache::Get against an
//      absl::flat_hash_map<std::string, shared_ptr<const string>> behind one
//      absl::Mutex (the simplest correct shared cache), every key present.
//   2. Hit rate on a Zipf(0.9) trace with a budget of 10 % of the keys:
//      Cache (S3-FIFO, 16 shards and 1 shard) against a plain LRU of the same
//      size (std::list + hash map), every miss loaded and inserted.
//
// Usage: cache_bench [--quick]   (meson test -C <build> --benchmark
// cache_bench) Output: one line per measurement; BENCHMARKS.md records a run.
#include <algorithm>
#include <atomic>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <ctime>
#include <list>
#include <memory>
#include <random>
#include <string>
#include <thread>
#include <unordered_map>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"
#include "pggitops/cache.h"

namespace {

using Value = std::shared_ptr<const std::string>;

// The baseline: one map, one mutex.
class MutexMap {
 public:
  void Put(const std::string& k, Value v) {
    absl::MutexLock lock(&mu_);
    map_[k] = std::move(v);
  }
  Value Get(const std::string& k) {
    absl::MutexLock lock(&mu_);
    auto it = map_.find(k);
    return it == map_.end() ? nullptr : it->second;
  }

 private:
  absl::Mutex mu_;
  absl::flat_hash_map<std::string, Value> map_ ABSL_GUARDED_BY(mu_);
};

// Plain LRU with a capacity in entries.
class Lru {
 public:
  explicit Lru(size_t capacity) : capacity_(capacity) {}
  bool Access(const std::string& k) {  // true on a hit; inserts on a miss
    auto it = map_.find(k);
    if (it != map_.end()) {
      order_.splice(order_.begin(), order_, it->second);
      return true;
    }
    order_.push_front(k);
    map_[k] = order_.begin();
    if (map_.size() > capacity_) {
      map_.erase(order_.back());
      order_.pop_back();
    }
    return false;
  }

 private:
  size_t capacity_;
  std::list<std::string> order_;
  std::unordered_map<std::string, std::list<std::string>::iterator> map_;
};

std::string Key(size_t i) { return absl::StrCat("webhooks:list:item:", i); }

// Zipf(s) ranks over n keys, each rank mapped to a random key id.
std::vector<uint32_t> ZipfTrace(size_t n, double s, size_t length,
                                uint64_t seed) {
  std::vector<double> cdf(n);
  double sum = 0;
  for (size_t i = 0; i < n; ++i) {
    sum += 1.0 / std::pow(static_cast<double>(i + 1), s);
    cdf[i] = sum;
  }
  std::vector<uint32_t> ids(n);
  for (size_t i = 0; i < n; ++i) ids[i] = static_cast<uint32_t>(i);
  std::mt19937_64 rng(seed);
  std::shuffle(ids.begin(), ids.end(), rng);
  std::uniform_real_distribution<double> u(0, sum);
  std::vector<uint32_t> trace(length);
  for (auto& t : trace) {
    size_t rank =
        std::lower_bound(cdf.begin(), cdf.end(), u(rng)) - cdf.begin();
    t = ids[std::min(rank, n - 1)];
  }
  return trace;
}

double Now() {
  return std::chrono::duration<double>(
             std::chrono::steady_clock::now().time_since_epoch())
      .count();
}

double ThreadCpuSeconds() {
  timespec ts;
  clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
  return static_cast<double>(ts.tv_sec) + static_cast<double>(ts.tv_nsec) / 1e9;
}

struct Run {
  double mops = 0;           // wall-clock throughput, all threads
  double cpu_ns_per_op = 0;  // CPU time per operation, all threads
};

// Runs `body(thread)` (ops_per_thread operations) on `threads` threads.
// The machine is shared, so both the wall-clock throughput and the CPU time
// per operation (immune to time slices lost to other processes) are kept.
template <typename F>
Run Measure(int threads, size_t ops_per_thread, F body) {
  std::vector<std::thread> pool;
  std::atomic<int> ready{0};
  std::atomic<bool> go{false};
  std::atomic<double> cpu{0};
  for (int t = 0; t < threads; ++t) {
    pool.emplace_back([&, t] {
      ready.fetch_add(1);
      while (!go.load()) {
      }
      const double c0 = ThreadCpuSeconds();
      body(t);
      const double used = ThreadCpuSeconds() - c0;
      double seen = cpu.load();
      while (!cpu.compare_exchange_weak(seen, seen + used)) {
      }
    });
  }
  while (ready.load() < threads) {
  }
  const double start = Now();
  go = true;
  for (auto& th : pool) th.join();
  const double ops = static_cast<double>(threads * ops_per_thread);
  return {ops / (Now() - start) / 1e6, cpu.load() / ops * 1e9};
}

double Median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  return v[v.size() / 2];
}

void GetHitThroughput(size_t keys, size_t ops, int reps) {
  std::vector<std::string> names(keys);
  for (size_t i = 0; i < keys; ++i) names[i] = Key(i);
  pggitops::CacheOptions o;
  o.max_bytes = int64_t{1} << 30;
  auto cache = *pggitops::Cache::Create(o);
  MutexMap map;
  const std::string value(512, 'v');
  for (const std::string& k : names) {
    cache->Put(k, value, absl::Hours(1));
    map.Put(k, std::make_shared<const std::string>(value));
  }
  // Zipf(0.9) lookups, as a read endpoint sees them; per-thread traces.
  std::vector<std::vector<uint32_t>> traces;
  for (int t = 0; t < 2; ++t)
    traces.push_back(ZipfTrace(keys, 0.9, ops, 11 + t));
  for (int threads : {1, 2}) {
    std::vector<double> mine_mops, base_mops, mine_ns, base_ns;
    for (int r = 0; r < reps; ++r) {
      std::atomic<size_t> misses{0};
      Run m = Measure(threads, ops, [&](int t) {
        size_t miss = 0;
        for (uint32_t i : traces[t]) miss += cache->Get(names[i]) ? 0 : 1;
        misses += miss;
      });
      Run b = Measure(threads, ops, [&](int t) {
        size_t miss = 0;
        for (uint32_t i : traces[t]) miss += map.Get(names[i]) ? 0 : 1;
        misses += miss;
      });
      if (misses.load() != 0) std::printf("BUG: %zu misses\n", misses.load());
      mine_mops.push_back(m.mops);
      base_mops.push_back(b.mops);
      mine_ns.push_back(m.cpu_ns_per_op);
      base_ns.push_back(b.cpu_ns_per_op);
    }
    std::printf(
        "get_hit threads=%d keys=%zu  Cache: %6.2f Mops/s %6.0f cpu-ns/op   "
        "flat_hash_map+Mutex: %6.2f Mops/s %6.0f cpu-ns/op  (median of %d)\n",
        threads, keys, Median(mine_mops), Median(mine_ns), Median(base_mops),
        Median(base_ns), reps);
  }
}

double CacheHitRate(const std::vector<uint32_t>& trace, size_t budget_keys,
                    int shards) {
  const std::string value(100, 'v');
  const std::string sample = Key(999999);
  // Every key name of the trace has the same length as `sample` or less;
  // give the budget in bytes of `budget_keys` entries of that size.
  pggitops::CacheOptions o;
  o.shards = shards;
  o.max_bytes = static_cast<int64_t>(budget_keys) *
                (static_cast<int64_t>(sample.size() + value.size()) + 160);
  auto cache = *pggitops::Cache::Create(o);
  for (uint32_t id : trace) {
    std::string k = Key(100000 + id);  // fixed-width names: equal charges
    if (!cache
             ->GetOrLoad(k, absl::Hours(1),
                         [&] { return absl::StatusOr<std::string>(value); })
             .ok()) {
      std::printf("BUG: load failed\n");
    }
  }
  return cache->Stats().hit_rate;
}

double LruHitRate(const std::vector<uint32_t>& trace, size_t budget_keys) {
  Lru lru(budget_keys);
  size_t hits = 0;
  for (uint32_t id : trace) hits += lru.Access(Key(100000 + id)) ? 1 : 0;
  return static_cast<double>(hits) / static_cast<double>(trace.size());
}

void HitRates(size_t keys, size_t length) {
  const size_t budget = keys / 10;
  std::vector<uint32_t> trace = ZipfTrace(keys, 0.9, length, 42);
  double lru = LruHitRate(trace, budget);
  double s16 = CacheHitRate(trace, budget, 16);
  double s1 = CacheHitRate(trace, budget, 1);
  std::printf(
      "hit_rate zipf=0.9 keys=%zu requests=%zu budget=10%% (%zu entries)  "
      "LRU: %.4f   Cache 16 shards: %.4f   Cache 1 shard: %.4f\n",
      keys, length, budget, lru, s16, s1);
  // A one-pass scan of cold keys in the middle of the trace (a crawler, a
  // report) is what flushes an LRU.
  std::vector<uint32_t> scanned(trace.begin(), trace.begin() + length / 2);
  for (size_t i = 0; i < keys; ++i)
    scanned.push_back(static_cast<uint32_t>(keys + i));
  scanned.insert(scanned.end(), trace.begin() + length / 2, trace.end());
  std::printf(
      "hit_rate zipf=0.9 + scan of %zu cold keys  LRU: %.4f   "
      "Cache 16 shards: %.4f\n",
      keys, LruHitRate(scanned, budget), CacheHitRate(scanned, budget, 16));
}

}  // namespace

int main(int argc, char** argv) {
  const bool quick = argc > 1 && std::strcmp(argv[1], "--quick") == 0;
  // A small hot set (lock and bookkeeping costs dominate), then a large one
  // (memory latency dominates).
  GetHitThroughput(1'000, quick ? 200'000 : 2'000'000, quick ? 1 : 5);
  GetHitThroughput(quick ? 10'000 : 100'000, quick ? 200'000 : 1'000'000,
                   quick ? 1 : 5);
  HitRates(quick ? 10'000 : 100'000, quick ? 200'000 : 2'000'000);
  return 0;
}
