// The federation HTTP endpoint (cpprestsdk) other nodes call (spec/federation.md). So far it
// serves the node's signed key document at GET /federation/v1/key. It listens only when the
// config allows plain HTTP (federation.allow_plaintext_http, loopback tests); HTTPS comes with
// TLS configuration.
#pragma once

#include <memory>
#include <string>

#include "parley/node/config.h"
#include "parley/result.h"

namespace parley::node {

class FederationApi {
 public:
  FederationApi(NodeConfig config, std::string key_document);
  ~FederationApi();
  Status start();
  void stop();

 private:
  class Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace parley::node
