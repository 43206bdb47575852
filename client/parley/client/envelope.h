// The end-to-end envelope a 1:1 message body is (spec/crypto.md section 8): one ratchet
// ciphertext per recipient device. Pure codec of untrusted bytes (they come through the node).
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "parley/result.h"

namespace parley::client {

struct EnvelopeEntry {
  std::string user;
  std::uint64_t device = 0;
  std::string header, ciphertext;
  std::string prekey;  // the X3DH start ("x"), until the peer answered; empty otherwise
};

struct Envelope {
  std::uint64_t sender_device = 0;
  std::vector<EnvelopeEntry> entries;

  const EnvelopeEntry* entry_for(const std::string& user, std::uint64_t device) const;
  std::string encode() const;
  // "bad_request" for anything that is not exactly the structure of spec/crypto.md section 8.
  static Result<Envelope> decode(std::string_view bytes);
};

// The body of a group message (spec/crypto.md section 8a): a sender-key message, and the
// sender's chain for the devices that do not hold it yet, as an envelope of pairwise
// ciphertexts. Without a sender-key message it is a key handover: only the chain, for members
// whose node was down when the sender wrote.
struct GroupBody {
  std::uint64_t sender_device = 0;
  std::string message;           // crypto.md section 6 ("PSK1" ...); empty: a key handover
  std::optional<Envelope> dist;  // entries over {"group", "skd"}

  std::string encode() const;
  // "bad_request" for anything that is not exactly that structure.
  static Result<GroupBody> decode(std::string_view bytes);
};

}  // namespace parley::client
