// parley-fedtool: the signing half of the fake federation node used by the integration tests
// (tests/integration/fakenode.py). It crafts what a hostile or buggy node could send: keys, key
// documents with or without rotation endorsements, and Authorization headers over arbitrary
// bytes. Test-only; never installed.
//
//   parley-fedtool keygen FILE                      writes a key, prints its public key
//   parley-fedtool keydoc NAME [--no-endorse] [--form FORM] KEYFILE...
//                                                   key document (oldest key first, last current);
//                                                   FORM canonical (default), or a validly signed
//                                                   non-canonical one: extra_field, reordered,
//                                                   long_int
//   parley-fedtool sign KEYFILE METHOD PATH ORIGIN DEST [TS_MS]   body on stdin, header on stdout
//   parley-fedtool sign-event KEYFILE valid|zero    a group event's fields (a msgpack map) on
//                                                   stdin, the signed event ({"event","sig"}:
//                                                   canonical, signed or all-zero) on stdout
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <iostream>
#include <iterator>
#include <optional>
#include <string>
#include <vector>

#include "parley/conv/replica.h"
#include "parley/crypto/secret.h"
#include "parley/crypto/sign.h"
#include "parley/federation/key_document.h"
#include "parley/federation/signing.h"
#include "parley/message.h"

namespace {

using namespace parley;

std::int64_t now_ms() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

int fail(const std::string& why) {
  std::cerr << "parley-fedtool: " << why << "\n";
  return 1;
}

crypto::SigningKey load(const std::string& path) {
  auto k = crypto::load_signing_key(path);
  if (!k.ok()) {
    std::cerr << "parley-fedtool: " << k.error().message << "\n";
    std::exit(1);
  }
  return std::move(k).value();
}

// The document's `doc` bytes in a structure the spec does not allow (or canonical), signed by
// `current` all the same: what a sloppy or hostile node could serve.
std::optional<std::string> document_in_form(const federation::KeyDocument& doc,
                                            const crypto::SigningKey& current,
                                            const std::string& form) {
  if (form == "canonical") return federation::encode_key_document(doc, current).value_or("");
  wire::ArrayWriter keys;
  for (const auto& k : doc.keys) {
    wire::MapWriter e;
    e.add("key", crypto::format_public_key(k.public_key))
        .add("from_ms", k.from_ms)
        .add("until_ms", k.until_ms);
    if (!k.prev_sig.empty()) e.add_bin("prev_sig", k.prev_sig);
    keys.push(e);
  }
  std::string body;
  if (form == "extra_field") {
    body =
        wire::MapWriter().add("v", 1).add("name", doc.name).add("keys", keys).add("x", 1).finish();
  } else if (form == "reordered") {
    body = wire::MapWriter().add("name", doc.name).add("v", 1).add("keys", keys).finish();
  } else if (form == "long_int") {
    // "v": 1 as a uint64 (0xcf and eight bytes) instead of a positive fixint.
    const std::string rest = wire::MapWriter().add("name", doc.name).add("keys", keys).finish();
    body = std::string("\x83\xa1v\xcf", 4) + std::string(7, '\0') + "\x01" + rest.substr(1);
  } else {
    return std::nullopt;
  }
  return federation::sign_key_document(body, current);
}

}  // namespace

int main(int argc, char** argv) {
  if (!crypto::init()) return fail("libsodium init failed");
  const std::vector<std::string> args(argv + 1, argv + argc);
  if (args.size() == 2 && args[0] == "keygen") {
    const auto key = crypto::SigningKey::generate();
    if (auto s = crypto::save_signing_key(args[1], key); !s.ok()) return fail(s.error().message);
    std::cout << crypto::format_public_key(key.public_key()) << "\n";
    return 0;
  }
  if (args.size() >= 3 && args[0] == "keydoc") {
    bool endorse = true;
    std::string form = "canonical";
    std::vector<crypto::SigningKey> keys;
    for (std::size_t i = 2; i < args.size(); ++i) {
      if (args[i] == "--no-endorse") {
        endorse = false;
      } else if (args[i] == "--form" && i + 1 < args.size()) {
        form = args[++i];
      } else {
        keys.push_back(load(args[i]));
      }
    }
    if (keys.empty()) return fail("keydoc needs key files");
    federation::KeyDocument doc{args[1], {}};
    const std::int64_t now = now_ms();
    const auto n = static_cast<std::int64_t>(keys.size());
    for (std::int64_t i = 0; i < n; ++i) {
      federation::NodeKey k{keys[i].public_key(), now - (n - i) * 60'000,
                            i + 1 == n ? 0 : now - (n - i - 1) * 60'000, ""};
      if (i > 0 && endorse) {
        k.prev_sig = keys[i - 1].sign(federation::endorsement_input(args[1], k.public_key));
      }
      doc.keys.push_back(k);
    }
    auto bytes = document_in_form(doc, keys.back(), form);
    if (!bytes || bytes->empty()) return fail("cannot write a key document in form " + form);
    std::fwrite(bytes->data(), 1, bytes->size(), stdout);
    return 0;
  }
  if ((args.size() == 6 || args.size() == 7) && args[0] == "sign") {
    const auto key = load(args[1]);
    const std::string body((std::istreambuf_iterator<char>(std::cin)),
                           std::istreambuf_iterator<char>());
    const std::int64_t ts = args.size() == 7 ? std::stoll(args[6]) : now_ms();
    std::cout << federation::sign_request(key, args[2], args[3], args[4], args[5], ts,
                                          crypto::random_bytes(16), body)
              << "\n";
    return 0;
  }
  if (args.size() == 3 && args[0] == "sign-event") {
    const auto key = load(args[1]);
    const std::string bytes((std::istreambuf_iterator<char>(std::cin)),
                            std::istreambuf_iterator<char>());
    // Any msgpack map with the event's fields (Python's encoder is not canonical): re-encoded
    // canonically here, so the hostile bits are only what the test put in the fields.
    auto msg = wire::Message::parse(bytes);
    if (!msg.ok()) return fail(msg.error().message);
    const auto v = msg->root();
    conv::Event e;
    auto clock = v.map("clock");
    auto kind = conv::parse_kind(v.str("kind", 16).value_or(""));
    if (!clock.ok() || !kind.ok()) return fail("sign-event: clock or kind missing");
    e.conv = v.str("conv", 128).value_or("");
    e.origin = v.str("origin", 253).value_or("");
    e.epoch = v.uint("epoch").value_or(0);
    e.seq = v.uint("seq").value_or(0);
    for (const auto& actor : clock->keys().value_or(std::vector<std::string>{})) {
      e.clock[actor] = clock->uint(actor).value_or(0);
    }
    e.kind = *kind;
    e.author = v.str("author", 320).value_or("");
    e.target = v.str("target", 320).value_or("");
    e.role = v.str("role", 16).value_or("");
    e.body = v.bin("body", 256 * 1024).value_or("");
    e.wall_ms = v.sint("wall_ms").value_or(0);
    conv::SignedEvent signed_event = conv::sign_event(e, key);
    if (args[2] == "zero") signed_event.signature.assign(64, '\0');
    const std::string out = signed_event.encode();
    std::fwrite(out.data(), 1, out.size(), stdout);
    return 0;
  }
  return fail(
      "usage: keygen FILE | keydoc NAME [--no-endorse] [--form FORM] KEYFILE... | "
      "sign KEYFILE METHOD PATH ORIGIN DEST [TS_MS] | sign-event KEYFILE valid|zero");
}
