// Crypto known-answer tests from material nobody on the project wrote: RFC 5869 (HKDF),
// RFC 8032 (Ed25519) and Project Wycheproof (tests/data), plus secrets, tokens and key files.
#include <sys/stat.h>

#include <cpprest/json.h>
#include <catch2/catch.hpp>
#include <filesystem>
#include <fstream>

#include "parley/crypto/box.h"
#include "parley/crypto/hash.h"
#include "parley/crypto/password.h"
#include "parley/crypto/secret.h"
#include "parley/crypto/sign.h"

using namespace parley::crypto;
namespace json = web::json;

namespace {

std::string unhex(const std::string& h) { return hex_decode(h).value(); }

json::value load_vectors(const std::string& name) {
  const std::string path = std::string(PARLEY_VECTORS_DIR) + "/wycheproof/" + name;
  std::ifstream in(path);
  if (!in) FAIL("test vectors missing: " << path);
  return json::value::parse(in);
}

std::string s(const json::value& v, const char* key) { return v.at(key).as_string(); }

}  // namespace

TEST_CASE("hex and base64url round trips and rejects") {
  init();
  const std::string raw("\x00\xff\x10 abc", 7);
  REQUIRE(*hex_decode(hex_encode(raw)) == raw);
  REQUIRE(*base64_decode(base64_encode(raw)) == raw);
  REQUIRE_FALSE(hex_decode("abc").ok());
  REQUIRE_FALSE(hex_decode("zz").ok());
  REQUIRE_FALSE(base64_decode("a+b/").ok());  // standard alphabet is not base64url
  REQUIRE(equal_ct("abc", "abc"));
  REQUIRE_FALSE(equal_ct("abc", "abd"));
  REQUIRE_FALSE(equal_ct("abc", "abcd"));
}

TEST_CASE("SecretBytes wipes") {
  SecretBytes sb(std::string_view("secret material"));
  REQUIRE(sb.size() == 15);
  sb.wipe();
  REQUIRE(sb.empty());
  SecretBytes moved(std::string_view("abc"));
  SecretBytes to(std::move(moved));
  REQUIRE(to.view() == "abc");
  REQUIRE(moved.empty());  // NOLINT(bugprone-use-after-move): the move must leave it wiped
}

TEST_CASE("passwords and session tokens") {
  init();
  auto h = hash_password("hunter2 hunter2", PasswordStrength::kTestOnlyMinimal);
  REQUIRE(h.ok());
  REQUIRE(h->rfind("$argon2id$", 0) == 0);
  REQUIRE(verify_password(*h, "hunter2 hunter2"));
  REQUIRE_FALSE(verify_password(*h, "hunter3 hunter2"));
  REQUIRE_FALSE(verify_password("garbage", "x"));
  REQUIRE(parse_password_strength("moderate").ok());
  REQUIRE(parse_password_strength("weak").error().code == "bad_config");
  const auto t = new_session_token();
  REQUIRE(t.text.size() == 43);
  REQUIRE(hash_token(t.text) == t.hash);
  REQUIRE(new_session_token().text != t.text);
}

TEST_CASE("RFC 5869 HKDF-SHA256 test cases A.1 to A.3") {
  struct Case {
    const char *ikm, *salt, *info, *prk, *okm;
    std::size_t len;
  };
  const Case cases[] = {
      {"0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b", "000102030405060708090a0b0c",
       "f0f1f2f3f4f5f6f7f8f9", "077709362c2e32df0ddc3f0dc47bba6390b6c73bb50f9c3122ec844ad7c2b3e5",
       "3cb25f25faacd57a90434f64d0362f2a2d2d0a90cf1a5a4c5db02d56ecc4c5bf34007208d5b887185865", 42},
      {"000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f202122232425262728292a2b2c2"
       "d"
       "2e2f303132333435363738393a3b3c3d3e3f404142434445464748494a4b4c4d4e4f",
       "606162636465666768696a6b6c6d6e6f707172737475767778797a7b7c7d7e7f808182838485868788898a8b8c8"
       "d"
       "8e8f909192939495969798999a9b9c9d9e9fa0a1a2a3a4a5a6a7a8a9aaabacadaeaf",
       "b0b1b2b3b4b5b6b7b8b9babbbcbdbebfc0c1c2c3c4c5c6c7c8c9cacbcccdcecfd0d1d2d3d4d5d6d7d8d9dadbdcd"
       "d"
       "dedfe0e1e2e3e4e5e6e7e8e9eaebecedeeeff0f1f2f3f4f5f6f7f8f9fafbfcfdfeff",
       "06a6b88c5853361a06104c9ceb35b45cef760014904671014a193f40c15fc244",
       "b11e398dc80327a1c8e7f78c596a49344f012eda2d4efad8a050cc4c19afa97c59045a99cac7827271cb41c65e5"
       "9"
       "0e09da3275600c2f09b8367793a9aca3db71cc30c58179ec3e87c14c01d5c1f3434f1d87",
       82},
      {"0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b", "", "",
       "19ef24a32c717b167f33a91d6f648bdf96596776afdb6377ac434c1c293ccb04",
       "8da4e775a563c18f715f802a063c5a31b8a11f5c5ee1879ec3454e5f3c738d2d9d201395faa4b61a96c8", 42},
  };
  for (const auto& c : cases) {
    REQUIRE(hex_encode(hkdf_extract(unhex(c.salt), unhex(c.ikm)).view()) == c.prk);
    auto okm = hkdf_sha256(unhex(c.ikm), unhex(c.salt), unhex(c.info), c.len);
    REQUIRE(hex_encode(okm->view()) == c.okm);
  }
  REQUIRE(hkdf_sha256("k", "", "", 255 * 32).ok());
  REQUIRE(hkdf_sha256("k", "", "", 255 * 32 + 1).error().code == "bad_argument");
}

TEST_CASE("RFC 8032 section 7.1 Ed25519 tests 1 to 3") {
  struct Case {
    const char *seed, *pk, *msg, *sig;
  };
  const Case cases[] = {
      {"9d61b19deffd5a60ba844af492ec2cc44449c5697b326919703bac031cae7f60",
       "d75a980182b10ab7d54bfed3c964073a0ee172f3daa62325af021a68f707511a", "",
       "e5564300c360ac729086e2cc806e828a84877f1eb8e5d974d873e065224901555fb8821590a33bacc61e39701cf"
       "9b4"
       "6bd25bf5f0595bbe24655141438e7a100b"},
      {"4ccd089b28ff96da9db6c346ec114e0f5b8a319f35aba624da8cf6ed4fb8a6fb",
       "3d4017c3e843895a92b70aa74d1b7ebc9c982ccf2ec4968cc0cd55f12af4660c", "72",
       "92a009a9f0d4cab8720e820b5f642540a2b27b5416503f8fb3762223ebdb69da085ac1e43e15996e458f3613d0f"
       "11d"
       "8c387b2eaeb4302aeeb00d291612bb0c00"},
      {"c5aa8df43f9f837bedb7442f31dcb7b166d38535076f094b85ce3a2e0b4458f7",
       "fc51cd8e6218a1a38da47ed00230f0580816ed13ba3303ac5deb911548908025", "af82",
       "6291d657deec24024827e69c3abe01a30ce548a284743a445e3680d7db5ac3ac18ff9b538d16f290ae67f760984"
       "dc6"
       "594a7c15e9716ed28dc027beceea1ec40a"},
  };
  for (const auto& c : cases) {
    auto key = SigningKey::from_seed(unhex(c.seed));
    REQUIRE(hex_encode(key->public_key()) == c.pk);
    REQUIRE(hex_encode(key->sign(unhex(c.msg))) == c.sig);
    REQUIRE(verify_signature(key->public_key(), unhex(c.msg), unhex(c.sig)));
    std::string tampered = unhex(c.sig);
    tampered[0] ^= 1;
    REQUIRE_FALSE(verify_signature(key->public_key(), unhex(c.msg), tampered));
  }
}

TEST_CASE("Wycheproof Ed25519: every case") {
  init();
  const auto v = load_vectors("ed25519_test.json");
  int n = 0;
  for (const auto& g : v.at("testGroups").as_array()) {
    const std::string pk = unhex(s(g.at("publicKey"), "pk"));
    for (const auto& t : g.at("tests").as_array()) {
      INFO("tcId " << t.at("tcId").as_integer());
      const bool valid = verify_signature(pk, unhex(s(t, "msg")), unhex(s(t, "sig")));
      // The file has only valid and invalid cases; no acceptable ones to decide on.
      REQUIRE(s(t, "result") != "acceptable");
      REQUIRE(valid == (s(t, "result") == "valid"));
      ++n;
    }
  }
  REQUIRE(n == v.at("numberOfTests").as_integer());
}

TEST_CASE("Wycheproof HMAC-SHA256 (full and truncated tags): every case") {
  const auto v = load_vectors("hmac_sha256_test.json");
  int n = 0;
  for (const auto& g : v.at("testGroups").as_array()) {
    const auto tag_bytes = static_cast<std::size_t>(g.at("tagSize").as_integer() / 8);
    for (const auto& t : g.at("tests").as_array()) {
      INFO("tcId " << t.at("tcId").as_integer());
      const std::string mac = hmac_sha256(unhex(s(t, "key")), unhex(s(t, "msg")));
      const bool match = equal_ct(mac.substr(0, tag_bytes), unhex(s(t, "tag")));
      REQUIRE(match == (s(t, "result") == "valid"));
      ++n;
    }
  }
  REQUIRE(n == v.at("numberOfTests").as_integer());
}

TEST_CASE("Wycheproof HKDF-SHA256: every case") {
  const auto v = load_vectors("hkdf_sha256_test.json");
  int n = 0;
  for (const auto& g : v.at("testGroups").as_array()) {
    for (const auto& t : g.at("tests").as_array()) {
      INFO("tcId " << t.at("tcId").as_integer());
      auto okm = hkdf_sha256(unhex(s(t, "ikm")), unhex(s(t, "salt")), unhex(s(t, "info")),
                             static_cast<std::size_t>(t.at("size").as_integer()));
      if (s(t, "result") == "valid") {
        REQUIRE(okm.ok());
        REQUIRE(hex_encode(okm->view()) == s(t, "okm"));
      } else {
        REQUIRE_FALSE(okm.ok());  // the invalid cases ask for more than 255 * 32 bytes
      }
      ++n;
    }
  }
  REQUIRE(n == v.at("numberOfTests").as_integer());
}

TEST_CASE("RFC 7748 X25519: section 5.2 vectors, iterations, section 6.1 key agreement") {
  init();
  auto x = [](const std::string& k, const std::string& u) {
    return std::string(x25519(unhex(k), unhex(u)).value().view());
  };
  CHECK(hex_encode(x("a546e36bf0527c9d3b16154b82465edd62144c0ac1fc5a18506a2244ba449ac4",
                     "e6db6867583030db3594c1a424b15f7c726624ec26b3353b10a903a6d0ab1c4c")) ==
        "c3da55379de9c6908e94ea4df28d084f32eccf03491c71f754b4075577a28552");
  // The second vector's u has its top bit set, which X25519 ignores (RFC 7748 section 5).
  CHECK(hex_encode(x("4b66e9d4d1b4673c5ad22691957d6af5c11b6421e0ea01d42ca4169e7918ba0d",
                     "e5210f12786811d3f4b7959d0538ae2c31dbe7106fc03c3efc4cd549c715a493")) ==
        "95cbde9476e8907d7aade45cb4b873f88b595a68799fa152e6f8f7647aac7957");
  // k = u = 9, then k, u <- X25519(k, u), k.
  std::string k = unhex("0900000000000000000000000000000000000000000000000000000000000000");
  std::string u = k;
  for (int i = 1; i <= 1000; ++i) {
    std::string next = x(hex_encode(k), hex_encode(u));
    u = k;
    k = next;
    if (i == 1) {
      CHECK(hex_encode(k) == "422c8e7a6227d7bca1350b3e2bb7279f7897b87bb6854b783c60e80311ae3079");
    }
  }
  CHECK(hex_encode(k) == "684cf59ba83309552800ef566f2f4d3c1c3887c49360e3875f2eb94d99532c51");

  auto alice = DhKeyPair::from_private(
      unhex("77076d0a7318a57d3c16c17251b26645df4c2f87ebc0992ab177fba51db92c2a"));
  auto bob = DhKeyPair::from_private(
      unhex("5dab087e624a8a4b79e17f8b83800ee66f3bb1292618b6fd1c2f8b27ff88e0eb"));
  REQUIRE(alice.ok());
  REQUIRE(bob.ok());
  CHECK(hex_encode(alice->public_key()) ==
        "8520f0098930a754748b7ddcb43ef75a0dbf3a0d26381af4eba4a98eaa9b4e6a");
  CHECK(hex_encode(bob->public_key()) ==
        "de9edb7d7b7dc1b4d35b61c2ece435373f8343c85b78674dadfc7e146f882b4f");
  const std::string shared = "4a5d9d5ba4ce2de1728e3bf480350f25e07e21c947d19e3376f09b3c1e161742";
  CHECK(hex_encode(alice->agree(bob->public_key())->view()) == shared);
  CHECK(hex_encode(bob->agree(alice->public_key())->view()) == shared);
  // Generated pairs agree with each other; a low-order point is refused.
  const auto a = DhKeyPair::generate();
  const auto b = DhKeyPair::generate();
  CHECK(a.agree(b.public_key())->view() == b.agree(a.public_key())->view());
  CHECK(a.agree(std::string(32, '\0')).error().code == "bad_key");
  CHECK(a.agree("short").error().code == "bad_argument");
}

TEST_CASE("Wycheproof X25519: every case") {
  init();
  const auto doc = load_vectors("x25519_test.json");
  int valid = 0, zero_refused = 0, acceptable_computed = 0;
  for (const auto& group : doc.at("testGroups").as_array()) {
    for (const auto& t : group.at("tests").as_array()) {
      INFO("tcId " << t.at("tcId").as_integer() << ": " << s(t, "comment"));
      bool zero_shared = false;
      for (const auto& f : t.at("flags").as_array())
        zero_shared |= f.as_string() == "ZeroSharedSecret";
      auto r = x25519(unhex(s(t, "private")), unhex(s(t, "public")));
      const std::string result = s(t, "result");
      if (result == "invalid") {
        CHECK((!r.ok() || hex_encode(r->view()) != s(t, "shared")));
      } else if (zero_shared) {
        // Acceptable to compute, but a shared secret of zeros means the peer chose a low-order
        // point: Parley refuses it on purpose.
        CHECK(r.error().code == "bad_key");
        ++zero_refused;
      } else {
        // Valid cases, and acceptable ones (twist points, non-canonical encodings) that
        // RFC 7748's X25519 computes like any other input.
        REQUIRE(r.ok());
        CHECK(hex_encode(r->view()) == s(t, "shared"));
        result == "valid" ? ++valid : ++acceptable_computed;
      }
    }
  }
  CHECK(valid == 264);
  CHECK(zero_refused == 31);
  CHECK(acceptable_computed + valid + zero_refused ==
        static_cast<int>(doc.at("numberOfTests").as_integer()));
}

TEST_CASE("Wycheproof XChaCha20-Poly1305: every case") {
  init();
  const auto doc = load_vectors("xchacha20_poly1305_test.json");
  int checked = 0;
  for (const auto& group : doc.at("testGroups").as_array()) {
    for (const auto& t : group.at("tests").as_array()) {
      INFO("tcId " << t.at("tcId").as_integer() << ": " << s(t, "comment"));
      const std::string key = unhex(s(t, "key")), iv = unhex(s(t, "iv")), aad = unhex(s(t, "aad"));
      const std::string msg = unhex(s(t, "msg")), sealed = unhex(s(t, "ct")) + unhex(s(t, "tag"));
      const std::string result = s(t, "result");
      auto opened = aead_decrypt(key, iv, sealed, aad);
      if (result == "valid") {
        REQUIRE(opened.ok());
        CHECK(opened->view() == msg);
        CHECK(*aead_encrypt(key, iv, msg, aad) == sealed);
      } else {
        // invalid: a modified tag, or a nonce that is not 24 bytes (refused before any work).
        CHECK_FALSE(opened.ok());
        if (iv.size() != kAeadNonceBytes) CHECK(opened.error().code == "bad_argument");
      }
      ++checked;
    }
  }
  CHECK(checked == static_cast<int>(doc.at("numberOfTests").as_integer()));
}

TEST_CASE("XChaCha20-Poly1305: associated data, tampering and nonce are all bound") {
  init();
  const std::string key = random_bytes(32), nonce = random_bytes(24);
  auto sealed = aead_encrypt(key, nonce, "attack at dawn", "header");
  REQUIRE(sealed.ok());
  CHECK(aead_decrypt(key, nonce, *sealed, "header")->view() == "attack at dawn");
  CHECK(aead_decrypt(key, nonce, *sealed, "headex").error().code == "bad_ciphertext");
  std::string flipped = *sealed;
  flipped[0] ^= 1;
  CHECK(aead_decrypt(key, nonce, flipped, "header").error().code == "bad_ciphertext");
  CHECK(aead_decrypt(key, random_bytes(24), *sealed, "header").error().code == "bad_ciphertext");
  CHECK(aead_decrypt(key, nonce, "short", "").error().code == "bad_ciphertext");
  CHECK(aead_encrypt("short", nonce, "x", "").error().code == "bad_argument");
  CHECK(aead_decrypt(key, nonce, *aead_encrypt(key, nonce, "", ""), "")->empty());
}

TEST_CASE("key files: 0600, round trip, refused when readable by others") {
  init();
  const auto dir =
      std::filesystem::temp_directory_path() / ("parley-key-test-" + hex_encode(random_bytes(6)));
  std::filesystem::create_directories(dir);
  const std::string path = (dir / "node.key").string();
  const auto key = SigningKey::generate();
  REQUIRE(save_signing_key(path, key).ok());
  struct stat st {};
  REQUIRE(::stat(path.c_str(), &st) == 0);
  REQUIRE((st.st_mode & 0777) == 0600);
  auto loaded = load_signing_key(path);
  REQUIRE(loaded.ok());
  REQUIRE(loaded->public_key() == key.public_key());
  REQUIRE(*parse_public_key(format_public_key(key.public_key())) == key.public_key());
  REQUIRE_FALSE(parse_public_key("ed25519:short").ok());
  ::chmod(path.c_str(), 0644);
  REQUIRE(load_signing_key(path).error().code == "insecure_key_file");
  std::filesystem::remove_all(dir);
}
