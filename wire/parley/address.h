// User addresses ("local@domain") and conversation ids, as defined in spec/client-protocol.md
// sections 2 and 6. Pure functions; thread-safe.
#pragma once

#include <string>
#include <string_view>

#include "parley/result.h"

namespace parley::wire {

struct Address {
  std::string local;
  std::string domain;
  std::string str() const { return local + "@" + domain; }
  bool operator==(const Address&) const = default;
};

// Lower-cases and validates; "bad_request" with a reason when the text is not an address.
Result<Address> parse_address(std::string_view text);
// Validates a local part alone (user names given to `parleyd user add`).
Status validate_local_part(std::string_view local);
// Validates a node name (lower-case DNS name, 1..253 chars).
Status validate_domain(std::string_view domain);

// "dm:" + hex(BLAKE2b-128("parley-dm-v1" 0x00 min(a,b) 0x00 max(a,b))), a and b lower-cased.
std::string dm_conversation_id(std::string_view address_a, std::string_view address_b);

}  // namespace parley::wire
