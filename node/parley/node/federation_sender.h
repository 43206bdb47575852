// Delivers the outbound federation queue (table fed_outbox) to each destination node: one signed
// transaction in flight per destination, up to 100 events per transaction, in id order;
// exponential backoff with jitter (0.5 s doubling, capped at 5 min) after a failure, reset when
// the peer answers or is heard from. Runs on its own thread; reaches the database only through
// `run_on_core`. Thread-safe: wake() and stop() may be called from any thread.
#pragma once

#include <condition_variable>
#include <functional>
#include <mutex>
#include <string>
#include <thread>

#include "parley/crypto/sign.h"
#include "parley/node/config.h"

namespace parley::node {

class Core;
class FederationClient;

class FederationSender {
 public:
  using RunOnCore = std::function<void(std::function<void(Core&)>)>;
  FederationSender(NodeConfig config, FederationClient& client, RunOnCore run_on_core);
  ~FederationSender();
  void start();
  void wake();
  void stop();

 private:
  void run();
  bool deliver_one(const std::string& dest);

  NodeConfig config_;
  FederationClient& client_;
  RunOnCore run_on_core_;
  std::mutex mu_;
  std::condition_variable cv_;
  bool woken_ = false;
  bool stopping_ = false;
  std::thread thread_;
};

}  // namespace parley::node
