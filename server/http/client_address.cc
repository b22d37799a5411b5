#include "server/http/client_address.h"

#include <arpa/inet.h>
#include <netinet/in.h>

#include <algorithm>
#include <cstring>
#include <optional>

#include "absl/strings/ascii.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"

namespace pggitops::server {
namespace {

using Ip = std::array<uint8_t, 16>;

constexpr uint8_t kMappedPrefix[12] = {0, 0, 0, 0, 0,    0,
                                       0, 0, 0, 0, 0xff, 0xff};

bool IsMapped(const Ip& ip) {
  return std::memcmp(ip.data(), kMappedPrefix, sizeof(kMappedPrefix)) == 0;
}

// Parses an IPv4 or IPv6 literal; IPv4 comes back as ::ffff:a.b.c.d and
// `*v4` (when given) says which family it was written in.
std::optional<Ip> ParseIp(absl::string_view text, bool* v4 = nullptr) {
  std::string s(text);
  Ip ip{};
  if (inet_pton(AF_INET, s.c_str(), ip.data() + 12) == 1) {
    std::memcpy(ip.data(), kMappedPrefix, sizeof(kMappedPrefix));
    if (v4 != nullptr) *v4 = true;
    return ip;
  }
  size_t zone = s.find('%');
  if (zone != std::string::npos && s.find(':') < zone) s.resize(zone);
  if (inet_pton(AF_INET6, s.c_str(), ip.data()) == 1) {
    if (v4 != nullptr) *v4 = false;
    return ip;
  }
  return std::nullopt;
}

std::string FormatIp(const Ip& ip) {
  char buf[INET6_ADDRSTRLEN] = {};
  if (IsMapped(ip)) {
    inet_ntop(AF_INET, ip.data() + 12, buf, sizeof(buf));
  } else {
    inet_ntop(AF_INET6, ip.data(), buf, sizeof(buf));
  }
  return buf;
}

// Whether the first `prefix` bits of `a` and `b` are equal.
bool SamePrefix(const Ip& a, const Ip& b, int prefix) {
  int whole = prefix / 8;
  if (std::memcmp(a.data(), b.data(), static_cast<size_t>(whole)) != 0) {
    return false;
  }
  int rest = prefix % 8;
  if (rest == 0) return true;
  auto mask = static_cast<uint8_t>(0xff << (8 - rest));
  return (a[whole] & mask) == (b[whole] & mask);
}

}  // namespace

absl::StatusOr<TrustedProxies> TrustedProxies::Parse(
    const std::vector<std::string>& entries) {
  TrustedProxies out;
  for (const std::string& entry : entries) {
    std::pair<absl::string_view, absl::string_view> parts =
        absl::StrSplit(entry, absl::MaxSplits('/', 1));
    bool v4 = false;
    std::optional<Ip> ip = ParseIp(parts.first, &v4);
    int bits = v4 ? 32 : 128;
    bool ok =
        ip.has_value() && parts.first.find('%') == absl::string_view::npos;
    if (ok && entry.find('/') != std::string::npos) {
      ok = !parts.second.empty() && parts.second.size() <= 3 &&
           absl::ascii_isdigit(static_cast<unsigned char>(parts.second[0])) &&
           absl::SimpleAtoi(parts.second, &bits) && bits >= 0 &&
           bits <= (v4 ? 32 : 128);
    }
    if (!ok) {
      return absl::InvalidArgumentError(absl::StrCat(
          "trusted proxy \"", entry, "\" is not an IPv4/IPv6 address or CIDR"));
    }
    Net net;
    net.prefix = v4 ? 96 + bits : bits;
    for (int i = 0; i < 16; ++i) {
      int keep = std::min(8, std::max(0, net.prefix - 8 * i));
      net.base[i] = static_cast<uint8_t>((*ip)[i] & (0xff00 >> keep));
    }
    out.nets_.push_back(net);
  }
  return out;
}

bool TrustedProxies::Contains(absl::string_view address) const {
  std::optional<Ip> ip = ParseIp(address);
  if (!ip.has_value()) return false;
  for (const Net& net : nets_) {
    if (SamePrefix(*ip, net.base, net.prefix)) return true;
  }
  return false;
}

std::string ClientAddress(const httplib::Request& req,
                          const TrustedProxies& trusted) {
  std::optional<Ip> peer = ParseIp(req.remote_addr);
  if (!peer.has_value()) return req.remote_addr;
  std::string client = FormatIp(*peer);
  size_t headers = req.get_header_value_count("X-Forwarded-For");
  if (headers == 0 || !trusted.Contains(client)) return client;
  std::vector<std::string> values;
  for (size_t i = 0; i < headers; ++i) {
    values.push_back(req.get_header_value("X-Forwarded-For", i));
  }
  const std::string joined = absl::StrJoin(values, ",");
  std::vector<absl::string_view> hops = absl::StrSplit(joined, ',');
  for (auto hop = hops.rbegin(); hop != hops.rend(); ++hop) {
    absl::string_view text = absl::StripAsciiWhitespace(*hop);
    if (text.empty()) continue;
    std::optional<Ip> ip = ParseIp(text);
    if (!ip.has_value()) break;  // nothing left of a bad hop is believed
    client = FormatIp(*ip);
    if (!trusted.Contains(client)) break;
  }
  return client;
}

std::string ClientBucket(absl::string_view address, int ipv6_prefix) {
  std::optional<Ip> ip = ParseIp(address);
  if (!ip.has_value() || IsMapped(*ip) || ipv6_prefix >= 128) {
    return std::string(address);
  }
  Ip net = *ip;
  for (int bit = std::max(0, ipv6_prefix); bit < 128; ++bit) {
    net[bit / 8] &= static_cast<uint8_t>(~(0x80 >> (bit % 8)));
  }
  return absl::StrCat(FormatIp(net), "/", ipv6_prefix);
}

bool IsLoopbackAddress(absl::string_view address) {
  std::optional<Ip> ip = ParseIp(address);
  if (!ip.has_value()) return false;
  if (IsMapped(*ip)) return (*ip)[12] == 127;
  static const Ip kLoopback6 = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1};
  return *ip == kLoopback6;
}

bool IsLoopbackClient(const httplib::Request& req) {
  return IsLoopbackAddress(req.remote_addr) &&
         !req.has_header("X-Forwarded-For") && !req.has_header("Forwarded") &&
         !req.has_header("X-Real-IP");
}

}  // namespace pggitops::server
