// Device certificates, signed prekeys, identity-signed device lists and safety numbers
// (crypto/identity.h): what verifies, and each forgery a node could attempt.
#include <catch2/catch.hpp>
#include <set>

#include "parley/crypto/identity.h"

using namespace parley::crypto;

TEST_CASE("device certificates and signed prekeys verify; altered ones do not") {
  init();
  const auto device = SigningKey::generate();
  const auto dh = DhKeyPair::generate();
  auto cert = parse_device_cert(encode_device_cert(device, dh));
  REQUIRE(cert.ok());
  CHECK(cert->signing_key == device.public_key());
  CHECK(cert->dh_key == dh.public_key());
  std::string forged = encode_device_cert(device, dh);
  forged[forged.find(dh.public_key())] ^= 1;  // a node swapping in its own DH key
  CHECK(parse_device_cert(forged).error().code == "bad_signature");
  CHECK(parse_device_cert("\x80").error().code == "malformed");

  const auto spk = DhKeyPair::generate();
  const std::string blob = encode_signed_prekey(device, 7, spk);
  auto parsed = parse_signed_prekey(blob, device.public_key());
  REQUIRE(parsed.ok());
  CHECK(parsed->id == 7);
  CHECK(parsed->public_key == spk.public_key());
  CHECK(parse_signed_prekey(blob, SigningKey::generate().public_key()).error().code ==
        "bad_signature");
}

TEST_CASE("device lists: signed by the identity key, for one user, nothing inserted") {
  init();
  const auto identity = SigningKey::generate();
  const auto d1 = SigningKey::generate(), d2 = SigningKey::generate();
  const auto x1 = DhKeyPair::generate(), x2 = DhKeyPair::generate();
  DeviceList list{"bob@b.example",
                  3,
                  {{11, d1.public_key(), x1.public_key()}, {12, d2.public_key(), x2.public_key()}}};
  const std::string blob = encode_device_list(list, identity);
  auto parsed = parse_device_list(blob, identity.public_key(), "bob@b.example");
  REQUIRE(parsed.ok());
  CHECK(parsed->version == 3);
  REQUIRE(parsed->find(12) != nullptr);
  CHECK(parsed->find(12)->dh_key == x2.public_key());
  CHECK(parsed->find(13) == nullptr);
  CHECK(parse_device_list(blob, identity.public_key(), "eve@b.example").error().code ==
        "wrong_user");
  // A node (or anyone without the identity key) adding a device: its own signature does not do.
  DeviceList inserted = list;
  inserted.devices.push_back({13, SigningKey::generate().public_key(), x1.public_key()});
  const auto node_key = SigningKey::generate();
  CHECK(parse_device_list(encode_device_list(inserted, node_key), identity.public_key(),
                          "bob@b.example")
            .error()
            .code == "bad_signature");
  std::string flipped = blob;
  flipped[flipped.size() - 70] ^= 1;
  CHECK_FALSE(parse_device_list(flipped, identity.public_key(), "bob@b.example").ok());
}

TEST_CASE("safety numbers: same on both sides, different for different keys") {
  init();
  const auto a = SigningKey::generate(), b = SigningKey::generate(), c = SigningKey::generate();
  const auto ab = safety_number("alice@a.example", a.public_key(), "bob@b.example", b.public_key());
  CHECK(ab == safety_number("bob@b.example", b.public_key(), "alice@a.example", a.public_key()));
  CHECK(ab.size() == 71);  // 12 groups of 5 digits and 11 spaces
  for (std::size_t i = 0; i < ab.size(); ++i) {
    CHECK((i % 6 == 5 ? ab[i] == ' ' : (ab[i] >= '0' && ab[i] <= '9')));
  }
  CHECK(ab != safety_number("alice@a.example", a.public_key(), "bob@b.example", c.public_key()));
  // Only the other side's half changes when its key changes.
  const auto ac = safety_number("alice@a.example", a.public_key(), "bob@b.example", c.public_key());
  CHECK(ab.substr(0, 35) == ac.substr(0, 35));
}
