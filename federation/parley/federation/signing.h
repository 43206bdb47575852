// Signed federation requests (spec/federation.md, "Request signatures").
//
// Every node-to-node HTTP request carries an Authorization header
//   Parley-Sig v=1,origin=<name>,dest=<name>,ts=<ms>,nonce=<b64u 16
//   bytes>,key=<ed25519:…>,sig=<b64u>
// whose Ed25519 signature covers the exact method, path, origin, destination, timestamp, nonce and
// the SHA-256 of the exact body bytes. The receiver checks the destination is itself, the
// timestamp is inside its window, the key belongs to the origin at that time, the signature, and
// that the (origin, nonce) pair was not seen before. Pure functions plus a bounded replay guard;
// no I/O.
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <mutex>
#include <optional>
#include <set>
#include <string>
#include <string_view>

#include "parley/crypto/sign.h"
#include "parley/result.h"

namespace parley::federation {

struct RequestSignature {
  std::string origin;
  std::string destination;
  std::int64_t ts_ms = 0;
  std::string nonce;       // 16 raw bytes
  std::string public_key;  // 32 raw bytes
  std::string signature;   // 64 raw bytes
};

// The exact bytes that are signed.
std::string signing_input(std::string_view method, std::string_view path, std::string_view origin,
                          std::string_view destination, std::int64_t ts_ms, std::string_view nonce,
                          std::string_view body);

// Signs a request and returns the Authorization header value. `nonce` must be 16 random bytes.
std::string sign_request(const crypto::SigningKey& key, std::string_view method,
                         std::string_view path, std::string_view origin,
                         std::string_view destination, std::int64_t ts_ms, std::string_view nonce,
                         std::string_view body);

// Parses an Authorization header value; "malformed_signature" on anything unexpected.
Result<RequestSignature> parse_authorization(std::string_view header);

// Which keys an origin node had: answers whether `public_key` was a key of `origin` at `ts_ms`.
// Implemented over pinned peers and fetched key documents by the node.
using KeyCheck = std::function<Status(const std::string& origin, const std::string& public_key,
                                      std::int64_t ts_ms)>;

// Remembers (origin, nonce) pairs for twice the timestamp window; bounded in memory. Thread-safe.
class ReplayGuard {
 public:
  explicit ReplayGuard(std::int64_t window_ms, std::size_t max_entries = 1'000'000)
      : window_ms_(window_ms), max_entries_(max_entries) {}
  // false when the pair was seen already (a replay) or the guard is full of live entries.
  bool first_use(const std::string& origin, const std::string& nonce, std::int64_t now_ms);
  std::size_t size() const {
    std::lock_guard<std::mutex> lock(mu_);
    return seen_.size();
  }

 private:
  mutable std::mutex mu_;
  std::int64_t window_ms_;
  std::size_t max_entries_;
  std::set<std::pair<std::string, std::string>> seen_;
  std::multimap<std::int64_t, std::pair<std::string, std::string>> expiry_;
};

struct VerifyOptions {
  std::string self_name;  // this node: the only acceptable destination
  std::int64_t now_ms = 0;
  std::int64_t window_ms = 300'000;  // accepted clock skew each way
};

// Verifies a signed request, in this order (HTTP status in spec/federation.md):
// malformed_signature, wrong_destination, stale_timestamp, bad_signature (under the presented
// key), then `keys` (unknown_key, ...), replayed. `keys` runs only for a request whose
// signature verified.
Result<RequestSignature> verify_request(std::string_view authorization, std::string_view method,
                                        std::string_view path, std::string_view body,
                                        const VerifyOptions& options, const KeyCheck& keys,
                                        ReplayGuard& replay);

}  // namespace parley::federation
