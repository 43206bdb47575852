// Ed25519 signing keys (node keys now; user and device keys in the E2E layer).
//
// A SigningKey owns its secret in SecretBytes. Key files hold one line
// "parley-ed25519-seed v1 <base64url seed>\n", are written atomically with mode 0600 and are
// refused on load if group or others can read them. Public keys are shown to admins as
// "ed25519:<base64url of the 32 public key bytes>". Thread-safe for const use.
#pragma once

#include <string>
#include <string_view>

#include "parley/crypto/secret.h"
#include "parley/result.h"

namespace parley::crypto {

class SigningKey {
 public:
  static SigningKey generate();
  // seed: 32 bytes.
  static Result<SigningKey> from_seed(std::string_view seed);

  const std::string& public_key() const { return public_key_; }  // 32 raw bytes
  std::string_view seed() const { return seed_.view(); }
  std::string sign(std::string_view message) const;  // 64-byte detached signature

 private:
  SigningKey() = default;
  SecretBytes seed_;
  SecretBytes secret_key_;  // libsodium's 64-byte form
  std::string public_key_;
};

bool verify_signature(std::string_view public_key, std::string_view message,
                      std::string_view signature);

std::string format_public_key(std::string_view public_key);  // "ed25519:..."
Result<std::string> parse_public_key(std::string_view text);

Status save_signing_key(const std::string& path, const SigningKey& key);
Result<SigningKey> load_signing_key(const std::string& path);

}  // namespace parley::crypto
