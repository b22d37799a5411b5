#include "libpggitops/delivery/curl_transport.h"

#include <curl/curl.h>
#include <sys/socket.h>

#include <algorithm>
#include <deque>
#include <mutex>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/container/flat_hash_map.h"
#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/clock.h"
#include "libpggitops/delivery/address_policy.h"
#include "libpggitops/delivery/signing.h"
#include "pggitops/version.h"

namespace pggitops {
namespace internal {
namespace {

// Bytes of the response read before the rest is discarded unread.
constexpr size_t kExcerptBytes = 1024;
// A response body larger than this aborts the transfer (the status is kept).
constexpr size_t kMaxBodyBytes = 1 << 20;

absl::Status InitCurlOnce() {
  static CURLcode code = curl_global_init(CURL_GLOBAL_DEFAULT);
  if (code != CURLE_OK) {
    return absl::InternalError(
        absl::StrCat("curl_global_init: ", curl_easy_strerror(code)));
  }
  return absl::OkStatus();
}

// One request's state while libcurl works on it.
struct Transfer {
  WebhookRequest request;
  WebhookTransport::Callback done;
  bool allow_private = false;
  CURL* easy = nullptr;
  curl_slist* headers = nullptr;
  std::string raw_excerpt;
  size_t body_bytes = 0;
  std::string retry_after;
  std::string refused;  // address policy refusal, for the message
  int64_t* refused_counter = nullptr;
  char error[CURL_ERROR_SIZE] = {0};

  ~Transfer() {
    if (headers != nullptr) curl_slist_free_all(headers);
    if (easy != nullptr) curl_easy_cleanup(easy);
  }
};

size_t OnBody(char* data, size_t size, size_t n, void* user) {
  auto* t = static_cast<Transfer*>(user);
  const size_t bytes = size * n;
  if (t->raw_excerpt.size() < kExcerptBytes + 4) {
    const size_t take =
        std::min(bytes, kExcerptBytes + 4 - t->raw_excerpt.size());
    t->raw_excerpt.append(data, take);
  }
  t->body_bytes += bytes;
  return t->body_bytes > kMaxBodyBytes ? 0 : bytes;  // 0 aborts
}

size_t OnHeader(char* data, size_t size, size_t n, void* user) {
  auto* t = static_cast<Transfer*>(user);
  absl::string_view line(data, size * n);
  if (absl::StartsWith(line, "HTTP/")) t->retry_after.clear();  // new response
  static constexpr absl::string_view kName = "retry-after:";
  if (line.size() > kName.size() &&
      absl::EqualsIgnoreCase(line.substr(0, kName.size()), kName)) {
    t->retry_after =
        std::string(absl::StripAsciiWhitespace(line.substr(kName.size())));
  }
  return size * n;
}

curl_socket_t OnOpenSocket(void* user, curlsocktype, curl_sockaddr* address) {
  auto* t = static_cast<Transfer*>(user);
  const AddressClass c = ClassifySockaddr(&address->addr, address->addrlen);
  if (!AddressAllowed(c, t->allow_private)) {
    t->refused = absl::StrCat(FormatSockaddr(&address->addr, address->addrlen),
                              " is ", AddressClassName(c));
    ++*t->refused_counter;
    return CURL_SOCKET_BAD;
  }
  return socket(address->family, address->socktype | SOCK_CLOEXEC,
                address->protocol);
}

TransportError ErrorFor(CURLcode code, const Transfer& t) {
  switch (code) {
    case CURLE_OK:
      return TransportError::kNone;
    case CURLE_OPERATION_TIMEDOUT:
      return TransportError::kTimeout;
    case CURLE_COULDNT_RESOLVE_HOST:
      return TransportError::kDns;
    case CURLE_UNSUPPORTED_PROTOCOL:
    case CURLE_URL_MALFORMAT:
      return TransportError::kInvalidRequest;
    case CURLE_SSL_CONNECT_ERROR:
    case CURLE_PEER_FAILED_VERIFICATION:
    case CURLE_SSL_CERTPROBLEM:
    case CURLE_SSL_CIPHER:
    case CURLE_SSL_CACERT_BADFILE:
    case CURLE_SSL_ISSUER_ERROR:
      return TransportError::kTls;
    case CURLE_COULDNT_CONNECT:
      return t.refused.empty() ? TransportError::kConnect
                               : TransportError::kRefusedTarget;
    case CURLE_SEND_ERROR:
    case CURLE_RECV_ERROR:
    case CURLE_GOT_NOTHING:
    case CURLE_PARTIAL_FILE:
      return TransportError::kConnect;
    default:
      return TransportError::kOther;
  }
}

class CurlTransportImpl final : public CurlTransport {
 public:
  CurlTransportImpl(const HttpTransportOptions& options, CURLM* multi)
      : options_(options),
        user_agent_(options.user_agent.empty()
                        ? absl::StrCat("pggitops-webhooks/", kVersionString)
                        : options.user_agent),
        multi_(multi) {
    curl_multi_setopt(multi_, CURLMOPT_MAXCONNECTS,
                      static_cast<long>(std::min(options.max_in_flight, 1024)));
    thread_ = std::thread([this] { Run(); });
  }

  ~CurlTransportImpl() override {
    Shutdown(absl::Now());
    curl_multi_cleanup(multi_);
  }

  void Send(WebhookRequest request, Callback done) override;
  void Shutdown(absl::Time deadline) override;
  CurlTransportStats Stats() const override {
    absl::MutexLock lock(&mu_);
    return stats_;
  }

 private:
  using Done = std::pair<Callback, WebhookResponse>;

  void Run();
  void Admit();
  void StartTransfers();
  void StartOne(std::unique_ptr<Transfer> t);
  void Reap(std::vector<Done>* done);
  WebhookResponse Finish(Transfer* t, CURLcode code);
  void AbortAll(std::vector<Done>* done, absl::string_view why);
  bool Idle() const { return running_.empty() && waiting_count_ == 0; }

  const HttpTransportOptions options_;
  const std::string user_agent_;
  CURLM* const multi_;

  mutable absl::Mutex mu_;
  std::vector<std::unique_ptr<Transfer>> submitted_ ABSL_GUARDED_BY(mu_);
  bool stopping_ ABSL_GUARDED_BY(mu_) = false;
  absl::Time deadline_ ABSL_GUARDED_BY(mu_) = absl::InfiniteFuture();
  CurlTransportStats stats_ ABSL_GUARDED_BY(mu_);
  int64_t refused_ = 0;  // written by the transport thread only

  // Owned by the transport thread.
  absl::flat_hash_map<std::string, std::deque<std::unique_ptr<Transfer>>>
      waiting_;
  std::deque<std::string> ring_;  // endpoints with waiting transfers
  int waiting_count_ = 0;
  absl::flat_hash_map<CURL*, std::unique_ptr<Transfer>> running_;
  absl::flat_hash_map<std::string, int> running_per_endpoint_;

  absl::Mutex join_mu_;
  std::thread thread_ ABSL_GUARDED_BY(join_mu_);  // joined under it
};

void CurlTransportImpl::Send(WebhookRequest request, Callback done) {
  auto t = std::make_unique<Transfer>();
  t->request = std::move(request);
  t->done = std::move(done);
  t->allow_private = options_.allow_private_targets;
  t->refused_counter = &refused_;
  {
    absl::MutexLock lock(&mu_);
    if (!stopping_) {
      submitted_.push_back(std::move(t));
      ++stats_.queued;
    }
  }
  if (t == nullptr) {
    curl_multi_wakeup(multi_);
    return;
  }
  WebhookResponse r;
  r.error = TransportError::kShutdown;
  r.error_message = "the transport is shut down";
  t->done(std::move(r));
}

void CurlTransportImpl::Shutdown(absl::Time deadline) {
  {
    absl::MutexLock lock(&mu_);
    if (!stopping_ || deadline < deadline_) deadline_ = deadline;
    stopping_ = true;
  }
  curl_multi_wakeup(multi_);
  absl::MutexLock lock(&join_mu_);
  if (thread_.joinable()) thread_.join();
}

void CurlTransportImpl::Admit() {
  std::vector<std::unique_ptr<Transfer>> fresh;
  {
    absl::MutexLock lock(&mu_);
    fresh.swap(submitted_);
  }
  for (auto& t : fresh) {
    auto& queue = waiting_[t->request.endpoint_key];
    if (queue.empty()) ring_.push_back(t->request.endpoint_key);
    queue.push_back(std::move(t));
    ++waiting_count_;
  }
}

void CurlTransportImpl::StartTransfers() {
  // Round robin over endpoints, one transfer per endpoint per pass, until
  // the overall cap is reached or no endpoint can start another.
  const auto full = [this] {
    return static_cast<int>(running_.size()) >= options_.max_in_flight;
  };
  bool progress = true;
  while (progress && !full()) {
    progress = false;
    for (size_t n = ring_.size(); n > 0 && !full(); --n) {
      std::string key = std::move(ring_.front());
      ring_.pop_front();
      auto& queue = waiting_[key];
      int& running = running_per_endpoint_[key];
      if (running < options_.max_in_flight_per_endpoint) {
        ++running;
        --waiting_count_;
        std::unique_ptr<Transfer> t = std::move(queue.front());
        queue.pop_front();
        StartOne(std::move(t));
        progress = true;
      }
      if (queue.empty()) {
        waiting_.erase(key);
      } else {
        ring_.push_back(std::move(key));
      }
    }
  }
  absl::MutexLock lock(&mu_);
  stats_.running = static_cast<int>(running_.size());
  stats_.queued = waiting_count_ + static_cast<int>(submitted_.size());
  stats_.max_running = std::max(stats_.max_running, stats_.running);
  stats_.refused_connects = refused_;
}

void CurlTransportImpl::StartOne(std::unique_ptr<Transfer> t) {
  CURL* e = curl_easy_init();
  t->easy = e;
  const WebhookRequest& r = t->request;
  t->headers = curl_slist_append(t->headers, "Content-Type: application/json");
  t->headers = curl_slist_append(t->headers, "Expect:");
  for (const auto& [name, value] : r.headers) {
    t->headers =
        curl_slist_append(t->headers, absl::StrCat(name, ": ", value).c_str());
  }
  const long timeout_ms = static_cast<long>(
      std::max<int64_t>(1, absl::ToInt64Milliseconds(r.timeout)));
  curl_easy_setopt(e, CURLOPT_URL, r.url.c_str());
  curl_easy_setopt(e, CURLOPT_PROTOCOLS_STR, "http,https");
  curl_easy_setopt(e, CURLOPT_REDIR_PROTOCOLS_STR, "http,https");
  curl_easy_setopt(e, CURLOPT_FOLLOWLOCATION, 0L);
  curl_easy_setopt(e, CURLOPT_PROXY, "");
  curl_easy_setopt(e, CURLOPT_NOSIGNAL, 1L);
  curl_easy_setopt(e, CURLOPT_TIMEOUT_MS, timeout_ms);
  curl_easy_setopt(e, CURLOPT_CONNECTTIMEOUT_MS, timeout_ms);
  curl_easy_setopt(e, CURLOPT_SSL_VERIFYPEER, r.verify_tls ? 1L : 0L);
  curl_easy_setopt(e, CURLOPT_SSL_VERIFYHOST, r.verify_tls ? 2L : 0L);
  curl_easy_setopt(e, CURLOPT_USERAGENT, user_agent_.c_str());
  curl_easy_setopt(e, CURLOPT_HTTPHEADER, t->headers);
  curl_easy_setopt(e, CURLOPT_POST, 1L);
  curl_easy_setopt(e, CURLOPT_POSTFIELDS, r.body.data());
  curl_easy_setopt(e, CURLOPT_POSTFIELDSIZE_LARGE,
                   static_cast<curl_off_t>(r.body.size()));
  curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, &OnBody);
  curl_easy_setopt(e, CURLOPT_WRITEDATA, t.get());
  curl_easy_setopt(e, CURLOPT_HEADERFUNCTION, &OnHeader);
  curl_easy_setopt(e, CURLOPT_HEADERDATA, t.get());
  curl_easy_setopt(e, CURLOPT_OPENSOCKETFUNCTION, &OnOpenSocket);
  curl_easy_setopt(e, CURLOPT_OPENSOCKETDATA, t.get());
  curl_easy_setopt(e, CURLOPT_ERRORBUFFER, t->error);
  curl_multi_add_handle(multi_, e);
  running_[e] = std::move(t);
}

WebhookResponse CurlTransportImpl::Finish(Transfer* t, CURLcode code) {
  WebhookResponse r;
  long status = 0;
  curl_easy_getinfo(t->easy, CURLINFO_RESPONSE_CODE, &status);
  curl_off_t total_us = 0;
  curl_easy_getinfo(t->easy, CURLINFO_TOTAL_TIME_T, &total_us);
  r.http_status = static_cast<int>(status);
  r.duration = absl::Microseconds(total_us);
  r.body_excerpt = SanitizeExcerpt(t->raw_excerpt, kExcerptBytes);
  r.retry_after = t->retry_after;
  if (code == CURLE_WRITE_ERROR && status != 0 &&
      t->body_bytes > kMaxBodyBytes) {
    code = CURLE_OK;  // body cut at kMaxBodyBytes: the status stands
  }
  r.error = ErrorFor(code, *t);
  if (r.error == TransportError::kRefusedTarget) {
    r.error_message = absl::StrCat("target address refused: ", t->refused,
                                   " (WEBHOOK_ALLOW_PRIVATE_TARGETS is off)");
  } else if (r.error == TransportError::kTimeout) {
    r.error_message = absl::StrCat("no complete response within ",
                                   absl::FormatDuration(t->request.timeout));
  } else if (r.error != TransportError::kNone) {
    r.error_message =
        t->error[0] != '\0' ? std::string(t->error) : curl_easy_strerror(code);
  }
  return r;
}

void CurlTransportImpl::Reap(std::vector<Done>* done) {
  int left = 0;
  while (CURLMsg* m = curl_multi_info_read(multi_, &left)) {
    if (m->msg != CURLMSG_DONE) continue;
    auto it = running_.find(m->easy_handle);
    if (it == running_.end()) continue;
    std::unique_ptr<Transfer> t = std::move(it->second);
    running_.erase(it);
    curl_multi_remove_handle(multi_, t->easy);
    if (--running_per_endpoint_[t->request.endpoint_key] == 0) {
      running_per_endpoint_.erase(t->request.endpoint_key);
    }
    done->emplace_back(std::move(t->done), Finish(t.get(), m->data.result));
  }
}

void CurlTransportImpl::AbortAll(std::vector<Done>* done,
                                 absl::string_view why) {
  WebhookResponse r;
  r.error = TransportError::kShutdown;
  r.error_message = std::string(why);
  for (auto& [easy, t] : running_) {
    curl_multi_remove_handle(multi_, easy);
    done->emplace_back(std::move(t->done), r);
  }
  running_.clear();
  running_per_endpoint_.clear();
  for (auto& [key, queue] : waiting_) {
    for (auto& t : queue) done->emplace_back(std::move(t->done), r);
  }
  waiting_.clear();
  ring_.clear();
  waiting_count_ = 0;
}

void CurlTransportImpl::Run() {
  while (true) {
    Admit();
    bool stopping;
    absl::Time deadline;
    {
      absl::MutexLock lock(&mu_);
      stopping = stopping_;
      deadline = deadline_;
    }
    std::vector<Done> done;
    if (stopping) {
      // Nothing new starts; queued requests end now, running ones at the
      // deadline.
      std::vector<Done> queued;
      WebhookResponse r;
      r.error = TransportError::kShutdown;
      r.error_message = "the transport shut down before the request started";
      for (auto& [key, queue] : waiting_) {
        for (auto& t : queue) done.emplace_back(std::move(t->done), r);
      }
      waiting_.clear();
      ring_.clear();
      waiting_count_ = 0;
    } else {
      StartTransfers();
    }
    int still = 0;
    curl_multi_perform(multi_, &still);
    Reap(&done);
    const bool finished = stopping && running_.empty();
    if (stopping && !finished && absl::Now() >= deadline) {
      AbortAll(&done, "the transport shut down before the response arrived");
    }
    for (auto& [callback, response] : done) callback(std::move(response));
    if (stopping && running_.empty()) break;
    // Finished transfers freed slots that queued ones may take at once.
    if (!stopping && !done.empty() && waiting_count_ > 0) continue;
    int wait_ms = 1000;
    if (stopping) {
      wait_ms = static_cast<int>(std::clamp<int64_t>(
          absl::ToInt64Milliseconds(deadline - absl::Now()) + 1, 0, 1000));
    }
    curl_multi_poll(multi_, nullptr, 0, wait_ms, nullptr);
  }
  absl::MutexLock lock(&mu_);
  stats_.running = 0;
  stats_.queued = 0;
}

}  // namespace

absl::StatusOr<std::unique_ptr<CurlTransport>> CurlTransport::Create(
    const HttpTransportOptions& options) {
  if (absl::Status s = options.Validate(); !s.ok()) return s;
  if (absl::Status s = InitCurlOnce(); !s.ok()) return s;
  CURLM* multi = curl_multi_init();
  if (multi == nullptr) return absl::InternalError("curl_multi_init failed");
  return std::unique_ptr<CurlTransport>(new CurlTransportImpl(options, multi));
}

}  // namespace internal

absl::StatusOr<std::unique_ptr<WebhookTransport>> NewHttpTransport(
    const HttpTransportOptions& options) {
  absl::StatusOr<std::unique_ptr<internal::CurlTransport>> t =
      internal::CurlTransport::Create(options);
  if (!t.ok()) return t.status();
  return std::unique_ptr<WebhookTransport>(std::move(*t));
}

}  // namespace pggitops
