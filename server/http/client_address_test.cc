#include "server/http/client_address.h"

#include "doctest/doctest.h"

namespace pggitops::server {
namespace {

TrustedProxies Trust(const std::vector<std::string>& entries) {
  absl::StatusOr<TrustedProxies> t = TrustedProxies::Parse(entries);
  REQUIRE(t.ok());
  return *std::move(t);
}

// A request from `peer` with one X-Forwarded-For header per entry of `xff`.
httplib::Request From(const std::string& peer,
                      const std::vector<std::string>& xff = {}) {
  httplib::Request req;
  req.remote_addr = peer;
  for (const std::string& v : xff) req.headers.emplace("X-Forwarded-For", v);
  return req;
}

// Checks that `t` holds every address of `in` and none of `out`.
void CheckMembers(const TrustedProxies& t, std::vector<const char*> in,
                  std::vector<const char*> out) {
  for (const char* a : in) {
    CAPTURE(a);
    CHECK(t.Contains(a));
  }
  for (const char* a : out) {
    CAPTURE(a);
    CHECK_FALSE(t.Contains(a));
  }
}

TEST_CASE("TrustedProxies: addresses and CIDRs, edges included") {
  TrustedProxies t = Trust({"10.0.0.0/8", "192.168.1.7", "172.16.0.0/12",
                            "fd00::/8", "2001:db8::1", "100.64.0.0/10"});
  CheckMembers(t,
               {"10.0.0.0", "10.255.255.255", "192.168.1.7", "172.16.0.0",
                "172.31.255.255",
                // a prefix that is not whole bytes
                "100.64.0.0", "100.127.255.255", "fd12:3456::1",
                "FD00::", "2001:db8::1", "2001:0db8:0:0::1"},
               {"11.0.0.0", "9.255.255.255", "192.168.1.8", "172.32.0.0",
                "172.15.255.255", "100.63.255.255", "100.128.0.0", "fe00::1",
                "2001:db8::2",
                // not addresses
                "", "10.0.0.1:443", "unknown", "10.0.0", "[::1]"});
}

TEST_CASE("TrustedProxies: IPv4-mapped IPv6 peers match IPv4 entries") {
  // An IPv4 entry does not cover the IPv6 address with the same low bits
  // (::7f00:1).
  CheckMembers(Trust({"127.0.0.1", "10.0.0.0/8"}),
               {"::ffff:127.0.0.1", "::FFFF:10.1.2.3", "::ffff:a00:1"},
               {"::ffff:127.0.0.2", "::1", "::7f00:1"});
}

TEST_CASE("TrustedProxies: /0, /32, /128, host bits beyond the prefix") {
  CHECK(Trust({"0.0.0.0/0"}).Contains("203.0.113.9"));
  CHECK(Trust({"0.0.0.0/0"}).Contains("::ffff:203.0.113.9"));
  CHECK_FALSE(Trust({"0.0.0.0/0"}).Contains("2001:db8::1"));
  CHECK(Trust({"::/0"}).Contains("2001:db8::1"));
  CHECK(Trust({"10.0.0.1/32"}).Contains("10.0.0.1"));
  CHECK_FALSE(Trust({"10.0.0.1/32"}).Contains("10.0.0.0"));
  CHECK(Trust({"::1/128"}).Contains("::1"));
  CHECK_FALSE(Trust({"::1/128"}).Contains("::2"));
  CHECK(Trust({"10.1.2.3/8"}).Contains("10.200.0.1"));
  CHECK(Trust({}).empty());
  CHECK_FALSE(TrustedProxies().Contains("127.0.0.1"));
}

TEST_CASE("TrustedProxies: bad entries are refused, naming the entry") {
  for (const char* bad :
       {"", "10.0.0.0/33", "::/129", "10.0.0.0/", "10.0/8", "10.0.0.0/-1",
        "10.0.0.0/+8", "host.example", "fe80::1%eth0", "10.0.0.0/8/8"}) {
    CAPTURE(bad);
    absl::StatusOr<TrustedProxies> t = TrustedProxies::Parse({"::1", bad});
    REQUIRE_FALSE(t.ok());
    CHECK(t.status().code() == absl::StatusCode::kInvalidArgument);
    CHECK(std::string(t.status().message())
              .find(std::string("\"") + bad + "\"") != std::string::npos);
  }
}

TEST_CASE("ClientAddress: the peer unless it is a trusted proxy") {
  TrustedProxies t = Trust({"10.0.0.0/8"});
  CHECK(ClientAddress(From("203.0.113.9"), t) == "203.0.113.9");
  // A trusted peer without X-Forwarded-For is the client.
  CHECK(ClientAddress(From("10.0.0.5"), t) == "10.0.0.5");
  // Spoofed X-Forwarded-For from an untrusted peer is ignored.
  CHECK(ClientAddress(From("203.0.113.9", {"1.2.3.4"}), t) == "203.0.113.9");
  CHECK(ClientAddress(From("203.0.113.9", {"1.2.3.4"}), TrustedProxies()) ==
        "203.0.113.9");
  // Through one trusted proxy.
  CHECK(ClientAddress(From("10.0.0.5", {"198.51.100.7"}), t) == "198.51.100.7");
}

TEST_CASE("ClientAddress: right to left through a chain of trusted proxies") {
  TrustedProxies t = Trust({"10.0.0.0/8", "192.0.2.1"});
  // The client prepended a lie; the proxies appended what they saw.
  CHECK(ClientAddress(From("10.0.0.5", {"6.6.6.6, 198.51.100.7, 192.0.2.1, "
                                        "10.0.0.9"}),
                      t) == "198.51.100.7");
  // Several X-Forwarded-For headers count as one list, in order.
  CHECK(ClientAddress(From("10.0.0.5", {"6.6.6.6, 198.51.100.7", "10.1.1.1"}),
                      t) == "198.51.100.7");
  // Every hop trusted: the leftmost.
  CHECK(ClientAddress(From("10.0.0.5", {"10.9.9.9, 192.0.2.1"}), t) ==
        "10.9.9.9");
  // Empty hops are skipped.
  CHECK(ClientAddress(From("10.0.0.5", {" , 198.51.100.7 ,, "}), t) ==
        "198.51.100.7");
  CHECK(ClientAddress(From("10.0.0.5", {""}), t) == "10.0.0.5");
}

TEST_CASE("ClientAddress: a malformed hop stops the walk at the last good") {
  TrustedProxies t = Trust({"10.0.0.0/8"});
  CHECK(ClientAddress(From("10.0.0.5", {"198.51.100.7, garbage"}), t) ==
        "10.0.0.5");
  CHECK(ClientAddress(From("10.0.0.5", {"198.51.100.7, unknown, 10.0.0.9"}),
                      t) == "10.0.0.9");
  CHECK(ClientAddress(From("10.0.0.5", {"1.2.3.4:5678"}), t) == "10.0.0.5");
  // Left of the first untrusted hop nothing is read, good or bad.
  CHECK(ClientAddress(From("10.0.0.5", {"junk, 198.51.100.7"}), t) ==
        "198.51.100.7");
}

TEST_CASE("ClientAddress: IPv6, mapped peers and canonical results") {
  TrustedProxies t = Trust({"127.0.0.1", "fd00::/8"});
  CHECK(ClientAddress(From("::ffff:203.0.113.9"), t) == "203.0.113.9");
  CHECK(ClientAddress(From("::ffff:127.0.0.1", {"2001:DB8:0::1"}), t) ==
        "2001:db8::1");
  CHECK(ClientAddress(From("fd00::2", {"::ffff:198.51.100.7"}), t) ==
        "198.51.100.7");
  CHECK(ClientAddress(From("fd00::2", {"2001:db8::5, fd00::3"}), t) ==
        "2001:db8::5");
  CHECK(ClientAddress(From("fe80::1%eth0"), t) == "fe80::1");
  // A peer that is no IP address (a unix socket) is returned as it is.
  CHECK(ClientAddress(From("", {"1.2.3.4"}), t).empty());
}

TEST_CASE("IsLoopbackAddress: 127.0.0.0/8, ::1 and mapped 127.x") {
  for (const char* yes :
       {"127.0.0.1", "127.255.255.254", "127.1.2.3", "::1", "0:0:0:0:0:0:0:1",
        "::ffff:127.0.0.1", "::ffff:127.9.9.9"}) {
    CAPTURE(yes);
    CHECK(IsLoopbackAddress(yes));
  }
  for (const char* no :
       {"128.0.0.1", "126.255.255.255", "10.0.0.1", "::", "::2",
        "::ffff:10.0.0.1", "::7f00:1", "localhost", "", "0.0.0.0", "fe80::1"}) {
    CAPTURE(no);
    CHECK_FALSE(IsLoopbackAddress(no));
  }
}

TEST_CASE("IsLoopbackClient: loopback peer without forwarding headers") {
  CHECK(IsLoopbackClient(From("127.0.0.1")));
  CHECK(IsLoopbackClient(From("::1")));
  CHECK(IsLoopbackClient(From("::ffff:127.0.0.1")));
  CHECK_FALSE(IsLoopbackClient(From("10.0.0.1")));
  // A reverse proxy on this host forwards remote clients: never loopback,
  // even when the forwarded address is loopback too.
  CHECK_FALSE(IsLoopbackClient(From("127.0.0.1", {"203.0.113.9"})));
  CHECK_FALSE(IsLoopbackClient(From("127.0.0.1", {"127.0.0.1"})));
  CHECK_FALSE(IsLoopbackClient(From("127.0.0.1", {""})));
  httplib::Request forwarded = From("127.0.0.1");
  forwarded.headers.emplace("Forwarded", "for=203.0.113.9");
  CHECK_FALSE(IsLoopbackClient(forwarded));
  httplib::Request real_ip = From("::1");
  real_ip.headers.emplace("x-real-ip", "203.0.113.9");
  CHECK_FALSE(IsLoopbackClient(real_ip));
}

TEST_CASE("ClientBucket: IPv6 clients share their /prefix") {
  CHECK(ClientBucket("203.0.113.9", 64) == "203.0.113.9");
  CHECK(ClientBucket("2001:db8:1:2::7", 64) == "2001:db8:1:2::/64");
  CHECK(ClientBucket("2001:db8:1:2:ffff::1", 64) == "2001:db8:1:2::/64");
  CHECK(ClientBucket("2001:db8:1:3::1", 64) == "2001:db8:1:3::/64");
  CHECK(ClientBucket("2001:db8:1:2::7", 48) == "2001:db8:1::/48");
  CHECK(ClientBucket("2001:db8::7", 128) == "2001:db8::7");
  CHECK(ClientBucket("not-an-address", 64) == "not-an-address");
}

}  // namespace
}  // namespace pggitops::server
