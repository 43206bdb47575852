// The federation listener (spec/federation.md): the key document, /.well-known/parley, and the
// signed endpoints other nodes call. Requests are authenticated (signature, key pinning with
// rotation chains, replay), admitted per origin (rate and concurrency, 429 with Retry-After) and
// handed to the core thread.
#pragma once

#include <functional>
#include <memory>
#include <string>

#include "parley/node/config.h"
#include "parley/node/metrics.h"
#include "parley/result.h"

namespace parley::node {

class Core;
class FederationClient;
class KeyDocuments;

struct FederationContext {
  NodeConfig config;
  std::string key_document;
  std::function<void(std::function<void(Core&)>)> run_on_core;  // blocks until done
  std::function<void(const std::string&)> heard_from_peer;      // resets the sender's backoff
  FederationClient* client = nullptr;                           // outgoing requests (discovery)
  KeyDocuments* keys = nullptr;  // other nodes' key documents, shared with the core
};

class FederationApi {
 public:
  explicit FederationApi(FederationContext context);
  ~FederationApi();
  Status start();
  void stop();
  // A configuration reload: federation.policy and the admission limits
  // (requests_per_second, concurrent_per_origin). Any thread.
  void reload(const NodeConfig& fresh);
  // The listener's counters for /metrics (any thread).
  Snapshot::Listener stats() const;

 private:
  class Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace parley::node
