// Fuzz target: the end-to-end parsers of bytes that arrive through a node — device certificates,
// signed prekeys, device lists, ratchet headers and ciphertexts, sender-key distributions and
// messages, padding — and ratchet state as
// read back from a client's store.
#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "parley/crypto/group.h"
#include "parley/crypto/identity.h"
#include "parley/crypto/ratchet.h"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  namespace c = parley::crypto;
  static const bool ready = c::init();
  static const std::string key(32, '\x42');
  static std::optional<c::RatchetSession> session;
  if (!ready) return 0;
  if (!session) {
    const auto spk = c::DhKeyPair::from_private(std::string(32, '\x07')).value();
    const auto id = c::DhKeyPair::from_private(std::string(32, '\x09')).value();
    c::X3dhStart start{c::SecretBytes(std::string(32, '\x01')), id.public_key() + id.public_key(),
                       std::string(32, '\x03')};
    session = c::RatchetSession::responder(start, spk);
  }
  const std::string_view bytes(reinterpret_cast<const char*>(data), size);
  (void)c::parse_device_cert(bytes);
  (void)c::parse_signed_prekey(bytes, key);
  (void)c::parse_device_list(bytes, key, "a@b.example");
  (void)c::unpad_message(bytes);
  (void)c::RatchetSession::deserialize(bytes);
  (void)c::SenderKeyReceiver::from_distribution(bytes);
  (void)c::SenderKeyReceiver::deserialize(bytes);
  (void)c::SenderKeyChain::deserialize(bytes);
  static std::optional<c::SenderKeyReceiver> group;
  if (!group) {
    group =
        c::SenderKeyReceiver::from_distribution(c::SenderKeyChain::create().distribution().view())
            .value();
  }
  (void)group->decrypt(bytes, "ad");
  if (size >= 52) {
    c::RatchetSession copy = *session;
    (void)copy.decrypt(bytes.substr(0, 52), bytes.substr(52));
  }
  return 0;
}
