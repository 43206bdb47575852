// Delivers the outbound federation queue (table fed_outbox) to each destination node: one signed
// transaction in flight per destination, up to 1000 events (about 2 MiB) per transaction, at
// most one every 25 ms per destination under a steady stream, in id order;
// exponential backoff with jitter (0.5 s doubling, capped at 5 min) after a failure, reset when
// the peer answers or is heard from. A scheduler thread hands due destinations to a few workers,
// so a slow or unreachable peer never delays the others. Reaches the database only through
// `run_on_core`. Thread-safe: wake(), heard_from() and stop() may be called from any thread.
#pragma once

#include <condition_variable>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <set>
#include <string>
#include <thread>

#include "parley/node/config.h"
#include "parley/node/metrics.h"

namespace boost::asio {
class thread_pool;
}

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
  // Transaction counts and latency for /metrics; set before start().
  void set_metrics(Metrics* metrics) { metrics_ = metrics; }
  // `peer` proved it is up (a verified request from it): retry towards it now.
  void heard_from(const std::string& peer);
  void stop();

 private:
  enum class Outcome { kNothing, kPartial, kFull, kFailed };
  void run();
  void drain(const std::string& dest);
  Outcome deliver_one(const std::string& dest);

  NodeConfig config_;
  Metrics* metrics_ = nullptr;
  FederationClient& client_;
  RunOnCore run_on_core_;
  std::mutex mu_;
  std::condition_variable cv_;
  bool woken_ = false;
  std::set<std::string> in_flight_;  // destinations a worker is delivering to
  // When the last transaction to each destination started (steady clock, ms): a steady stream
  // of events is paced into larger transactions rather than one request per event.
  std::map<std::string, std::int64_t> last_start_;
  std::unique_ptr<boost::asio::thread_pool> workers_;
  bool stopping_ = false;
  std::thread thread_;
};

}  // namespace parley::node
