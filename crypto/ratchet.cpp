#include "parley/crypto/ratchet.h"

#include <sodium.h>

#include "parley/crypto/hash.h"

namespace parley::crypto {

namespace {

constexpr std::string_view kX3dhInfo = "parley-x3dh-v1";
constexpr std::string_view kRootInfo = "parley-ratchet-root-v1";
constexpr std::string_view kMessageInfo = "parley-message-key-v1";
constexpr unsigned char kSerialVersion = 1;

SecretBytes secret_hmac(std::string_view key, std::string_view data) {
  std::string t = hmac_sha256(key, data);
  SecretBytes out(t);
  sodium_memzero(t.data(), t.size());
  return out;
}

void put_u64(std::string& out, std::uint64_t v) {
  for (int i = 7; i >= 0; --i) out.push_back(static_cast<char>((v >> (8 * i)) & 0xff));
}

// KDF_RK: (root key, DH output) -> (new root key, chain key).
Result<std::pair<SecretBytes, SecretBytes>> kdf_root(const SecretBytes& root,
                                                     const SecretBytes& dh_out) {
  PARLEY_ASSIGN_OR_RETURN(okm, hkdf_sha256(dh_out.view(), root.view(), kRootInfo, 64));
  return std::make_pair(SecretBytes(okm.view().substr(0, 32)),
                        SecretBytes(okm.view().substr(32, 32)));
}

// KDF_CK: chain key -> (next chain key, message key).
std::pair<SecretBytes, SecretBytes> kdf_chain(const SecretBytes& chain) {
  return {secret_hmac(chain.view(), std::string_view("\x02", 1)),
          secret_hmac(chain.view(), std::string_view("\x01", 1))};
}

struct Header {
  std::string dh;
  std::uint64_t previous = 0;  // pn
  std::uint64_t number = 0;    // n
};

// "PRH1" || dh (32) || pn (8, big-endian) || n (8, big-endian): 52 bytes.
std::string encode_header(const Header& h) {
  std::string out("PRH1");
  out += h.dh;
  put_u64(out, h.previous);
  put_u64(out, h.number);
  return out;
}

std::uint64_t get_u64(std::string_view b) {
  std::uint64_t v = 0;
  for (int i = 0; i < 8; ++i) v = (v << 8) | static_cast<unsigned char>(b[i]);
  return v;
}

Result<Header> decode_header(std::string_view b) {
  if (b.size() != 52 || b.substr(0, 4) != "PRH1") {
    return make_error("malformed_header", "a ratchet header is 52 bytes starting PRH1");
  }
  return Header{std::string(b.substr(4, 32)), get_u64(b.substr(36, 8)), get_u64(b.substr(44, 8))};
}

Result<std::string> seal(const SecretBytes& message_key, std::string_view plaintext,
                         std::string_view ad) {
  PARLEY_ASSIGN_OR_RETURN(okm, message_key_material(message_key));
  return aead_encrypt(okm.view().substr(0, 32), okm.view().substr(32, 24), plaintext, ad);
}

Result<SecretBytes> open(const SecretBytes& message_key, std::string_view ciphertext,
                         std::string_view ad) {
  PARLEY_ASSIGN_OR_RETURN(okm, message_key_material(message_key));
  return aead_decrypt(okm.view().substr(0, 32), okm.view().substr(32, 24), ciphertext, ad);
}

// A cursor over serialized state that fails instead of reading past the end.
struct Reader {
  std::string_view b;
  bool ok = true;
  std::string_view take(std::size_t n) {
    if (!ok || b.size() < n) {
      ok = false;
      return {};
    }
    auto out = b.substr(0, n);
    b.remove_prefix(n);
    return out;
  }
  std::uint64_t u64() {
    auto s = take(8);
    return ok ? get_u64(s) : 0;
  }
  std::string_view sized(std::size_t max) {
    const std::uint64_t n = u64();
    if (n > max) ok = false;
    return take(static_cast<std::size_t>(n));
  }
};

}  // namespace

Result<std::pair<SecretBytes, SecretBytes>> ratchet_kdf_root(const SecretBytes& root_key,
                                                             const SecretBytes& dh_output) {
  return kdf_root(root_key, dh_output);
}

std::pair<SecretBytes, SecretBytes> ratchet_kdf_chain(const SecretBytes& chain_key) {
  return kdf_chain(chain_key);
}

Result<SecretBytes> message_key_material(const SecretBytes& message_key) {
  return hkdf_sha256(message_key.view(), {}, kMessageInfo, 56);
}

std::string signed_prekey_input(std::uint64_t id, std::string_view public_key) {
  std::string s("parley-signed-prekey-v1\n");
  put_u64(s, id);
  s.append(public_key);
  return s;
}

namespace {

Result<X3dhStart> finish_x3dh(std::initializer_list<const SecretBytes*> dhs,
                              std::string associated_data, std::string ephemeral) {
  SecretBytes ikm(std::string(32, '\xff'));
  std::string joined(ikm.view());
  for (const auto* d : dhs) joined.append(d->view());
  SecretBytes material(joined);
  sodium_memzero(joined.data(), joined.size());
  PARLEY_ASSIGN_OR_RETURN(sk, hkdf_sha256(material.view(), std::string(32, '\0'), kX3dhInfo, 32));
  return X3dhStart{std::move(sk), std::move(associated_data), std::move(ephemeral)};
}

}  // namespace

Result<X3dhStart> x3dh_initiate(const DhKeyPair& my_identity, const PrekeyBundle& b) {
  const auto ephemeral = DhKeyPair::generate();
  PARLEY_ASSIGN_OR_RETURN(dh1, my_identity.agree(b.signed_prekey));
  PARLEY_ASSIGN_OR_RETURN(dh2, ephemeral.agree(b.identity_dh));
  PARLEY_ASSIGN_OR_RETURN(dh3, ephemeral.agree(b.signed_prekey));
  std::string ad = my_identity.public_key() + b.identity_dh;
  if (b.one_time_prekey) {
    PARLEY_ASSIGN_OR_RETURN(dh4, ephemeral.agree(*b.one_time_prekey));
    return finish_x3dh({&dh1, &dh2, &dh3, &dh4}, std::move(ad), ephemeral.public_key());
  }
  return finish_x3dh({&dh1, &dh2, &dh3}, std::move(ad), ephemeral.public_key());
}

Result<X3dhStart> x3dh_respond(const DhKeyPair& my_identity, const DhKeyPair& my_signed_prekey,
                               const DhKeyPair* my_one_time_prekey,
                               std::string_view their_identity_dh,
                               std::string_view their_ephemeral) {
  PARLEY_ASSIGN_OR_RETURN(dh1, my_signed_prekey.agree(their_identity_dh));
  PARLEY_ASSIGN_OR_RETURN(dh2, my_identity.agree(their_ephemeral));
  PARLEY_ASSIGN_OR_RETURN(dh3, my_signed_prekey.agree(their_ephemeral));
  std::string ad = std::string(their_identity_dh) + my_identity.public_key();
  if (my_one_time_prekey) {
    PARLEY_ASSIGN_OR_RETURN(dh4, my_one_time_prekey->agree(their_ephemeral));
    return finish_x3dh({&dh1, &dh2, &dh3, &dh4}, std::move(ad), std::string(their_ephemeral));
  }
  return finish_x3dh({&dh1, &dh2, &dh3}, std::move(ad), std::string(their_ephemeral));
}

Result<RatchetSession> RatchetSession::initiator(const X3dhStart& start,
                                                 std::string_view their_signed_prekey) {
  RatchetSession s;
  s.associated_data_ = start.associated_data;
  s.sending_dh_ = DhKeyPair::generate();
  s.receiving_dh_ = std::string(their_signed_prekey);
  PARLEY_ASSIGN_OR_RETURN(dh, s.sending_dh_->agree(their_signed_prekey));
  PARLEY_ASSIGN_OR_RETURN(keys, kdf_root(start.shared_secret, dh));
  s.root_key_ = std::move(keys.first);
  s.sending_chain_ = std::move(keys.second);
  return s;
}

RatchetSession RatchetSession::responder(const X3dhStart& start,
                                         const DhKeyPair& my_signed_prekey) {
  RatchetSession s;
  s.associated_data_ = start.associated_data;
  s.sending_dh_ = my_signed_prekey;
  s.root_key_ = start.shared_secret;
  return s;
}

Result<RatchetSession::Sealed> RatchetSession::encrypt(std::string_view plaintext) {
  if (sending_chain_.empty()) {
    return make_error("bad_state", "no sending chain yet: the responder must receive first");
  }
  auto [next_chain, message_key] = kdf_chain(sending_chain_);
  Sealed out;
  out.header = encode_header({sending_dh_->public_key(), previous_sent_, sent_});
  PARLEY_ASSIGN_OR_RETURN(ct, seal(message_key, plaintext, associated_data_ + out.header));
  out.ciphertext = std::move(ct);
  sending_chain_ = std::move(next_chain);
  ++sent_;
  return out;
}

Status RatchetSession::skip_until(std::uint64_t until) {
  if (receiving_chain_.empty()) return ok_status();
  if (until > received_ + kMaxSkipPerChain) {
    return make_error("too_many_skipped", "more than 1000 messages of this chain are missing");
  }
  while (received_ < until) {
    auto [next_chain, message_key] = kdf_chain(receiving_chain_);
    auto key = std::make_pair(receiving_dh_, received_);
    skipped_.emplace(key, std::move(message_key));
    skipped_order_.push_back(std::move(key));
    while (skipped_order_.size() > kMaxSkippedKeys) {
      skipped_.erase(skipped_order_.front());
      skipped_order_.pop_front();
    }
    receiving_chain_ = std::move(next_chain);
    ++received_;
  }
  return ok_status();
}

Status RatchetSession::dh_ratchet(std::string_view their_public) {
  previous_sent_ = sent_;
  sent_ = 0;
  received_ = 0;
  if (!receiving_dh_.empty()) {
    retired_dh_.push_back(receiving_dh_);
    if (retired_dh_.size() > kRetiredKeys) retired_dh_.pop_front();
  }
  receiving_dh_ = std::string(their_public);
  PARLEY_ASSIGN_OR_RETURN(dh_recv, sending_dh_->agree(their_public));
  PARLEY_ASSIGN_OR_RETURN(recv_keys, kdf_root(root_key_, dh_recv));
  receiving_chain_ = std::move(recv_keys.second);
  sending_dh_ = DhKeyPair::generate();
  PARLEY_ASSIGN_OR_RETURN(dh_send, sending_dh_->agree(their_public));
  PARLEY_ASSIGN_OR_RETURN(send_keys, kdf_root(recv_keys.first, dh_send));
  root_key_ = std::move(send_keys.first);
  sending_chain_ = std::move(send_keys.second);
  return ok_status();
}

Result<SecretBytes> RatchetSession::decrypt(std::string_view header_bytes,
                                            std::string_view ciphertext) {
  PARLEY_ASSIGN_OR_RETURN(h, decode_header(header_bytes));
  const std::string ad = associated_data_ + std::string(header_bytes);
  // A key skipped earlier: use it once and forget it.
  if (auto it = skipped_.find({h.dh, h.number}); it != skipped_.end()) {
    PARLEY_ASSIGN_OR_RETURN(plain, open(it->second, ciphertext, ad));
    skipped_.erase(it);
    for (auto o = skipped_order_.begin(); o != skipped_order_.end(); ++o) {
      if (o->first == h.dh && o->second == h.number) {
        skipped_order_.erase(o);
        break;
      }
    }
    return plain;
  }
  // Everything else works on a copy that replaces this session only if the message opens.
  RatchetSession next = *this;
  if (h.dh != next.receiving_dh_ || next.receiving_chain_.empty()) {
    // A new ratchet key from the other side (or the first one). A key it used before is a
    // replay of an older chain's message whose key was used or dropped.
    for (const auto& old : next.retired_dh_) {
      if (old == h.dh)
        return make_error("replayed", "a message of an older chain, already handled");
    }
    PARLEY_TRY(next.skip_until(h.previous));
    PARLEY_TRY(next.dh_ratchet(h.dh));
  } else if (h.number < next.received_) {
    return make_error("replayed", "this message was already decrypted (or its key dropped)");
  }
  PARLEY_TRY(next.skip_until(h.number));
  auto [next_chain, message_key] = kdf_chain(next.receiving_chain_);
  PARLEY_ASSIGN_OR_RETURN(plain, open(message_key, ciphertext, ad));
  next.receiving_chain_ = std::move(next_chain);
  ++next.received_;
  *this = std::move(next);
  return plain;
}

SecretBytes RatchetSession::serialize() const {
  std::string out;
  out.push_back(static_cast<char>(kSerialVersion));
  auto sized = [&out](std::string_view s) {
    put_u64(out, s.size());
    out.append(s);
  };
  sized(root_key_.view());
  sized(sending_dh_ ? sending_dh_->private_key() : std::string_view());
  sized(receiving_dh_);
  sized(sending_chain_.view());
  sized(receiving_chain_.view());
  put_u64(out, sent_);
  put_u64(out, received_);
  put_u64(out, previous_sent_);
  sized(associated_data_);
  put_u64(out, retired_dh_.size());
  for (const auto& k : retired_dh_) sized(k);
  put_u64(out, skipped_order_.size());
  for (const auto& key : skipped_order_) {
    sized(key.first);
    put_u64(out, key.second);
    sized(skipped_.at(key).view());
  }
  SecretBytes result(out);
  sodium_memzero(out.data(), out.size());
  return result;
}

Result<RatchetSession> RatchetSession::deserialize(std::string_view bytes) {
  Reader r{bytes};
  const auto version = r.take(1);
  if (!r.ok || static_cast<unsigned char>(version[0]) != kSerialVersion) {
    return make_error("bad_state", "unknown ratchet state version");
  }
  RatchetSession s;
  s.root_key_ = SecretBytes(r.sized(32));
  const auto dhs = r.sized(32);
  if (r.ok && !dhs.empty()) {
    auto kp = DhKeyPair::from_private(dhs);
    if (!kp.ok()) return make_error("bad_state", "bad sending ratchet key");
    s.sending_dh_ = std::move(kp).value();
  }
  s.receiving_dh_ = std::string(r.sized(32));
  s.sending_chain_ = SecretBytes(r.sized(32));
  s.receiving_chain_ = SecretBytes(r.sized(32));
  s.sent_ = r.u64();
  s.received_ = r.u64();
  s.previous_sent_ = r.u64();
  s.associated_data_ = std::string(r.sized(256));
  const std::uint64_t retired = r.u64();
  if (retired > kRetiredKeys) return make_error("bad_state", "too many retired ratchet keys");
  for (std::uint64_t i = 0; r.ok && i < retired; ++i) s.retired_dh_.emplace_back(r.sized(32));
  const std::uint64_t n = r.u64();
  if (n > kMaxSkippedKeys) return make_error("bad_state", "too many skipped keys");
  for (std::uint64_t i = 0; r.ok && i < n; ++i) {
    std::string dh(r.sized(32));
    const std::uint64_t number = r.u64();
    SecretBytes mk(r.sized(32));
    auto key = std::make_pair(std::move(dh), number);
    s.skipped_.emplace(key, std::move(mk));
    s.skipped_order_.push_back(std::move(key));
  }
  if (!r.ok || !r.b.empty() || s.root_key_.size() != 32 || !s.sending_dh_) {
    return make_error("bad_state", "truncated or malformed ratchet state");
  }
  return s;
}

std::string pad_message(std::string_view plaintext) {
  std::size_t target = 64;
  while (target <= plaintext.size() && target < 4096) target *= 2;
  if (target <= plaintext.size()) target = (plaintext.size() / 4096 + 1) * 4096;
  std::string out(plaintext);
  out.resize(target);
  std::size_t padded_len = 0;
  // Block size = target: sodium_pad appends 0x80 and zeros up to the next multiple of it.
  sodium_pad(&padded_len, reinterpret_cast<unsigned char*>(out.data()), plaintext.size(), target,
             out.size());
  out.resize(padded_len);
  return out;
}

Result<std::string> unpad_message(std::string_view padded) {
  if (padded.empty() || padded.size() % 64 != 0) {
    return make_error("bad_padding", "padded messages are a multiple of 64 bytes");
  }
  std::size_t len = 0;
  if (sodium_unpad(&len, reinterpret_cast<const unsigned char*>(padded.data()), padded.size(),
                   padded.size()) != 0) {
    return make_error("bad_padding", "no padding marker");
  }
  return std::string(padded.substr(0, len));
}

}  // namespace parley::crypto
