#include <catch2/catch.hpp>

#include "parley/frame.h"
#include "parley/message.h"

using namespace parley::wire;

TEST_CASE("spec test vector: the ping frame") {
  MapWriter w;
  w.add("t", "ping").add("id", 1);
  const std::string frame = encode_frame(w.finish());
  const std::string expected("\x00\x00\x00\x0c\x82\xa1t\xa4ping\xa2id\x01", 16);
  REQUIRE(frame == expected);
}

TEST_CASE("writer output parses back with typed access") {
  MapWriter inner;
  inner.add("x", "y");
  ArrayWriter arr;
  arr.push("a").push("b");
  MapWriter w;
  w.add("t", "send")
      .add("id", std::uint64_t{1} << 40)
      .add_bin("body", std::string("\0\1", 2))
      .add("on", true)
      .add("m", inner)
      .add("list", arr)
      .add("neg", -5);
  auto m = Message::parse(w.finish());
  REQUIRE(m.ok());
  REQUIRE(m->type() == "send");
  const View& v = m->root();
  REQUIRE(*v.uint("id") == (std::uint64_t{1} << 40));
  REQUIRE(*v.bin("body", 10) == std::string("\0\1", 2));
  REQUIRE(*v.boolean("on"));
  REQUIRE(*v.map("m")->str("x") == "y");
  REQUIRE(v.array("list")->size() == 2);
  REQUIRE(*(*v.array("list"))[1].as_str() == "b");
  REQUIRE(*v.sint("neg") == -5);
  REQUIRE(*v.str_or("missing", "dflt") == "dflt");
}

TEST_CASE("wrong types and missing fields name the field") {
  MapWriter w;
  w.add("t", "x").add("id", "not a number");
  auto m = Message::parse(w.finish());
  REQUIRE(m.ok());
  auto id = m->root().uint("id");
  REQUIRE_FALSE(id.ok());
  REQUIRE(id.error().code == "bad_request");
  REQUIRE(id.error().message.find("'id'") != std::string::npos);
  REQUIRE(m->root().str("nope").error().message.find("missing") != std::string::npos);
  REQUIRE_FALSE(m->root().uint_or("id", 3).ok());  // present with the wrong type is an error
  MapWriter big;
  big.add_bin("body", std::string(100, 'x'));
  auto b = Message::parse(big.finish());
  REQUIRE(b->root().bin("body", 99).error().code == "payload_too_large");
}

TEST_CASE("non-maps, trailing bytes, truncation and deep nesting are malformed") {
  REQUIRE(Message::parse("\x93\x01\x02\x03").error().code == "malformed_frame");
  MapWriter w;
  w.add("t", "ping");
  REQUIRE(Message::parse(w.finish() + "x").error().code == "malformed_frame");
  const std::string full = w.finish();
  REQUIRE(Message::parse(full.substr(0, full.size() - 1)).error().code == "malformed_frame");
  REQUIRE(Message::parse("\xc1").error().code == "malformed_frame");
  std::string deep;
  for (int i = 0; i < 20; ++i) deep += "\x81\xa1k";
  deep += "\x01";
  REQUIRE(Message::parse(deep).error().code == "malformed_frame");
  REQUIRE_FALSE(Message::parse("").ok());
}

TEST_CASE("merge_map appends another map's entries") {
  MapWriter extra;
  extra.add("a", 1).add("b", "two");
  MapWriter w;
  w.add("t", "ev");
  REQUIRE(w.merge_map(extra.finish()));
  REQUIRE_FALSE(w.merge_map("\x01"));
  auto m = Message::parse(w.finish());
  REQUIRE(m.ok());
  REQUIRE(*m->root().uint("a") == 1);
  REQUIRE(*m->root().str("b") == "two");
}
