// The SSRF rule of CONTRACT section 6: which resolved addresses a webhook
// delivery may connect to. The transport applies it at connect time (libcurl's
// open-socket callback), so DNS rebinding cannot slip a private address past a
// check made on the name.
#ifndef PGGITOPS_LIBPGGITOPS_DELIVERY_ADDRESS_POLICY_H_
#define PGGITOPS_LIBPGGITOPS_DELIVERY_ADDRESS_POLICY_H_

#include <sys/socket.h>

#include <string>

#include "absl/strings/string_view.h"

namespace pggitops::internal {

// What an IP address is, as far as delivery is concerned. Only kPublic is
// reachable when private targets are not allowed.
enum class AddressClass {
  kPublic,
  kUnspecified,  // 0.0.0.0/8, ::
  kLoopback,     // 127.0.0.0/8, ::1
  kPrivate,      // 10/8, 172.16/12, 192.168/16
  kSharedCgnat,  // 100.64/10 (carrier-grade NAT)
  kLinkLocal,    // 169.254/16 (cloud metadata lives here), fe80::/10
  kUniqueLocal,  // fc00::/7
  kMulticast,    // 224/4, ff00::/8
  kReserved,     // 192.0.0/24, 198.18/15, test nets, 240/4, broadcast, ...
  kInvalid,      // not an IPv4 or IPv6 address
};

// A short name for messages: "public", "loopback", "private", ...
const char* AddressClassName(AddressClass c);

// Classifies an IPv4 address given in host byte order.
AddressClass ClassifyIpv4(uint32_t address);
// Classifies a 16-byte IPv6 address. IPv4-mapped (::ffff:a.b.c.d),
// IPv4-compatible (::a.b.c.d), NAT64 (64:ff9b::/96) and 6to4 (2002::/16)
// addresses are judged by the IPv4 address they carry.
AddressClass ClassifyIpv6(const unsigned char address[16]);
// Classifies a socket address (AF_INET or AF_INET6; anything else is
// kInvalid).
AddressClass ClassifySockaddr(const struct sockaddr* address, socklen_t length);
// Classifies a textual address ("10.0.0.1", "::1", "[::1]"); kInvalid when
// it does not parse.
AddressClass ClassifyAddressText(absl::string_view text);

// The numeric form of a socket address ("10.0.0.1", "::1"), for messages.
std::string FormatSockaddr(const struct sockaddr* address, socklen_t length);

// True when a delivery may connect to an address of class `c`.
inline bool AddressAllowed(AddressClass c, bool allow_private_targets) {
  if (c == AddressClass::kPublic) return true;
  return allow_private_targets && c != AddressClass::kInvalid;
}

}  // namespace pggitops::internal

#endif  // PGGITOPS_LIBPGGITOPS_DELIVERY_ADDRESS_POLICY_H_
