#include "key_documents.h"

#include <spdlog/spdlog.h>

#include <boost/asio/io_context.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/thread_pool.hpp>
#include <chrono>

#include "federation_client.h"

namespace parley::node {

namespace asio = boost::asio;

namespace {

constexpr std::chrono::milliseconds kFetchWait{12'000};  // above the fetch's own timeout

std::int64_t now_ms() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

}  // namespace

KeyDocuments::KeyDocuments(FederationClient& client, asio::io_context& core_ctx)
    : client_(client), core_ctx_(core_ctx), pool_(std::make_unique<asio::thread_pool>(1)) {}

KeyDocuments::~KeyDocuments() { stop(); }

void KeyDocuments::stop() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (stopping_) return;
    stopping_ = true;
  }
  pool_->join();
}

Result<federation::KeyDocument> KeyDocuments::get(const std::string& origin) {
  {
    std::unique_lock<std::mutex> lock(mu_);
    // Another request of the same origin is fetching it (a peer's first contact usually brings a
    // transaction and queries at once): wait for that one. Fetches and waiters are few, so
    // requests naming slow origins never hold every worker.
    if (fetching_.count(origin) && waiting_total_ < kMaxWaiters &&
        waiting_[origin] < kMaxWaitersPerOrigin) {
      ++waiting_total_;
      ++waiting_[origin];
      cv_.wait_for(lock, kFetchWait, [&] { return !fetching_.count(origin); });
      --waiting_total_;
      if (--waiting_[origin] == 0) waiting_.erase(origin);
    }
    auto it = docs_.find(origin);
    if (it != docs_.end() && now_ms() - it->second.fetched_ms < kCacheMs) {
      if (it->second.doc) return *it->second.doc;
      return make_error("unknown_key", "no key known for " + origin);
    }
    if (fetching_.count(origin) || fetching_.size() >= kMaxFetches) {
      return make_error("unavailable", "the key of " + origin + " is being fetched; retry");
    }
    fetching_.insert(origin);
  }
  auto doc = client_.key_document(origin);
  std::lock_guard<std::mutex> lock(mu_);
  fetching_.erase(origin);
  cv_.notify_all();
  if (docs_.size() > 10000) docs_.clear();
  if (!doc.ok()) {
    // The reason stays in the log: the requester learns nothing about what this node can reach.
    spdlog::info("event=peer_key_fetch_failed peer={} reason=\"{}\"", origin, doc.error().message);
    docs_[origin] = {now_ms(), std::nullopt};
    return make_error("unknown_key", "no key known for " + origin);
  }
  docs_[origin] = {now_ms(), *doc};
  return doc;
}

std::optional<federation::KeyDocument> KeyDocuments::cached(const std::string& origin) {
  std::lock_guard<std::mutex> lock(mu_);
  const auto it = docs_.find(origin);
  if (it == docs_.end() || now_ms() - it->second.fetched_ms >= kCacheMs) return std::nullopt;
  return it->second.doc;
}

void KeyDocuments::fetch(const std::string& origin, std::function<void(bool)> done) {
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (stopping_ || queued_for_core_ >= kMaxQueuedForCore) {
      asio::post(core_ctx_, [done = std::move(done)] { done(false); });
      return;
    }
    ++queued_for_core_;
  }
  asio::post(*pool_, [this, origin, done = std::move(done)]() mutable {
    bool stopping = false;
    {
      std::lock_guard<std::mutex> lock(mu_);
      stopping = stopping_;
    }
    // A busy fetch slot ("unavailable") counts as not fetched: the caller asks again later.
    const bool ok = !stopping && get(origin).ok();
    {
      std::lock_guard<std::mutex> lock(mu_);
      --queued_for_core_;
    }
    asio::post(core_ctx_, [done = std::move(done), ok] { done(ok); });
  });
}

}  // namespace parley::node
