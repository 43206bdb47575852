#include "parley/crypto/box.h"

#include <sodium.h>

namespace parley::crypto {

namespace {

const unsigned char* u8(std::string_view s) {
  return reinterpret_cast<const unsigned char*>(s.data());
}

}  // namespace

DhKeyPair DhKeyPair::generate() { return *from_private(random_secret(kDhKeyBytes).view()); }

Result<DhKeyPair> DhKeyPair::from_private(std::string_view private_key) {
  if (private_key.size() != kDhKeyBytes) {
    return make_error("bad_argument", "an X25519 private key is 32 bytes");
  }
  DhKeyPair kp;
  kp.private_key_ = SecretBytes(private_key);
  kp.public_key_.resize(kDhKeyBytes);
  crypto_scalarmult_base(reinterpret_cast<unsigned char*>(kp.public_key_.data()),
                         kp.private_key_.data());
  return kp;
}

Result<SecretBytes> DhKeyPair::agree(std::string_view their_public) const {
  return x25519(private_key_.view(), their_public);
}

Result<SecretBytes> x25519(std::string_view scalar, std::string_view u_coordinate) {
  if (scalar.size() != kDhKeyBytes || u_coordinate.size() != kDhKeyBytes) {
    return make_error("bad_argument", "X25519 takes a 32-byte scalar and a 32-byte point");
  }
  SecretBytes out(kDhKeyBytes);
  // libsodium returns -1 for an all-zero output (a low-order input point).
  if (crypto_scalarmult(out.data(), u8(scalar), u8(u_coordinate)) != 0) {
    out.wipe();
    return make_error("bad_key", "X25519 with a low-order point gives no shared secret");
  }
  return out;
}

Result<std::string> aead_encrypt(std::string_view key, std::string_view nonce,
                                 std::string_view plaintext, std::string_view associated_data) {
  if (key.size() != kAeadKeyBytes || nonce.size() != kAeadNonceBytes) {
    return make_error("bad_argument", "XChaCha20-Poly1305 needs a 32-byte key and 24-byte nonce");
  }
  std::string out(plaintext.size() + kAeadTagBytes, '\0');
  unsigned long long len = 0;
  crypto_aead_xchacha20poly1305_ietf_encrypt(reinterpret_cast<unsigned char*>(out.data()), &len,
                                             u8(plaintext), plaintext.size(), u8(associated_data),
                                             associated_data.size(), nullptr, u8(nonce), u8(key));
  out.resize(static_cast<std::size_t>(len));
  return out;
}

Result<SecretBytes> aead_decrypt(std::string_view key, std::string_view nonce,
                                 std::string_view ciphertext_and_tag,
                                 std::string_view associated_data) {
  if (key.size() != kAeadKeyBytes || nonce.size() != kAeadNonceBytes) {
    return make_error("bad_argument", "XChaCha20-Poly1305 needs a 32-byte key and 24-byte nonce");
  }
  if (ciphertext_and_tag.size() < kAeadTagBytes) {
    return make_error("bad_ciphertext", "ciphertext shorter than its tag");
  }
  SecretBytes out(ciphertext_and_tag.size() - kAeadTagBytes);
  unsigned long long len = 0;
  if (crypto_aead_xchacha20poly1305_ietf_decrypt(out.data(), &len, nullptr, u8(ciphertext_and_tag),
                                                 ciphertext_and_tag.size(), u8(associated_data),
                                                 associated_data.size(), u8(nonce), u8(key)) != 0) {
    out.wipe();
    return make_error("bad_ciphertext", "the ciphertext does not authenticate");
  }
  return out;
}

}  // namespace parley::crypto
