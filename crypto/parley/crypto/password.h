// Password storage with Argon2id (crypto_pwhash_str) and session tokens stored hashed.
//
// Stored password strings are self-describing (algorithm and cost inside), so a node can raise
// the cost later and still verify old hashes. kTestOnlyMinimal exists only so test suites that
// create hundreds of users stay fast; a node refuses it unless its config says so explicitly.
// Thread-safe; hashing is deliberately slow (tens of milliseconds at kInteractive) — never call it
// on a network thread.
#pragma once

#include <string>
#include <string_view>

#include "parley/result.h"

namespace parley::crypto {

enum class PasswordStrength { kTestOnlyMinimal, kInteractive, kModerate };

// Parses "interactive" | "moderate" | "test-only-minimal".
Result<PasswordStrength> parse_password_strength(std::string_view name);

// Fails with "resource" if the hash cannot allocate its memory.
Result<std::string> hash_password(std::string_view password, PasswordStrength strength);
bool verify_password(std::string_view stored_hash, std::string_view password);

struct SessionToken {
  std::string text;  // given to the client once: 43 chars of URL-safe base64 (32 random bytes)
  std::string hash;  // what the node stores: hex of BLAKE2b-256(text)
};
SessionToken new_session_token();
std::string hash_token(std::string_view token_text);

}  // namespace parley::crypto
