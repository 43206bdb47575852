// Per-message end-to-end cost against the raw libsodium primitives it is built from.
// Usage: crypto_bench [ITERATIONS] [PLAINTEXT_BYTES]   (defaults 20000 and 256)
// Prints one line per figure (median of 7 batches, in microseconds per operation) and the
// ratios that matter: a ratchet message against one raw AEAD, a ratchet turn (DH step) against
// the X25519 operations it needs (two agreements and a key generation), a group message against
// AEAD + Ed25519 sign/verify.
#include <sodium.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <functional>
#include <string>
#include <vector>

#include "parley/crypto/box.h"
#include "parley/crypto/group.h"
#include "parley/crypto/ratchet.h"
#include "parley/crypto/sign.h"

using namespace parley::crypto;

namespace {

double median_us(int iterations, const std::function<void()>& op) {
  std::vector<double> batches;
  const int per_batch = std::max(1, iterations / 7);
  for (int b = 0; b < 7; ++b) {
    const auto start = std::chrono::steady_clock::now();
    for (int i = 0; i < per_batch; ++i) op();
    const auto end = std::chrono::steady_clock::now();
    batches.push_back(std::chrono::duration<double, std::micro>(end - start).count() / per_batch);
  }
  std::sort(batches.begin(), batches.end());
  return batches[3];
}

struct Pair {
  RatchetSession a, b;
};

Pair session_pair() {
  const auto ai = DhKeyPair::generate(), bi = DhKeyPair::generate(), spk = DhKeyPair::generate();
  auto start = x3dh_initiate(ai, {bi.public_key(), spk.public_key(), std::nullopt}).value();
  auto resp = x3dh_respond(bi, spk, nullptr, ai.public_key(), start.ephemeral_public).value();
  return {RatchetSession::initiator(start, spk.public_key()).value(),
          RatchetSession::responder(resp, spk)};
}

}  // namespace

int main(int argc, char** argv) {
  if (!init()) return 1;
  const int n = argc > 1 ? std::atoi(argv[1]) : 20000;
  const std::size_t bytes = argc > 2 ? std::strtoul(argv[2], nullptr, 10) : 256;
  const std::string plain(bytes, 'p');
  const std::string key = random_bytes(32), nonce = random_bytes(24);
  const auto sealed = aead_encrypt(key, nonce, pad_message(plain), "ad").value();

  const double aead_enc =
      median_us(n, [&] { (void)aead_encrypt(key, nonce, pad_message(plain), "ad"); });
  const double aead_dec = median_us(n, [&] { (void)aead_decrypt(key, nonce, sealed, "ad"); });
  const auto d1 = DhKeyPair::generate(), d2 = DhKeyPair::generate();
  const double x25519_us = median_us(n / 4, [&] { (void)d1.agree(d2.public_key()); });
  const double keygen_us = median_us(n / 4, [] { (void)DhKeyPair::generate(); });
  const auto signer = SigningKey::generate();
  const std::string sig = signer.sign(sealed);
  const double sign_us = median_us(n / 4, [&] { (void)signer.sign(sealed); });
  const double verify_us =
      median_us(n / 4, [&] { (void)verify_signature(signer.public_key(), sealed, sig); });

  // One direction, many messages: a chain step (two HMACs, an HKDF) plus the AEAD.
  auto p = session_pair();
  auto first = p.a.encrypt("x").value();
  (void)p.b.decrypt(first.header, first.ciphertext);
  std::vector<RatchetSession::Sealed> stream;
  const double ratchet_enc =
      median_us(n, [&] { stream.push_back(p.a.encrypt(pad_message(plain)).value()); });
  std::size_t next = 0;
  const double ratchet_dec = median_us(n, [&] {
    const auto& m = stream[next++ % stream.size()];
    (void)p.b.decrypt(m.header, m.ciphertext);
  });
  // Ping-pong: every message starts a new turn (two X25519 and a key generation each side).
  auto q = session_pair();
  bool a_turn = true;
  const double turn_us = median_us(n / 4, [&] {
    RatchetSession& from = a_turn ? q.a : q.b;
    RatchetSession& to = a_turn ? q.b : q.a;
    auto m = from.encrypt(pad_message(plain)).value();
    (void)to.decrypt(m.header, m.ciphertext);
    a_turn = !a_turn;
  });
  const auto ai = DhKeyPair::generate(), bi = DhKeyPair::generate(), spk = DhKeyPair::generate();
  const auto otk = DhKeyPair::generate();
  const double x3dh_us = median_us(n / 8, [&] {
    (void)x3dh_initiate(ai, {bi.public_key(), spk.public_key(), otk.public_key()});
  });
  auto chain = SenderKeyChain::create();
  auto receiver = SenderKeyReceiver::from_distribution(chain.distribution().view()).value();
  std::vector<std::string> group;
  const double group_enc =
      median_us(n / 4, [&] { group.push_back(chain.encrypt(pad_message(plain), "g").value()); });
  next = 0;
  const double group_dec = median_us(n / 4, [&] { (void)receiver.decrypt(group[next++], "g"); });

  std::printf("plaintext %zu bytes (padded to %zu), median of 7 batches, us/op\n", bytes,
              pad_message(plain).size());
  std::printf(
      "raw: aead_encrypt %.2f  aead_decrypt %.2f  x25519 %.1f  x25519_keygen %.1f  "
      "ed25519_sign %.1f  ed25519_verify %.1f\n",
      aead_enc, aead_dec, x25519_us, keygen_us, sign_us, verify_us);
  std::printf("ratchet (same chain): encrypt %.2f (%.1fx aead)  decrypt %.2f (%.1fx aead)\n",
              ratchet_enc, ratchet_enc / aead_enc, ratchet_dec, ratchet_dec / aead_dec);
  std::printf(
      "ratchet turn (encrypt+decrypt with DH step): %.1f (%.2fx of its 2 x25519 + 1 keygen)\n",
      turn_us, turn_us / (2 * x25519_us + keygen_us));
  std::printf("x3dh initiate: %.1f (%.2fx of 4 x25519 + 1 keygen)\n", x3dh_us,
              x3dh_us / (4 * x25519_us + keygen_us));
  std::printf("sender key: encrypt %.1f (%.2fx aead+sign)  decrypt %.1f (%.2fx aead+verify)\n",
              group_enc, group_enc / (aead_enc + sign_us), group_dec,
              group_dec / (aead_dec + verify_us));
  return 0;
}
