#include <catch2/catch.hpp>

#include "parley/address.h"

using namespace parley::wire;

TEST_CASE("addresses are lower-cased and validated") {
  auto a = parse_address("Alice@Example.ORG");
  REQUIRE(a.ok());
  REQUIRE(a->str() == "alice@example.org");
  for (const char* bad :
       {"alice", "@example.org", "alice@", "a@b@c", "al ice@example.org", "_alice@example.org",
        "alice@exa_mple.org", "alice@example..org", "alice@example.org."}) {
    INFO(bad);
    REQUIRE_FALSE(parse_address(bad).ok());
  }
  REQUIRE_FALSE(validate_local_part(std::string(65, 'a')).ok());
  REQUIRE(validate_local_part(std::string(64, 'a')).ok());
}

TEST_CASE("spec test vector: 1:1 conversation id") {
  const std::string id = dm_conversation_id("alice@example.org", "bob@example.org");
  REQUIRE(id == "dm:03325576314ecdc6900e659e09c2c6ff");
  REQUIRE(dm_conversation_id("BOB@example.org", "alice@example.org") == id);
}
