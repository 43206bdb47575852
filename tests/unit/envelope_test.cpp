// The end-to-end bodies of client/envelope.h (spec/crypto.md sections 8 and 8a): a group body is a
// sender-key message with an optional distribution, or, without the message, a key handover that
// carries only a distribution; anything else is refused.
#include <catch2/catch.hpp>

#include "parley/client/envelope.h"
#include "parley/message.h"

using parley::client::Envelope;
using parley::client::GroupBody;

namespace {

Envelope one_entry() {
  Envelope e;
  e.sender_device = 7;
  e.entries.push_back({"cat@c.example", 3, std::string(52, 'h'), "ciphertext", ""});
  return e;
}

}  // namespace

TEST_CASE("group body: message, message with a distribution, key handover") {
  GroupBody plain;
  plain.sender_device = 7;
  plain.message = "PSK1-sender-key-message";
  auto back = GroupBody::decode(plain.encode());
  REQUIRE(back.ok());
  CHECK((back->message == plain.message && !back->dist));

  GroupBody with = plain;
  with.dist = one_entry();
  back = GroupBody::decode(with.encode());
  REQUIRE(back.ok());
  CHECK(back->dist->entries.at(0).user == "cat@c.example");

  GroupBody handover;  // no sender-key message: only the chain for the devices named
  handover.sender_device = 7;
  handover.dist = one_entry();
  const std::string bytes = handover.encode();
  auto h = parley::wire::Message::parse(bytes);
  REQUIRE(h.ok());
  CHECK_FALSE(h->root().has("sk"));
  back = GroupBody::decode(bytes);
  REQUIRE(back.ok());
  CHECK(back->message.empty());
  CHECK(back->dist->entries.size() == 1);
  CHECK(back->encode() == bytes);
}

TEST_CASE("group body: neither a message nor a distribution to give is refused") {
  parley::wire::MapWriter nothing;
  nothing.add("v", 2).add("sd", std::uint64_t{7});
  CHECK(GroupBody::decode(nothing.finish()).error().code == "bad_request");

  GroupBody empty_dist;
  empty_dist.sender_device = 7;
  empty_dist.dist = Envelope{};
  CHECK(GroupBody::decode(empty_dist.encode()).error().code == "bad_request");

  parley::wire::MapWriter empty_sk;
  empty_sk.add("v", 2).add("sd", std::uint64_t{7}).add_bin("sk", "");
  CHECK(GroupBody::decode(empty_sk.finish()).error().code == "bad_request");
}
