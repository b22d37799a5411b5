// File: client_address.h
//
// Who is asking: the client address behind reverse proxies (CONTRACT
// section 3, TRUSTED_PROXIES) and whether a request comes from this host
// (section 8, protected mode; RATE_LIMIT_EXEMPT_LOOPBACK).
//
// Addresses are compared as 16-byte IPv6 addresses, IPv4 ones in their
// IPv4-mapped form (::ffff:a.b.c.d), so a peer that a dual-stack listener
// reports as ::ffff:127.0.0.1 matches the entry 127.0.0.1 and 127.0.0.0/8.
// An IPv6 entry that covers ::ffff:0:0/96 (such as ::/0) covers IPv4 too.
#ifndef PGGITOPS_SERVER_HTTP_CLIENT_ADDRESS_H_
#define PGGITOPS_SERVER_HTTP_CLIENT_ADDRESS_H_

#include <array>
#include <cstdint>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "httplib.h"

namespace pggitops::server {

// The TRUSTED_PROXIES set: addresses and CIDRs of the reverse proxies whose
// X-Forwarded-For is believed. Immutable once made; safe for concurrent use.
class TrustedProxies {
 public:
  // Trusts no one.
  TrustedProxies() = default;

  // Entries as TRUSTED_PROXIES takes them: "10.0.0.7", "10.0.0.0/8", "::1",
  // "fd00::/8". Bits of an address beyond its prefix are ignored
  // ("10.1.2.3/8" is 10.0.0.0/8). LoadConfig has checked the entries of a
  // Config already. Error: kInvalidArgument naming the first bad entry.
  static absl::StatusOr<TrustedProxies> Parse(
      const std::vector<std::string>& entries);

  // Whether `address` (an IPv4 or IPv6 literal) is in the set. An IPv6
  // zone ("fe80::1%eth0") is ignored; anything that is not an address is
  // not in the set.
  bool Contains(absl::string_view address) const;

  bool empty() const { return nets_.empty(); }

 private:
  // An address as 16 bytes (IPv4 as ::ffff:a.b.c.d) and how many leading
  // bits of it a member shares.
  struct Net {
    std::array<uint8_t, 16> base{};
    int prefix = 0;
  };
  std::vector<Net> nets_;
};

// The client address of `req`: the peer (req.remote_addr), unless the peer
// is a trusted proxy and the request carries X-Forwarded-For. Then the
// X-Forwarded-For hops (every such header, in order, joined by commas) are
// walked from right to left, skipping trusted addresses; the first untrusted
// hop is the client. When every hop is trusted it is the leftmost one. A
// hop that is not an IP address ends the walk: the client is then the last
// good hop (the peer or a trusted proxy), since nothing left of it can be
// believed. Empty hops (", ,") are skipped.
//
// The result is canonical (inet_ntop, lower case): ::ffff:a.b.c.d becomes
// a.b.c.d, an IPv6 zone is dropped. A peer that is not an IP address (a unix
// socket) is returned as it is.
std::string ClientAddress(const httplib::Request& req,
                          const TrustedProxies& trusted);

// The rate-limit bucket of a client address (canonical, as ClientAddress
// returns it): an IPv4 address as it is; an IPv6 address as its
// /`ipv6_prefix` network ("2001:db8:1:2::/64"), since one host holds a
// whole /64 and could otherwise rotate through fresh addresses. Anything
// else as it is.
std::string ClientBucket(absl::string_view address, int ipv6_prefix);

// Whether `address` is a loopback address: 127.0.0.0/8, ::1 or
// ::ffff:127.0.0.0/104. False for anything that is not an address.
bool IsLoopbackAddress(absl::string_view address);

// Whether `req` comes from a client on this host: the peer is loopback and
// the request carries none of X-Forwarded-For, Forwarded and X-Real-IP, so a
// reverse proxy on the same host is never taken for a local client
// (CONTRACT section 8). TRUSTED_PROXIES plays no part.
bool IsLoopbackClient(const httplib::Request& req);

}  // namespace pggitops::server

#endif  // PGGITOPS_SERVER_HTTP_CLIENT_ADDRESS_H_
