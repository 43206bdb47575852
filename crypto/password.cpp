#include "parley/crypto/password.h"

#include <sodium.h>

#include "parley/crypto/hash.h"
#include "parley/crypto/secret.h"

namespace parley::crypto {

Result<PasswordStrength> parse_password_strength(std::string_view name) {
  if (name == "interactive") return PasswordStrength::kInteractive;
  if (name == "moderate") return PasswordStrength::kModerate;
  if (name == "test-only-minimal") return PasswordStrength::kTestOnlyMinimal;
  return make_error("bad_config",
                    "password hash strength must be interactive, moderate or test-only-minimal");
}

Result<std::string> hash_password(std::string_view password, PasswordStrength strength) {
  unsigned long long ops = crypto_pwhash_OPSLIMIT_INTERACTIVE;
  std::size_t mem = crypto_pwhash_MEMLIMIT_INTERACTIVE;
  if (strength == PasswordStrength::kModerate) {
    ops = crypto_pwhash_OPSLIMIT_MODERATE;
    mem = crypto_pwhash_MEMLIMIT_MODERATE;
  } else if (strength == PasswordStrength::kTestOnlyMinimal) {
    ops = crypto_pwhash_OPSLIMIT_MIN;
    mem = crypto_pwhash_MEMLIMIT_MIN;
  }
  char out[crypto_pwhash_STRBYTES];
  if (crypto_pwhash_str_alg(out, password.data(), password.size(), ops, mem,
                            crypto_pwhash_ALG_ARGON2ID13) != 0) {
    return make_error("resource", "not enough memory to hash the password");
  }
  return std::string(out);
}

bool verify_password(std::string_view stored_hash, std::string_view password) {
  const std::string h(stored_hash);  // needs a NUL-terminated string
  return crypto_pwhash_str_verify(h.c_str(), password.data(), password.size()) == 0;
}

SessionToken new_session_token() {
  SessionToken t;
  t.text = base64_encode(random_bytes(32));
  t.hash = hash_token(t.text);
  return t;
}

std::string hash_token(std::string_view token_text) {
  return hex_encode(generichash(token_text, 32));
}

}  // namespace parley::crypto
