#include "federation_client.h"

#include <spdlog/spdlog.h>

#include <cpprest/http_client.h>
#include <array>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/ssl.hpp>
#include <chrono>

#include "parley/address.h"
#include "parley/crypto/secret.h"
#include "parley/federation/peers.h"
#include "parley/federation/signing.h"
#include "parley/node/core.h"

namespace parley::node {

namespace http = web::http;

namespace {

constexpr std::int64_t kRediscoverMs = 24 * 3600 * 1000;
constexpr std::size_t kMaxWellKnown = 16 * 1024;
constexpr std::size_t kMaxKeyDocument = 64 * 1024;
// Answers to signed requests: transaction results and query answers (conv_pull pages are about
// 1 MiB).
constexpr std::size_t kMaxAnswer = 8u << 20;

std::int64_t now_ms() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

std::string replace_name(std::string tmpl, const std::string& name) {
  for (auto at = tmpl.find("{name}"); at != std::string::npos; at = tmpl.find("{name}")) {
    tmpl.replace(at, 6, name);
  }
  return tmpl;
}

// The host part of an http(s) URL ("" when there is none).
std::string url_host(const std::string& url) {
  try {
    return web::uri(url).host();
  } catch (const std::exception&) {
    return "";
  }
}

// What lies between "://" and the path of a URL (template), as written.
std::string authority(const std::string& url) {
  const auto start = url.find("://");
  if (start == std::string::npos) return "";
  const auto end = url.find('/', start + 3);
  return url.substr(start + 3, end == std::string::npos ? std::string::npos : end - start - 3);
}

// The body of a response, at most `limit` bytes (read in pieces, so a peer that sends more, with
// or without a declared length, costs at most that much memory).
std::string read_body(const http::http_response& resp, std::size_t limit) {
  if (resp.headers().content_length() > limit) {
    throw std::runtime_error("response body over " + std::to_string(limit) + " bytes");
  }
  auto in = resp.body().streambuf();
  std::string out;
  std::array<std::uint8_t, 64 * 1024> chunk;
  for (;;) {
    const std::size_t n = in.getn(chunk.data(), chunk.size()).get();
    if (n == 0) break;
    out.append(reinterpret_cast<const char*>(chunk.data()), n);
    if (out.size() > limit) {
      throw std::runtime_error("response body over " + std::to_string(limit) + " bytes");
    }
  }
  return out;
}

}  // namespace

bool is_public_address(const boost::asio::ip::address& a) {
  if (a.is_v6()) {
    const auto v6 = a.to_v6();
    if (v6.is_v4_mapped()) {
      return is_public_address(boost::asio::ip::make_address_v4(boost::asio::ip::v4_mapped, v6));
    }
    const auto b = v6.to_bytes();
    if (v6.is_unspecified() || v6.is_loopback() || v6.is_link_local() || v6.is_multicast() ||
        v6.is_site_local()) {
      return false;
    }
    if ((b[0] & 0xfe) == 0xfc) return false;  // fc00::/7 unique local
    if (b[0] == 0x20 && b[1] == 0x01 && b[2] == 0x0d && b[3] == 0xb8) return false;  // doc
    if (b[0] == 0x00 && b[1] == 0x64 && b[2] == 0xff && b[3] == 0x9b) {  // 64:ff9b::/96 NAT64
      return is_public_address(boost::asio::ip::address_v4({b[12], b[13], b[14], b[15]}));
    }
    if (b[0] == 0x01 && b[1] == 0x00 && b[2] == 0 && b[3] == 0) return false;  // 100::/64 discard
    return true;
  }
  const auto b = a.to_v4().to_bytes();
  if (b[0] == 0 || b[0] == 10 || b[0] == 127 || b[0] >= 224)
    return false;                                                          // this, private,
                                                                           // loopback, mcast
  if (b[0] == 100 && (b[1] & 0xc0) == 64) return false;                    // 100.64/10 CGNAT
  if (b[0] == 169 && b[1] == 254) return false;                            // link local
  if (b[0] == 172 && (b[1] & 0xf0) == 16) return false;                    // 172.16/12
  if (b[0] == 192 && b[1] == 168) return false;                            // 192.168/16
  if (b[0] == 192 && b[1] == 0 && (b[2] == 0 || b[2] == 2)) return false;  // protocol, doc
  if (b[0] == 198 && (b[1] & 0xfe) == 18) return false;                    // benchmarking
  if (b[0] == 198 && b[1] == 51 && b[2] == 100) return false;              // doc
  if (b[0] == 203 && b[1] == 0 && b[2] == 113) return false;               // doc
  return true;
}

Status FederationClient::check_target(const std::string& url) const {
  if (config_.federation_allow_private_addresses) return ok_status();
  const std::string host = url_host(url);
  if (host.empty()) return make_error("refused", "no host in " + url);
  boost::system::error_code ec;
  const auto literal = boost::asio::ip::make_address(host, ec);
  std::vector<boost::asio::ip::address> addresses;
  if (!ec) {
    addresses.push_back(literal);
  } else {
    boost::asio::io_context io;
    boost::asio::ip::tcp::resolver resolver(io);
    const auto found = resolver.resolve(host, "", ec);
    if (ec) return make_error("unreachable", "cannot resolve " + host + ": " + ec.message());
    for (const auto& e : found) addresses.push_back(e.endpoint().address());
  }
  for (const auto& a : addresses) {
    if (!is_public_address(a)) {
      return make_error("refused", host + " resolves to " + a.to_string() +
                                       ", which is not a public address (set "
                                       "federation.allow_private_addresses for test networks)");
    }
  }
  return ok_status();
}

Status FederationClient::check_scheme(const std::string& url) const {
  if (url.rfind("https://", 0) == 0) return ok_status();
  if (url.rfind("http://", 0) == 0) {
    if (config_.federation_allow_plaintext) return ok_status();
    return make_error(
        "refused", "plain http:// URL " + url + " while federation.allow_plaintext_http is false");
  }
  return make_error("refused", "not an https:// URL: " + url);
}

void FederationClient::apply_tls(http::client::http_client_config& cc) const {
  cc.set_validate_certificates(true);
  if (!config_.federation_tls_ca.empty()) {
    const std::string ca = config_.federation_tls_ca;
    cc.set_ssl_context_callback([ca](boost::asio::ssl::context& ctx) {
      ctx.set_default_verify_paths();
      ctx.load_verify_file(ca);
    });
  }
}

Result<std::string> FederationClient::base_url(const std::string& name) {
  std::optional<federation::Peer> peer;
  bool allowlist = false;
  Status looked = ok_status();
  run_on_core_([&](Core& core) {
    allowlist = core.config().federation_policy == "allowlist";  // reloadable: the core's copy
    auto p = federation::PeerStore(core.database()).get(name);
    if (!p.ok()) {
      looked = p.take_error();
      return;
    }
    peer = *p;
  });
  PARLEY_TRY(looked);
  // A denied node is refused both ways (spec/federation.md section 3): nothing is sent to it,
  // not even a discovery question. Under the allowlist so is a node the admin has not listed.
  if (peer && peer->state == "denied") return make_error("denied", name + " is denied");
  if (allowlist && !(peer && peer->listed)) {
    return make_error("denied", name + " is not on this node's allowlist");
  }
  const std::int64_t now = now_ms();
  if (peer && !peer->url.empty() &&
      (peer->discovered_ms == 0 || now - peer->discovered_ms < kRediscoverMs)) {
    PARLEY_TRY(check_scheme(peer->url));
    return peer->url;
  }
  // Discovery: {"federation_url": "https://host:port"} at the configured well-known URL. The name
  // comes from other nodes or users: it must be a DNS name, and where its host part decides
  // what is contacted (the default template), only public addresses are.
  PARLEY_TRY(wire::validate_domain(name));
  const std::string where = replace_name(config_.federation_discovery_url, name);
  PARLEY_TRY(check_scheme(where));
  if (authority(config_.federation_discovery_url).find("{name}") != std::string::npos) {
    PARLEY_TRY(check_target(where));
  }
  std::string found;
  try {
    http::client::http_client_config cc;
    cc.set_timeout(std::chrono::seconds(10));
    apply_tls(cc);
    http::client::http_client client(where, cc);
    const auto resp = client.request(http::methods::GET).get();
    if (resp.status_code() != http::status_codes::OK) {
      return make_error("unreachable", "discovery of " + name + " at " + where + ": HTTP " +
                                           std::to_string(resp.status_code()));
    }
    const auto doc = web::json::value::parse(read_body(resp, kMaxWellKnown));
    found = doc.at("federation_url").as_string();
  } catch (const std::exception& e) {
    return make_error("unreachable", "discovery of " + name + " at " + where + ": " + e.what());
  }
  PARLEY_TRY(check_scheme(found));
  // The document is the other side's word: never a reason to contact a private address.
  PARLEY_TRY(check_target(found));
  while (!found.empty() && found.back() == '/') found.pop_back();
  run_on_core_([&](Core& core) {
    auto st = core.database().prepare(
        "INSERT INTO peers(name, url, added_ms, discovered_ms) VALUES(?1, ?2, ?3, ?3) "
        "ON CONFLICT(name) DO UPDATE SET url = excluded.url, discovered_ms = "
        "excluded.discovered_ms "
        "WHERE peers.url = '' OR peers.discovered_ms > 0");
    if (st.ok()) (void)st->bind(1, name).bind(2, found).bind(3, now).run();
  });
  spdlog::info("event=peer_discovered peer={} url={}", name, found);
  return found;
}

void FederationClient::forget_discovered(const std::string& name) {
  run_on_core_([&](Core& core) {
    auto st = core.database().prepare(
        "UPDATE peers SET url = '', discovered_ms = 0 WHERE name = ? AND discovered_ms > 0");
    if (st.ok()) (void)st->bind(1, name).run();
  });
}

Result<federation::KeyDocument> FederationClient::key_document(const std::string& name) {
  PARLEY_ASSIGN_OR_RETURN(base, base_url(name));
  try {
    http::client::http_client_config cc;
    cc.set_timeout(std::chrono::seconds(10));
    apply_tls(cc);
    http::client::http_client client(base, cc);
    const auto resp = client.request(http::methods::GET, "/federation/v1/key").get();
    if (resp.status_code() != http::status_codes::OK) {
      return make_error("unknown_key",
                        "key document of " + name + ": HTTP " + std::to_string(resp.status_code()));
    }
    return federation::parse_key_document(read_body(resp, kMaxKeyDocument), name);
  } catch (const std::exception& e) {
    return make_error("unknown_key", "cannot fetch the key of " + name + ": " + e.what());
  }
}

Result<FederationResponse> FederationClient::request(const std::string& dest,
                                                     const std::string& method,
                                                     const std::string& path,
                                                     const std::string& body) {
  PARLEY_ASSIGN_OR_RETURN(base, base_url(dest));
  const std::string auth = federation::sign_request(key_, method, path, config_.name, dest,
                                                    now_ms(), crypto::random_bytes(16), body);
  try {
    http::client::http_client_config cc;
    cc.set_timeout(std::chrono::seconds(15));
    apply_tls(cc);
    http::client::http_client client(base, cc);
    http::http_request req(method);
    req.set_request_uri(path);
    req.headers().add("Authorization", auth);
    if (!body.empty() || method != "GET") {
      req.set_body(std::vector<unsigned char>(body.begin(), body.end()));
      req.headers().set_content_type("application/msgpack");
    }
    const auto resp = client.request(req).get();
    FederationResponse out;
    out.status = resp.status_code();
    if (auto ra = resp.headers().find("Retry-After"); ra != resp.headers().end()) {
      try {
        out.retry_after_ms = std::min<std::int64_t>(std::stoll(ra->second), 3600) * 1000;
      } catch (const std::exception&) {
      }
    }
    out.body = read_body(resp, kMaxAnswer);
    return out;
  } catch (const std::exception& e) {
    return make_error("unreachable", dest + " (" + base + "): " + e.what());
  }
}

}  // namespace parley::node
