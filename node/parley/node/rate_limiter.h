// Fixed-window failure counters keyed by a string (an address or a source IP). Used to slow down
// password guessing: once a key has `limit` failures inside a window, callers refuse attempts
// until the window ends. Memory is bounded: old windows are dropped as new keys arrive.
// Not thread-safe (lives on the core thread).
#pragma once

#include <cstdint>
#include <string>
#include <unordered_map>

namespace parley::node {

class RateLimiter {
 public:
  RateLimiter(std::uint32_t limit, std::int64_t window_ms, std::size_t max_keys = 100000)
      : limit_(limit), window_ms_(window_ms), max_keys_(max_keys) {}

  // Milliseconds until `key` may try again; 0 when it may try now.
  std::int64_t blocked_for(const std::string& key, std::int64_t now_ms) const {
    const auto it = windows_.find(key);
    if (it == windows_.end() || now_ms - it->second.start >= window_ms_) return 0;
    if (it->second.count < limit_) return 0;
    return it->second.start + window_ms_ - now_ms;
  }

  // Counts one failure (or an attempt reserved before its outcome is known); returns the start
  // of the window it was counted in, for give_back.
  std::int64_t record_failure(const std::string& key, std::int64_t now_ms) {
    if (windows_.size() >= max_keys_) prune(now_ms);
    auto& w = windows_[key];
    if (now_ms - w.start >= window_ms_) w = Window{now_ms, 0};
    ++w.count;
    return w.start;
  }

  // Takes back one count made by record_failure in the window that started at `window_start`
  // (the attempt succeeded). Nothing when that window has ended meanwhile.
  void give_back(const std::string& key, std::int64_t window_start) {
    const auto it = windows_.find(key);
    if (it == windows_.end() || it->second.start != window_start || it->second.count == 0) return;
    --it->second.count;
  }

  std::size_t size() const { return windows_.size(); }

  // New limits (a configuration reload); counts so far are kept.
  void set_limits(std::uint32_t limit, std::int64_t window_ms) {
    limit_ = limit;
    window_ms_ = window_ms;
  }

 private:
  struct Window {
    std::int64_t start = 0;
    std::uint32_t count = 0;
  };
  void prune(std::int64_t now_ms) {
    for (auto it = windows_.begin(); it != windows_.end();) {
      it = (now_ms - it->second.start >= window_ms_) ? windows_.erase(it) : std::next(it);
    }
    if (windows_.size() >= max_keys_) windows_.clear();  // under attack: forget, stay bounded
  }
  std::uint32_t limit_;
  std::int64_t window_ms_;
  std::size_t max_keys_;
  std::unordered_map<std::string, Window> windows_;
};

}  // namespace parley::node
