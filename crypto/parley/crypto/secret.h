// Secret byte buffers and the basic randomness/encoding helpers of Parley's crypto layer.
//
// SecretBytes zeroes its memory (sodium_memzero) when destroyed or reassigned, so keys, tokens
// and passwords never linger in freed memory. init() must run once before any other crypto call
// (it is idempotent and thread-safe). All functions here are thread-safe; no I/O.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include "parley/result.h"

namespace parley::crypto {

// Initialises libsodium. Returns false only if libsodium cannot initialise (fatal at start-up).
bool init();

class SecretBytes {
 public:
  SecretBytes() = default;
  explicit SecretBytes(std::size_t n);
  explicit SecretBytes(std::string_view bytes);
  SecretBytes(const SecretBytes& other);
  SecretBytes& operator=(const SecretBytes& other);
  SecretBytes(SecretBytes&& other) noexcept;
  SecretBytes& operator=(SecretBytes&& other) noexcept;
  ~SecretBytes();

  unsigned char* data() { return reinterpret_cast<unsigned char*>(bytes_.data()); }
  const unsigned char* data() const {
    return reinterpret_cast<const unsigned char*>(bytes_.data());
  }
  std::size_t size() const { return bytes_.size(); }
  bool empty() const { return bytes_.empty(); }
  std::string_view view() const { return bytes_; }
  void wipe();  // zeroes and empties

 private:
  std::string bytes_;
};

// n bytes from the OS CSPRNG (randombytes_buf).
std::string random_bytes(std::size_t n);
SecretBytes random_secret(std::size_t n);
// Uniform in [0, upper) (randombytes_uniform); upper > 0.
std::uint32_t random_uniform(std::uint32_t upper);

std::string hex_encode(std::string_view bytes);
Result<std::string> hex_decode(std::string_view hex);
// URL-safe base64 without padding (sodium_base64_VARIANT_URLSAFE_NO_PADDING).
std::string base64_encode(std::string_view bytes);
Result<std::string> base64_decode(std::string_view text);

// Constant-time comparison of equal-length inputs; different lengths compare unequal.
bool equal_ct(std::string_view a, std::string_view b);

}  // namespace parley::crypto
