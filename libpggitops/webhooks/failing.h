// File: libpggitops/webhooks/failing.h
//
// IsFailing() (webhook_store.h) as SQL, for the statements that count or
// select failing webhooks: the webhooks health check, retry-pending and the
// dashboard. Both forms are defined in webhook_fields.cc, side by side.
#ifndef PGGITOPS_LIBPGGITOPS_WEBHOOKS_FAILING_H_
#define PGGITOPS_LIBPGGITOPS_WEBHOOKS_FAILING_H_

#include <string>

#include "absl/strings/string_view.h"

namespace pggitops::internal {

// A boolean SQL expression over the pggit.webhooks row named `alias` ("w"
// gives "w.status ..."; "" leaves the columns unqualified).
std::string FailingWebhookSql(absl::string_view alias = "");

}  // namespace pggitops::internal

#endif  // PGGITOPS_LIBPGGITOPS_WEBHOOKS_FAILING_H_
