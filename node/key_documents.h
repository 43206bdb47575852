// Other nodes' key documents (spec/federation.md section 1), fetched and cached once for the whole
// node: the federation listener checks request keys with them (blocking its own workers) and the
// core checks the origin signatures of group events passed on by other nodes (without blocking:
// it reads the cache and asks for a fetch whose end is posted back to it). A document is cached
// for 60 s, a failed fetch remembered as long (the reason stays in the log). Fetches are
// single-flight per origin and at most kMaxFetches run at once; a few requests may wait for a
// fetch in progress, the others get "unavailable" at once. Thread-safe. Private to node/.
#pragma once

#include <condition_variable>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <set>
#include <string>

#include "parley/federation/key_document.h"
#include "parley/node/core.h"
#include "parley/result.h"

namespace boost::asio {
class io_context;
class thread_pool;
}  // namespace boost::asio

namespace parley::node {

class FederationClient;

class KeyDocuments : public OriginKeys {
 public:
  static constexpr std::int64_t kCacheMs = 60'000;
  static constexpr std::size_t kMaxFetches = 2;
  static constexpr std::size_t kMaxWaiters = 4;
  static constexpr std::size_t kMaxWaitersPerOrigin = 3;
  static constexpr std::size_t kMaxQueuedForCore = 64;

  // `core_ctx`: where fetch() reports (the core thread).
  KeyDocuments(FederationClient& client, boost::asio::io_context& core_ctx);
  ~KeyDocuments() override;

  // The document of `origin`: cached, or fetched now (blocking; never on the core thread).
  // Errors: "unavailable" (fetches busy: retry shortly), "unknown_key" (the fetch failed).
  Result<federation::KeyDocument> get(const std::string& origin);

  // OriginKeys, for the core thread.
  std::optional<federation::KeyDocument> cached(const std::string& origin) override;
  void fetch(const std::string& origin, std::function<void(bool)> done) override;

  // Waits for the background fetches; those not started report false.
  void stop();

 private:
  struct Cached {
    std::int64_t fetched_ms = 0;
    std::optional<federation::KeyDocument> doc;  // none: the fetch failed
  };
  FederationClient& client_;
  boost::asio::io_context& core_ctx_;
  std::unique_ptr<boost::asio::thread_pool> pool_;
  std::mutex mu_;
  std::condition_variable cv_;
  std::map<std::string, Cached> docs_;
  std::set<std::string> fetching_;
  std::map<std::string, std::size_t> waiting_;
  std::size_t waiting_total_ = 0;
  std::size_t queued_for_core_ = 0;
  bool stopping_ = false;
};

}  // namespace parley::node
