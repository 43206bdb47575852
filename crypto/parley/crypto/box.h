// X25519 key agreement and XChaCha20-Poly1305 authenticated encryption: the primitives of the
// end-to-end layer (spec/crypto.md). Private keys live in SecretBytes (zeroed when dropped).
// Thread-safe for const use; no I/O.
#pragma once

#include <cstddef>
#include <string>
#include <string_view>

#include "parley/crypto/secret.h"
#include "parley/result.h"

namespace parley::crypto {

constexpr std::size_t kDhKeyBytes = 32;
constexpr std::size_t kAeadKeyBytes = 32;
constexpr std::size_t kAeadNonceBytes = 24;
constexpr std::size_t kAeadTagBytes = 16;

class DhKeyPair {
 public:
  static DhKeyPair generate();
  // A stored private key (32 bytes); the public key is derived from it.
  static Result<DhKeyPair> from_private(std::string_view private_key);

  const std::string& public_key() const { return public_key_; }  // 32 bytes
  std::string_view private_key() const { return private_key_.view(); }
  // X25519 with `their_public`; "bad_key" when the result is all zeros (a low-order point: the
  // other side contributed nothing, RFC 7748 section 6.1).
  Result<SecretBytes> agree(std::string_view their_public) const;

 private:
  DhKeyPair() = default;
  SecretBytes private_key_;
  std::string public_key_;
};

// X25519(scalar, u) of RFC 7748 (the scalar is clamped as the RFC says). Errors: "bad_argument"
// for lengths other than 32, "bad_key" for an all-zero result.
Result<SecretBytes> x25519(std::string_view scalar, std::string_view u_coordinate);

// XChaCha20-Poly1305 (IETF variant): returns ciphertext followed by the 16-byte tag.
// "bad_argument" when the key is not 32 bytes or the nonce not 24.
Result<std::string> aead_encrypt(std::string_view key, std::string_view nonce,
                                 std::string_view plaintext, std::string_view associated_data);
// "bad_ciphertext" when the tag does not verify (nothing is returned then).
Result<SecretBytes> aead_decrypt(std::string_view key, std::string_view nonce,
                                 std::string_view ciphertext_and_tag,
                                 std::string_view associated_data);

}  // namespace parley::crypto
