// End-to-end sessions between two devices (spec/crypto.md sections 3-5): X3DH key agreement,
// the Double Ratchet, and length-hiding padding. Pure computation over libsodium; the caller
// stores a session's serialized state in the same transaction as the message it produced or
// consumed, so a crash never leaves the two out of step.
#pragma once

#include <cstdint>
#include <deque>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <utility>

#include "parley/crypto/box.h"
#include "parley/crypto/secret.h"
#include "parley/result.h"

namespace parley::crypto {

// ---- X3DH -----------------------------------------------------------------------------------

// What the initiator learned about one responder device (signatures already checked).
struct PrekeyBundle {
  std::string identity_dh;                     // the device's long-term X25519 public key
  std::string signed_prekey;                   // X25519 public key
  std::optional<std::string> one_time_prekey;  // X25519 public key, when one was claimed
};

struct X3dhStart {
  SecretBytes shared_secret;     // SK, 32 bytes
  std::string associated_data;   // AD = identity_dh(initiator) || identity_dh(responder)
  std::string ephemeral_public;  // EK_A, sent in the first message
};

// The bytes a device signs to publish a signed prekey: "parley-signed-prekey-v1\n" || id (8
// bytes big-endian) || public key.
std::string signed_prekey_input(std::uint64_t id, std::string_view public_key);

Result<X3dhStart> x3dh_initiate(const DhKeyPair& my_identity, const PrekeyBundle& their_bundle);
// The responder's side: the same SK and AD from the initiator's identity and ephemeral keys.
Result<X3dhStart> x3dh_respond(const DhKeyPair& my_identity, const DhKeyPair& my_signed_prekey,
                               const DhKeyPair* my_one_time_prekey,
                               std::string_view their_identity_dh,
                               std::string_view their_ephemeral);

// ---- Double Ratchet ---------------------------------------------------------------------------

constexpr std::uint32_t kMaxSkipPerChain = 1000;  // message keys skipped in one receiving chain
constexpr std::size_t kMaxSkippedKeys = 2000;     // kept in total, oldest dropped first
constexpr std::size_t kRetiredKeys = 32;          // their earlier ratchet keys remembered

class RatchetSession {
 public:
  // Initiator, right after x3dh_initiate: the responder's signed prekey is its first ratchet key.
  static Result<RatchetSession> initiator(const X3dhStart& start,
                                          std::string_view their_signed_prekey);
  // Responder, right after x3dh_respond: its signed prekey pair is its first ratchet key.
  static RatchetSession responder(const X3dhStart& start, const DhKeyPair& my_signed_prekey);

  struct Sealed {
    std::string header;      // canonical bytes (spec/crypto.md section 4.2)
    std::string ciphertext;  // XChaCha20-Poly1305 ciphertext and tag
  };
  Result<Sealed> encrypt(std::string_view plaintext);
  // On any error the session is left exactly as it was. Errors: "malformed_header",
  // "bad_ciphertext" (tampered, wrong session), "replayed" (a message key already used),
  // "too_many_skipped" (more than kMaxSkipPerChain messages missing).
  Result<SecretBytes> decrypt(std::string_view header, std::string_view ciphertext);

  // The whole state, secrets included, for the caller's store; and back.
  SecretBytes serialize() const;
  static Result<RatchetSession> deserialize(std::string_view bytes);

  std::size_t skipped_keys() const { return skipped_.size(); }

 private:
  RatchetSession() = default;
  Status dh_ratchet(std::string_view their_public);
  Status skip_until(std::uint64_t until);

  SecretBytes root_key_;
  std::optional<DhKeyPair> sending_dh_;
  std::string receiving_dh_;     // empty until the first message is received (responder)
  SecretBytes sending_chain_;    // empty until there is one
  SecretBytes receiving_chain_;  // empty until there is one
  std::uint64_t sent_ = 0, received_ = 0, previous_sent_ = 0;
  std::string associated_data_;
  // (their ratchet public key, message number) -> message key, and their insertion order.
  std::map<std::pair<std::string, std::uint64_t>, SecretBytes> skipped_;
  std::deque<std::pair<std::string, std::uint64_t>> skipped_order_;
  std::deque<std::string> retired_dh_;  // their ratchet keys before the current one
};

// ---- Key derivation (spec/crypto.md section 4.1), exposed for the spec's test vectors ---------

// KDF_RK: HKDF-SHA256(ikm = dh_output, salt = root_key, info = "parley-ratchet-root-v1", 64) split
// into (new root key, chain key).
Result<std::pair<SecretBytes, SecretBytes>> ratchet_kdf_root(const SecretBytes& root_key,
                                                             const SecretBytes& dh_output);
// KDF_CK: (HMAC-SHA256(chain_key, 0x02), HMAC-SHA256(chain_key, 0x01)) = (next chain key,
// message key).
std::pair<SecretBytes, SecretBytes> ratchet_kdf_chain(const SecretBytes& chain_key);
// The AEAD key (32 bytes) and nonce (24 bytes) of a message key: HKDF-SHA256(ikm = message key,
// salt = none, info = "parley-message-key-v1", 56).
Result<SecretBytes> message_key_material(const SecretBytes& message_key);

// ---- Padding ----------------------------------------------------------------------------------

// Pads to the next of 64, 128, 256, ..., 4096 bytes, then to a multiple of 4096 (ISO/IEC 7816-4:
// 0x80 then zeros), so a ciphertext's length shows only a size class. unpad fails
// ("bad_padding") on anything pad did not produce.
std::string pad_message(std::string_view plaintext);
Result<std::string> unpad_message(std::string_view padded);

}  // namespace parley::crypto
