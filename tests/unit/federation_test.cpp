// Federation request signatures and key documents: round trips, a spec test vector, and every
// way a request must be refused.
#include <catch2/catch.hpp>

#include "parley/crypto/secret.h"
#include "parley/federation/key_document.h"
#include "parley/federation/signing.h"
#include "parley/federation/transaction.h"
#include "parley/message.h"

using namespace parley;
using namespace parley::federation;

namespace {

crypto::SigningKey rfc8032_key() {
  // RFC 8032 7.1 TEST 1 secret key, so the vector in spec/federation.md can be reproduced.
  return crypto::SigningKey::from_seed(
             *crypto::hex_decode(
                 "9d61b19deffd5a60ba844af492ec2cc44449c5697b326919703bac031cae7f60"))
      .value();
}

const std::string kNonce(16, '\x07');
constexpr std::int64_t kTs = 1'800'000'000'000;

struct Fixture {
  crypto::SigningKey key = rfc8032_key();
  KeyDocument doc{"a.example", {{key.public_key(), 0, 0}}};
  ReplayGuard replay{300'000};
  VerifyOptions opts{"b.example", kTs, 300'000};
  KeyCheck keys = [this](const std::string& origin, const std::string& pk, std::int64_t ts) {
    if (origin != doc.name) return Status(make_error("unknown_key", "unknown origin " + origin));
    return doc.valid_at(pk, ts);
  };
  std::string sign(std::string_view body = "{}", std::int64_t ts = kTs,
                   const std::string& nonce = kNonce, const std::string& dest = "b.example") {
    return sign_request(key, "PUT", "/federation/v1/send/t1", "a.example", dest, ts, nonce, body);
  }
  Result<RequestSignature> verify(const std::string& auth, std::string_view body = "{}",
                                  std::string_view path = "/federation/v1/send/t1") {
    return verify_request(auth, "PUT", path, body, opts, keys, replay);
  }
};

}  // namespace

TEST_CASE("spec test vector: signing input and Authorization header") {
  crypto::init();
  const auto key = rfc8032_key();
  const std::string input =
      signing_input("PUT", "/federation/v1/send/t1", "a.example", "b.example", kTs, kNonce, "{}");
  REQUIRE(input ==
          "parley-federation-v1\nPUT\n/federation/v1/send/t1\na.example\nb.example\n1800000000000\n"
          "07070707070707070707070707070707\n"
          "44136fa355b3678a1146ad16f7e8649e94fb4fc21fe77e8310c060f61caaff8a");
  const std::string header = sign_request(key, "PUT", "/federation/v1/send/t1", "a.example",
                                          "b.example", kTs, kNonce, "{}");
  // Ed25519 is deterministic: the whole header is fixed by the inputs.
  REQUIRE(header == PARLEY_FEDERATION_VECTOR);
}

TEST_CASE("a signed request verifies once; a replay is refused") {
  Fixture f;
  const std::string auth = f.sign();
  auto r = f.verify(auth);
  REQUIRE(r.ok());
  REQUIRE(r->origin == "a.example");
  REQUIRE(f.verify(auth).error().code == "replayed");
  REQUIRE(f.verify(f.sign("{}", kTs, std::string(16, '\x08'))).ok());  // a fresh nonce is fine
}

TEST_CASE("tampering with anything signed breaks the signature") {
  Fixture f;
  REQUIRE(f.verify(f.sign(), "{ }").error().code == "bad_signature");
  REQUIRE(f.verify(f.sign(), "{}", "/federation/v1/send/t2").error().code == "bad_signature");
  REQUIRE(verify_request(f.sign(), "GET", "/federation/v1/send/t1", "{}", f.opts, f.keys, f.replay)
              .error()
              .code == "bad_signature");
  // A forged origin: the origin is signed, so the signature fails before any key is looked up.
  std::string forged = f.sign();
  forged.replace(forged.find("origin=a.example"), 16, "origin=c.example");
  int key_checks = 0;
  KeyCheck counting = [&](const std::string& o, const std::string& pk, std::int64_t ts) {
    ++key_checks;
    return f.keys(o, pk, ts);
  };
  REQUIRE(verify_request(forged, "PUT", "/federation/v1/send/t1", "{}", f.opts, counting, f.replay)
              .error()
              .code == "bad_signature");
  REQUIRE(key_checks == 0);
  // Flipping a signature byte.
  std::string bad = f.sign("{}", kTs, std::string(16, '\x09'));
  const auto pos = bad.find("sig=") + 10;
  bad[pos] = bad[pos] == 'A' ? 'B' : 'A';
  REQUIRE(f.verify(bad).error().code == "bad_signature");
}

TEST_CASE("destination, timestamp window and unknown keys") {
  Fixture f;
  REQUIRE(f.verify(f.sign("{}", kTs, kNonce, "c.example")).error().code == "wrong_destination");
  REQUIRE(f.verify(f.sign("{}", kTs - 300'001)).error().code == "stale_timestamp");
  REQUIRE(f.verify(f.sign("{}", kTs + 300'001)).error().code == "stale_timestamp");
  REQUIRE(f.verify(f.sign("{}", kTs - 300'000)).ok());
  const auto other = crypto::SigningKey::generate();
  const std::string auth = sign_request(other, "PUT", "/federation/v1/send/t1", "a.example",
                                        "b.example", kTs, kNonce, "{}");
  REQUIRE(f.verify(auth).error().code == "unknown_key");
}

TEST_CASE("rotated keys: the old key verifies requests made before it expired") {
  Fixture f;
  const auto old_key = f.key;
  f.key = crypto::SigningKey::generate();
  f.doc.keys = {{old_key.public_key(), 0, kTs - 1000}, {f.key.public_key(), kTs - 1000, 0}};
  REQUIRE(f.verify(f.sign()).ok());
  const std::string before = sign_request(old_key, "PUT", "/federation/v1/send/t1", "a.example",
                                          "b.example", kTs - 2000, std::string(16, 'x'), "{}");
  REQUIRE(f.verify(before).ok());
  const std::string after = sign_request(old_key, "PUT", "/federation/v1/send/t1", "a.example",
                                         "b.example", kTs, std::string(16, 'y'), "{}");
  REQUIRE(f.verify(after).error().code == "unknown_key");
}

TEST_CASE("malformed Authorization headers") {
  Fixture f;
  const std::string good = f.sign();
  for (const std::string& bad :
       {std::string(""), std::string("Bearer x"), good.substr(0, good.size() - 5),
        good + ",extra=1", std::string("Parley-Sig v=2") + good.substr(good.find(",origin")),
        std::string(2000, 'P')}) {
    INFO(bad);
    REQUIRE(parse_authorization(bad).error().code == "malformed_signature");
  }
  std::string reordered = good;
  reordered.replace(reordered.find("v=1,"), 4, "");
  reordered.insert(reordered.find(",key="), ",v=1");
  REQUIRE_FALSE(parse_authorization(reordered).ok());
}

TEST_CASE("replay guard forgets after twice the window and stays bounded") {
  ReplayGuard g(1000, 2);
  REQUIRE(g.first_use("a", "n1", 0));
  REQUIRE_FALSE(g.first_use("a", "n1", 1999));
  REQUIRE(g.first_use("b", "n1", 0));
  REQUIRE_FALSE(g.first_use("c", "n1", 10));  // full of live entries: refuse, never forget
  REQUIRE(g.first_use("a", "n1", 2000));      // expired entries make room
}

TEST_CASE("key documents: round trip, self-signature, name, structure") {
  crypto::init();
  const auto current = crypto::SigningKey::generate();
  const auto old = crypto::SigningKey::generate();
  KeyDocument doc{"a.example", {{old.public_key(), 0, 500}, {current.public_key(), 500, 0}}};
  auto bytes = encode_key_document(doc, current);
  REQUIRE(bytes.ok());
  auto parsed = parse_key_document(*bytes, "a.example");
  REQUIRE(parsed.ok());
  REQUIRE(parsed->keys.size() == 2);
  REQUIRE(parsed->current()->public_key == current.public_key());
  REQUIRE(parsed->valid_at(old.public_key(), 499).ok());
  REQUIRE(parsed->valid_at(old.public_key(), 500).error().code == "unknown_key");
  REQUIRE(parse_key_document(*bytes, "b.example").error().code == "wrong_name");
  REQUIRE(encode_key_document(doc, old).error().code == "bad_argument");
  std::string tampered = *bytes;
  tampered[tampered.find("a.example")] = 'c';
  REQUIRE(parse_key_document(tampered, "c.example").error().code == "bad_signature");
  REQUIRE(parse_key_document("\x80", "a.example").error().code == "malformed_key_document");
  KeyDocument two_current{"a.example", {{current.public_key(), 0, 0}, {old.public_key(), 0, 0}}};
  auto bad = encode_key_document(two_current, current);
  REQUIRE(bad.ok());
  REQUIRE(parse_key_document(*bad, "a.example").error().code == "malformed_key_document");
}

TEST_CASE("key documents: only the canonical encoding is accepted") {
  crypto::init();
  const auto key = crypto::SigningKey::generate();
  const std::string pk = crypto::format_public_key(key.public_key());
  auto entry = [&](std::int64_t from) {
    wire::MapWriter e;
    e.add("key", pk).add("from_ms", from).add("until_ms", 0);
    return e;
  };
  auto keys_of = [](const wire::MapWriter& e) {
    wire::ArrayWriter a;
    a.push(e);
    return a;
  };
  auto refused = [](const std::string& doc_bytes, const crypto::SigningKey& by) {
    auto r = parse_key_document(sign_key_document(doc_bytes, by), "a.example");
    return !r.ok() && r.error().code == "malformed_key_document";
  };
  // The canonical form, written by hand, parses: the checks below differ from it in one way.
  const std::string canonical = wire::MapWriter()
                                    .add("v", 1)
                                    .add("name", "a.example")
                                    .add("keys", keys_of(entry(5)))
                                    .finish();
  REQUIRE(parse_key_document(sign_key_document(canonical, key), "a.example").ok());
  REQUIRE(sign_key_document(canonical, key) ==
          *encode_key_document({"a.example", {{key.public_key(), 5, 0}}}, key));

  CHECK(refused(wire::MapWriter()
                    .add("v", 1)
                    .add("name", "a.example")
                    .add("keys", keys_of(entry(5)))
                    .add("extra", "x")
                    .finish(),
                key));
  CHECK(refused(wire::MapWriter()
                    .add("name", "a.example")
                    .add("v", 1)
                    .add("keys", keys_of(entry(5)))
                    .finish(),
                key));
  // A key entry with an extra field, or its fields reordered.
  CHECK(refused(wire::MapWriter()
                    .add("v", 1)
                    .add("name", "a.example")
                    .add("keys", keys_of(entry(5).add("note", "x")))
                    .finish(),
                key));
  wire::MapWriter swapped;
  swapped.add("key", pk).add("until_ms", 0).add("from_ms", 5);
  CHECK(refused(
      wire::MapWriter().add("v", 1).add("name", "a.example").add("keys", keys_of(swapped)).finish(),
      key));
  // Integers and lengths not in their shortest form: "v" as uint64, "from_ms" 5 as int16, the
  // name as str8 where a fixstr fits.
  REQUIRE(canonical.substr(0, 4) == std::string("\x83\xa1v\x01", 4));
  CHECK(refused(
      std::string("\x83\xa1v\xcf", 4) + std::string(7, '\0') + "\x01" + canonical.substr(4), key));
  std::string wide_from = canonical;
  const auto at = wide_from.find("from_ms") + 7;
  REQUIRE(wide_from[at] == '\x05');
  wide_from.replace(at, 1, std::string("\xd1\x00\x05", 3));
  CHECK(refused(wide_from, key));
  std::string long_name = canonical;
  const auto name_at = long_name.find("a.example") - 1;
  REQUIRE(long_name[name_at] == static_cast<char>(0xa9));
  long_name.replace(name_at, 1, std::string("\xd9\x09", 2));
  CHECK(refused(long_name, key));
  // A repeated field (the second "v" would win or lose depending on the parser).
  CHECK(refused(std::string("\x84\xa1v\x01\xa1v\x01", 7) + canonical.substr(4), key));
  // Negative times, and an outer map that is not exactly {"doc", "sig"}.
  CHECK(refused(wire::MapWriter()
                    .add("v", 1)
                    .add("name", "a.example")
                    .add("keys", keys_of(entry(-1)))
                    .finish(),
                key));
  const std::string sig = key.sign("parley-key-document-v1\n" + canonical);
  auto outer_refused = [](const std::string& bytes) {
    auto r = parse_key_document(bytes, "a.example");
    return !r.ok() && r.error().code == "malformed_key_document";
  };
  CHECK(outer_refused(wire::MapWriter().add_bin("sig", sig).add_bin("doc", canonical).finish()));
  CHECK(outer_refused(
      wire::MapWriter().add_bin("doc", canonical).add_bin("sig", sig).add("x", 1).finish()));
  CHECK_FALSE(
      outer_refused(wire::MapWriter().add_bin("doc", canonical).add_bin("sig", sig).finish()));
}

TEST_CASE("key documents: rotation chains are followed only through endorsements") {
  crypto::init();
  const auto k1 = crypto::SigningKey::generate();
  const auto k2 = crypto::SigningKey::generate();
  const auto k3 = crypto::SigningKey::generate();
  const auto stranger = crypto::SigningKey::generate();
  auto endorse = [](const crypto::SigningKey& by, const crypto::SigningKey& next) {
    return by.sign(endorsement_input("a.example", next.public_key()));
  };
  KeyDocument doc{"a.example",
                  {{k1.public_key(), 0, 100},
                   {k2.public_key(), 100, 200, endorse(k1, k2)},
                   {k3.public_key(), 200, 0, endorse(k2, k3)}}};
  auto parsed = parse_key_document(*encode_key_document(doc, k3), "a.example");
  REQUIRE(parsed.ok());
  CHECK(parsed->keys[2].prev_sig.size() == 64);
  CHECK(parsed->continues_from(k1.public_key()).ok());
  CHECK(parsed->continues_from(k2.public_key()).ok());
  CHECK(parsed->continues_from(k3.public_key()).ok());
  CHECK(parsed->continues_from(stranger.public_key()).error().code == "unknown_key");

  // A link signed by the wrong key, or missing, breaks the chain from anything before it.
  KeyDocument forged = doc;
  forged.keys[2].prev_sig = endorse(stranger, k3);
  auto f = parse_key_document(*encode_key_document(forged, k3), "a.example");
  REQUIRE(f.ok());
  CHECK(f->continues_from(k1.public_key()).error().code == "unknown_key");
  CHECK(f->continues_from(k3.public_key()).ok());
  KeyDocument missing = doc;
  missing.keys[1].prev_sig.clear();
  CHECK(parse_key_document(*encode_key_document(missing, k3), "a.example")
            ->continues_from(k1.public_key())
            .error()
            .code == "unknown_key");
  // The endorsement names the node: one made for another node does not carry over.
  KeyDocument other = doc;
  other.keys[1].prev_sig = k1.sign(endorsement_input("b.example", k2.public_key()));
  CHECK(parse_key_document(*encode_key_document(other, k3), "a.example")
            ->continues_from(k1.public_key())
            .error()
            .code == "unknown_key");
}

TEST_CASE("transactions: round trip, limits, order") {
  namespace fed = parley::federation;
  fed::Transaction t{"a.example", 3, {{1, "x"}, {7, std::string(1000, '\0')}}};
  auto back = fed::parse_transaction(fed::encode_transaction(t));
  REQUIRE(back.ok());
  CHECK(back->origin == "a.example");
  CHECK(back->epoch == 3);
  REQUIRE(back->events.size() == 2);
  CHECK(back->events[1].id == 7);
  CHECK(back->events[1].payload == t.events[1].payload);

  fed::Transaction big{"a.example", {}};
  for (int i = 1; i <= 1001; ++i) big.events.push_back({i, ""});
  CHECK(fed::parse_transaction(fed::encode_transaction(big)).error().code == "payload_too_large");
  big.events.resize(1000);
  CHECK(fed::parse_transaction(fed::encode_transaction(big)).ok());

  fed::Transaction order{"a.example", 0, {{2, ""}, {2, ""}}};
  CHECK(fed::parse_transaction(fed::encode_transaction(order)).error().code == "bad_request");
  CHECK(fed::parse_transaction("\x81\xa6origin\xa1x").error().code == "bad_request");
  // Without "epoch" (epoch 0); a non-integer epoch is refused.
  CHECK(fed::parse_transaction("\x82\xa6origin\xa1x\xa6"
                               "events\x90")
            ->epoch == 0);
  CHECK(fed::parse_transaction("\x83\xa6origin\xa1x\xa5"
                               "epoch\xa1x\xa6"
                               "events\x90")
            .error()
            .code == "bad_request");
  CHECK(fed::parse_transaction(std::string(5u << 20, 'x')).error().code == "payload_too_large");
  fed::Transaction huge{"a.example", 0, {{1, std::string(256 * 1024 + 1, 'p')}}};
  CHECK(fed::parse_transaction(fed::encode_transaction(huge)).error().code == "payload_too_large");
}
