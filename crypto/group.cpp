#include "parley/crypto/group.h"

#include <sodium.h>

#include "parley/crypto/hash.h"
#include "parley/crypto/ratchet.h"

namespace parley::crypto {

namespace {

constexpr std::string_view kMagic = "PSK1";
constexpr std::string_view kSigContext = "parley-sender-key-v1\n";
constexpr std::string_view kKeyInfo = "parley-sender-message-key-v1";
constexpr std::size_t kHeader = 4 + 16 + 8;
constexpr unsigned char kSerialVersion = 1;

void put_u64(std::string& out, std::uint64_t v) {
  for (int i = 7; i >= 0; --i) out.push_back(static_cast<char>((v >> (8 * i)) & 0xff));
}

std::uint64_t get_u64(std::string_view b) {
  std::uint64_t v = 0;
  for (int i = 0; i < 8; ++i) v = (v << 8) | static_cast<unsigned char>(b[i]);
  return v;
}

Result<SecretBytes> keys_of(const SecretBytes& message_key) {
  return hkdf_sha256(message_key.view(), {}, kKeyInfo, 56);
}

SecretBytes wiped(std::string& s) {
  SecretBytes out(s);
  sodium_memzero(s.data(), s.size());
  return out;
}

}  // namespace

Result<std::string> sender_key_chain_of(std::string_view message) {
  if (message.size() < kHeader + 16 + 64 || message.substr(0, 4) != kMagic) {
    return make_error("malformed", "not a sender-key message");
  }
  return std::string(message.substr(4, 16));
}

SenderKeyChain SenderKeyChain::create() {
  SenderKeyChain c;
  c.chain_id_ = random_bytes(16);
  c.chain_key_ = random_secret(32);
  c.signing_ = SigningKey::generate();
  return c;
}

SecretBytes SenderKeyChain::distribution() const {
  // "PSD1" || chain id (16) || u64(iteration) || chain key (32) || signing public key (32).
  std::string out("PSD1");
  out += chain_id_;
  put_u64(out, iteration_);
  out.append(chain_key_.view());
  out += signing_->public_key();
  return wiped(out);
}

Result<std::string> SenderKeyChain::encrypt(std::string_view plaintext,
                                            std::string_view associated_data) {
  auto [next, message_key] = ratchet_kdf_chain(chain_key_);
  PARLEY_ASSIGN_OR_RETURN(k, keys_of(message_key));
  std::string out(kMagic);
  out += chain_id_;
  put_u64(out, iteration_);
  PARLEY_ASSIGN_OR_RETURN(ct, aead_encrypt(k.view().substr(0, 32), k.view().substr(32, 24),
                                           plaintext, out + std::string(associated_data)));
  out += ct;
  out += signing_->sign(std::string(kSigContext) + out);
  chain_key_ = std::move(next);
  ++iteration_;
  return out;
}

SecretBytes SenderKeyChain::serialize() const {
  std::string out(1, static_cast<char>(kSerialVersion));
  out += chain_id_;
  put_u64(out, iteration_);
  out.append(chain_key_.view());
  out.append(signing_->seed());
  return wiped(out);
}

Result<SenderKeyChain> SenderKeyChain::deserialize(std::string_view b) {
  if (b.size() != 1 + 16 + 8 + 32 + 32 || static_cast<unsigned char>(b[0]) != kSerialVersion) {
    return make_error("bad_state", "malformed sender key chain state");
  }
  SenderKeyChain c;
  c.chain_id_ = std::string(b.substr(1, 16));
  c.iteration_ = get_u64(b.substr(17, 8));
  c.chain_key_ = SecretBytes(b.substr(25, 32));
  PARLEY_ASSIGN_OR_RETURN(k, SigningKey::from_seed(b.substr(57, 32)));
  c.signing_ = std::move(k);
  return c;
}

Result<SenderKeyReceiver> SenderKeyReceiver::from_distribution(std::string_view d) {
  if (d.size() != 4 + 16 + 8 + 32 + 32 || d.substr(0, 4) != "PSD1") {
    return make_error("malformed", "not a sender key distribution");
  }
  SenderKeyReceiver r;
  r.chain_id_ = std::string(d.substr(4, 16));
  r.next_ = get_u64(d.substr(20, 8));
  r.chain_key_ = SecretBytes(d.substr(28, 32));
  r.signing_key_ = std::string(d.substr(60, 32));
  return r;
}

Result<SecretBytes> SenderKeyReceiver::decrypt(std::string_view message,
                                               std::string_view associated_data) {
  PARLEY_ASSIGN_OR_RETURN(chain, sender_key_chain_of(message));
  if (chain != chain_id_) return make_error("unknown_chain", "a sender key chain not received");
  const std::string_view sig = message.substr(message.size() - 64);
  const std::string_view signed_part = message.substr(0, message.size() - 64);
  if (!verify_signature(signing_key_, std::string(kSigContext) + std::string(signed_part), sig)) {
    return make_error("bad_signature", "the group message is not signed by its sender");
  }
  const std::uint64_t iteration = get_u64(message.substr(20, 8));
  const std::string_view header = message.substr(0, kHeader);
  const std::string_view ct = signed_part.substr(kHeader);
  const std::string ad = std::string(header) + std::string(associated_data);
  auto open_with = [&](const SecretBytes& mk) -> Result<SecretBytes> {
    PARLEY_ASSIGN_OR_RETURN(k, keys_of(mk));
    return aead_decrypt(k.view().substr(0, 32), k.view().substr(32, 24), ct, ad);
  };
  if (iteration < next_) {
    auto it = skipped_.find(iteration);
    if (it == skipped_.end()) {
      return make_error("replayed", "this group message was already decrypted (or too old)");
    }
    PARLEY_ASSIGN_OR_RETURN(plain, open_with(it->second));
    skipped_.erase(it);
    return plain;
  }
  if (iteration - next_ > kMaxSkipPerChain) {
    return make_error("too_many_skipped", "more than 1000 group messages are missing");
  }
  SecretBytes ck = chain_key_;
  std::map<std::uint64_t, SecretBytes> newly_skipped;
  for (std::uint64_t i = next_; i < iteration; ++i) {
    auto [next, mk] = ratchet_kdf_chain(ck);
    newly_skipped.emplace(i, std::move(mk));
    ck = std::move(next);
  }
  auto [next, mk] = ratchet_kdf_chain(ck);
  PARLEY_ASSIGN_OR_RETURN(plain, open_with(mk));
  chain_key_ = std::move(next);
  next_ = iteration + 1;
  for (auto& [i, k] : newly_skipped) skipped_.emplace(i, std::move(k));
  while (skipped_.size() > kMaxSkippedKeys) skipped_.erase(skipped_.begin());
  return plain;
}

SecretBytes SenderKeyReceiver::serialize() const {
  std::string out(1, static_cast<char>(kSerialVersion));
  out += chain_id_;
  out += signing_key_;
  put_u64(out, next_);
  out.append(chain_key_.view());
  put_u64(out, skipped_.size());
  for (const auto& [i, k] : skipped_) {
    put_u64(out, i);
    out.append(k.view());
  }
  return wiped(out);
}

Result<SenderKeyReceiver> SenderKeyReceiver::deserialize(std::string_view b) {
  constexpr std::size_t kFixed = 1 + 16 + 32 + 8 + 32 + 8;
  if (b.size() < kFixed || static_cast<unsigned char>(b[0]) != kSerialVersion) {
    return make_error("bad_state", "malformed sender key receiver state");
  }
  SenderKeyReceiver r;
  r.chain_id_ = std::string(b.substr(1, 16));
  r.signing_key_ = std::string(b.substr(17, 32));
  r.next_ = get_u64(b.substr(49, 8));
  r.chain_key_ = SecretBytes(b.substr(57, 32));
  const std::uint64_t n = get_u64(b.substr(89, 8));
  if (n > kMaxSkippedKeys || b.size() != kFixed + n * 40) {
    return make_error("bad_state", "malformed sender key receiver state");
  }
  for (std::uint64_t i = 0; i < n; ++i) {
    const auto entry = b.substr(kFixed + i * 40, 40);
    r.skipped_.emplace(get_u64(entry.substr(0, 8)), SecretBytes(entry.substr(8, 32)));
  }
  return r;
}

}  // namespace parley::crypto
