// The SSRF address classifier: every refused range of CONTRACT section 6
// (IPv4 and IPv6, including IPv4 carried inside IPv6), and the public
// addresses that stay allowed. Nothing here opens a socket.
#include "libpggitops/delivery/address_policy.h"

#include <arpa/inet.h>
#include <netinet/in.h>

#include <string>

#include "doctest/doctest.h"

namespace pggitops::internal {
namespace {

AddressClass C(const std::string& text) { return ClassifyAddressText(text); }

TEST_CASE("AddressPolicy: private, loopback and special IPv4 are refused") {
  CHECK(C("10.0.0.1") == AddressClass::kPrivate);
  CHECK(C("10.255.255.255") == AddressClass::kPrivate);
  CHECK(C("172.16.0.1") == AddressClass::kPrivate);
  CHECK(C("172.31.255.254") == AddressClass::kPrivate);
  CHECK(C("192.168.1.1") == AddressClass::kPrivate);
  CHECK(C("127.0.0.1") == AddressClass::kLoopback);
  CHECK(C("127.8.9.10") == AddressClass::kLoopback);
  CHECK(C("169.254.169.254") == AddressClass::kLinkLocal);
  CHECK(C("100.64.0.1") == AddressClass::kSharedCgnat);
  CHECK(C("100.127.255.255") == AddressClass::kSharedCgnat);
  CHECK(C("0.0.0.0") == AddressClass::kUnspecified);
  CHECK(C("0.1.2.3") == AddressClass::kUnspecified);
  CHECK(C("224.0.0.1") == AddressClass::kMulticast);
  CHECK(C("239.255.255.250") == AddressClass::kMulticast);
  CHECK(C("255.255.255.255") == AddressClass::kReserved);
  CHECK(C("240.0.0.1") == AddressClass::kReserved);
  CHECK(C("198.18.0.1") == AddressClass::kReserved);
  CHECK(C("192.0.2.1") == AddressClass::kReserved);
  for (const char* a :
       {"10.0.0.1", "172.16.5.4", "192.168.0.1", "169.254.169.254",
        "100.64.1.1", "127.0.0.1", "0.0.0.0"}) {
    CAPTURE(a);
    CHECK_FALSE(AddressAllowed(C(a), /*allow_private_targets=*/false));
    CHECK(AddressAllowed(C(a), /*allow_private_targets=*/true));
  }
}

TEST_CASE("AddressPolicy: range edges are exact") {
  CHECK(C("172.15.255.255") == AddressClass::kPublic);
  CHECK(C("172.32.0.0") == AddressClass::kPublic);
  CHECK(C("100.63.255.255") == AddressClass::kPublic);
  CHECK(C("100.128.0.0") == AddressClass::kPublic);
  CHECK(C("169.253.255.255") == AddressClass::kPublic);
  CHECK(C("11.0.0.0") == AddressClass::kPublic);
  CHECK(C("9.255.255.255") == AddressClass::kPublic);
  CHECK(C("223.255.255.255") == AddressClass::kPublic);
  CHECK(C("192.169.0.1") == AddressClass::kPublic);
}

TEST_CASE("AddressPolicy: IPv6 loopback, ULA, link-local, multicast") {
  CHECK(C("::1") == AddressClass::kLoopback);
  CHECK(C("[::1]") == AddressClass::kLoopback);
  CHECK(C("::") == AddressClass::kUnspecified);
  CHECK(C("fc00::1") == AddressClass::kUniqueLocal);
  CHECK(C("fd12:3456:789a::1") == AddressClass::kUniqueLocal);
  CHECK(C("fe80::1") == AddressClass::kLinkLocal);
  CHECK(C("febf:ffff::1") == AddressClass::kLinkLocal);
  CHECK(C("ff02::1") == AddressClass::kMulticast);
  CHECK(C("2001:db8::1") == AddressClass::kReserved);
  CHECK_FALSE(AddressAllowed(C("::1"), false));
  CHECK_FALSE(AddressAllowed(C("fd00::1"), false));
  CHECK_FALSE(AddressAllowed(C("fe80::1"), false));
}

TEST_CASE("AddressPolicy: IPv4 inside IPv6 is judged by the IPv4 address") {
  CHECK(C("::ffff:10.0.0.1") == AddressClass::kPrivate);
  CHECK(C("::ffff:127.0.0.1") == AddressClass::kLoopback);
  CHECK(C("::ffff:169.254.169.254") == AddressClass::kLinkLocal);
  CHECK(C("::ffff:8.8.8.8") == AddressClass::kPublic);
  CHECK(C("::10.0.0.1") == AddressClass::kPrivate);         // compatible
  CHECK(C("64:ff9b::10.0.0.1") == AddressClass::kPrivate);  // NAT64
  CHECK(C("64:ff9b::8.8.8.8") == AddressClass::kPublic);
  CHECK(C("2002:0a00:0001::1") == AddressClass::kPrivate);  // 6to4 of 10.0.0.1
  CHECK(C("2002:0808:0808::1") == AddressClass::kPublic);
}

TEST_CASE("AddressPolicy: public addresses are allowed (never contacted)") {
  CHECK(C("8.8.8.8") == AddressClass::kPublic);
  CHECK(C("1.1.1.1") == AddressClass::kPublic);
  CHECK(C("2001:4860::") == AddressClass::kPublic);
  CHECK(C("2001:4860:4860::8888") == AddressClass::kPublic);
  CHECK(AddressAllowed(C("8.8.8.8"), false));
  CHECK(AddressAllowed(C("2001:4860::"), false));
}

TEST_CASE("AddressPolicy: text that is not an address is invalid") {
  CHECK(C("") == AddressClass::kInvalid);
  CHECK(C("localhost") == AddressClass::kInvalid);
  CHECK(C("10.0.0.256") == AddressClass::kInvalid);
  CHECK(C("[::1") == AddressClass::kInvalid);
  CHECK_FALSE(AddressAllowed(AddressClass::kInvalid, true));
}

TEST_CASE("AddressPolicy: socket addresses are classified and formatted") {
  sockaddr_in v4{};
  v4.sin_family = AF_INET;
  inet_pton(AF_INET, "10.0.0.1", &v4.sin_addr);
  const auto* sa4 = reinterpret_cast<const sockaddr*>(&v4);
  CHECK(ClassifySockaddr(sa4, sizeof(v4)) == AddressClass::kPrivate);
  CHECK(FormatSockaddr(sa4, sizeof(v4)) == "10.0.0.1");
  CHECK(ClassifySockaddr(sa4, 4) == AddressClass::kInvalid);  // truncated

  sockaddr_in6 v6{};
  v6.sin6_family = AF_INET6;
  inet_pton(AF_INET6, "::ffff:10.0.0.1", &v6.sin6_addr);
  const auto* sa6 = reinterpret_cast<const sockaddr*>(&v6);
  CHECK(ClassifySockaddr(sa6, sizeof(v6)) == AddressClass::kPrivate);
  CHECK(FormatSockaddr(sa6, sizeof(v6)) == "::ffff:10.0.0.1");

  sockaddr unix_like{};
  unix_like.sa_family = AF_UNIX;
  CHECK(ClassifySockaddr(&unix_like, sizeof(unix_like)) ==
        AddressClass::kInvalid);
  CHECK(ClassifySockaddr(nullptr, 0) == AddressClass::kInvalid);
}

}  // namespace
}  // namespace pggitops::internal
