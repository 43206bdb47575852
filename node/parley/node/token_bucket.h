// Per-key token buckets: the send rate limits of users (spec/client-protocol.md section 4). A
// key's bucket holds up to `burst` tokens and regains `per_minute` of them each minute, evenly; a
// request takes one token or is told how long to wait for the next. A key seen for the first time
// starts with a full bucket. Memory is bounded: buckets that have refilled completely (so are the
// same as new) are dropped once there are many.
// Not thread-safe: it lives on the core thread.
#pragma once

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <unordered_map>

namespace parley::node {

class TokenBuckets {
 public:
  struct Limit {
    std::uint32_t per_minute = 0;  // 0: unlimited
    std::uint32_t burst = 1;       // tokens a full bucket holds (at least 1)
  };

  explicit TokenBuckets(std::size_t max_keys = 100000) : max_keys_(max_keys) {}

  // Takes one token of `key` under `limit`. Returns 0 when taken, else the milliseconds until a
  // token will be there (nothing is taken then).
  std::int64_t take(std::int64_t key, const Limit& limit, std::int64_t now_ms) {
    if (limit.per_minute == 0) return 0;
    const double burst = std::max<std::uint32_t>(limit.burst, 1);
    const double per_ms = limit.per_minute / 60000.0;
    auto it = buckets_.find(key);
    if (it == buckets_.end()) {
      if (buckets_.size() >= max_keys_) prune(limit, now_ms);
      it = buckets_.emplace(key, Bucket{burst, now_ms}).first;
    }
    Bucket& b = it->second;
    if (now_ms > b.at_ms) {
      b.tokens = std::min(burst, b.tokens + static_cast<double>(now_ms - b.at_ms) * per_ms);
      b.at_ms = now_ms;
    }
    b.tokens = std::min(b.tokens, burst);  // a lowered limit applies at once
    if (b.tokens >= 1.0) {
      b.tokens -= 1.0;
      return 0;
    }
    return std::max<std::int64_t>(1,
                                  static_cast<std::int64_t>(std::ceil((1.0 - b.tokens) / per_ms)));
  }

  // Forgets a key (its user is gone); it would start full again.
  void forget(std::int64_t key) { buckets_.erase(key); }
  std::size_t size() const { return buckets_.size(); }

 private:
  struct Bucket {
    double tokens;
    std::int64_t at_ms;
  };
  // Drops the buckets that would be full by now under `limit` (the usual one); if that frees
  // nothing, drops them all: bounded memory matters more than a few extra messages.
  void prune(const Limit& limit, std::int64_t now_ms) {
    const double burst = std::max<std::uint32_t>(limit.burst, 1);
    const double per_ms = limit.per_minute / 60000.0;
    for (auto it = buckets_.begin(); it != buckets_.end();) {
      const double refilled =
          it->second.tokens + static_cast<double>(now_ms - it->second.at_ms) * per_ms;
      it = refilled >= burst ? buckets_.erase(it) : std::next(it);
    }
    if (buckets_.size() >= max_keys_) buckets_.clear();
  }

  std::size_t max_keys_;
  std::unordered_map<std::int64_t, Bucket> buckets_;
};

}  // namespace parley::node
