#include "parley/crypto/hash.h"

#include <sodium.h>

#include <algorithm>

namespace parley::crypto {

namespace {
const unsigned char* u8(std::string_view s) {
  return reinterpret_cast<const unsigned char*>(s.data());
}
}  // namespace

std::string generichash(std::string_view data, std::size_t out_len, std::string_view key) {
  std::string out(out_len, '\0');
  crypto_generichash(reinterpret_cast<unsigned char*>(out.data()), out_len, u8(data), data.size(),
                     key.empty() ? nullptr : u8(key), key.size());
  return out;
}

std::string sha256(std::string_view data) {
  std::string out(crypto_hash_sha256_BYTES, '\0');
  crypto_hash_sha256(reinterpret_cast<unsigned char*>(out.data()), u8(data), data.size());
  return out;
}

std::string hmac_sha256(std::string_view key, std::string_view data) {
  crypto_auth_hmacsha256_state st;
  crypto_auth_hmacsha256_init(&st, u8(key), key.size());
  crypto_auth_hmacsha256_update(&st, u8(data), data.size());
  std::string out(crypto_auth_hmacsha256_BYTES, '\0');
  crypto_auth_hmacsha256_final(&st, reinterpret_cast<unsigned char*>(out.data()));
  sodium_memzero(&st, sizeof st);
  return out;
}

SecretBytes hkdf_extract(std::string_view salt, std::string_view ikm) {
  // RFC 5869 2.2: an absent salt is HashLen zero bytes.
  const std::string zero(crypto_auth_hmacsha256_BYTES, '\0');
  std::string prk = hmac_sha256(salt.empty() ? std::string_view(zero) : salt, ikm);
  SecretBytes out(prk);
  sodium_memzero(prk.data(), prk.size());
  return out;
}

Result<SecretBytes> hkdf_expand(std::string_view prk, std::string_view info, std::size_t length) {
  constexpr std::size_t kHash = crypto_auth_hmacsha256_BYTES;
  if (length > 255 * kHash) {
    return make_error("bad_argument", "HKDF-SHA256 output is limited to 8160 bytes");
  }
  SecretBytes out(length);
  std::string t;
  std::size_t done = 0;
  for (unsigned char i = 1; done < length; ++i) {
    crypto_auth_hmacsha256_state st;
    crypto_auth_hmacsha256_init(&st, u8(prk), prk.size());
    crypto_auth_hmacsha256_update(&st, u8(t), t.size());
    crypto_auth_hmacsha256_update(&st, u8(info), info.size());
    crypto_auth_hmacsha256_update(&st, &i, 1);
    t.assign(kHash, '\0');
    crypto_auth_hmacsha256_final(&st, reinterpret_cast<unsigned char*>(t.data()));
    sodium_memzero(&st, sizeof st);
    const std::size_t take = std::min(kHash, length - done);
    std::copy_n(t.data(), take, reinterpret_cast<char*>(out.data()) + done);
    done += take;
  }
  sodium_memzero(t.data(), t.size());
  return out;
}

Result<SecretBytes> hkdf_sha256(std::string_view ikm, std::string_view salt, std::string_view info,
                                std::size_t length) {
  const SecretBytes prk = hkdf_extract(salt, ikm);
  return hkdf_expand(prk.view(), info, length);
}

}  // namespace parley::crypto
