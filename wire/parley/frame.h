// Framing for the client protocol (spec/client-protocol.md, "Framing"): every frame is a 4-byte
// big-endian payload length followed by that many payload bytes. A FrameDecoder turns an
// arbitrary byte stream into payloads and refuses zero-length or oversize frames before buffering
// them, so a peer can never make it allocate more than max_frame bytes plus one read.
// Not thread-safe; one decoder per connection.
#pragma once

#include <cstddef>
#include <cstdint>
#include <deque>
#include <optional>
#include <string>
#include <string_view>

#include "parley/result.h"

namespace parley::wire {

inline constexpr std::size_t kFrameHeaderBytes = 4;
inline constexpr std::size_t kDefaultMaxFrame = 256 * 1024;
// The largest frame a client may send before it has authenticated (a login is small), so an
// unauthenticated connection can make the node hold little (spec/client-protocol.md §1).
inline constexpr std::size_t kMaxPreauthFrame = 8 * 1024;

// Returns the 4-byte header followed by `payload`.
std::string encode_frame(std::string_view payload);

class FrameDecoder {
 public:
  explicit FrameDecoder(std::size_t max_frame = kDefaultMaxFrame) : max_frame_(max_frame) {}

  // A new limit for frames whose header has not been read yet (login raises it).
  void set_max_frame(std::size_t max_frame) { max_frame_ = max_frame; }
  std::size_t max_frame() const { return max_frame_; }

  // Consumes bytes. After an error the decoder stays failed: the connection must be closed.
  Status feed(std::string_view bytes);
  // The next complete payload, in arrival order.
  std::optional<std::string> next();
  bool failed() const { return failed_; }
  std::size_t buffered_bytes() const { return partial_.size(); }

 private:
  std::size_t max_frame_;
  std::string partial_;
  std::optional<std::uint32_t> expected_;
  std::deque<std::string> ready_;
  bool failed_ = false;
};

}  // namespace parley::wire
