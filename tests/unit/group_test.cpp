// Sender keys (crypto/group.h): group messages encrypted once, signed by the sender, readable by
// members who received the chain, and unreadable by a member removed before a rekey.
#include <catch2/catch.hpp>
#include <string>
#include <vector>

#include "parley/crypto/group.h"

using namespace parley::crypto;

namespace {
std::string text(const SecretBytes& s) { return std::string(s.view()); }
const std::string kAd = "group:g1|alice@a.example|1";
}  // namespace

TEST_CASE("sender keys: members read in any order, once; forgeries and tampering refused") {
  init();
  auto alice = SenderKeyChain::create();
  auto bob = *SenderKeyReceiver::from_distribution(alice.distribution().view());
  auto carol = *SenderKeyReceiver::from_distribution(alice.distribution().view());
  std::vector<std::string> sent;
  for (int i = 0; i < 5; ++i) sent.push_back(*alice.encrypt("g" + std::to_string(i), kAd));
  CHECK(sender_key_chain_of(sent[0]).value() == alice.chain_id());
  for (int i = 0; i < 5; ++i) CHECK(text(*bob.decrypt(sent[i], kAd)) == "g" + std::to_string(i));
  for (int i : {4, 1, 3}) CHECK(text(*carol.decrypt(sent[i], kAd)) == "g" + std::to_string(i));
  CHECK(carol.decrypt(sent[4], kAd).error().code == "replayed");
  CHECK(carol.decrypt(sent[1], kAd).error().code == "replayed");
  CHECK(text(*carol.decrypt(sent[0], kAd)) == "g0");  // late, its key was kept

  auto next = *alice.encrypt("g5", kAd);
  std::string tampered = next;
  tampered[30] ^= 1;
  CHECK(bob.decrypt(tampered, kAd).error().code == "bad_signature");
  CHECK(bob.decrypt(next, "another group").error().code == "bad_ciphertext");
  // Bob knows Alice's chain key, but cannot sign as Alice: a forged message is refused.
  auto bob_forger = SenderKeyChain::create();
  auto forged = *bob_forger.encrypt("I am alice", kAd);
  forged.replace(4, 16, alice.chain_id());
  CHECK(bob.decrypt(forged, kAd).error().code == "bad_signature");
  CHECK(text(*bob.decrypt(next, kAd)) == "g5");  // the failures changed nothing
  CHECK(bob.decrypt("short", kAd).error().code == "malformed");
}

TEST_CASE("sender keys: a removed member cannot read messages after the rekey") {
  init();
  auto alice = SenderKeyChain::create();
  auto bob = *SenderKeyReceiver::from_distribution(alice.distribution().view());
  auto carol = *SenderKeyReceiver::from_distribution(alice.distribution().view());
  CHECK(text(*carol.decrypt(*alice.encrypt("before", kAd), kAd)) == "before");
  // Carol is removed: Alice starts a new chain and gives it to Bob only.
  alice = SenderKeyChain::create();
  auto bob_new = *SenderKeyReceiver::from_distribution(alice.distribution().view());
  const auto after = *alice.encrypt("after removal", kAd);
  CHECK(text(*bob_new.decrypt(after, kAd)) == "after removal");
  CHECK(carol.decrypt(after, kAd).error().code == "unknown_chain");
  CHECK(bob.decrypt(after, kAd).error().code == "unknown_chain");
}

TEST_CASE("sender keys: limits and serialized state") {
  init();
  auto alice = SenderKeyChain::create();
  auto bob = *SenderKeyReceiver::from_distribution(alice.distribution().view());
  std::vector<std::string> sent;
  for (int i = 0; i < 1002; ++i) sent.push_back(*alice.encrypt("x", kAd));
  CHECK(bob.decrypt(sent[1001], kAd).error().code == "too_many_skipped");
  CHECK(text(*bob.decrypt(sent[1000], kAd)) == "x");
  auto bob2 = SenderKeyReceiver::deserialize(bob.serialize().view());
  REQUIRE(bob2.ok());
  CHECK(text(*bob2->decrypt(sent[999], kAd)) == "x");  // a skipped key survived
  CHECK(text(*bob2->decrypt(sent[1001], kAd)) == "x");
  auto alice2 = SenderKeyChain::deserialize(alice.serialize().view());
  REQUIRE(alice2.ok());
  CHECK(text(*bob2->decrypt(*alice2->encrypt("continued", kAd), kAd)) == "continued");
  // A member joining later gets the chain from the current iteration on only.
  auto dave = *SenderKeyReceiver::from_distribution(alice2->distribution().view());
  CHECK(dave.decrypt(sent[0], kAd).error().code == "replayed");
  CHECK(SenderKeyReceiver::deserialize("x").error().code == "bad_state");
  CHECK(SenderKeyReceiver::from_distribution("PSD1").error().code == "malformed");
}
