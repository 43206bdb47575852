#include "federation_client.h"

#include <spdlog/spdlog.h>

#include <cpprest/http_client.h>
#include <boost/asio/ssl.hpp>
#include <chrono>

#include "parley/crypto/secret.h"
#include "parley/federation/peers.h"
#include "parley/federation/signing.h"
#include "parley/node/core.h"

namespace parley::node {

namespace http = web::http;

namespace {

constexpr std::int64_t kRediscoverMs = 24 * 3600 * 1000;
constexpr std::size_t kMaxWellKnown = 16 * 1024;

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

}  // namespace

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
  Status looked = ok_status();
  run_on_core_([&](Core& core) {
    auto p = federation::PeerStore(core.database()).get(name);
    if (!p.ok()) {
      looked = p.take_error();
      return;
    }
    peer = *p;
  });
  PARLEY_TRY(looked);
  const std::int64_t now = now_ms();
  if (peer && !peer->url.empty() &&
      (peer->discovered_ms == 0 || now - peer->discovered_ms < kRediscoverMs)) {
    PARLEY_TRY(check_scheme(peer->url));
    return peer->url;
  }
  // Discovery: {"federation_url": "https://host:port"} at the configured well-known URL.
  const std::string where = replace_name(config_.federation_discovery_url, name);
  PARLEY_TRY(check_scheme(where));
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
    const auto bytes = resp.extract_vector().get();
    if (bytes.size() > kMaxWellKnown) {
      return make_error("unreachable", "discovery document of " + name + " is too large");
    }
    const auto doc = web::json::value::parse(std::string(bytes.begin(), bytes.end()));
    found = doc.at("federation_url").as_string();
  } catch (const std::exception& e) {
    return make_error("unreachable", "discovery of " + name + " at " + where + ": " + e.what());
  }
  PARLEY_TRY(check_scheme(found));
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
    const auto bytes = resp.extract_vector().get();
    return federation::parse_key_document(std::string(bytes.begin(), bytes.end()), name);
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
    const auto bytes = resp.extract_vector().get();
    out.body.assign(bytes.begin(), bytes.end());
    return out;
  } catch (const std::exception& e) {
    return make_error("unreachable", dest + " (" + base + "): " + e.what());
  }
}

}  // namespace parley::node
