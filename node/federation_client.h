// Outgoing federation HTTP for the node: finding a peer's base URL (static peer entry, else
// /.well-known/parley discovery, cached in the peers table), TLS settings, key documents and
// signed requests. Blocking; used from the sender thread and the federation listener's threads,
// never from the core thread. Private to node/.
#pragma once

#include <cstdint>
#include <functional>
#include <mutex>
#include <string>

#include "parley/crypto/sign.h"
#include "parley/federation/key_document.h"
#include "parley/node/config.h"
#include "parley/result.h"

namespace web::http::client {
class http_client_config;
}
namespace boost::asio::ip {
class address;
}

namespace parley::node {

class Core;

struct FederationResponse {
  int status = 0;
  std::string body;
  std::int64_t retry_after_ms = 0;  // from a 429's or 503's Retry-After, else 0
};

// Whether a node may contact this address on the word of another node or a user: false for
// loopback, private, link-local, CGNAT, multicast, documentation and other special ranges.
bool is_public_address(const boost::asio::ip::address& address);

class FederationClient {
 public:
  using RunOnCore = std::function<void(std::function<void(Core&)>)>;
  FederationClient(NodeConfig config, const crypto::SigningKey& key, RunOnCore run_on_core)
      : config_(std::move(config)), key_(key), run_on_core_(std::move(run_on_core)) {}

  // The base URL of node `name`: its peer entry's URL, or one discovered through
  // federation.discovery_url (re-discovered after a day). "unreachable" when discovery fails,
  // "refused" for an http:// URL without federation.allow_plaintext_http, for a name that is not
  // a DNS name, and for a discovered URL (or a discovery URL whose host is the name) that is not
  // a public address (check_target). Static peer entries are the admin's choice: never checked.
  // "denied" for a denied peer, and under federation.policy = "allowlist" for a node that is not
  // a listed peer, before any I/O: every outgoing request passes here.
  Result<std::string> base_url(const std::string& name);
  // Forgets a discovered URL (after repeated failures), so the next base_url asks again.
  void forget_discovered(const std::string& name);

  // GET {base}/federation/v1/key, checked to be a well-formed, self-signed document of `name`.
  Result<federation::KeyDocument> key_document(const std::string& name);

  // A request signed by this node. Transport failures are "unreachable"; any HTTP answer is a
  // FederationResponse.
  Result<FederationResponse> request(const std::string& dest, const std::string& method,
                                     const std::string& path, const std::string& body);

  const NodeConfig& config() const { return config_; }

 private:
  Status check_scheme(const std::string& url) const;
  // "refused" when the URL's host is, or resolves to, an address that is not public (loopback,
  // private, link-local, ...), unless federation.allow_private_addresses is set.
  Status check_target(const std::string& url) const;
  void apply_tls(web::http::client::http_client_config& cc) const;

  NodeConfig config_;
  const crypto::SigningKey& key_;
  RunOnCore run_on_core_;
};

}  // namespace parley::node
