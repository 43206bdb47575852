// Hashes and key derivation: BLAKE2b (generichash), SHA-256, HMAC-SHA256 and HKDF-SHA256
// (RFC 5869, built on libsodium's HMAC-SHA256 because libsodium 1.0.18 has no HKDF).
// Thread-safe; no I/O.
#pragma once

#include <cstddef>
#include <string>
#include <string_view>

#include "parley/crypto/secret.h"
#include "parley/result.h"

namespace parley::crypto {

// BLAKE2b with an output of out_len bytes (16..64) and an optional key (0 or 16..64 bytes).
std::string generichash(std::string_view data, std::size_t out_len = 32, std::string_view key = {});
std::string sha256(std::string_view data);
// HMAC-SHA256 with a key of any length (RFC 2104).
std::string hmac_sha256(std::string_view key, std::string_view data);
// RFC 5869. Fails with "bad_argument" if length > 255 * 32.
Result<SecretBytes> hkdf_sha256(std::string_view ikm, std::string_view salt, std::string_view info,
                                std::size_t length);
// The two halves of HKDF, exposed for the RFC test vectors.
SecretBytes hkdf_extract(std::string_view salt, std::string_view ikm);
Result<SecretBytes> hkdf_expand(std::string_view prk, std::string_view info, std::size_t length);

}  // namespace parley::crypto
