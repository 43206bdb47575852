#include <catch2/catch.hpp>

#include "parley/frame.h"

using parley::wire::encode_frame;
using parley::wire::FrameDecoder;

TEST_CASE("frames round-trip byte by byte and in bulk") {
  const std::string a = encode_frame("hello"), b = encode_frame(std::string(300, 'x'));
  REQUIRE(a.substr(0, 4) == std::string("\0\0\0\x05", 4));
  FrameDecoder bulk(1024);
  REQUIRE(bulk.feed(a + b).ok());
  REQUIRE(bulk.next() == "hello");
  REQUIRE(bulk.next() == std::string(300, 'x'));
  REQUIRE_FALSE(bulk.next());

  FrameDecoder drip(1024);
  for (char c : a + b) REQUIRE(drip.feed(std::string_view(&c, 1)).ok());
  REQUIRE(drip.next() == "hello");
  REQUIRE(drip.next()->size() == 300);
}

TEST_CASE("oversize and zero-length frames fail before buffering") {
  FrameDecoder d(1024);
  auto s = d.feed(std::string("\x00\x00\x04\x01", 4));
  REQUIRE_FALSE(s.ok());
  REQUIRE(s.error().code == "frame_too_large");
  REQUIRE(d.failed());
  REQUIRE(d.buffered_bytes() == 0);
  REQUIRE_FALSE(d.feed("more").ok());

  FrameDecoder z(1024);
  auto zs = z.feed(std::string(4, '\0'));
  REQUIRE(zs.error().code == "frame_too_large");  // spec/client-protocol.md §4
}

TEST_CASE("a frame of exactly the limit is accepted") {
  FrameDecoder d(16);
  REQUIRE(d.feed(encode_frame(std::string(16, 'a'))).ok());
  REQUIRE(d.next()->size() == 16);
}

TEST_CASE("the pre-authentication frame limit, then a raised one") {
  using namespace parley::wire;
  FrameDecoder d(kMaxPreauthFrame);
  REQUIRE(d.feed(encode_frame(std::string(kMaxPreauthFrame, 'x'))).ok());
  REQUIRE(d.next()->size() == kMaxPreauthFrame);
  d.set_max_frame(64 * 1024);
  REQUIRE(d.feed(encode_frame(std::string(20000, 'y'))).ok());
  REQUIRE(d.next()->size() == 20000);
  FrameDecoder before(kMaxPreauthFrame);
  const auto s = before.feed(encode_frame(std::string(kMaxPreauthFrame + 1, 'x')).substr(0, 4));
  REQUIRE(s.error().code == "frame_too_large");
  REQUIRE(before.buffered_bytes() == 0);
}
