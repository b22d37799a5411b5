// Starting attempts, receiving their outcome, and test sends.
#include <algorithm>
#include <memory>
#include <utility>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/synchronization/notification.h"
#include "libpggitops/delivery/engine.h"
#include "libpggitops/delivery/signing.h"

namespace pggitops::internal {

std::vector<Job> DeliveryEngineImpl::TakeStartable() {
  // Round robin over webhooks, one attempt each per pass, within the caps.
  std::vector<Job> out;
  bool progress = true;
  while (progress && in_flight_ < options_.max_in_flight) {
    progress = false;
    for (size_t n = ring_.size(); n > 0 && in_flight_ < options_.max_in_flight;
         --n) {
      const int64_t id = ring_.front();
      ring_.pop_front();
      auto it = local_.find(id);
      if (it == local_.end()) continue;
      WebhookLocal& l = it->second;
      if (!l.ready.empty() &&
          l.in_flight < options_.max_in_flight_per_endpoint) {
        out.push_back(std::move(l.ready.front()));
        l.ready.pop_front();
        ++l.in_flight;
        ++in_flight_;
        progress = true;
      }
      if (l.ready.empty()) {
        l.in_ring = false;
      } else {
        ring_.push_back(id);
      }
    }
  }
  metrics_.in_flight->Set(in_flight_);
  return out;
}

WebhookRequest DeliveryEngineImpl::BuildRequest(const Job& job,
                                                int64_t timestamp) const {
  WebhookRequest r;
  r.url = job.url;
  r.body = job.body;
  r.timeout = job.timeout;
  r.verify_tls = job.ssl_verify;
  r.endpoint_key = absl::StrCat(job.webhook_id);
  r.headers = SignatureHeaders(SigningKey(job.secret),
                               MessageId(job.alert_id, job.webhook_id),
                               timestamp, job.body);
  return r;
}

void DeliveryEngineImpl::StartJobs(std::vector<Job> jobs) {
  for (Job& job : jobs) {
    const absl::Time started = env_->Now();
    WebhookRequest request = BuildRequest(job, absl::ToUnixSeconds(started));
    transport_->Send(
        std::move(request), [gate = gate_, job = std::move(job),
                             started](WebhookResponse response) mutable {
          DeliveryEngineImpl* engine = gate->Enter();
          if (engine == nullptr) return;  // the engine is gone
          engine->OnAttemptDone(std::move(job), started, std::move(response));
          gate->Exit();
        });
  }
}

void DeliveryEngineImpl::OnAttemptDone(Job job, absl::Time started_at,
                                       WebhookResponse response) {
  std::vector<Job> start;
  {
    absl::MutexLock lock(&mu_);
    --in_flight_;
    auto it = local_.find(job.webhook_id);
    if (it != local_.end()) {
      // The slot and the place in the claim limit are free now; the row
      // stays held (leased) until its outcome is recorded.
      --it->second.in_flight;
      Dequeue(job.webhook_id, &it->second);
    }
    if (completions_.empty()) first_completion_at_ = env_->MonotonicNow();
    completions_.push_back({std::move(job), std::move(response), started_at});
    if (phase_ == Phase::kRunning) start = TakeStartable();
    metrics_.in_flight->Set(in_flight_);
  }
  StartJobs(std::move(start));
}

namespace {

struct TestTarget {
  std::string name, url, secret;
  absl::Duration timeout;
  bool ssl_verify = true;
};

absl::StatusOr<TestTarget> LoadTestTarget(ConnectionPool* pool,
                                          int64_t webhook_id) {
  absl::StatusOr<PooledConnection> lease = pool->Acquire();
  if (!lease.ok()) return lease.status();
  absl::StatusOr<QueryResult> r = lease->Query(
      "SELECT name, url, secret, timeout_seconds, ssl_verify "
      "FROM pggit.webhooks WHERE id = $1 AND deleted_at IS NULL",
      {absl::StrCat(webhook_id)});
  if (!r.ok()) return r.status();
  if (r->rows.empty()) {
    return absl::NotFoundError(absl::StrCat("webhook ", webhook_id));
  }
  const auto& row = r->rows[0];
  TestTarget t;
  t.name = row[0].value_or("");
  t.url = row[1].value_or("");
  t.secret = row[2].value_or("");
  int seconds = 30;
  if (row[3].has_value() && !absl::SimpleAtoi(*row[3], &seconds)) seconds = 30;
  t.timeout = absl::Seconds(seconds);
  t.ssl_verify = row[4].value_or("t") == "t";
  return t;
}

}  // namespace

absl::StatusOr<TestSendResult> DeliveryEngineImpl::SendTest(
    int64_t webhook_id) {
  {
    absl::MutexLock lock(&mu_);
    if (phase_ == Phase::kStopped || phase_ == Phase::kStopping) {
      return absl::FailedPreconditionError(
          "DeliveryEngine::SendTest: the engine is shut down");
    }
  }
  absl::StatusOr<TestTarget> target = LoadTestTarget(pool_, webhook_id);
  if (!target.ok()) return target.status();
  const absl::Time now = env_->Now();
  const std::string body = TestEventBody(webhook_id, target->name, now);
  WebhookRequest request;
  request.url = target->url;
  request.body = body;
  request.timeout = target->timeout;
  request.verify_tls = target->ssl_verify;
  request.endpoint_key = absl::StrCat("test:", webhook_id);
  request.headers = SignatureHeaders(
      SigningKey(target->secret),
      absl::StrCat("msg_test_", webhook_id, "_", absl::ToUnixNanos(now)),
      absl::ToUnixSeconds(now), body);

  // Shared with the callback, which may outlive this call on a time-out.
  struct Outcome {
    absl::Notification done;
    WebhookResponse response;
  };
  auto outcome = std::make_shared<Outcome>();
  transport_->Send(std::move(request), [outcome](WebhookResponse r) {
    outcome->response = std::move(r);
    outcome->done.Notify();
  });
  if (!outcome->done.WaitForNotificationWithTimeout(target->timeout +
                                                    absl::Seconds(10))) {
    return absl::DeadlineExceededError(absl::StrCat(
        "test send to webhook ", webhook_id, " got no outcome in time"));
  }
  const WebhookResponse& r = outcome->response;
  TestSendResult result;
  result.success = r.error == TransportError::kNone && r.http_status >= 200 &&
                   r.http_status <= 299;
  if (r.http_status != 0) result.http_status = r.http_status;
  result.duration_ms = absl::ToDoubleMilliseconds(r.duration);
  if (!result.success) {
    std::string error;
    if (r.error != TransportError::kNone) {
      error = absl::StrCat(TransportErrorName(r.error), ": ", r.error_message);
    } else {
      error = absl::StrCat("HTTP ", r.http_status);
    }
    result.error = std::move(error);
  }
  return result;
}

}  // namespace pggitops::internal
