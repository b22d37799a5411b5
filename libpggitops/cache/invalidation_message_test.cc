#include "libpggitops/cache/invalidation_message.h"

#include "doctest/doctest.h"

namespace pggitops::internal {
namespace {

TEST_CASE("Invalidation messages round-trip") {
  InvalidationMessage m;
  m.instance = "abc";
  m.kind = InvalidationMessage::Kind::kKeys;
  m.keys = {"webhooks:1", "alerts:list:\"q\""};
  auto back = DecodeInvalidation(EncodeInvalidation(m));
  REQUIRE(back.ok());
  CHECK(back->instance == "abc");
  CHECK(back->kind == InvalidationMessage::Kind::kKeys);
  CHECK(back->keys == m.keys);
  m.kind = InvalidationMessage::Kind::kPattern;
  m.pattern = "webhooks:*";
  back = DecodeInvalidation(EncodeInvalidation(m));
  REQUIRE(back.ok());
  CHECK(back->pattern == "webhooks:*");
  m.kind = InvalidationMessage::Kind::kAll;
  CHECK(EncodeInvalidation(m) == "{\"a\":true,\"i\":\"abc\"}");
  back = DecodeInvalidation(EncodeInvalidation(m));
  REQUIRE(back.ok());
  CHECK(back->kind == InvalidationMessage::Kind::kAll);
}

TEST_CASE("Malformed invalidation messages are refused") {
  for (const char* bad :
       {"", "nope", "[]", "{\"i\":\"x\"}", "{\"i\":1,\"a\":true}",
        "{\"i\":\"x\",\"p\":\"[bad\"}", "{\"i\":\"x\",\"k\":[1]}",
        "{\"i\":\"x\",\"k\":[\"\"]}", "{\"i\":\"x\",\"a\":false}",
        "{\"i\":\"x\",\"a\":true,\"p\":\"*\"}"}) {
    CHECK_MESSAGE(!DecodeInvalidation(bad).ok(), bad);
  }
}

}  // namespace
}  // namespace pggitops::internal
