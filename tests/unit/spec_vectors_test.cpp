// The test vectors of spec/crypto.md section 9 beyond X3DH and key derivation (those are in
// ratchet_test.cpp): published keys, device certificates, signed prekeys and device lists, safety
// numbers, padding, a full 1:1 message, a sender-key message and group body, a signed group event
// and a federation transaction carrying it. They were computed by tests/tools/crypto_vectors.py
// (Python standard library only); here the C++ implementation must produce (or open) the same
// bytes, so the spec, the tool and the code cannot drift apart.
#include <catch2/catch.hpp>

#include "parley/client/envelope.h"
#include "parley/conv/replica.h"
#include "parley/crypto/group.h"
#include "parley/crypto/hash.h"
#include "parley/crypto/identity.h"
#include "parley/crypto/ratchet.h"
#include "parley/crypto/sign.h"
#include "parley/federation/transaction.h"
#include "parley/message.h"
#include "spec_vectors.h"

using namespace parley;
using namespace parley::crypto;

namespace {

const std::map<std::string, std::string>& vectors() {
  static const auto v = test::read_spec_vectors(std::string(PARLEY_SPEC_DIR) + "/crypto.md");
  return v;
}

const std::string& vec(const std::string& name) {
  const auto it = vectors().find(name);
  if (it == vectors().end()) FAIL("spec/crypto.md section 9 has no vector " << name);
  return it->second;
}

std::string hex(std::string_view b) { return hex_encode(b); }

SigningKey signing(const std::string& seed_name) {
  return SigningKey::from_seed(vec(seed_name)).value();
}

DhKeyPair dh(const std::string& private_name) {
  return DhKeyPair::from_private(vec(private_name)).value();
}

std::string u64(std::uint64_t n) {
  std::string s;
  for (int i = 7; i >= 0; --i) s.push_back(static_cast<char>((n >> (8 * i)) & 0xff));
  return s;
}

}  // namespace

TEST_CASE("spec vectors: every private key is SHA-256 of its label") {
  init();
  CHECK(vec("keys.alice_identity_seed") == sha256("alice user identity"));
  CHECK(vec("keys.alice_device_seed") == sha256("alice device signing"));
  CHECK(vec("keys.bob_identity_seed") == sha256("bob user identity"));
  CHECK(vec("keys.bob_device_seed") == sha256("bob device signing"));
  CHECK(vec("sender.chain_id") == sha256("alice sender chain id").substr(0, 16));
  CHECK(vec("sender.chain_key") == sha256("alice sender chain key"));
  CHECK(vec("sender.signing_seed") == sha256("alice sender signing"));
}

TEST_CASE("spec vectors: published keys, certificate, signed prekey, device list") {
  init();
  const auto alice_identity = signing("keys.alice_identity_seed");
  const auto alice_device = signing("keys.alice_device_seed");
  const auto bob_device = signing("keys.bob_device_seed");
  CHECK(hex(alice_identity.public_key()) == hex(vec("keys.alice_identity_public")));
  CHECK(hex(alice_device.public_key()) == hex(vec("keys.alice_device_public")));
  CHECK(hex(signing("keys.bob_identity_seed").public_key()) ==
        hex(vec("keys.bob_identity_public")));
  CHECK(hex(bob_device.public_key()) == hex(vec("keys.bob_device_public")));
  const auto ik_a = dh("x3dh.ik_a_private"), spk_b = dh("x3dh.spk_b_private");
  CHECK(hex(dh("x3dh.ik_b_private").public_key()) == hex(vec("keys.ik_b_public")));
  CHECK(hex(spk_b.public_key()) == hex(vec("keys.spk_b_public")));
  CHECK(hex(dh("x3dh.opk_b_private").public_key()) == hex(vec("keys.opk_b_public")));

  CHECK(hex(encode_device_cert(alice_device, ik_a)) == hex(vec("cert.alice")));
  auto cert = parse_device_cert(vec("cert.alice"));
  REQUIRE(cert.ok());
  CHECK(cert->dh_key == ik_a.public_key());

  CHECK(hex(encode_signed_prekey(bob_device, 1, spk_b)) == hex(vec("signed_prekey.bob")));
  auto spk = parse_signed_prekey(vec("signed_prekey.bob"), bob_device.public_key());
  REQUIRE(spk.ok());
  CHECK(spk->id == 1);

  wire::MapWriter otk;
  otk.add("id", std::uint64_t{2}).add_bin("key", vec("keys.opk_b_public"));
  CHECK(hex(otk.finish()) == hex(vec("one_time.bob")));

  DeviceList list{"alice@a.example", 1, {{7, alice_device.public_key(), ik_a.public_key()}}};
  CHECK(hex(encode_device_list(list, alice_identity)) == hex(vec("device_list.alice")));
  auto parsed =
      parse_device_list(vec("device_list.alice"), alice_identity.public_key(), "alice@a.example");
  REQUIRE(parsed.ok());
  CHECK(parsed->find(7)->signing_key == alice_device.public_key());
}

TEST_CASE("spec vectors: safety number, with either user first") {
  init();
  const std::string a = vec("keys.alice_identity_public"), b = vec("keys.bob_identity_public");
  CHECK(safety_number("alice@a.example", a, "bob@b.example", b) == vec("safety_number.alice_bob"));
  CHECK(safety_number("bob@b.example", b, "alice@a.example", a) == vec("safety_number.alice_bob"));
}

TEST_CASE("spec vectors: padding") {
  CHECK(hex(pad_message("abc")) == hex(vec("padding.abc")));
  CHECK(*unpad_message(vec("padding.abc")) == "abc");
}

TEST_CASE("spec vectors: Alice's first 1:1 message, opened by Bob") {
  init();
  const auto ik_a = dh("x3dh.ik_a_private"), ek_a = dh("x3dh.ek_a_private");
  const auto ik_b = dh("x3dh.ik_b_private"), spk_b = dh("x3dh.spk_b_private");
  const auto opk_b = dh("x3dh.opk_b_private");
  const auto ratchet1 = DhKeyPair::from_private(sha256("alice ratchet 1")).value();
  CHECK(hex(vec("message.header")) ==
        hex("PRH1" + ratchet1.public_key() + u64(0) + u64(0)));  // section 4.2, N = PN = 0

  wire::MapWriter inner;
  inner.add("id", "m1").add_bin("text", "hello bob");
  CHECK(hex(inner.finish()) == hex(vec("message.inner")));
  wire::MapWriter x;
  x.add_bin("ik", ik_a.public_key())
      .add("spk", std::uint64_t{1})
      .add("opk", std::uint64_t{2})
      .add_bin("ek", ek_a.public_key());
  CHECK(hex(x.finish()) == hex(vec("message.x")));

  // The envelope is exactly the canonical structure of section 8.
  auto env = client::Envelope::decode(vec("message.envelope"));
  REQUIRE(env.ok());
  CHECK(hex(env->encode()) == hex(vec("message.envelope")));
  REQUIRE(env->entries.size() == 1);
  const auto& e = env->entries[0];
  CHECK((env->sender_device == 7 && e.user == "bob@b.example" && e.device == 9));
  CHECK(e.header == vec("message.header"));
  CHECK(e.ciphertext == vec("message.ciphertext"));
  CHECK(e.prekey == vec("message.x"));

  // Bob, as responder, opens it (section 8: X3DH from x, then the ratchet).
  auto start = x3dh_respond(ik_b, spk_b, &opk_b, ik_a.public_key(), ek_a.public_key());
  REQUIRE(start.ok());
  auto bob = RatchetSession::responder(*start, spk_b);
  auto plain = bob.decrypt(e.header, e.ciphertext);
  REQUIRE(plain.ok());
  CHECK(hex(plain->view()) == hex(pad_message(vec("message.inner"))));
}

TEST_CASE("spec vectors: sender-key distribution, message and group body") {
  init();
  // The chain's state from its parts (crypto.md section 6): id, iteration 0, key, signing seed.
  std::string state(1, '\x01');
  state += vec("sender.chain_id") + u64(0) + vec("sender.chain_key") + vec("sender.signing_seed");
  auto chain = SenderKeyChain::deserialize(state);
  REQUIRE(chain.ok());
  CHECK(hex(chain->distribution().view()) == hex(vec("sender.distribution")));

  const std::string conv = "g:00112233445566778899aabbccddeeff";
  CHECK(vec("sender.ad") == "parley-group-v1\n" + conv + "\nalice@a.example\n7");
  wire::MapWriter inner;
  inner.add("group", conv).add_bin("text", "hello group");
  CHECK(hex(inner.finish()) == hex(vec("sender.inner")));
  auto msg = chain->encrypt(pad_message(vec("sender.inner")), vec("sender.ad"));
  REQUIRE(msg.ok());
  CHECK(hex(*msg) == hex(vec("sender.message")));
  auto receiver = SenderKeyReceiver::from_distribution(vec("sender.distribution"));
  REQUIRE(receiver.ok());
  auto plain = receiver->decrypt(vec("sender.message"), vec("sender.ad"));
  REQUIRE(plain.ok());
  CHECK(*unpad_message(plain->view()) == vec("sender.inner"));

  client::GroupBody body;
  body.sender_device = 7;
  body.message = vec("sender.message");
  CHECK(hex(body.encode()) == hex(vec("group.body")));
}

TEST_CASE("spec vectors: a signed group event and the transaction that carries it") {
  init();
  conv::Event e;
  e.conv = "g:00112233445566778899aabbccddeeff";
  e.origin = "a.example";
  e.epoch = 0;
  e.seq = 2;
  e.clock = {{"a.example#0", 2}, {"b.example#0", 1}};
  e.kind = conv::Kind::kMessage;
  e.author = "alice@a.example";
  e.body = vec("group.body");
  e.wall_ms = 1800000000000;
  CHECK(hex(e.encode()) == hex(vec("event.bytes")));
  CHECK(e.id() == hex(vec("event.id")));
  REQUIRE(conv::Event::decode(vec("event.bytes")).ok());

  // The origin node's key: the RFC 8032 section 7.1 TEST 1 secret, as in federation.md section 2.
  auto node_key = SigningKey::from_seed(
      *hex_decode("9d61b19deffd5a60ba844af492ec2cc44449c5697b326919703bac031cae7f60"));
  REQUIRE(node_key.ok());
  const auto signed_event = conv::sign_event(e, *node_key);
  CHECK(hex(signed_event.signature) == hex(vec("event.sig")));
  // Signed over the id as 64 lowercase hex characters, not its 32 raw bytes.
  CHECK(verify_signature(node_key->public_key(), "parley-conv-event-v1\n" + e.id(),
                         vec("event.sig")));
  CHECK(hex(signed_event.encode()) == hex(vec("event.signed")));
  auto decoded = conv::SignedEvent::decode(vec("event.signed"));
  REQUIRE(decoded.ok());
  CHECK(decoded->verify(node_key->public_key()));

  wire::MapWriter payload;
  payload.add("type", "conv").add_bin("ev", signed_event.encode());
  federation::Transaction txn{"a.example", 0, {{1, payload.finish()}}};
  CHECK(hex(federation::encode_transaction(txn)) == hex(vec("transaction.body")));
  auto parsed = federation::parse_transaction(vec("transaction.body"));
  REQUIRE(parsed.ok());
  CHECK(parsed->events.at(0).payload == txn.events[0].payload);
}
