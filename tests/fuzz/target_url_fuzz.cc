// libFuzzer target: the webhook target address policy (CONTRACT section 6):
// CheckWebhookTargetHost (pggitops/delivery_queue.h), which refuses a
// private, loopback or link-local literal host at create and update, and the
// classification behind it (libpggitops/delivery/address_policy.h), which
// the transport applies at connect time. Invariants:
//   - with private targets allowed every URL passes;
//   - an IPv4 address gets the same verdict as ClassifyIpv4 gives it, in
//     every spelling a client may use: dotted, decimal, hex, trailing dot,
//     IPv4-mapped and NAT64 IPv6, with userinfo, port, path, any case;
//   - any other host gets the same verdict with or without userinfo, port,
//     path, query, fragment, upper case and a trailing dot;
//   - a textual address and the socket address it parses to classify
//     alike, and so does the text FormatSockaddr gives back.
// Input: 4 bytes of an IPv4 address, then a host name. Seeds:
// tests/fuzz/target_url/. See docs/TESTING.md.
#include <arpa/inet.h>
#include <netinet/in.h>

#include <cstddef>
#include <cstdint>
#include <string>

#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "libpggitops/delivery/address_policy.h"
#include "pggitops/delivery_queue.h"
#include "tests/fuzz/fuzz_util.h"

using pggitops::fuzz::Bytes;
using pggitops::fuzz::Require;
namespace in = pggitops::internal;

namespace {

bool Allowed(const std::string& url) {
  Require(pggitops::CheckWebhookTargetHost(url, true).ok(),
          "a URL refused with private targets allowed");
  return pggitops::CheckWebhookTargetHost(url, false).ok();
}

// The verdict for `host` in many URLs; all must agree.
bool Verdict(const std::string& host) {
  const bool v = Allowed(absl::StrCat("http://", host, "/"));
  const std::string variants[] = {
      absl::StrCat("https://", host),
      absl::StrCat("https://", host, ":8443/hook?x=1#f"),
      absl::StrCat("http://user:p%40ss@", host, "/a/b"),
      absl::StrCat("HTTPS://", absl::AsciiStrToUpper(host), "?q"),
      absl::StrCat("http://a@b@", host, ":80#frag"),
  };
  for (const std::string& url : variants) {
    if (Allowed(url) != v) {
      std::fprintf(stderr, "host %s: %s differs\n", host.c_str(), url.c_str());
      Require(false, "a host's verdict depends on the rest of its URL");
    }
  }
  return v;
}

void CheckIpv4(uint32_t a) {
  const bool expected =
      in::AddressAllowed(in::ClassifyIpv4(a), /*allow_private_targets=*/false);
  const std::string dotted = absl::StrFormat(
      "%d.%d.%d.%d", a >> 24, (a >> 16) & 255, (a >> 8) & 255, a & 255);
  const std::string spellings[] = {
      dotted,
      dotted + ".",
      absl::StrCat(a),
      absl::StrFormat("0x%x", a),
      absl::StrFormat("%d.%d", a >> 24, a & 0xffffff),
      "[::ffff:" + dotted + "]",
      "[64:ff9b::" + dotted + "]",
  };
  for (const std::string& host : spellings) {
    if (Verdict(host) != expected) {
      std::fprintf(stderr, "%s: expected %s\n", host.c_str(),
                   expected ? "allowed" : "refused");
      Require(false, "a spelling of an IPv4 address changes its verdict");
    }
  }
}

void CheckText(const std::string& text) {
  const in::AddressClass c = in::ClassifyAddressText(text);
  sockaddr_in v4{};
  sockaddr_in6 v6{};
  const sockaddr* sa = nullptr;
  socklen_t len = 0;
  if (inet_pton(AF_INET, text.c_str(), &v4.sin_addr) == 1) {
    v4.sin_family = AF_INET;
    sa = reinterpret_cast<const sockaddr*>(&v4);
    len = sizeof(v4);
  } else if (inet_pton(AF_INET6, text.c_str(), &v6.sin6_addr) == 1) {
    v6.sin6_family = AF_INET6;
    sa = reinterpret_cast<const sockaddr*>(&v6);
    len = sizeof(v6);
  }
  if (text.find('\0') != std::string::npos) return;  // C strings end there
  if (sa == nullptr) {
    Require(c == in::AddressClass::kInvalid || text.front() == '[',
            "text inet_pton refuses was classified");
    return;
  }
  Require(in::ClassifySockaddr(sa, len) == c,
          "text and socket address classify differently");
  Require(in::ClassifyAddressText(in::FormatSockaddr(sa, len)) == c,
          "FormatSockaddr's text classifies differently");
  Require(in::ClassifyAddressText("[" + text + "]") == c,
          "brackets change the class");
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  Bytes bytes(data, size);
  uint32_t a = 0;
  for (int i = 0; i < 4; ++i) a = a << 8 | bytes.Byte();
  CheckIpv4(a);
  const std::string host = bytes.Rest();
  if (!host.empty()) CheckText(host);
  // A host as a URL carries it: no characters that end the authority or
  // belong to the userinfo, port or an IPv6 literal.
  if (host.empty() || host.find_first_of("/?#@:[]\\%") != std::string::npos) {
    return 0;
  }
  for (char c : host) {
    if (static_cast<unsigned char>(c) <= 0x20 || c == 0x7f) return 0;
  }
  Verdict(host);
  return 0;
}
