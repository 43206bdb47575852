#include "parley/crypto/identity.h"

#include <sodium.h>

#include <algorithm>

#include "parley/crypto/ratchet.h"
#include "parley/message.h"

namespace parley::crypto {

namespace {

constexpr std::string_view kCertContext = "parley-device-cert-v1\n";
constexpr std::string_view kListContext = "parley-device-list-v1\n";
constexpr std::size_t kMaxDevices = 100;

Error malformed(const std::string& what) { return make_error("malformed", what); }

std::string cat(std::string_view a, std::string_view b, std::string_view c = {}) {
  std::string s(a);
  s.append(b);
  s.append(c);
  return s;
}

}  // namespace

std::string encode_device_cert(const SigningKey& device, const DhKeyPair& dh) {
  wire::MapWriter m;
  m.add("v", 1)
      .add_bin("sign", device.public_key())
      .add_bin("dh", dh.public_key())
      .add_bin("sig", device.sign(cat(kCertContext, device.public_key(), dh.public_key())));
  return m.finish();
}

Result<DeviceCert> parse_device_cert(std::string_view bytes) {
  auto msg = wire::Message::parse(bytes, wire::Limits{4, 8, 64, 128, 2});
  if (!msg.ok()) return malformed("device certificate: " + msg.error().message);
  const auto v = msg->root();
  auto version = v.uint("v");
  auto sign = v.bin("sign", 32);
  auto dh = v.bin("dh", 32);
  auto sig = v.bin("sig", 64);
  if (!version.ok() || *version != 1 || !sign.ok() || sign->size() != 32 || !dh.ok() ||
      dh->size() != 32 || !sig.ok()) {
    return malformed("device certificate: needs v=1, sign, dh, sig");
  }
  if (!verify_signature(*sign, cat(kCertContext, *sign, *dh), *sig)) {
    return make_error("bad_signature", "device certificate signature does not verify");
  }
  return DeviceCert{std::move(sign).value(), std::move(dh).value()};
}

std::string encode_signed_prekey(const SigningKey& device, std::uint64_t id,
                                 const DhKeyPair& prekey) {
  wire::MapWriter m;
  m.add("id", id)
      .add_bin("key", prekey.public_key())
      .add_bin("sig", device.sign(signed_prekey_input(id, prekey.public_key())));
  return m.finish();
}

Result<SignedPrekey> parse_signed_prekey(std::string_view bytes,
                                         std::string_view device_signing_key) {
  auto msg = wire::Message::parse(bytes, wire::Limits{4, 8, 64, 128, 2});
  if (!msg.ok()) return malformed("signed prekey: " + msg.error().message);
  const auto v = msg->root();
  auto id = v.uint("id");
  auto key = v.bin("key", 32);
  auto sig = v.bin("sig", 64);
  if (!id.ok() || !key.ok() || key->size() != 32 || !sig.ok()) {
    return malformed("signed prekey: needs id, key, sig");
  }
  if (!verify_signature(device_signing_key, signed_prekey_input(*id, *key), *sig)) {
    return make_error("bad_signature", "signed prekey signature does not verify");
  }
  return SignedPrekey{*id, std::move(key).value()};
}

const ListedDevice* DeviceList::find(std::uint64_t device) const {
  for (const auto& d : devices) {
    if (d.device == device) return &d;
  }
  return nullptr;
}

std::string encode_device_list(const DeviceList& list, const SigningKey& identity) {
  wire::ArrayWriter devices;
  for (const auto& d : list.devices) {
    wire::MapWriter m;
    m.add("device", d.device).add_bin("sign", d.signing_key).add_bin("dh", d.dh_key);
    devices.push(m);
  }
  wire::MapWriter body;
  body.add("v", 1).add("user", list.user).add("version", list.version).add("devices", devices);
  const std::string bytes = body.finish();
  wire::MapWriter outer;
  outer.add_bin("list", bytes).add_bin("sig", identity.sign(cat(kListContext, bytes)));
  return outer.finish();
}

Result<DeviceList> parse_device_list(std::string_view bytes, std::string_view identity_key,
                                     std::string_view expected_user) {
  auto outer = wire::Message::parse(bytes, wire::Limits{4, 4, 64, 16 * 1024, 2});
  if (!outer.ok()) return malformed("device list: " + outer.error().message);
  auto list_bytes = outer->root().bin("list", 16 * 1024);
  auto sig = outer->root().bin("sig", 64);
  if (!list_bytes.ok() || !sig.ok()) return malformed("device list: needs list and sig");
  if (!verify_signature(identity_key, cat(kListContext, *list_bytes), *sig)) {
    return make_error("bad_signature", "device list signature does not verify");
  }
  auto msg = wire::Message::parse(*list_bytes, wire::Limits{kMaxDevices, 8, 320, 64, 4});
  if (!msg.ok()) return malformed("device list: " + msg.error().message);
  const auto v = msg->root();
  auto version_field = v.uint("v");
  auto user = v.str("user", 320);
  auto version = v.uint("version");
  auto devices = v.array("devices");
  if (!version_field.ok() || *version_field != 1 || !user.ok() || !version.ok() || !devices.ok()) {
    return malformed("device list: needs v=1, user, version, devices");
  }
  if (*user != expected_user) {
    return make_error("wrong_user",
                      "device list of " + *user + ", expected " + std::string(expected_user));
  }
  DeviceList out{std::move(user).value(), *version, {}};
  for (const auto& d : *devices) {
    auto id = d.uint("device");
    auto sign = d.bin("sign", 32);
    auto dh = d.bin("dh", 32);
    if (!id.ok() || !sign.ok() || sign->size() != 32 || !dh.ok() || dh->size() != 32) {
      return malformed("device list: bad device entry");
    }
    out.devices.push_back({*id, std::move(sign).value(), std::move(dh).value()});
  }
  return out;
}

namespace {

std::string fingerprint_digits(std::string_view address, std::string_view identity) {
  unsigned char h[crypto_hash_sha512_BYTES];
  const std::string first = cat("parley-safety-number-v1\n", identity, address);
  crypto_hash_sha512(h, reinterpret_cast<const unsigned char*>(first.data()), first.size());
  for (int i = 0; i < 5200; ++i) {
    std::string round(reinterpret_cast<const char*>(h), sizeof h);
    round.append(identity);
    crypto_hash_sha512(h, reinterpret_cast<const unsigned char*>(round.data()), round.size());
  }
  std::string digits;
  for (int chunk = 0; chunk < 6; ++chunk) {
    std::uint64_t v = 0;
    for (int b = 0; b < 5; ++b) v = (v << 8) | h[chunk * 5 + b];
    const std::string five = std::to_string(v % 100000);
    digits += std::string(5 - five.size(), '0') + five;
  }
  return digits;
}

}  // namespace

std::string safety_number(std::string_view address_a, std::string_view identity_a,
                          std::string_view address_b, std::string_view identity_b) {
  std::string a = fingerprint_digits(address_a, identity_a);
  std::string b = fingerprint_digits(address_b, identity_b);
  if (address_b < address_a) std::swap(a, b);
  const std::string all = a + b;
  std::string out;
  for (std::size_t i = 0; i < all.size(); i += 5) {
    if (!out.empty()) out.push_back(' ');
    out.append(all.substr(i, 5));
  }
  return out;
}

}  // namespace parley::crypto
