// Fuzz target: the client gateway's parser of untrusted bytes — framing, then msgpack decoding
// of each frame and typed field access, exactly as a session does it.
#include <cstddef>
#include <cstdint>
#include <string_view>

#include "parley/frame.h"
#include "parley/message.h"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  // Starts at the pre-authentication limit and is raised after the first frame, as a session
  // does after its login.
  parley::wire::FrameDecoder decoder(parley::wire::kMaxPreauthFrame);
  const std::string_view bytes(reinterpret_cast<const char*>(data), size);
  // Feed in two uneven pieces to exercise partial headers and bodies.
  const std::size_t cut = size ? data[0] % (size + 1) : 0;
  for (std::string_view piece : {bytes.substr(0, cut), bytes.substr(cut)}) {
    if (!decoder.feed(piece).ok()) return 0;
    while (auto payload = decoder.next()) {
      decoder.set_max_frame(64 * 1024);
      auto m = parley::wire::Message::parse(*payload);
      if (!m.ok()) continue;
      const auto& v = m->root();
      (void)v.uint("id");
      (void)v.str("user");
      (void)v.bin("body", 1024);
      (void)v.boolean_or("on", false);
      if (auto arr = v.array("convs"); arr.ok()) {
        for (const auto& e : *arr) (void)e.as_str();
      }
      if (auto sub = v.map("m"); sub.ok()) (void)sub->str("x");
    }
  }
  return 0;
}
