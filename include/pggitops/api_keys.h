// File: pggitops/api_keys.h
//
// API keys (CONTRACT section 8): bearer tokens with scopes, stored in
// pggit.api_keys as a SHA-256 hash (never the token itself).
//
//   ApiKeyStore store(pool);                      // administration
//   absl::StatusOr<NewApiKey> k = store.Create("ci", {ApiScope::kRead});
//   std::cout << k->token;                        // shown once, here
//
//   ApiKeyVerifierOptions o =                      // request path
//       ApiKeyVerifierOptionsFromConfig(config, pool);
//   auto verifier = ApiKeyVerifier::Create(o);     // loads, then refreshes
//   (*verifier)->Start();                          // every refresh_interval
//   std::optional<ApiScope> s = (*verifier)->Verify(token);
//   (*verifier)->Shutdown();                       // also the destructor
//
// Tokens look like "pggit_" + 43 base64url characters (32 random bytes).
// The verifier answers from an in-memory snapshot of the unrevoked keys
// that a background thread reloads every `refresh_interval`, so a key
// created or revoked on any instance takes effect on every instance within
// that interval, and a request costs no database round trip. Candidates are
// found by the token's prefix and the hashes compared in constant time.
#ifndef PGGITOPS_INCLUDE_API_KEYS_H_
#define PGGITOPS_INCLUDE_API_KEYS_H_

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "pggitops/config.h"
#include "pggitops/connection_pool.h"
#include "pggitops/export.h"
#include "pggitops/metrics.h"

namespace pggitops {

// Scopes are ordered: admin includes write, write includes read.
enum class ApiScope { kRead = 1, kWrite = 2, kAdmin = 3 };

// "read", "write", "admin".
PGGITOPS_EXPORT const char* ApiScopeName(ApiScope scope);

// Parses a comma list ("read,write"; spaces around names are ignored).
// Error: kInvalidArgument naming the unknown scope, or for an empty list.
// Duplicates are dropped; the result is in ascending order.
PGGITOPS_EXPORT absl::StatusOr<std::vector<ApiScope>> ParseApiScopes(
    absl::string_view list);

// The widest of `scopes` (what a key holding them may do).
PGGITOPS_EXPORT ApiScope WidestScope(const std::vector<ApiScope>& scopes);

// A key as stored (never the token).
struct PGGITOPS_EXPORT ApiKeyInfo {
  int64_t id = 0;
  std::string name;
  std::string prefix;  // the token's first characters, to recognise it
  std::vector<ApiScope> scopes;
  absl::Time created_at;
  std::optional<absl::Time> last_used_at;
  std::optional<absl::Time> revoked_at;
};

struct PGGITOPS_EXPORT NewApiKey {
  ApiKeyInfo info;
  std::string token;  // the bearer token; not stored, shown only here
};

// A fresh random token ("pggit_" + 43 base64url characters).
PGGITOPS_EXPORT std::string GenerateApiToken();
// Lower-case hex SHA-256 of a token: what the database stores.
PGGITOPS_EXPORT std::string HashApiToken(absl::string_view token);
// The part of a token that `keys list` shows and the verifier indexes by.
PGGITOPS_EXPORT std::string ApiTokenPrefix(absl::string_view token);

// Administration of the keys (the `pggit-api keys` commands). Thread-safe;
// *pool must outlive the store.
class PGGITOPS_EXPORT ApiKeyStore {
 public:
  explicit ApiKeyStore(ConnectionPool* pool) : pool_(pool) {}

  // Creates a key. Errors: kInvalidArgument for a name that is empty, longer
  // than 255 characters or has control characters, or no scopes;
  // kAlreadyExists when a key of that name exists (revoked or not);
  // database errors as ConnectionPool::Acquire and SqlStateOf describe.
  absl::StatusOr<NewApiKey> Create(absl::string_view name,
                                   const std::vector<ApiScope>& scopes);

  // Every key, oldest first; revoked ones only when `include_revoked`.
  absl::StatusOr<std::vector<ApiKeyInfo>> List(bool include_revoked = true);

  // Revokes the key named `name`. kNotFound when there is none;
  // kFailedPrecondition when it is already revoked.
  absl::Status Revoke(absl::string_view name);

  // True when at least one unrevoked key exists (protected mode is over).
  absl::StatusOr<bool> AnyActive();

 private:
  ConnectionPool* pool_;
};

struct PGGITOPS_EXPORT ApiKeyVerifierOptions {
  ConnectionPool* pool = nullptr;  // required; must outlive the verifier
  // Reload period of the key snapshot: the longest a created or revoked key
  // takes to take effect. Also when last_used_at is written (batched).
  absl::Duration refresh_interval = absl::Seconds(2);
  // Longest wait for a pooled connection per reload.
  absl::Duration acquire_timeout = absl::Seconds(1);
  // Optional: api_keys_active (gauge) and api_key_refresh_failures_total.
  MetricsRegistry* metrics = nullptr;
};

// Thread-safe.
class PGGITOPS_EXPORT ApiKeyVerifier {
 public:
  // Validates the options and loads the keys once. A database that cannot
  // be reached is not an error: loaded() stays false until a reload
  // succeeds. Error: kInvalidArgument naming the field.
  static absl::StatusOr<std::unique_ptr<ApiKeyVerifier>> Create(
      ApiKeyVerifierOptions options);
  ~ApiKeyVerifier();
  ApiKeyVerifier(const ApiKeyVerifier&) = delete;
  ApiKeyVerifier& operator=(const ApiKeyVerifier&) = delete;

  // Starts the reload thread. Idempotent.
  void Start();
  // Stops it and writes pending last_used_at updates. Idempotent.
  void Shutdown();

  // Reloads now (also what the thread does). On failure the previous
  // snapshot stays in use.
  absl::Status Refresh();

  // True once a load succeeded.
  bool loaded() const;
  // True while no unrevoked key exists, or while none could be loaded yet
  // (the safe assumption: protected mode answers loopback clients only).
  bool protected_mode() const;
  // Unrevoked keys in the snapshot.
  int active_keys() const;

  // The widest scope of the unrevoked key `token` belongs to, or nullopt.
  std::optional<ApiScope> Verify(absl::string_view token);

 private:
  struct Impl;
  explicit ApiKeyVerifier(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

// Options from API_KEY_CACHE_SECONDS (refresh_interval) with `pool`
// (borrowed; must outlive the verifier); the rest keep their defaults.
PGGITOPS_EXPORT ApiKeyVerifierOptions
ApiKeyVerifierOptionsFromConfig(const Config& config, ConnectionPool* pool);

}  // namespace pggitops

#endif  // PGGITOPS_INCLUDE_API_KEYS_H_
