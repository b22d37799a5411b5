#include "libpggitops/delivery/address_policy.h"

#include <arpa/inet.h>
#include <netinet/in.h>

#include <cstring>

#include "absl/strings/match.h"
#include "absl/strings/strip.h"

namespace pggitops::internal {
namespace {

// True when `address` lies in prefix/bits (host byte order).
bool InNet(uint32_t address, uint32_t prefix, int bits) {
  const uint32_t mask = bits == 0 ? 0 : ~uint32_t{0} << (32 - bits);
  return (address & mask) == (prefix & mask);
}

constexpr uint32_t Ip(unsigned a, unsigned b, unsigned c, unsigned d) {
  return (a << 24) | (b << 16) | (c << 8) | d;
}

uint32_t Ipv4At(const unsigned char* p) {
  return (uint32_t{p[0]} << 24) | (uint32_t{p[1]} << 16) |
         (uint32_t{p[2]} << 8) | uint32_t{p[3]};
}

bool AllZero(const unsigned char* p, int n) {
  for (int i = 0; i < n; ++i) {
    if (p[i] != 0) return false;
  }
  return true;
}

}  // namespace

const char* AddressClassName(AddressClass c) {
  switch (c) {
    case AddressClass::kPublic:
      return "public";
    case AddressClass::kUnspecified:
      return "unspecified";
    case AddressClass::kLoopback:
      return "loopback";
    case AddressClass::kPrivate:
      return "private";
    case AddressClass::kSharedCgnat:
      return "shared (carrier-grade NAT)";
    case AddressClass::kLinkLocal:
      return "link-local";
    case AddressClass::kUniqueLocal:
      return "unique local";
    case AddressClass::kMulticast:
      return "multicast";
    case AddressClass::kReserved:
      return "reserved";
    case AddressClass::kInvalid:
      break;
  }
  return "invalid";
}

AddressClass ClassifyIpv4(uint32_t a) {
  if (InNet(a, Ip(0, 0, 0, 0), 8)) return AddressClass::kUnspecified;
  if (InNet(a, Ip(127, 0, 0, 0), 8)) return AddressClass::kLoopback;
  if (InNet(a, Ip(10, 0, 0, 0), 8) || InNet(a, Ip(172, 16, 0, 0), 12) ||
      InNet(a, Ip(192, 168, 0, 0), 16)) {
    return AddressClass::kPrivate;
  }
  if (InNet(a, Ip(100, 64, 0, 0), 10)) return AddressClass::kSharedCgnat;
  if (InNet(a, Ip(169, 254, 0, 0), 16)) return AddressClass::kLinkLocal;
  if (InNet(a, Ip(224, 0, 0, 0), 4)) return AddressClass::kMulticast;
  if (InNet(a, Ip(192, 0, 0, 0), 24) ||     // IETF protocol assignments
      InNet(a, Ip(192, 0, 2, 0), 24) ||     // TEST-NET-1
      InNet(a, Ip(198, 18, 0, 0), 15) ||    // benchmarking
      InNet(a, Ip(198, 51, 100, 0), 24) ||  // TEST-NET-2
      InNet(a, Ip(203, 0, 113, 0), 24) ||   // TEST-NET-3
      InNet(a, Ip(240, 0, 0, 0), 4)) {      // reserved, broadcast
    return AddressClass::kReserved;
  }
  return AddressClass::kPublic;
}

AddressClass ClassifyIpv6(const unsigned char p[16]) {
  if (AllZero(p, 16)) return AddressClass::kUnspecified;
  if (AllZero(p, 15) && p[15] == 1) return AddressClass::kLoopback;
  // ::ffff:a.b.c.d (mapped) and ::a.b.c.d (compatible, deprecated).
  if (AllZero(p, 10) &&
      ((p[10] == 0xff && p[11] == 0xff) || (p[10] == 0 && p[11] == 0))) {
    return ClassifyIpv4(Ipv4At(p + 12));
  }
  // 64:ff9b::/96, the NAT64 well-known prefix.
  static const unsigned char kNat64[12] = {0, 0x64, 0xff, 0x9b};
  if (std::memcmp(p, kNat64, 12) == 0) return ClassifyIpv4(Ipv4At(p + 12));
  // 2002::/16, 6to4: the next 32 bits are an IPv4 address.
  if (p[0] == 0x20 && p[1] == 0x02) return ClassifyIpv4(Ipv4At(p + 2));
  if ((p[0] & 0xfe) == 0xfc) return AddressClass::kUniqueLocal;
  if (p[0] == 0xfe && (p[1] & 0xc0) == 0x80) return AddressClass::kLinkLocal;
  if (p[0] == 0xfe && (p[1] & 0xc0) == 0xc0) {
    return AddressClass::kUniqueLocal;  // deprecated site-local fec0::/10
  }
  if (p[0] == 0xff) return AddressClass::kMulticast;
  // 2001:db8::/32 documentation, 100::/64 discard.
  if ((p[0] == 0x20 && p[1] == 0x01 && p[2] == 0x0d && p[3] == 0xb8) ||
      (p[0] == 0x01 && p[1] == 0x00 && AllZero(p + 2, 6))) {
    return AddressClass::kReserved;
  }
  return AddressClass::kPublic;
}

AddressClass ClassifySockaddr(const struct sockaddr* address,
                              socklen_t length) {
  if (address == nullptr) return AddressClass::kInvalid;
  if (address->sa_family == AF_INET &&
      length >= static_cast<socklen_t>(sizeof(sockaddr_in))) {
    const auto* in = reinterpret_cast<const sockaddr_in*>(address);
    return ClassifyIpv4(ntohl(in->sin_addr.s_addr));
  }
  if (address->sa_family == AF_INET6 &&
      length >= static_cast<socklen_t>(sizeof(sockaddr_in6))) {
    const auto* in6 = reinterpret_cast<const sockaddr_in6*>(address);
    return ClassifyIpv6(in6->sin6_addr.s6_addr);
  }
  return AddressClass::kInvalid;
}

AddressClass ClassifyAddressText(absl::string_view text) {
  if (absl::ConsumePrefix(&text, "[") && !absl::ConsumeSuffix(&text, "]")) {
    return AddressClass::kInvalid;
  }
  const std::string s(text);
  in_addr v4{};
  if (inet_pton(AF_INET, s.c_str(), &v4) == 1) {
    return ClassifyIpv4(ntohl(v4.s_addr));
  }
  in6_addr v6{};
  if (inet_pton(AF_INET6, s.c_str(), &v6) == 1) return ClassifyIpv6(v6.s6_addr);
  return AddressClass::kInvalid;
}

std::string FormatSockaddr(const struct sockaddr* address, socklen_t length) {
  char buf[INET6_ADDRSTRLEN] = {0};
  if (address != nullptr && address->sa_family == AF_INET &&
      length >= static_cast<socklen_t>(sizeof(sockaddr_in))) {
    const auto* in = reinterpret_cast<const sockaddr_in*>(address);
    if (inet_ntop(AF_INET, &in->sin_addr, buf, sizeof(buf))) return buf;
  }
  if (address != nullptr && address->sa_family == AF_INET6 &&
      length >= static_cast<socklen_t>(sizeof(sockaddr_in6))) {
    const auto* in6 = reinterpret_cast<const sockaddr_in6*>(address);
    if (inet_ntop(AF_INET6, &in6->sin6_addr, buf, sizeof(buf))) return buf;
  }
  return "(unknown address)";
}

}  // namespace pggitops::internal
