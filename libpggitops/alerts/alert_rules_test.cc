// The alert state rules and the checks AlertStore runs before any SQL.
#include "libpggitops/alerts/alert_rules.h"

#include <string>
#include <vector>

#include "doctest/doctest.h"
#include "pggitops/alert_store.h"

namespace pggitops {
namespace {

TEST_CASE("AlertTransitionAllowed: forward only") {
  CHECK(AlertTransitionAllowed("pending", "acknowledged"));
  CHECK(AlertTransitionAllowed("pending", "resolved"));
  CHECK(AlertTransitionAllowed("acknowledged", "resolved"));
  CHECK_FALSE(AlertTransitionAllowed("acknowledged", "acknowledged"));
  CHECK_FALSE(AlertTransitionAllowed("resolved", "acknowledged"));
  CHECK_FALSE(AlertTransitionAllowed("resolved", "resolved"));
  CHECK_FALSE(AlertTransitionAllowed("acknowledged", "pending"));
  CHECK_FALSE(AlertTransitionAllowed("resolved", "pending"));
  CHECK_FALSE(AlertTransitionAllowed("pending", "lost"));
}

TEST_CASE("AlertStatusesMovableTo: the rules as the statement's list") {
  CHECK(internal::AlertStatusesMovableTo("acknowledged") ==
        std::vector<std::string>{"pending"});
  CHECK(internal::AlertStatusesMovableTo("resolved") ==
        std::vector<std::string>{"pending", "acknowledged"});
  CHECK(internal::AlertStatusesMovableTo("pending").empty());
}

TEST_CASE("CheckAlertFilter names the field") {
  AlertFilter f;
  CHECK(internal::CheckAlertFilter(f).ok());
  f.status = "open";
  CHECK(internal::CheckAlertFilter(f).message().rfind("status:", 0) == 0);
  f = AlertFilter();
  f.severity = "info";
  CHECK(internal::CheckAlertFilter(f).message().rfind("severity:", 0) == 0);
  f = AlertFilter();
  f.operation_type = "";
  CHECK(internal::CheckAlertFilter(f).message().rfind("operation_type:", 0) ==
        0);
  f = AlertFilter();
  f.limit = 0;
  CHECK(internal::CheckAlertFilter(f).message().rfind("limit:", 0) == 0);
  f = AlertFilter();
  f.offset = -1;
  CHECK(internal::CheckAlertFilter(f).message().rfind("offset:", 0) == 0);
}

TEST_CASE("CheckAlertIds: 1 to kMaxAlertIdsPerCall") {
  CHECK(internal::CheckAlertIds({}).code() ==
        absl::StatusCode::kInvalidArgument);
  CHECK(internal::CheckAlertIds({1}).ok());
  CHECK(internal::CheckAlertIds(std::vector<int64_t>(kMaxAlertIdsPerCall, 1))
            .ok());
  CHECK_FALSE(
      internal::CheckAlertIds(std::vector<int64_t>(kMaxAlertIdsPerCall + 1, 1))
          .ok());
}

}  // namespace
}  // namespace pggitops
