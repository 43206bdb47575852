#include <catch2/catch.hpp>

#include "parley/frame.h"
#include "parley/message.h"
#include "parley/utf8.h"

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

// spec/client-protocol.md §1-2: keys are strings in every map, every str is UTF-8.
TEST_CASE("a map key that is not a string is malformed, at any depth") {
  // {1: "x"}
  auto top = Message::parse(std::string("\x81\x01\xa1x", 4));
  REQUIRE_FALSE(top.ok());
  REQUIRE(top.error().code == "malformed_frame");
  // {"t": "ping", "m": {true: 1}}
  auto nested = Message::parse(std::string("\x82\xa1t\xa4ping\xa1m\x81\xc3\x01", 12));
  REQUIRE_FALSE(nested.ok());
  REQUIRE(nested.error().code == "malformed_frame");
  // {"a": [{"k": 1}]} stays fine
  REQUIRE(Message::parse(std::string("\x81\xa1"
                                     "a\x91\x81\xa1k\x01",
                                     8))
              .ok());
}

TEST_CASE("a string that is not UTF-8 is malformed: value, key or inside an array") {
  for (const std::string& bad : {
           std::string("\xff"),              // never in UTF-8
           std::string("\xc0\xaf"),          // overlong '/'
           std::string("\xe0\x80\xaf"),      // overlong
           std::string("\xed\xa0\x80"),      // surrogate U+D800
           std::string("\xf4\x90\x80\x80"),  // above U+10FFFF
           std::string("ab\xc3"),            // truncated sequence
       }) {
    MapWriter value;
    value.add("t", "report").add("reason", bad);
    auto v = Message::parse(value.finish());
    REQUIRE_FALSE(v.ok());
    CHECK(v.error().code == "malformed_frame");
    MapWriter key;
    key.add(bad, "x");
    CHECK_FALSE(Message::parse(key.finish()).ok());
    ArrayWriter arr;
    arr.push("ok").push(bad);
    MapWriter in_array;
    in_array.add("list", arr);
    CHECK_FALSE(Message::parse(in_array.finish()).ok());
  }
  // Binary values carry any bytes.
  MapWriter bin;
  bin.add_bin("body", std::string("\xff\xfe", 2));
  REQUIRE(Message::parse(bin.finish()).ok());
}

TEST_CASE("well-formed UTF-8 of every length is accepted") {
  MapWriter w;
  w.add("t", "profile")
      .add("display_name", "A\xc3\xa9\xe2\x82\xac\xf0\x9f\x98\x80\xf4\x8f\xbf\xbf");
  auto m = Message::parse(w.finish());
  REQUIRE(m.ok());
  REQUIRE(*m->root().str("display_name") ==
          "A\xc3\xa9\xe2\x82\xac\xf0\x9f\x98\x80\xf4\x8f\xbf\xbf");
}

TEST_CASE("repair_utf8 keeps valid text and replaces each bad byte with U+FFFD") {
  REQUIRE(repair_utf8("caf\xc3\xa9") == "caf\xc3\xa9");
  REQUIRE(
      valid_utf8(repair_utf8("a\xff"
                             "b\xed\xa0\x80")));
  REQUIRE(repair_utf8("a\xff"
                      "b") ==
          "a\xef\xbf\xbd"
          "b");
  REQUIRE(repair_utf8("\xc3") == "\xef\xbf\xbd");
}
