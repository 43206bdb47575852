// The node's federation peers (table `peers`, spec/federation.md "Peers"): a static entry has a
// name, a base URL and optionally a pinned public key; a denied peer is refused whatever its key.
// Also reports each peer's outbound queue. Runs on the thread that owns the Database.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "parley/result.h"
#include "parley/store/database.h"

namespace parley::federation {

struct Peer {
  std::string name;
  std::string url;                 // base URL; empty until discovered
  std::int64_t discovered_ms = 0;  // 0: static entry (peer add); else when url was discovered
  std::string public_key;          // raw 32 bytes; empty until pinned (first use)
  std::string state;               // allowed | denied
  // Set by the admin's `peer add` / `peer allow`; rows the node makes itself (a destination a
  // user wrote to, a discovered URL) are unlisted. Under federation.policy = "allowlist" only
  // listed peers federate (spec/federation.md section 3).
  bool listed = false;
  std::int64_t added_ms = 0;
  std::int64_t last_success_ms = 0;
  std::string last_error;
  std::int64_t failures = 0;
  std::int64_t next_attempt_ms = 0;
  std::int64_t queued = 0;
  std::int64_t oldest_queued_ms = 0;
};

class PeerStore {
 public:
  explicit PeerStore(store::Database& db) : db_(db) {}
  // Adds or updates a static entry and lists it. `public_key` raw (may be empty). "bad_request" on
  // a bad URL.
  Status add(const std::string& name, const std::string& url, const std::string& public_key,
             std::int64_t now_ms);
  Status remove(const std::string& name);
  // `allowed` also lists the peer (the admin's choice); `denied` leaves `listed` as it was.
  Status set_state(const std::string& name, const std::string& state, std::int64_t now_ms);
  Status pin_key(const std::string& name, const std::string& public_key);
  Result<std::optional<Peer>> get(const std::string& name);
  Result<std::vector<Peer>> list();

 private:
  store::Database& db_;
};

}  // namespace parley::federation
