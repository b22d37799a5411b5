// The libcurl multi transport behind NewHttpTransport(): every request on
// one thread, with caps overall and per endpoint, an overall deadline per
// attempt, and the address policy applied at connect time. The only libcurl
// user of the library.
#ifndef PGGITOPS_LIBPGGITOPS_DELIVERY_CURL_TRANSPORT_H_
#define PGGITOPS_LIBPGGITOPS_DELIVERY_CURL_TRANSPORT_H_

#include <memory>

#include "absl/status/statusor.h"
#include "pggitops/delivery_queue.h"

namespace pggitops::internal {

// Counters of a CurlTransport, for tests.
struct CurlTransportStats {
  int running = 0;               // transfers in progress
  int queued = 0;                // accepted, waiting for a slot
  int max_running = 0;           // most transfers ever running at once
  int64_t refused_connects = 0;  // sockets refused by the address policy
};

class CurlTransport : public WebhookTransport {
 public:
  static absl::StatusOr<std::unique_ptr<CurlTransport>> Create(
      const HttpTransportOptions& options);
  virtual CurlTransportStats Stats() const = 0;
};

}  // namespace pggitops::internal

#endif  // PGGITOPS_LIBPGGITOPS_DELIVERY_CURL_TRANSPORT_H_
