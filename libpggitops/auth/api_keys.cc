#include "pggitops/api_keys.h"

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/rand.h>

#include <algorithm>
#include <atomic>
#include <cstdlib>
#include <thread>
#include <utility>

#include "absl/container/flat_hash_map.h"
#include "absl/strings/ascii.h"
#include "absl/strings/escaping.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"
#include "absl/synchronization/mutex.h"
#include "absl/synchronization/notification.h"
#include "pggitops/log.h"

namespace pggitops {
namespace {

constexpr absl::string_view kTokenPrefix = "pggit_";
constexpr size_t kTokenRandomBytes = 32;
// "pggit_" and 8 characters of the random part: 48 bits, enough to tell
// keys apart in `keys list` and to index the snapshot.
constexpr size_t kShownPrefixLength = 14;

std::string Sha256(absl::string_view data) {
  unsigned char digest[EVP_MAX_MD_SIZE];
  unsigned int length = 0;
  // Fetched once: OpenSSL 3 looks EVP_sha256() up in its providers, under
  // a lock, on every call.
  static EVP_MD* const kSha256 = EVP_MD_fetch(nullptr, "SHA256", nullptr);
  // EVP_Digest with SHA-256 cannot fail on valid input and memory.
  EVP_Digest(data.data(), data.size(), digest, &length,
             kSha256 != nullptr ? kSha256 : EVP_sha256(), nullptr);
  return std::string(reinterpret_cast<const char*>(digest), length);
}

absl::StatusOr<ApiScope> ParseScope(absl::string_view name) {
  if (name == "read") return ApiScope::kRead;
  if (name == "write") return ApiScope::kWrite;
  if (name == "admin") return ApiScope::kAdmin;
  return absl::InvalidArgumentError(
      absl::StrCat("unknown scope '", absl::CHexEscape(name),
                   "' (scopes are read, write, admin)"));
}

// "{read,write}" (PostgreSQL's text form of text[]) -> scopes; unknown
// names are ignored (the table's CHECK allows none).
std::vector<ApiScope> ScopesFromArray(absl::string_view text) {
  absl::ConsumePrefix(&text, "{");
  absl::ConsumeSuffix(&text, "}");
  std::vector<ApiScope> out;
  for (absl::string_view part : absl::StrSplit(text, ',', absl::SkipEmpty())) {
    absl::StatusOr<ApiScope> s = ParseScope(absl::StripAsciiWhitespace(part));
    if (s.ok()) out.push_back(*s);
  }
  return out;
}

std::string ScopesToArray(const std::vector<ApiScope>& scopes) {
  std::vector<std::string> names;
  for (ApiScope s : scopes) names.push_back(ApiScopeName(s));
  return absl::StrCat("{", absl::StrJoin(names, ","), "}");
}

std::optional<absl::Time> EpochOrNull(const std::optional<std::string>& v) {
  if (!v.has_value()) return std::nullopt;
  return absl::FromUnixMicros(
      static_cast<int64_t>(std::strtod(v->c_str(), nullptr) * 1e6));
}

absl::Status CheckName(absl::string_view name) {
  if (name.empty()) return absl::InvalidArgumentError("key name is empty");
  if (name.size() > 255) {
    return absl::InvalidArgumentError("key name is longer than 255 characters");
  }
  for (char c : name) {
    if (static_cast<unsigned char>(c) < 0x20 || c == 0x7f) {
      return absl::InvalidArgumentError("key name has a control character");
    }
  }
  return absl::OkStatus();
}

constexpr absl::string_view kKeyColumns =
    "id, name, key_prefix, scopes::text, extract(epoch from created_at), "
    "extract(epoch from last_used_at), extract(epoch from revoked_at)";

ApiKeyInfo InfoFromRow(const std::vector<std::optional<std::string>>& row) {
  ApiKeyInfo k;
  k.id = std::strtoll(row[0]->c_str(), nullptr, 10);
  k.name = *row[1];
  k.prefix = *row[2];
  k.scopes = ScopesFromArray(*row[3]);
  k.created_at = EpochOrNull(row[4]).value_or(absl::UnixEpoch());
  k.last_used_at = EpochOrNull(row[5]);
  k.revoked_at = EpochOrNull(row[6]);
  return k;
}

}  // namespace

const char* ApiScopeName(ApiScope scope) {
  switch (scope) {
    case ApiScope::kRead:
      return "read";
    case ApiScope::kWrite:
      return "write";
    case ApiScope::kAdmin:
      return "admin";
  }
  return "read";
}

absl::StatusOr<std::vector<ApiScope>> ParseApiScopes(absl::string_view list) {
  std::vector<ApiScope> out;
  for (absl::string_view part : absl::StrSplit(list, ',')) {
    part = absl::StripAsciiWhitespace(part);
    if (part.empty()) continue;
    absl::StatusOr<ApiScope> s = ParseScope(part);
    if (!s.ok()) return s.status();
    if (std::find(out.begin(), out.end(), *s) == out.end()) out.push_back(*s);
  }
  if (out.empty()) {
    return absl::InvalidArgumentError(
        "no scopes given (scopes are read, write, admin)");
  }
  std::sort(out.begin(), out.end());
  return out;
}

ApiScope WidestScope(const std::vector<ApiScope>& scopes) {
  ApiScope widest = ApiScope::kRead;
  for (ApiScope s : scopes) widest = std::max(widest, s);
  return widest;
}

std::string GenerateApiToken() {
  unsigned char bytes[kTokenRandomBytes];
  if (RAND_bytes(bytes, sizeof(bytes)) != 1) {
    // Without randomness there is no safe key to hand out.
    Log::Error("RAND_bytes failed: cannot generate an API key");
    std::abort();
  }
  return absl::StrCat(
      kTokenPrefix, absl::WebSafeBase64Escape(absl::string_view(
                        reinterpret_cast<const char*>(bytes), sizeof(bytes))));
}

std::string HashApiToken(absl::string_view token) {
  return absl::BytesToHexString(Sha256(token));
}

std::string ApiTokenPrefix(absl::string_view token) {
  return std::string(token.substr(0, kShownPrefixLength));
}

// ----------------------------------------------------------------------------
// ApiKeyStore

absl::StatusOr<NewApiKey> ApiKeyStore::Create(
    absl::string_view name, const std::vector<ApiScope>& scopes) {
  absl::Status valid = CheckName(name);
  if (!valid.ok()) return valid;
  if (scopes.empty()) {
    return absl::InvalidArgumentError(
        "no scopes given (scopes are read, write, admin)");
  }
  std::vector<ApiScope> sorted = scopes;
  std::sort(sorted.begin(), sorted.end());
  sorted.erase(std::unique(sorted.begin(), sorted.end()), sorted.end());

  NewApiKey key;
  key.token = GenerateApiToken();
  absl::StatusOr<PooledConnection> lease = pool_->Acquire();
  if (!lease.ok()) return lease.status();
  absl::StatusOr<QueryResult> r = lease->Query(
      absl::StrCat("INSERT INTO pggit.api_keys (name, key_hash, key_prefix, "
                   "scopes) VALUES ($1, $2, $3, $4::text[]) RETURNING ",
                   kKeyColumns),
      {std::string(name), HashApiToken(key.token), ApiTokenPrefix(key.token),
       ScopesToArray(sorted)});
  if (!r.ok()) {
    if (r.status().code() == absl::StatusCode::kAlreadyExists) {
      return absl::AlreadyExistsError(
          absl::StrCat("an API key named '", name,
                       "' exists already (names stay taken "
                       "after revocation; choose another)"));
    }
    return r.status();
  }
  key.info = InfoFromRow(r->rows.at(0));
  return key;
}

absl::StatusOr<std::vector<ApiKeyInfo>> ApiKeyStore::List(
    bool include_revoked) {
  absl::StatusOr<PooledConnection> lease = pool_->Acquire();
  if (!lease.ok()) return lease.status();
  absl::StatusOr<QueryResult> r = lease->Query(absl::StrCat(
      "SELECT ", kKeyColumns, " FROM pggit.api_keys",
      include_revoked ? "" : " WHERE revoked_at IS NULL", " ORDER BY id"));
  if (!r.ok()) return r.status();
  std::vector<ApiKeyInfo> out;
  for (const auto& row : r->rows) out.push_back(InfoFromRow(row));
  return out;
}

absl::Status ApiKeyStore::Revoke(absl::string_view name) {
  absl::StatusOr<PooledConnection> lease = pool_->Acquire();
  if (!lease.ok()) return lease.status();
  absl::StatusOr<QueryResult> r = lease->Query(
      "WITH k AS (SELECT id, revoked_at FROM pggit.api_keys WHERE name = $1 "
      "FOR UPDATE), u AS (UPDATE pggit.api_keys SET revoked_at = now() "
      "WHERE id IN (SELECT id FROM k WHERE revoked_at IS NULL) RETURNING id) "
      "SELECT (SELECT count(*) FROM k), (SELECT count(*) FROM u)",
      {std::string(name)});
  if (!r.ok()) return r.status();
  const auto& row = r->rows.at(0);
  if (*row[0] == "0") {
    return absl::NotFoundError(
        absl::StrCat("no API key named '", name, "' (see `keys list`)"));
  }
  if (*row[1] == "0") {
    return absl::FailedPreconditionError(
        absl::StrCat("the API key '", name, "' is already revoked"));
  }
  return absl::OkStatus();
}

absl::StatusOr<bool> ApiKeyStore::AnyActive() {
  absl::StatusOr<PooledConnection> lease = pool_->Acquire();
  if (!lease.ok()) return lease.status();
  absl::StatusOr<QueryResult> r = lease->Query(
      "SELECT EXISTS (SELECT 1 FROM pggit.api_keys WHERE revoked_at IS NULL)");
  if (!r.ok()) return r.status();
  return r->rows.at(0)[0] == std::optional<std::string>("t");
}

// ----------------------------------------------------------------------------
// ApiKeyVerifier

namespace {

struct KeyEntry {
  int64_t id;
  std::string hash;  // raw 32 bytes
  ApiScope scope;
  // Set by Verify, cleared when last_used_at is written. Shared by every
  // snapshot that holds the key, so a reload loses no mark and Verify
  // takes no lock.
  std::shared_ptr<std::atomic<bool>> used;
};

struct Snapshot {
  // Token prefix -> keys with that prefix (almost always one).
  absl::flat_hash_map<std::string, std::vector<KeyEntry>> by_prefix;
  int active = 0;
};

}  // namespace

struct ApiKeyVerifier::Impl {
  ApiKeyVerifierOptions options;
  Gauge* active_gauge = nullptr;
  Counter* refresh_failures = nullptr;

  mutable absl::Mutex mu;
  std::shared_ptr<const Snapshot> snapshot ABSL_GUARDED_BY(mu) =
      std::make_shared<const Snapshot>();
  // Bumped with every new snapshot: a thread re-reads `snapshot` (under mu)
  // only when it changed, so Verify takes no lock and touches no shared
  // reference count on the request path.
  std::atomic<uint64_t> generation{0};
  // !loaded || no active key, kept beside the snapshot for the same
  // reason.
  std::atomic<bool> protected_mode{true};
  bool loaded ABSL_GUARDED_BY(mu) = false;
  bool failing ABSL_GUARDED_BY(mu) = false;  // to log a failure once

  absl::Mutex thread_mu;
  std::thread thread ABSL_GUARDED_BY(thread_mu);
  absl::Notification stop;
  bool started ABSL_GUARDED_BY(thread_mu) = false;
  bool stopped ABSL_GUARDED_BY(thread_mu) = false;

  std::shared_ptr<const Snapshot> Current() const {
    absl::MutexLock lock(&mu);
    return snapshot;
  }
  // This thread's copy of the current snapshot.
  const Snapshot& ThreadSnapshot() const {
    struct Cached {
      const Impl* owner = nullptr;
      uint64_t generation = 0;
      std::shared_ptr<const Snapshot> snapshot;
    };
    thread_local Cached cached;
    const uint64_t now = generation.load(std::memory_order_acquire);
    if (cached.owner != this || cached.generation != now ||
        cached.snapshot == nullptr) {
      cached.snapshot = Current();
      cached.owner = this;
      cached.generation = now;
    }
    return *cached.snapshot;
  }
  absl::Status Load();
  absl::Status FlushUsed();
  void Run();
};

absl::Status ApiKeyVerifier::Impl::Load() {
  absl::StatusOr<PooledConnection> lease =
      options.pool->Acquire(options.acquire_timeout);
  absl::StatusOr<QueryResult> r =
      lease.ok() ? lease->Query(
                       "SELECT id, key_hash, key_prefix, scopes::text FROM "
                       "pggit.api_keys WHERE revoked_at IS NULL")
                 : absl::StatusOr<QueryResult>(lease.status());
  if (!r.ok()) {
    bool first = false;
    {
      absl::MutexLock lock(&mu);
      first = !failing;
      failing = true;
    }
    if (refresh_failures != nullptr) refresh_failures->Inc();
    if (first) {
      Log::Warning(
          "API keys could not be loaded; the last loaded keys stay "
          "in use",
          {{"error", std::string(r.status().message())}});
    }
    return r.status();
  }
  // The marks of keys already known carry over.
  absl::flat_hash_map<int64_t, std::shared_ptr<std::atomic<bool>>> marks;
  for (const auto& [prefix, entries] : Current()->by_prefix) {
    for (const KeyEntry& e : entries) marks.emplace(e.id, e.used);
  }
  auto next = std::make_shared<Snapshot>();
  for (const auto& row : r->rows) {
    KeyEntry e;
    e.id = std::strtoll(row[0]->c_str(), nullptr, 10);
    e.hash = absl::HexStringToBytes(*row[1]);
    e.scope = WidestScope(ScopesFromArray(*row[3]));
    auto known = marks.find(e.id);
    e.used = known != marks.end() ? known->second
                                  : std::make_shared<std::atomic<bool>>(false);
    next->by_prefix[*row[2]].push_back(std::move(e));
    ++next->active;
  }
  bool recovered = false;
  {
    absl::MutexLock lock(&mu);
    recovered = failing;
    failing = false;
    loaded = true;
    snapshot = next;
    protected_mode.store(next->active == 0, std::memory_order_release);
    generation.fetch_add(1, std::memory_order_acq_rel);
  }
  if (active_gauge != nullptr) active_gauge->Set(next->active);
  if (recovered) Log::Info("API keys loaded again");
  return absl::OkStatus();
}

absl::Status ApiKeyVerifier::Impl::FlushUsed() {
  std::vector<const KeyEntry*> marked;
  std::vector<std::string> texts;
  std::shared_ptr<const Snapshot> snap = Current();
  for (const auto& [prefix, entries] : snap->by_prefix) {
    for (const KeyEntry& e : entries) {
      if (e.used->exchange(false, std::memory_order_relaxed)) {
        marked.push_back(&e);
        texts.push_back(absl::StrCat(e.id));
      }
    }
  }
  if (marked.empty()) return absl::OkStatus();
  absl::StatusOr<PooledConnection> lease =
      options.pool->Acquire(options.acquire_timeout);
  absl::Status s = lease.status();
  if (lease.ok()) {
    s = lease
            ->Query(
                "UPDATE pggit.api_keys SET last_used_at = now() WHERE id "
                "= ANY($1::bigint[])",
                {absl::StrCat("{", absl::StrJoin(texts, ","), "}")})
            .status();
  }
  if (!s.ok()) {
    // Kept for the next round: last_used_at is informational.
    for (const KeyEntry* e : marked) {
      e->used->store(true, std::memory_order_relaxed);
    }
  }
  return s;
}

void ApiKeyVerifier::Impl::Run() {
  while (!stop.WaitForNotificationWithTimeout(options.refresh_interval)) {
    (void)Load();
    (void)FlushUsed();
  }
}

ApiKeyVerifier::ApiKeyVerifier(std::unique_ptr<Impl> impl)
    : impl_(std::move(impl)) {}

ApiKeyVerifier::~ApiKeyVerifier() { Shutdown(); }

absl::StatusOr<std::unique_ptr<ApiKeyVerifier>> ApiKeyVerifier::Create(
    ApiKeyVerifierOptions options) {
  if (options.pool == nullptr) {
    return absl::InvalidArgumentError("pool: required");
  }
  if (options.refresh_interval <= absl::ZeroDuration()) {
    return absl::InvalidArgumentError("refresh_interval: must be positive");
  }
  if (options.acquire_timeout <= absl::ZeroDuration()) {
    return absl::InvalidArgumentError("acquire_timeout: must be positive");
  }
  auto impl = std::make_unique<Impl>();
  impl->options = options;
  if (options.metrics != nullptr) {
    impl->active_gauge =
        &options.metrics->AddGauge("api_keys_active", "Unrevoked API keys")
             .WithLabels({});
    impl->refresh_failures =
        &options.metrics
             ->AddCounter("api_key_refresh_failures_total",
                          "Reloads of the API keys that failed")
             .WithLabels({});
  }
  (void)impl->Load();
  return std::unique_ptr<ApiKeyVerifier>(new ApiKeyVerifier(std::move(impl)));
}

void ApiKeyVerifier::Start() {
  absl::MutexLock lock(&impl_->thread_mu);
  if (impl_->started || impl_->stopped) return;
  impl_->started = true;
  impl_->thread = std::thread([impl = impl_.get()] { impl->Run(); });
}

void ApiKeyVerifier::Shutdown() {
  std::thread t;
  {
    absl::MutexLock lock(&impl_->thread_mu);
    if (impl_->stopped) return;
    impl_->stopped = true;
    t = std::move(impl_->thread);
  }
  if (!impl_->stop.HasBeenNotified()) impl_->stop.Notify();
  if (t.joinable()) t.join();
  (void)impl_->FlushUsed();
}

absl::Status ApiKeyVerifier::Refresh() { return impl_->Load(); }

bool ApiKeyVerifier::loaded() const {
  absl::MutexLock lock(&impl_->mu);
  return impl_->loaded;
}

bool ApiKeyVerifier::protected_mode() const {
  return impl_->protected_mode.load(std::memory_order_acquire);
}

int ApiKeyVerifier::active_keys() const { return impl_->Current()->active; }

std::optional<ApiScope> ApiKeyVerifier::Verify(absl::string_view token) {
  if (token.size() <= kShownPrefixLength) return std::nullopt;
  const Snapshot& snap = impl_->ThreadSnapshot();
  auto it = snap.by_prefix.find(token.substr(0, kShownPrefixLength));
  if (it == snap.by_prefix.end()) return std::nullopt;
  std::string hash = Sha256(token);
  for (const KeyEntry& e : it->second) {
    if (e.hash.size() == hash.size() &&
        CRYPTO_memcmp(e.hash.data(), hash.data(), hash.size()) == 0) {
      // Written only when it changes, so busy keys share no hot line.
      if (!e.used->load(std::memory_order_relaxed)) {
        e.used->store(true, std::memory_order_relaxed);
      }
      return e.scope;
    }
  }
  return std::nullopt;
}

ApiKeyVerifierOptions ApiKeyVerifierOptionsFromConfig(const Config& config,
                                                      ConnectionPool* pool) {
  ApiKeyVerifierOptions options;
  options.pool = pool;
  options.refresh_interval = config.api_key_cache;
  return options;
}

}  // namespace pggitops
