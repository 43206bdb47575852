// Node key documents (spec/federation.md, "Key documents"), served at GET /federation/v1/key.
//
// The document is a msgpack map {"doc": bin, "sig": bin}: `doc` holds the exact canonical bytes of
// {"v":1,"name":…,"keys":[{"key":"ed25519:…","from_ms":…,"until_ms":…}…]} and `sig` is the
// Ed25519 signature, by the current key, of "parley-key-document-v1\n" followed by those bytes.
// Exactly one key is current (until_ms = 0); old keys stay listed so signatures made before
// they expired still verify. Trust in the current key comes from pinning, not from the document.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "parley/crypto/sign.h"
#include "parley/result.h"

namespace parley::federation {

struct NodeKey {
  std::string public_key;     // 32 raw bytes
  std::int64_t from_ms = 0;   // first use
  std::int64_t until_ms = 0;  // expiry; 0 for the current key
};

struct KeyDocument {
  std::string name;
  std::vector<NodeKey> keys;

  const NodeKey* current() const;
  // ok when `public_key` was a key of this node at `ts_ms`; "unknown_key" otherwise.
  Status valid_at(std::string_view public_key, std::int64_t ts_ms) const;
};

// Encodes and signs with `current`, which must be the document's current key.
Result<std::string> encode_key_document(const KeyDocument& doc, const crypto::SigningKey& current);
// Parses, checks the structure and the self-signature, and that the name is `expected_name`.
// Errors: "malformed_key_document", "bad_signature", "wrong_name".
Result<KeyDocument> parse_key_document(std::string_view bytes, std::string_view expected_name);

}  // namespace parley::federation
