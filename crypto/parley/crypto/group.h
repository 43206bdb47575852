// Sender keys for group messages (spec/crypto.md section 6): each member device has a sending
// chain whose distribution it sends to the other members over their pairwise sessions; group
// messages are encrypted once with the chain's next message key and signed with the chain's
// signing key. A member removal makes every remaining member start a new chain and distribute it
// to the remaining members only, so the removed member cannot read what follows.
#pragma once

#include <cstdint>
#include <deque>
#include <map>
#include <optional>
#include <string>
#include <string_view>

#include "parley/crypto/secret.h"
#include "parley/crypto/sign.h"
#include "parley/result.h"

namespace parley::crypto {

class SenderKeyChain {
 public:
  static SenderKeyChain create();
  // The secret that lets a member read this chain from the current iteration on. Send it only
  // inside a pairwise (ratchet) session.
  SecretBytes distribution() const;
  // "PSK1" || chain id (16) || u64(iteration) || AEAD ciphertext || Ed25519 signature (64).
  Result<std::string> encrypt(std::string_view plaintext, std::string_view associated_data);
  const std::string& chain_id() const { return chain_id_; }
  std::uint64_t iteration() const { return iteration_; }
  SecretBytes serialize() const;
  static Result<SenderKeyChain> deserialize(std::string_view bytes);

 private:
  SenderKeyChain() = default;
  std::string chain_id_;
  std::uint64_t iteration_ = 0;
  SecretBytes chain_key_;
  std::optional<SigningKey> signing_;
};

class SenderKeyReceiver {
 public:
  static Result<SenderKeyReceiver> from_distribution(std::string_view distribution);
  // Errors: "malformed", "unknown_chain" (another chain: e.g. one started after a rekey this
  // member did not receive), "bad_signature", "bad_ciphertext", "replayed", "too_many_skipped".
  // On error nothing changes.
  Result<SecretBytes> decrypt(std::string_view message, std::string_view associated_data);
  const std::string& chain_id() const { return chain_id_; }
  SecretBytes serialize() const;
  static Result<SenderKeyReceiver> deserialize(std::string_view bytes);

 private:
  SenderKeyReceiver() = default;
  std::string chain_id_;
  std::string signing_key_;
  std::uint64_t next_ = 0;  // the next iteration the chain key derives
  SecretBytes chain_key_;
  std::map<std::uint64_t, SecretBytes> skipped_;
};

// The chain id of a sender-key message, to pick the receiver; "malformed" if too short.
Result<std::string> sender_key_chain_of(std::string_view message);

}  // namespace parley::crypto
