// What e2e.cpp (keys, 1:1 messages, opening) and e2e_group.cpp (group sender keys and their
// handover) share: the E2e class's private record types and a few helpers. Not a public header.
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <map>
#include <optional>
#include <set>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "parley/client/e2e.h"
#include "parley/crypto/box.h"
#include "parley/crypto/group.h"
#include "parley/crypto/ratchet.h"
#include "parley/crypto/sign.h"
#include "parley/message.h"

namespace parley::client {

namespace e2e_detail {

inline std::int64_t now_ms() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

inline bool is_group(const std::string& conv) { return conv.rfind("g:", 0) == 0; }

// A group message's plaintext: the group id binds the ciphertext to its conversation.
inline std::string group_inner(const std::string& conv, const std::string& text) {
  wire::MapWriter m;
  m.add("group", conv).add_bin("text", text);
  return m.finish();
}

// Associated data of a group message: binds it to its group, author and sending device.
inline std::string group_ad(const std::string& conv, const std::string& author,
                            std::uint64_t device) {
  return "parley-group-v1\n" + conv + "\n" + author + "\n" + std::to_string(device);
}

// The unpadded inner map of an opened ciphertext, or why it is not one.
inline Result<wire::Message> inner_of(std::string_view padded) {
  auto unpadded = crypto::unpad_message(padded);
  if (!unpadded.ok()) return make_error("malformed", "malformed plaintext");
  auto in = wire::Message::parse(*unpadded);
  if (!in.ok()) return make_error("malformed", "malformed plaintext");
  return in;
}

struct DeviceKeys {
  crypto::SigningKey signing;
  crypto::DhKeyPair dh;
};

// Loads the device's keys (ensure_device_keys must have run).
inline Result<DeviceKeys> load_keys(
    const std::function<Result<std::string>(const std::string&)>& get) {
  PARLEY_ASSIGN_OR_RETURN(seed, get("device_seed"));
  PARLEY_ASSIGN_OR_RETURN(dh, get("device_dh"));
  PARLEY_ASSIGN_OR_RETURN(signing, crypto::SigningKey::from_seed(seed));
  PARLEY_ASSIGN_OR_RETURN(dh_pair, crypto::DhKeyPair::from_private(dh));
  return DeviceKeys{std::move(signing), std::move(dh_pair)};
}

}  // namespace e2e_detail

struct E2e::Listed {
  std::uint64_t device = 0;
  std::string signing_key, dh_key;
};

// This device: its keys, its node device id and its user's address.
struct E2e::Me {
  e2e_detail::DeviceKeys keys;
  std::uint64_t device = 0;
  std::string address;
};

// A round of directory questions (trusted_devices_of).
struct E2e::Lookup {
  std::set<std::string> claim;                   // asked with keys_claim instead of keys_query
  std::set<std::string> unanswered;              // out: no answer in time, or "unreachable"
  std::map<std::string, wire::Message> claimed;  // out: the keys_claim answers, by user
};

// What seal_for encrypts for whom, and who it could not reach.
struct E2e::SealJob {
  std::vector<std::pair<std::string, Listed>> targets;
  std::string padded;                                  // the plaintext for every target...
  std::map<std::string, std::string> padded_for_user;  // ...but these users' devices
  int wait_ms = 30000;  // for prekey claims: a node that does not answer by then is unreached
  std::set<std::string> no_claims;  // users whose node did not answer a moment ago: none sent
  std::map<std::string, wire::Message> claimed;  // bundles already claimed (Lookup::claimed)
  std::set<std::string> unreached;  // out: users whose claims got no answer (or "unreachable")
};

// One envelope entry addressed to this device, opened: the plaintext and the session state to
// save with the message, or why it could not be opened.
struct E2e::OpenedEntry {
  std::string why = "ok";
  bool defer = false;  // leave the message pending (the sender's identity change is not accepted)
  crypto::SecretBytes padded;
  std::optional<crypto::RatchetSession> session;
  std::string session_ek;
  bool new_session = false;
  std::int64_t used_otk = 0;
};

// A group message (or key handover) opened by open_group: what to save with it, in one profile
// transaction, by save_group.
struct E2e::OpenedGroup {
  std::string why = "ok";
  bool defer = false;     // stays pending (an identity change not accepted yet)
  bool handover = false;  // a key handover: no history entry
  std::string text;       // the plaintext, when why == "ok" and not a handover
  std::optional<OpenedEntry> pairwise;
  // The sender's chain to save: a new receiver (fresh = not held before), or one that advanced.
  std::optional<std::pair<std::string, crypto::SenderKeyReceiver>> receiver;
  bool fresh = false;
  std::string waiting_chain;  // a chain this device lacks: the message waits for it
};

}  // namespace parley::client
