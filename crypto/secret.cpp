#include "parley/crypto/secret.h"

#include <sodium.h>

namespace parley::crypto {

bool init() { return sodium_init() >= 0; }

SecretBytes::SecretBytes(std::size_t n) : bytes_(n, '\0') {}
SecretBytes::SecretBytes(std::string_view bytes) : bytes_(bytes) {}
SecretBytes::SecretBytes(const SecretBytes& other) : bytes_(other.bytes_) {}
SecretBytes& SecretBytes::operator=(const SecretBytes& other) {
  if (this != &other) {
    wipe();
    bytes_ = other.bytes_;
  }
  return *this;
}
SecretBytes::SecretBytes(SecretBytes&& other) noexcept : bytes_(std::move(other.bytes_)) {
  other.wipe();
}
SecretBytes& SecretBytes::operator=(SecretBytes&& other) noexcept {
  if (this != &other) {
    wipe();
    bytes_ = std::move(other.bytes_);
    other.wipe();
  }
  return *this;
}
SecretBytes::~SecretBytes() { wipe(); }

void SecretBytes::wipe() {
  // Short strings live inside the object (SSO) and long ones on the heap; zero both the used
  // bytes and the spare capacity before letting go.
  if (bytes_.capacity() > 0) {
    bytes_.resize(bytes_.capacity());
    sodium_memzero(bytes_.data(), bytes_.size());
  }
  bytes_.clear();
}

std::string random_bytes(std::size_t n) {
  std::string out(n, '\0');
  randombytes_buf(out.data(), n);
  return out;
}

SecretBytes random_secret(std::size_t n) {
  SecretBytes s(n);
  randombytes_buf(s.data(), n);
  return s;
}

std::uint32_t random_uniform(std::uint32_t upper) { return randombytes_uniform(upper); }

std::string hex_encode(std::string_view bytes) {
  std::string out(bytes.size() * 2 + 1, '\0');
  sodium_bin2hex(out.data(), out.size(), reinterpret_cast<const unsigned char*>(bytes.data()),
                 bytes.size());
  out.pop_back();
  return out;
}

Result<std::string> hex_decode(std::string_view hex) {
  std::string out(hex.size() / 2 + 1, '\0');
  std::size_t len = 0;
  const char* end = nullptr;
  if (hex.size() % 2 != 0 ||
      sodium_hex2bin(reinterpret_cast<unsigned char*>(out.data()), out.size(), hex.data(),
                     hex.size(), nullptr, &len, &end) != 0 ||
      end != hex.data() + hex.size()) {
    return make_error("bad_argument", "not valid hex");
  }
  out.resize(len);
  return out;
}

std::string base64_encode(std::string_view bytes) {
  const auto variant = sodium_base64_VARIANT_URLSAFE_NO_PADDING;
  std::string out(sodium_base64_encoded_len(bytes.size(), variant), '\0');
  sodium_bin2base64(out.data(), out.size(), reinterpret_cast<const unsigned char*>(bytes.data()),
                    bytes.size(), variant);
  out.resize(std::char_traits<char>::length(out.c_str()));
  return out;
}

Result<std::string> base64_decode(std::string_view text) {
  std::string out(text.size(), '\0');
  std::size_t len = 0;
  const char* end = nullptr;
  if (sodium_base642bin(reinterpret_cast<unsigned char*>(out.data()), out.size(), text.data(),
                        text.size(), nullptr, &len, &end,
                        sodium_base64_VARIANT_URLSAFE_NO_PADDING) != 0 ||
      end != text.data() + text.size()) {
    return make_error("bad_argument", "not valid base64url");
  }
  out.resize(len);
  return out;
}

bool equal_ct(std::string_view a, std::string_view b) {
  if (a.size() != b.size()) return false;
  if (a.empty()) return true;
  return sodium_memcmp(a.data(), b.data(), a.size()) == 0;
}

}  // namespace parley::crypto
