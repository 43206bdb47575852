// Who speaks for a user (spec/crypto.md section 2): device certificates, signed prekeys, the
// device list signed by the user's identity key, and safety numbers. Encodings are canonical
// msgpack; every parser here takes untrusted bytes (they come through a node) and checks every
// signature before returning anything.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "parley/crypto/box.h"
#include "parley/crypto/sign.h"
#include "parley/result.h"

namespace parley::crypto {

// A device's self-description, signed by its own signing key (proof of possession):
// {"v":1, "sign":<32>, "dh":<32>, "sig":Sign(sign, "parley-device-cert-v1\n" || sign || dh)}.
struct DeviceCert {
  std::string signing_key;  // Ed25519 public
  std::string dh_key;       // X25519 public (IK in X3DH)
};
std::string encode_device_cert(const SigningKey& device, const DhKeyPair& dh);
Result<DeviceCert> parse_device_cert(std::string_view bytes);

// {"id":<uint>, "key":<32>, "sig":Sign(device, signed_prekey_input(id, key))}.
struct SignedPrekey {
  std::uint64_t id = 0;
  std::string public_key;
};
std::string encode_signed_prekey(const SigningKey& device, std::uint64_t id,
                                 const DhKeyPair& prekey);
Result<SignedPrekey> parse_signed_prekey(std::string_view bytes,
                                         std::string_view device_signing_key);

// The devices of a user, versioned, signed by the identity key:
// {"list":<bin: canonical {"v":1,"user":..,"version":..,"devices":[{"device","sign","dh"}…]}>,
//  "sig":Sign(identity, "parley-device-list-v1\n" || list)}.
struct ListedDevice {
  std::uint64_t device = 0;  // the node's device id
  std::string signing_key;
  std::string dh_key;
};
struct DeviceList {
  std::string user;  // address
  std::uint64_t version = 0;
  std::vector<ListedDevice> devices;
  const ListedDevice* find(std::uint64_t device) const;
};
std::string encode_device_list(const DeviceList& list, const SigningKey& identity);
// Errors: "malformed" (structure), "bad_signature", "wrong_user".
Result<DeviceList> parse_device_list(std::string_view bytes, std::string_view identity_key,
                                     std::string_view expected_user);

// 60 digits in 12 groups of 5 that both users see the same: per user, 30 digits from 5200
// iterations of SHA-512 over its identity key and address; the two halves in address order.
std::string safety_number(std::string_view address_a, std::string_view identity_a,
                          std::string_view address_b, std::string_view identity_b);

}  // namespace parley::crypto
