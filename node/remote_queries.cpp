#include "remote_queries.h"

#include <spdlog/spdlog.h>

#include <cpprest/json.h>
#include <boost/asio/io_context.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/thread_pool.hpp>

#include "federation_client.h"

namespace parley::node {

namespace asio = boost::asio;

PoolRemoteQueries::PoolRemoteQueries(asio::io_context& core_ctx, FederationClient& client)
    : core_ctx_(core_ctx), client_(client), pool_(std::make_unique<asio::thread_pool>(kThreads)) {}

PoolRemoteQueries::~PoolRemoteQueries() { stop(); }

void PoolRemoteQueries::query(std::string dest, std::string kind, std::string body,
                              std::function<void(Result<std::string>)> done) {
  Question q{std::move(kind), std::move(body), std::move(done)};
  {
    std::lock_guard<std::mutex> lock(mu_);
    auto& lane = lanes_[dest];
    if (!stopping_ && lane.in_flight >= kPerDestination) {
      if (lane.waiting.size() >= kMaxWaitingPerDestination) {
        spdlog::warn("event=remote_queries_full peer={} waiting={}", dest, lane.waiting.size());
        return answer(std::move(q.done),
                      make_error("unavailable", "too many questions to " + dest + " waiting"));
      }
      lane.waiting.push_back(std::move(q));
      return;
    }
    if (stopping_) {
      return answer(std::move(q.done), make_error("unavailable", "the node is stopping"));
    }
    ++lane.in_flight;
  }
  asio::post(*pool_, [this, dest = std::move(dest), q = std::move(q)]() mutable {
    run(dest, std::move(q));
  });
}

// Answers `q`, then the questions that waited in the lane, one after another on this thread.
void PoolRemoteQueries::run(const std::string& dest, Question q) {
  for (;;) {
    auto a = ask(dest, q);
    answer(std::move(q.done), std::move(a));
    std::lock_guard<std::mutex> lock(mu_);
    auto it = lanes_.find(dest);
    if (stopping_) {
      for (auto& w : it->second.waiting) {
        answer(std::move(w.done), make_error("unavailable", "the node is stopping"));
      }
      it->second.waiting.clear();
    }
    if (it->second.waiting.empty()) {
      if (--it->second.in_flight == 0) lanes_.erase(it);
      return;
    }
    q = std::move(it->second.waiting.front());
    it->second.waiting.pop_front();
  }
}

Result<std::string> PoolRemoteQueries::ask(const std::string& dest, const Question& q) {
  auto resp = client_.request(dest, "POST", "/federation/v1/query/" + q.kind, q.body);
  if (!resp.ok() && resp.error().code == "denied") {
    // This node's own admin's choice, so the asking user may know it (never sent to the peer).
    spdlog::info("event=remote_query_held peer={} kind={} reason=\"peer denied\"", dest, q.kind);
    return make_error("not_allowed", "this node does not federate with " + dest);
  }
  if (!resp.ok()) {
    // The reason (a refused private address, a connection error) is for the admin's log, not
    // for the user who asked: it would tell them what this node's network looks like.
    spdlog::info("event=remote_query_failed peer={} kind={} reason=\"{}\"", dest, q.kind,
                 resp.error().message);
    return make_error("unreachable", "cannot reach " + dest);
  }
  if (resp->status == 200) return std::move(resp->body);
  // The other node's error, passed on: {"code": ..., "message": ...}.
  std::string code = "bad_gateway";
  std::string message = dest + " answered HTTP " + std::to_string(resp->status);
  try {
    const auto v = web::json::value::parse(resp->body);
    code = v.at("code").as_string();
    message = dest + ": " + v.at("message").as_string();
  } catch (const std::exception&) {
  }
  return make_error(code, message);
}

void PoolRemoteQueries::answer(std::function<void(Result<std::string>)> done,
                               Result<std::string> a) {
  asio::post(core_ctx_,
             [done = std::move(done), a = std::move(a)]() mutable { done(std::move(a)); });
}

void PoolRemoteQueries::stop() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (stopping_) return;
    stopping_ = true;
  }
  pool_->join();  // the running ones answer their lane's waiting questions "unavailable"
}

}  // namespace parley::node
