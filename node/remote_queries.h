// Directory questions to other nodes (RemoteQueries, core.h) on a pool of their own, in lanes per
// destination: at most kPerDestination questions to one node are in flight at once (each may
// block on HTTP for up to the client's timeout), the others wait in that node's lane without
// holding a thread, so a node that hangs delays only the questions addressed to it. A lane holds
// at most kMaxWaitingPerDestination questions; beyond that the asker gets "unavailable" at once.
// Private to node/.
#pragma once

#include <cstddef>
#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <string>

#include "parley/node/core.h"

namespace boost::asio {
class io_context;
class thread_pool;
}  // namespace boost::asio

namespace parley::node {

class FederationClient;

class PoolRemoteQueries : public RemoteQueries {
 public:
  static constexpr std::size_t kThreads = 8;
  static constexpr std::size_t kPerDestination = 2;
  static constexpr std::size_t kMaxWaitingPerDestination = 256;

  PoolRemoteQueries(boost::asio::io_context& core_ctx, FederationClient& client);
  ~PoolRemoteQueries() override;
  // Any thread; `done` runs on the core thread.
  void query(std::string dest, std::string kind, std::string body,
             std::function<void(Result<std::string>)> done) override;
  // Waits for the questions in flight; those still waiting are answered "unavailable".
  void stop();

 private:
  struct Question {
    std::string kind, body;
    std::function<void(Result<std::string>)> done;
  };
  struct Lane {
    std::size_t in_flight = 0;
    std::deque<Question> waiting;
  };
  void run(const std::string& dest, Question q);
  Result<std::string> ask(const std::string& dest, const Question& q);
  void answer(std::function<void(Result<std::string>)> done, Result<std::string> a);

  boost::asio::io_context& core_ctx_;
  FederationClient& client_;
  std::unique_ptr<boost::asio::thread_pool> pool_;
  std::mutex mu_;
  bool stopping_ = false;
  std::map<std::string, Lane> lanes_;
};

}  // namespace parley::node
