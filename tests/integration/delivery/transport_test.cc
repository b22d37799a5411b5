// The libcurl transport against real sockets on 127.0.0.1: headers and
// bodies, the SSRF policy at connect time, no redirects, the overall
// deadline against a receiver that drips one byte a second, the in-flight
// caps, and shutdown. Only loopback receivers are ever contacted; the
// private addresses below are refused before any connect().
#include <future>
#include <string>
#include <vector>

#include "doctest/doctest.h"
#include "libpggitops/delivery/curl_transport.h"
#include "pggitops/version.h"
#include "tests/integration/delivery/delivery_test_util.h"

namespace pggitops {
namespace {

using delivery_test::Dripper;
using delivery_test::Receiver;
using internal::CurlTransport;

std::unique_ptr<CurlTransport> Make(bool allow_private, int max = 256,
                                    int per_endpoint = 8) {
  HttpTransportOptions o;
  o.allow_private_targets = allow_private;
  o.max_in_flight = max;
  o.max_in_flight_per_endpoint = per_endpoint;
  absl::StatusOr<std::unique_ptr<CurlTransport>> t = CurlTransport::Create(o);
  REQUIRE(t.ok());
  return *std::move(t);
}

WebhookRequest Post(const std::string& url,
                    absl::Duration timeout = absl::Seconds(5)) {
  WebhookRequest r;
  r.url = url;
  r.body = R"({"hello": "world"})";
  r.timeout = timeout;
  r.endpoint_key = "e";
  r.headers = {{"webhook-id", "msg_1_2"}};
  return r;
}

WebhookResponse SendSync(WebhookTransport* t, WebhookRequest r) {
  std::promise<WebhookResponse> p;
  std::future<WebhookResponse> f = p.get_future();
  t->Send(std::move(r), [&p](WebhookResponse resp) { p.set_value(resp); });
  REQUIRE(f.wait_for(std::chrono::seconds(30)) == std::future_status::ready);
  return f.get();
}

TEST_CASE("transport: posts JSON with our headers and reads the answer") {
  Receiver rx([](const delivery_test::Received&, int) {
    Receiver::Reply r;
    r.status = 202;
    r.body = std::string(3000, 'z');
    r.headers = {{"Retry-After", "7"}};
    return r;
  });
  auto t = Make(/*allow_private=*/true);
  WebhookResponse resp = SendSync(t.get(), Post(rx.url()));
  CHECK(resp.error == TransportError::kNone);
  CHECK(resp.http_status == 202);
  CHECK(resp.body_excerpt == std::string(1024, 'z'));
  CHECK(resp.retry_after == "7");
  CHECK(resp.duration > absl::ZeroDuration());
  REQUIRE(rx.count() == 1);
  const delivery_test::Received got = rx.requests()[0];
  CHECK(got.body == R"({"hello": "world"})");
  CHECK(got.headers.at("content-type") == "application/json");
  CHECK(got.headers.at("user-agent") ==
        std::string("pggitops-webhooks/") + kVersionString);
  CHECK(got.headers.at("webhook-id") == "msg_1_2");
}

TEST_CASE("transport: private, loopback and link-local targets are refused") {
  Receiver rx;
  auto t = Make(/*allow_private=*/false);
  const std::string port = std::to_string(rx.port());
  for (const std::string& url : std::vector<std::string>{
           "http://10.0.0.1/hook", "http://169.254.169.254/latest/meta-data",
           "http://[::1]:" + port + "/hook",
           "http://localhost:" + port + "/hook",
           "http://127.0.0.1:" + port + "/hook"}) {
    CAPTURE(url);
    WebhookResponse resp = SendSync(t.get(), Post(url, absl::Seconds(3)));
    CHECK(resp.error == TransportError::kRefusedTarget);
    CHECK(resp.http_status == 0);
    CHECK(resp.error_message.find("target address refused") !=
          std::string::npos);
  }
  CHECK(rx.count() == 0);
  CHECK(t->Stats().refused_connects >= 5);
  // The message names the resolved address and why.
  WebhookResponse meta = SendSync(t.get(), Post("http://169.254.169.254/x"));
  CHECK(meta.error_message.find("169.254.169.254 is link-local") !=
        std::string::npos);
}

TEST_CASE("transport: redirects are not followed") {
  Receiver target;
  Receiver redirector([&target](const delivery_test::Received&, int) {
    Receiver::Reply r;
    r.status = 302;
    r.headers = {{"Location", target.url("/elsewhere")}};
    return r;
  });
  auto t = Make(/*allow_private=*/true);
  WebhookResponse resp = SendSync(t.get(), Post(redirector.url()));
  CHECK(resp.error == TransportError::kNone);
  CHECK(resp.http_status == 302);
  CHECK(redirector.count() == 1);
  CHECK(target.count() == 0);
}

TEST_CASE("transport: the deadline cuts a receiver that drips its answer") {
  Dripper drip;
  auto t = Make(/*allow_private=*/true);
  const auto start = delivery_test::Clock::now();
  WebhookResponse resp =
      SendSync(t.get(), Post(drip.url(), absl::Milliseconds(2500)));
  const auto took = delivery_test::Clock::now() - start;
  CHECK(resp.error == TransportError::kTimeout);
  CHECK(resp.http_status == 200);  // the status line came, the body did not
  CHECK(took >= std::chrono::milliseconds(2400));
  CHECK(took < std::chrono::milliseconds(6000));
  CHECK(drip.accepted() == 1);
}

TEST_CASE("transport: other failures are classified") {
  auto t = Make(/*allow_private=*/true);
  // A port nothing listens on (bound then closed).
  const int port = harness::FreePort();
  WebhookResponse refused =
      SendSync(t.get(), Post("http://127.0.0.1:" + std::to_string(port) + "/"));
  CHECK(refused.error == TransportError::kConnect);
  WebhookResponse ftp = SendSync(t.get(), Post("ftp://127.0.0.1/x"));
  CHECK(ftp.error == TransportError::kInvalidRequest);
  WebhookResponse file = SendSync(t.get(), Post("file:///etc/passwd"));
  CHECK(file.error == TransportError::kInvalidRequest);
  WebhookResponse bad = SendSync(t.get(), Post("http://exa mple/"));
  CHECK(bad.error != TransportError::kNone);
}

TEST_CASE("transport: caps per endpoint and overall hold under load") {
  Receiver rx([](const delivery_test::Received&, int) {
    Receiver::Reply r;
    r.delay = std::chrono::milliseconds(300);
    return r;
  });
  auto t = Make(/*allow_private=*/true, /*max=*/5, /*per_endpoint=*/3);
  std::atomic<int> done{0};
  for (int i = 0; i < 12; ++i) {
    WebhookRequest r = Post(rx.url());
    r.endpoint_key = i % 2 == 0 ? "a" : "b";
    t->Send(std::move(r), [&done](WebhookResponse resp) {
      CHECK(resp.http_status == 200);
      ++done;
    });
  }
  REQUIRE(delivery_test::WaitFor([&] { return done.load() == 12; },
                                 std::chrono::seconds(20)));
  CHECK(t->Stats().max_running <= 5);
  CHECK(rx.max_concurrent() <= 5);
  CHECK(rx.max_concurrent() >= 4);  // both endpoints ran at once

  auto single = Make(/*allow_private=*/true, 100, /*per_endpoint=*/2);
  done = 0;
  for (int i = 0; i < 6; ++i) {
    single->Send(Post(rx.url()), [&done](WebhookResponse) { ++done; });
  }
  REQUIRE(delivery_test::WaitFor([&] { return done.load() == 6; },
                                 std::chrono::seconds(20)));
  CHECK(single->Stats().max_running == 2);
}

TEST_CASE("transport: a queued request starts as soon as a slot frees") {
  // One slot, twenty requests queued at once: each must start when the
  // previous one ends, not when the transport next wakes for another reason
  // (it used to wait up to a second per request).
  Receiver rx;
  auto t = Make(/*allow_private=*/true, /*max=*/100, /*per_endpoint=*/1);
  std::atomic<int> done{0};
  const auto start = delivery_test::Clock::now();
  for (int i = 0; i < 20; ++i) {
    t->Send(Post(rx.url()), [&done](WebhookResponse resp) {
      CHECK(resp.http_status == 200);
      ++done;
    });
  }
  REQUIRE(delivery_test::WaitFor([&] { return done.load() == 20; },
                                 std::chrono::seconds(30)));
  CHECK(delivery_test::Clock::now() - start < std::chrono::seconds(8));
  CHECK(t->Stats().max_running == 1);
}

TEST_CASE("transport: shutdown aborts at the deadline, then refuses") {
  Receiver slow([](const delivery_test::Received&, int) {
    Receiver::Reply r;
    r.delay = std::chrono::milliseconds(3000);
    return r;
  });
  auto t = Make(/*allow_private=*/true);
  std::promise<WebhookResponse> p;
  t->Send(Post(slow.url()), [&p](WebhookResponse r) { p.set_value(r); });
  REQUIRE(delivery_test::WaitFor([&] { return slow.count() == 1; },
                                 std::chrono::seconds(10)));
  const auto start = delivery_test::Clock::now();
  t->Shutdown(absl::Now() + absl::Milliseconds(300));
  CHECK(delivery_test::Clock::now() - start < std::chrono::milliseconds(2000));
  WebhookResponse aborted = p.get_future().get();
  CHECK(aborted.error == TransportError::kShutdown);
  WebhookResponse after = SendSync(t.get(), Post(slow.url()));
  CHECK(after.error == TransportError::kShutdown);
}

TEST_CASE("transport: shutdown lets attempts finish within the deadline") {
  Receiver rx([](const delivery_test::Received&, int) {
    Receiver::Reply r;
    r.delay = std::chrono::milliseconds(300);
    return r;
  });
  auto t = Make(/*allow_private=*/true);
  std::promise<WebhookResponse> p;
  t->Send(Post(rx.url()), [&p](WebhookResponse r) { p.set_value(r); });
  REQUIRE(delivery_test::WaitFor([&] { return rx.count() == 1; },
                                 std::chrono::seconds(10)));
  t->Shutdown(absl::Now() + absl::Seconds(5));
  WebhookResponse r = p.get_future().get();
  CHECK(r.error == TransportError::kNone);
  CHECK(r.http_status == 200);
}

}  // namespace
}  // namespace pggitops
