#include "parley/federation/key_document.h"

#include <algorithm>

#include "parley/message.h"

namespace parley::federation {

namespace {

constexpr std::string_view kContext = "parley-key-document-v1\n";
constexpr std::size_t kMaxKeys = 64;

std::string signed_bytes(std::string_view doc) {
  std::string s(kContext);
  s.append(doc);
  return s;
}

Error malformed(const std::string& why) {
  return make_error("malformed_key_document", "key document: " + why);
}

}  // namespace

const NodeKey* KeyDocument::current() const {
  for (const auto& k : keys) {
    if (k.until_ms == 0) return &k;
  }
  return nullptr;
}

Status KeyDocument::valid_at(std::string_view public_key, std::int64_t ts_ms) const {
  for (const auto& k : keys) {
    if (k.public_key != public_key) continue;
    if (ts_ms < k.from_ms) break;
    if (k.until_ms != 0 && ts_ms >= k.until_ms) {
      return make_error("unknown_key", "key of " + name + " had expired at that time");
    }
    return ok_status();
  }
  return make_error("unknown_key", "not a key of " + name + " at that time");
}

std::string endorsement_input(std::string_view name, std::string_view new_public_key) {
  std::string s("parley-key-rotation-v1\n");
  s.append(name);
  s.push_back('\n');
  s.append(crypto::format_public_key(std::string(new_public_key)));
  return s;
}

Status KeyDocument::continues_from(std::string_view pinned) const {
  std::vector<const NodeKey*> order;
  for (const auto& k : keys) order.push_back(&k);
  std::stable_sort(order.begin(), order.end(),
                   [](const NodeKey* a, const NodeKey* b) { return a->from_ms < b->from_ms; });
  std::size_t i = 0;
  while (i < order.size() && order[i]->public_key != pinned) ++i;
  if (i == order.size()) {
    return make_error("unknown_key",
                      "the key document of " + name + " does not list the pinned key");
  }
  for (; i + 1 < order.size(); ++i) {
    const NodeKey& next = *order[i + 1];
    if (next.prev_sig.size() != 64 ||
        !crypto::verify_signature(order[i]->public_key, endorsement_input(name, next.public_key),
                                  next.prev_sig)) {
      return make_error("unknown_key", "key " + crypto::format_public_key(next.public_key) +
                                           " of " + name + " is not endorsed by the key before it");
    }
  }
  if (order.back()->until_ms != 0) {
    return make_error("unknown_key", "the newest key of " + name + " is not its current key");
  }
  return ok_status();
}

namespace {

// The canonical `doc` bytes of a document (spec/federation.md section 1).
std::string encode_body(const KeyDocument& doc) {
  wire::ArrayWriter keys;
  for (const auto& k : doc.keys) {
    wire::MapWriter e;
    e.add("key", crypto::format_public_key(k.public_key))
        .add("from_ms", k.from_ms)
        .add("until_ms", k.until_ms);
    if (!k.prev_sig.empty()) e.add_bin("prev_sig", k.prev_sig);
    keys.push(e);
  }
  wire::MapWriter body;
  body.add("v", 1).add("name", doc.name).add("keys", keys);
  return body.finish();
}

std::string outer_map(std::string_view doc_bytes, std::string_view sig) {
  wire::MapWriter outer;
  outer.add_bin("doc", doc_bytes).add_bin("sig", sig);
  return outer.finish();
}

}  // namespace

std::string sign_key_document(std::string_view doc_bytes, const crypto::SigningKey& key) {
  return outer_map(doc_bytes, key.sign(signed_bytes(doc_bytes)));
}

Result<std::string> encode_key_document(const KeyDocument& doc, const crypto::SigningKey& current) {
  const NodeKey* cur = doc.current();
  if (!cur || cur->public_key != current.public_key()) {
    return make_error("bad_argument", "the signing key must be the document's current key");
  }
  return sign_key_document(encode_body(doc), current);
}

Result<KeyDocument> parse_key_document(std::string_view bytes, std::string_view expected_name) {
  if (bytes.size() > 64 * 1024) return malformed("too large");
  auto outer = wire::Message::parse(bytes);
  if (!outer.ok()) return malformed(outer.error().message);
  auto doc_bytes = outer->root().bin("doc", 32 * 1024);
  auto sig = outer->root().bin("sig", 64);
  if (!doc_bytes.ok() || !sig.ok() || sig->size() != 64) return malformed("needs doc and sig");
  auto body = wire::Message::parse(*doc_bytes);
  if (!body.ok()) return malformed(body.error().message);
  const wire::View v = body->root();
  if (auto ver = v.uint("v"); !ver.ok() || *ver != 1) return malformed("unsupported version");
  KeyDocument doc;
  auto name = v.str("name", 253);
  if (!name.ok()) return malformed(name.error().message);
  doc.name = std::move(name).value();
  auto keys = v.array("keys");
  if (!keys.ok() || keys->empty() || keys->size() > kMaxKeys) return malformed("bad key list");
  for (const auto& e : *keys) {
    auto key = e.str("key", 128);
    auto from = e.sint("from_ms");
    auto until = e.sint("until_ms");
    if (!key.ok() || !from.ok() || !until.ok()) return malformed("bad key entry");
    if (*from < 0 || *until < 0) return malformed("key times are not negative");
    auto raw = crypto::parse_public_key(*key);
    if (!raw.ok()) return malformed(raw.error().message);
    std::string prev_sig;
    if (e.has("prev_sig")) {
      auto ps = e.bin("prev_sig", 64);
      if (!ps.ok() || ps->size() != 64) return malformed("prev_sig must be 64 bytes");
      prev_sig = std::move(ps).value();
    }
    doc.keys.push_back({std::move(raw).value(), *from, *until, std::move(prev_sig)});
  }
  int current = 0;
  for (const auto& k : doc.keys) current += k.until_ms == 0;
  if (current != 1) return malformed("exactly one key must be current");
  // One document, one encoding: extra or reordered fields, longer integer or length forms and
  // duplicate keys all parse above but are not what the spec's structure encodes to.
  if (encode_body(doc) != *doc_bytes || outer_map(*doc_bytes, *sig) != bytes) {
    return malformed("not in canonical form");
  }
  if (!crypto::verify_signature(doc.current()->public_key, signed_bytes(*doc_bytes), *sig)) {
    return make_error("bad_signature", "the key document's signature does not verify");
  }
  if (doc.name != expected_name) {
    return make_error("wrong_name", "key document names " + doc.name + ", expected " +
                                        std::string(expected_name));
  }
  return doc;
}

}  // namespace parley::federation
