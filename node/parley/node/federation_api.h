// The federation HTTP endpoint (cpprestsdk) other nodes call (spec/federation.md):
//   GET /federation/v1/key          the node's signed key document
//   PUT /federation/v1/send/{txn}   a signed transaction of events, applied exactly once
// A request is checked in this order: size, denied/allowlist, signature (pinned key, or the
// peer's key document fetched and pinned on first contact), replay, then the body. It listens
// only when federation.allow_plaintext_http is set (loopback tests); HTTPS comes with TLS config.
#pragma once

#include <functional>
#include <memory>
#include <string>

#include "parley/node/config.h"
#include "parley/result.h"

namespace parley::node {

class Core;

struct FederationContext {
  NodeConfig config;
  std::string key_document;
  std::function<void(std::function<void(Core&)>)> run_on_core;  // blocks until done
  std::function<void()> heard_from_peer;                        // wakes the sender
};

class FederationApi {
 public:
  explicit FederationApi(FederationContext context);
  ~FederationApi();
  Status start();
  void stop();

 private:
  class Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace parley::node
