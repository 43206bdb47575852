// X3DH, the Double Ratchet and padding (crypto/ratchet.h): agreement on both sides, out-of-order
// and lost messages, the skipped-key limits, replays and tampering refused without changing the
// session, and state that survives serialization (a crash between messages).
#include <catch2/catch.hpp>
#include <fstream>
#include <map>
#include <string>
#include <vector>

#include "parley/crypto/hash.h"
#include "parley/crypto/ratchet.h"
#include "parley/crypto/sign.h"
#include "spec_vectors.h"

using namespace parley::crypto;

namespace {

struct Pair {
  RatchetSession alice;
  RatchetSession bob;
};

// Alice starts a session with Bob's bundle; Bob answers from her first message's keys.
Pair start(bool with_one_time = true) {
  init();
  const auto alice_id = DhKeyPair::generate();
  const auto bob_id = DhKeyPair::generate();
  const auto bob_spk = DhKeyPair::generate();
  const auto bob_otk = DhKeyPair::generate();
  PrekeyBundle bundle{bob_id.public_key(), bob_spk.public_key(), std::nullopt};
  if (with_one_time) bundle.one_time_prekey = bob_otk.public_key();
  auto a = x3dh_initiate(alice_id, bundle);
  REQUIRE(a.ok());
  auto b = x3dh_respond(bob_id, bob_spk, with_one_time ? &bob_otk : nullptr, alice_id.public_key(),
                        a->ephemeral_public);
  REQUIRE(b.ok());
  REQUIRE(a->shared_secret.view() == b->shared_secret.view());
  REQUIRE(a->associated_data == b->associated_data);
  return {RatchetSession::initiator(*a, bob_spk.public_key()).value(),
          RatchetSession::responder(*b, bob_spk)};
}

std::string text(const SecretBytes& s) { return std::string(s.view()); }

}  // namespace

TEST_CASE("X3DH: both sides derive the same key, with and without a one-time prekey") {
  for (bool otk : {true, false}) {
    auto p = start(otk);
    auto m = p.alice.encrypt("hello");
    REQUIRE(m.ok());
    CHECK(text(*p.bob.decrypt(m->header, m->ciphertext)) == "hello");
  }
  // A different one-time prekey on the responder's side gives a different key: nothing opens.
  init();
  const auto ai = DhKeyPair::generate(), bi = DhKeyPair::generate(), spk = DhKeyPair::generate();
  const auto otk = DhKeyPair::generate(), wrong = DhKeyPair::generate();
  auto a = x3dh_initiate(ai, {bi.public_key(), spk.public_key(), otk.public_key()});
  auto b = x3dh_respond(bi, spk, &wrong, ai.public_key(), a->ephemeral_public);
  CHECK(a->shared_secret.view() != b->shared_secret.view());
  CHECK(x3dh_initiate(ai, {std::string(32, '\0'), spk.public_key(), std::nullopt}).error().code ==
        "bad_key");
}

TEST_CASE("ratchet: conversation both ways with a new ratchet step on every turn") {
  auto p = start();
  CHECK(p.bob.encrypt("too early").error().code == "bad_state");
  std::string last_header_key;
  for (int turn = 0; turn < 10; ++turn) {
    RatchetSession& from = turn % 2 ? p.bob : p.alice;
    RatchetSession& to = turn % 2 ? p.alice : p.bob;
    for (int i = 0; i < 3; ++i) {
      const std::string msg = "turn " + std::to_string(turn) + " message " + std::to_string(i);
      auto m = from.encrypt(msg);
      REQUIRE(m.ok());
      if (i == 0) {
        CHECK(m->header.substr(4, 32) != last_header_key);  // a fresh ratchet key each turn
        last_header_key = m->header.substr(4, 32);
      }
      CHECK(m->ciphertext.find(msg) == std::string::npos);
      CHECK(text(*to.decrypt(m->header, m->ciphertext)) == msg);
    }
  }
}

TEST_CASE("ratchet: out of order and lost messages") {
  auto p = start();
  std::vector<RatchetSession::Sealed> sent;
  for (int i = 0; i < 6; ++i) sent.push_back(*p.alice.encrypt("m" + std::to_string(i)));
  for (int i : {3, 0, 5, 1}) {  // 2 and 4 are late, then 4 is lost for good
    CHECK(text(*p.bob.decrypt(sent[i].header, sent[i].ciphertext)) == "m" + std::to_string(i));
  }
  CHECK(p.bob.skipped_keys() == 2);
  // Bob answers (a ratchet step), Alice answers back; the late message still opens.
  auto r = p.bob.encrypt("reply");
  CHECK(text(*p.alice.decrypt(r->header, r->ciphertext)) == "reply");
  auto again = p.alice.encrypt("after reply");
  CHECK(text(*p.bob.decrypt(again->header, again->ciphertext)) == "after reply");
  CHECK(text(*p.bob.decrypt(sent[2].header, sent[2].ciphertext)) == "m2");
  CHECK(p.bob.skipped_keys() == 1);  // m4's key waits, bounded
}

TEST_CASE("ratchet: replays and tampering are refused and change nothing") {
  auto p = start();
  auto m0 = *p.alice.encrypt("m0");
  auto m1 = *p.alice.encrypt("m1");
  auto m2 = *p.alice.encrypt("m2");
  CHECK(text(*p.bob.decrypt(m1.header, m1.ciphertext)) == "m1");  // m0 skipped
  CHECK(p.bob.decrypt(m1.header, m1.ciphertext).error().code == "replayed");
  CHECK(text(*p.bob.decrypt(m0.header, m0.ciphertext)) == "m0");
  CHECK(p.bob.decrypt(m0.header, m0.ciphertext).error().code == "replayed");

  std::string bad = m2.ciphertext;
  bad[bad.size() / 2] ^= 0x20;
  CHECK(p.bob.decrypt(m2.header, bad).error().code == "bad_ciphertext");
  std::string bad_header = m2.header;
  bad_header[51] ^= 1;  // another message number: other key, and the header is authenticated
  CHECK(p.bob.decrypt(bad_header, m2.ciphertext).error().code == "bad_ciphertext");
  CHECK(p.bob.decrypt("junk", m2.ciphertext).error().code == "malformed_header");
  CHECK(p.bob.skipped_keys() == 0);  // the failed attempts left nothing behind
  CHECK(text(*p.bob.decrypt(m2.header, m2.ciphertext)) == "m2");

  // A message of an older chain, replayed after both sides moved on.
  auto r = *p.bob.encrypt("r");
  CHECK(text(*p.alice.decrypt(r.header, r.ciphertext)) == "r");
  auto m3 = *p.alice.encrypt("m3");
  CHECK(text(*p.bob.decrypt(m3.header, m3.ciphertext)) == "m3");
  CHECK(p.bob.decrypt(m0.header, m0.ciphertext).error().code == "replayed");
}

TEST_CASE("ratchet: skipped-key limits") {
  auto p = start();
  std::vector<RatchetSession::Sealed> sent;
  for (int i = 0; i < 1002; ++i) sent.push_back(*p.alice.encrypt("x"));
  // 1001 missing messages before this one: refused, and the session is unchanged.
  CHECK(p.bob.decrypt(sent[1001].header, sent[1001].ciphertext).error().code == "too_many_skipped");
  CHECK(p.bob.skipped_keys() == 0);
  CHECK(text(*p.bob.decrypt(sent[1000].header, sent[1000].ciphertext)) == "x");  // 1000: fine
  CHECK(p.bob.skipped_keys() == 1000);
  // Across chains the total stays bounded: the oldest keys go first.
  for (int round = 0; round < 2; ++round) {
    auto r = *p.bob.encrypt("r");
    REQUIRE(p.alice.decrypt(r.header, r.ciphertext).ok());
    std::vector<RatchetSession::Sealed> more;
    for (int i = 0; i < 1001; ++i) more.push_back(*p.alice.encrypt("y"));
    REQUIRE(p.bob.decrypt(more[1000].header, more[1000].ciphertext).ok());
    CHECK(p.bob.skipped_keys() <= kMaxSkippedKeys);
  }
  CHECK(p.bob.skipped_keys() == kMaxSkippedKeys);
  CHECK_FALSE(p.bob.decrypt(sent[0].header, sent[0].ciphertext).ok());  // dropped long ago
}

TEST_CASE("ratchet: serialized state continues exactly; a crash replays from the saved state") {
  auto p = start();
  auto m0 = *p.alice.encrypt("m0");
  REQUIRE(p.bob.decrypt(m0.header, m0.ciphertext).ok());
  auto r0 = *p.bob.encrypt("r0");
  // Bob saves his state with r0; Alice saves hers before reading r0, then "crashes".
  const SecretBytes alice_saved = p.alice.serialize();
  CHECK(text(*p.alice.decrypt(r0.header, r0.ciphertext)) == "r0");
  auto restored = RatchetSession::deserialize(alice_saved.view());
  REQUIRE(restored.ok());
  // The restored state reads r0 again (it was never committed), and goes on in step.
  CHECK(text(*restored->decrypt(r0.header, r0.ciphertext)) == "r0");
  auto m1 = *restored->encrypt("m1");
  auto bob_copy = RatchetSession::deserialize(p.bob.serialize().view());
  REQUIRE(bob_copy.ok());
  CHECK(text(*bob_copy->decrypt(m1.header, m1.ciphertext)) == "m1");
  // Malformed state is refused.
  std::string state(alice_saved.view());
  CHECK(RatchetSession::deserialize(state.substr(0, state.size() - 1)).error().code == "bad_state");
  CHECK(RatchetSession::deserialize(state + "x").error().code == "bad_state");
  state[0] = 9;
  CHECK(RatchetSession::deserialize(state).error().code == "bad_state");
}

TEST_CASE("padding hides exact lengths behind size classes") {
  init();
  for (auto [len, padded] : std::vector<std::pair<std::size_t, std::size_t>>{
           {0, 64}, {63, 64}, {64, 128}, {100, 128}, {4095, 4096}, {4096, 8192}, {10000, 12288}}) {
    const std::string m(len, 'a');
    const std::string p = pad_message(m);
    CHECK(p.size() == padded);
    CHECK(*unpad_message(p) == m);
  }
  CHECK(unpad_message(std::string(64, '\0')).error().code == "bad_padding");
  CHECK(unpad_message("abc").error().code == "bad_padding");
}

TEST_CASE("spec/crypto.md test vectors: X3DH, KDF_RK, KDF_CK, message keys") {
  init();
  const auto v = parley::test::read_spec_vectors(std::string(PARLEY_SPEC_DIR) + "/crypto.md");
  for (const char* name :
       {"x3dh.ik_a_private", "x3dh.ek_a_private", "x3dh.ik_b_private", "x3dh.spk_b_private",
        "x3dh.opk_b_private", "x3dh.ik_a_public", "x3dh.ek_a_public", "x3dh.sk",
        "x3dh.sk_without_opk", "kdf_rk.dh_output", "kdf_rk.root_key", "kdf_rk.chain_key",
        "kdf_ck.next_chain_key", "kdf_ck.message_key", "message.aead_key", "message.nonce"}) {
    REQUIRE(v.count(name));
  }
  auto pair = [&](const std::string& name) { return DhKeyPair::from_private(v.at(name)).value(); };
  const auto ik_a = pair("x3dh.ik_a_private"), ek_a = pair("x3dh.ek_a_private");
  const auto ik_b = pair("x3dh.ik_b_private"), spk_b = pair("x3dh.spk_b_private");
  const auto opk_b = pair("x3dh.opk_b_private");
  CHECK(ik_a.public_key() == v.at("x3dh.ik_a_public"));
  CHECK(ek_a.public_key() == v.at("x3dh.ek_a_public"));
  auto sk = x3dh_respond(ik_b, spk_b, &opk_b, ik_a.public_key(), ek_a.public_key());
  REQUIRE(sk.ok());
  CHECK(sk->shared_secret.view() == v.at("x3dh.sk"));
  CHECK(sk->associated_data == ik_a.public_key() + ik_b.public_key());
  CHECK(x3dh_respond(ik_b, spk_b, nullptr, ik_a.public_key(), ek_a.public_key())
            ->shared_secret.view() == v.at("x3dh.sk_without_opk"));

  const auto ratchet1 = DhKeyPair::from_private(sha256("alice ratchet 1")).value();
  auto dh = ratchet1.agree(spk_b.public_key());
  CHECK(dh->view() == v.at("kdf_rk.dh_output"));
  auto rk = ratchet_kdf_root(sk->shared_secret, *dh);
  REQUIRE(rk.ok());
  CHECK(rk->first.view() == v.at("kdf_rk.root_key"));
  CHECK(rk->second.view() == v.at("kdf_rk.chain_key"));
  auto [next, mk] = ratchet_kdf_chain(rk->second);
  CHECK(next.view() == v.at("kdf_ck.next_chain_key"));
  CHECK(mk.view() == v.at("kdf_ck.message_key"));
  auto material = message_key_material(mk);
  CHECK(material->view().substr(0, 32) == v.at("message.aead_key"));
  CHECK(material->view().substr(32) == v.at("message.nonce"));
}
