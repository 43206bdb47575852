#include "parley/federation/signing.h"

#include <vector>

#include "parley/crypto/hash.h"
#include "parley/crypto/secret.h"

namespace parley::federation {

namespace {

constexpr std::string_view kScheme = "Parley-Sig ";

Error malformed(const std::string& why) {
  return make_error("malformed_signature", "Authorization: " + why);
}

}  // namespace

std::string signing_input(std::string_view method, std::string_view path, std::string_view origin,
                          std::string_view destination, std::int64_t ts_ms, std::string_view nonce,
                          std::string_view body) {
  std::string s = "parley-federation-v1\n";
  s.append(method).append("\n");
  s.append(path).append("\n");
  s.append(origin).append("\n");
  s.append(destination).append("\n");
  s.append(std::to_string(ts_ms)).append("\n");
  s.append(crypto::hex_encode(nonce)).append("\n");
  s.append(crypto::hex_encode(crypto::sha256(body)));
  return s;
}

std::string sign_request(const crypto::SigningKey& key, std::string_view method,
                         std::string_view path, std::string_view origin,
                         std::string_view destination, std::int64_t ts_ms, std::string_view nonce,
                         std::string_view body) {
  const std::string sig =
      key.sign(signing_input(method, path, origin, destination, ts_ms, nonce, body));
  std::string h(kScheme);
  h += "v=1,origin=" + std::string(origin) + ",dest=" + std::string(destination) +
       ",ts=" + std::to_string(ts_ms) + ",nonce=" + crypto::base64_encode(nonce) +
       ",key=" + crypto::format_public_key(key.public_key()) + ",sig=" + crypto::base64_encode(sig);
  return h;
}

Result<RequestSignature> parse_authorization(std::string_view header) {
  if (header.size() > 1024) return malformed("too long");
  if (header.substr(0, kScheme.size()) != kScheme) return malformed("not a Parley-Sig header");
  header.remove_prefix(kScheme.size());
  // Exactly these fields, each once, in this order: the header is canonical.
  static const char* kFields[] = {"v", "origin", "dest", "ts", "nonce", "key", "sig"};
  std::vector<std::string> values;
  for (const char* name : kFields) {
    const std::string prefix = std::string(name) + "=";
    if (header.substr(0, prefix.size()) != prefix) {
      return malformed(std::string("expected field '") + name + "'");
    }
    header.remove_prefix(prefix.size());
    const auto comma = header.find(',');
    const bool last = std::string(name) == "sig";
    if (last != (comma == std::string_view::npos)) return malformed("wrong number of fields");
    values.emplace_back(header.substr(0, comma));
    header.remove_prefix(last ? header.size() : comma + 1);
    if (values.back().empty()) return malformed(std::string("empty field '") + name + "'");
  }
  if (values[0] != "1") return malformed("unsupported version " + values[0]);
  RequestSignature r;
  r.origin = values[1];
  r.destination = values[2];
  const std::string& ts = values[3];
  if (ts.size() > 18 || ts.find_first_not_of("0123456789") != std::string::npos) {
    return malformed("ts must be milliseconds since the epoch");
  }
  r.ts_ms = std::stoll(ts);
  auto nonce = crypto::base64_decode(values[4]);
  if (!nonce.ok() || nonce->size() != 16) return malformed("nonce must be 16 bytes of base64url");
  r.nonce = std::move(nonce).value();
  auto key = crypto::parse_public_key(values[5]);
  if (!key.ok()) return malformed("key: " + key.error().message);
  r.public_key = std::move(key).value();
  auto sig = crypto::base64_decode(values[6]);
  if (!sig.ok() || sig->size() != 64) return malformed("sig must be 64 bytes of base64url");
  r.signature = std::move(sig).value();
  return r;
}

bool ReplayGuard::first_use(const std::string& origin, const std::string& nonce,
                            std::int64_t now_ms) {
  std::lock_guard<std::mutex> lock(mu_);
  while (!expiry_.empty() && expiry_.begin()->first <= now_ms) {
    seen_.erase(expiry_.begin()->second);
    expiry_.erase(expiry_.begin());
  }
  auto key = std::make_pair(origin, nonce);
  if (seen_.count(key)) return false;
  if (seen_.size() >= max_entries_) return false;  // refuse rather than forget a live nonce
  seen_.insert(key);
  expiry_.emplace(now_ms + 2 * window_ms_, std::move(key));
  return true;
}

Result<RequestSignature> verify_request(std::string_view authorization, std::string_view method,
                                        std::string_view path, std::string_view body,
                                        const VerifyOptions& o, const KeyCheck& keys,
                                        ReplayGuard& replay) {
  PARLEY_ASSIGN_OR_RETURN(r, parse_authorization(authorization));
  if (r.destination != o.self_name) {
    return make_error("wrong_destination",
                      "request is addressed to " + r.destination + ", not " + o.self_name);
  }
  if (r.ts_ms < o.now_ms - o.window_ms || r.ts_ms > o.now_ms + o.window_ms) {
    return make_error("stale_timestamp", "request timestamp is outside the accepted window");
  }
  // The signature under the presented key before the key check: the key check may need a key
  // document from the origin, and a forged request must never make this node contact anyone.
  const std::string input =
      signing_input(method, path, r.origin, r.destination, r.ts_ms, r.nonce, body);
  if (!crypto::verify_signature(r.public_key, input, r.signature)) {
    return make_error("bad_signature", "the request signature does not verify");
  }
  PARLEY_TRY(keys(r.origin, r.public_key, r.ts_ms));
  // Only a verified request may consume a nonce, so forgeries cannot burn others' nonces.
  if (!replay.first_use(r.origin, r.nonce, o.now_ms)) {
    return make_error("replayed", "this request was already received");
  }
  return r;
}

}  // namespace parley::federation
