#include "parley/frame.h"

namespace parley::wire {

std::string encode_frame(std::string_view payload) {
  const auto n = static_cast<std::uint32_t>(payload.size());
  std::string out;
  out.reserve(kFrameHeaderBytes + payload.size());
  out.push_back(static_cast<char>((n >> 24) & 0xff));
  out.push_back(static_cast<char>((n >> 16) & 0xff));
  out.push_back(static_cast<char>((n >> 8) & 0xff));
  out.push_back(static_cast<char>(n & 0xff));
  out.append(payload);
  return out;
}

Status FrameDecoder::feed(std::string_view bytes) {
  if (failed_) return make_error("frame_too_large", "connection already failed framing");
  while (!bytes.empty()) {
    if (!expected_) {
      const std::size_t need = kFrameHeaderBytes - partial_.size();
      const std::size_t take = std::min(need, bytes.size());
      partial_.append(bytes.substr(0, take));
      bytes.remove_prefix(take);
      if (partial_.size() < kFrameHeaderBytes) break;
      const auto* h = reinterpret_cast<const unsigned char*>(partial_.data());
      const std::uint32_t len = (std::uint32_t{h[0]} << 24) | (std::uint32_t{h[1]} << 16) |
                                (std::uint32_t{h[2]} << 8) | std::uint32_t{h[3]};
      partial_.clear();
      if (len == 0) {  // spec/client-protocol.md §4: a length of 0 is frame_too_large
        failed_ = true;
        return make_error("frame_too_large", "zero-length frame");
      }
      if (len > max_frame_) {
        failed_ = true;
        return make_error("frame_too_large", "frame of " + std::to_string(len) +
                                                 " bytes exceeds the limit of " +
                                                 std::to_string(max_frame_));
      }
      expected_ = len;
      partial_.reserve(len);
    }
    const std::size_t need = *expected_ - partial_.size();
    const std::size_t take = std::min(need, bytes.size());
    partial_.append(bytes.substr(0, take));
    bytes.remove_prefix(take);
    if (partial_.size() == *expected_) {
      ready_.push_back(std::move(partial_));
      partial_ = std::string();
      expected_.reset();
    }
  }
  return ok_status();
}

std::optional<std::string> FrameDecoder::next() {
  if (ready_.empty()) return std::nullopt;
  std::string out = std::move(ready_.front());
  ready_.pop_front();
  return out;
}

}  // namespace parley::wire
