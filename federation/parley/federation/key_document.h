// Node key documents (spec/federation.md, "Key documents"), served at GET /federation/v1/key.
//
// The document is a msgpack map {"doc": bin, "sig": bin}: `doc` holds the exact canonical bytes of
// {"v":1,"name":…,"keys":[{"key":"ed25519:…","from_ms":…,"until_ms":…[,"prev_sig":bin]}…]} and
// `sig` is the Ed25519 signature, by the current key, of "parley-key-document-v1\n" followed by
// those bytes. Exactly one key is current (until_ms = 0); old keys stay listed so signatures made
// before they expired still verify. A key made by `parleyd key rotate` carries `prev_sig`, its
// endorsement by the key it replaced, so a peer that pinned an older key can follow the chain.
// Trust comes from pinning, never from the document alone.
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
  std::string prev_sig;       // 64 bytes: endorsement by the previous key, or empty
};

// The bytes a rotated-out key signs to endorse its successor:
// "parley-key-rotation-v1\n" NAME "\n" "ed25519:<b64u of the new key>".
std::string endorsement_input(std::string_view name, std::string_view new_public_key);

struct KeyDocument {
  std::string name;
  std::vector<NodeKey> keys;

  const NodeKey* current() const;
  // ok when `public_key` was a key of this node at `ts_ms`; "unknown_key" otherwise.
  Status valid_at(std::string_view public_key, std::int64_t ts_ms) const;
  // ok when `pinned` is listed and every later key (in from_ms order) is endorsed by the one
  // before it, up to the current key: the document is a continuation of what was pinned.
  // "unknown_key" otherwise.
  Status continues_from(std::string_view pinned) const;
};

// Encodes and signs with `current`, which must be the document's current key.
Result<std::string> encode_key_document(const KeyDocument& doc, const crypto::SigningKey& current);
// The served map {"doc": doc_bytes, "sig": …} for `doc_bytes` as given, signed by `key`
// (encode_key_document's last step; tests use it to sign documents that are not canonical).
std::string sign_key_document(std::string_view doc_bytes, const crypto::SigningKey& key);
// Parses, checks the structure and the self-signature, and that the name is `expected_name`.
// Strict: both maps must be exactly the canonical bytes encode_key_document would produce (field
// order, no extra fields, shortest integers and lengths), so a document has one encoding only.
// Errors: "malformed_key_document", "bad_signature", "wrong_name".
Result<KeyDocument> parse_key_document(std::string_view bytes, std::string_view expected_name);

}  // namespace parley::federation
