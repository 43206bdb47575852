#include "parley/crypto/sign.h"

#include <fcntl.h>
#include <sodium.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>

namespace parley::crypto {

namespace {
constexpr std::string_view kKeyFilePrefix = "parley-ed25519-seed v1 ";
constexpr std::string_view kPublicPrefix = "ed25519:";
}  // namespace

SigningKey SigningKey::generate() {
  const SecretBytes seed = random_secret(crypto_sign_SEEDBYTES);
  return std::move(from_seed(seed.view()).value());
}

Result<SigningKey> SigningKey::from_seed(std::string_view seed) {
  if (seed.size() != crypto_sign_SEEDBYTES) return make_error("bad_key", "seed must be 32 bytes");
  SigningKey k;
  k.seed_ = SecretBytes(seed);
  k.secret_key_ = SecretBytes(crypto_sign_SECRETKEYBYTES);
  k.public_key_.assign(crypto_sign_PUBLICKEYBYTES, '\0');
  crypto_sign_seed_keypair(reinterpret_cast<unsigned char*>(k.public_key_.data()),
                           k.secret_key_.data(), k.seed_.data());
  return k;
}

std::string SigningKey::sign(std::string_view message) const {
  std::string sig(crypto_sign_BYTES, '\0');
  crypto_sign_detached(reinterpret_cast<unsigned char*>(sig.data()), nullptr,
                       reinterpret_cast<const unsigned char*>(message.data()), message.size(),
                       secret_key_.data());
  return sig;
}

bool verify_signature(std::string_view public_key, std::string_view message,
                      std::string_view signature) {
  if (public_key.size() != crypto_sign_PUBLICKEYBYTES || signature.size() != crypto_sign_BYTES) {
    return false;
  }
  return crypto_sign_verify_detached(
             reinterpret_cast<const unsigned char*>(signature.data()),
             reinterpret_cast<const unsigned char*>(message.data()), message.size(),
             reinterpret_cast<const unsigned char*>(public_key.data())) == 0;
}

std::string format_public_key(std::string_view public_key) {
  return std::string(kPublicPrefix) + base64_encode(public_key);
}

Result<std::string> parse_public_key(std::string_view text) {
  if (text.substr(0, kPublicPrefix.size()) != kPublicPrefix) {
    return make_error("bad_key", "a public key looks like ed25519:<base64url>");
  }
  auto raw = base64_decode(text.substr(kPublicPrefix.size()));
  if (!raw.ok() || raw->size() != crypto_sign_PUBLICKEYBYTES) {
    return make_error("bad_key", "the public key is not 32 bytes of base64url");
  }
  return std::move(raw).value();
}

Status save_signing_key(const std::string& path, const SigningKey& key) {
  const std::string tmp = path + ".tmp";
  SecretBytes line(std::string(kKeyFilePrefix) + base64_encode(key.seed()) + "\n");
  const int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
  if (fd < 0) return make_error("io", "cannot create " + tmp + ": " + std::strerror(errno));
  ::fchmod(fd, 0600);
  const bool ok = ::write(fd, line.data(), line.size()) == static_cast<ssize_t>(line.size()) &&
                  ::fsync(fd) == 0;
  ::close(fd);
  if (!ok || std::rename(tmp.c_str(), path.c_str()) != 0) {
    std::remove(tmp.c_str());
    return make_error("io", "cannot write " + path);
  }
  return ok_status();
}

Result<SigningKey> load_signing_key(const std::string& path) {
  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return make_error("io", "cannot open " + path + ": " + std::strerror(errno));
  struct stat st {};
  if (::fstat(fd, &st) != 0 || (st.st_mode & 077) != 0) {
    ::close(fd);
    return make_error("insecure_key_file",
                      path + " is readable by group or others; run: chmod 600 " + path);
  }
  SecretBytes buf(256);
  const ssize_t n = ::read(fd, buf.data(), buf.size());
  ::close(fd);
  if (n <= 0) return make_error("bad_key", path + " is empty or unreadable");
  std::string_view text(reinterpret_cast<const char*>(buf.data()), static_cast<std::size_t>(n));
  while (!text.empty() && (text.back() == '\n' || text.back() == '\r')) text.remove_suffix(1);
  if (text.substr(0, kKeyFilePrefix.size()) != kKeyFilePrefix) {
    return make_error("bad_key", path + " is not a Parley key file");
  }
  auto seed = base64_decode(text.substr(kKeyFilePrefix.size()));
  if (!seed.ok()) return make_error("bad_key", path + " holds a malformed key");
  SecretBytes s(*seed);
  sodium_memzero(seed->data(), seed->size());
  return SigningKey::from_seed(s.view());
}

}  // namespace parley::crypto
