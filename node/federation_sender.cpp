#include "parley/node/federation_sender.h"

#include "federation_client.h"

#include <spdlog/spdlog.h>

#include <boost/asio/post.hpp>
#include <boost/asio/thread_pool.hpp>

#include <algorithm>
#include <chrono>
#include <thread>
#include <vector>

#include "parley/crypto/secret.h"
#include "parley/federation/transaction.h"
#include "parley/node/core.h"
#include "parley/store/database.h"

namespace parley::node {

namespace {

// Events per transaction: at most 1000 and about 2 MiB of payloads (the receiver takes 4 MiB).
constexpr int kBatch = 1000;
constexpr std::size_t kBatchBytes = 2 * 1024 * 1024;
// At most one transaction per destination every 25 ms (40/s, under the default admission limit
// of 50 requests/s per origin): under a steady stream events gather into fewer, larger
// transactions instead of being refused (429) and waiting a second.
constexpr std::int64_t kMinTxnGapMs = 25;
constexpr std::size_t kWorkers = 4;
constexpr std::int64_t kBackoffStartMs = 500;
constexpr std::int64_t kBackoffCapMs = 5 * 60 * 1000;

std::int64_t now_ms() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

struct Batch {
  bool discovered = false;
  std::string state;
  std::vector<std::pair<std::int64_t, std::string>> events;
  std::size_t bytes = 0;
  bool full = false;  // stopped at the byte bound
  bool due = false;
  std::uint64_t epoch = 0;  // this node's, sent with the events
};

}  // namespace

FederationSender::FederationSender(NodeConfig config, FederationClient& client,
                                   RunOnCore run_on_core)
    : config_(std::move(config)), client_(client), run_on_core_(std::move(run_on_core)) {}

FederationSender::~FederationSender() { stop(); }

void FederationSender::start() {
  workers_ = std::make_unique<boost::asio::thread_pool>(kWorkers);
  thread_ = std::thread([this] { run(); });
}

void FederationSender::wake() {
  std::lock_guard<std::mutex> lock(mu_);
  woken_ = true;
  cv_.notify_one();
}

void FederationSender::heard_from(const std::string& peer) {
  bool was_failing = false;
  run_on_core_([&](Core& core) {
    auto up = core.database().prepare(
        "UPDATE peers SET next_attempt_ms = 0, failures = 0 WHERE name = ? AND failures > 0");
    if (up.ok() && up->bind(1, peer).run().ok()) was_failing = core.database().changes() > 0;
  });
  if (was_failing) {
    spdlog::info("event=peer_backoff_reset peer={} reason=\"heard from it\"", peer);
    wake();
  }
}

void FederationSender::stop() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    stopping_ = true;
    cv_.notify_one();
  }
  if (thread_.joinable()) thread_.join();
  if (workers_) workers_->join();
}

void FederationSender::run() {
  for (;;) {
    {
      std::unique_lock<std::mutex> lock(mu_);
      cv_.wait_for(lock, std::chrono::milliseconds(500), [this] { return woken_ || stopping_; });
      if (stopping_) return;
      woken_ = false;
    }
    std::vector<std::string> dests;
    run_on_core_([&](Core& core) {
      auto st = core.database().prepare("SELECT DISTINCT dest FROM fed_outbox ORDER BY dest");
      if (!st.ok()) return;
      while (true) {
        auto row = st->step();
        if (!row.ok() || !*row) break;
        dests.push_back(st->column_text(0));
      }
    });
    for (const auto& d : dests) {
      std::lock_guard<std::mutex> lock(mu_);
      if (!in_flight_.insert(d).second) continue;  // one worker per destination
      boost::asio::post(*workers_, [this, d] { drain(d); });
    }
  }
}

// Delivers batches to `dest` while it takes full ones; then frees the destination. After a
// partial batch it asks for another round, so events queued meanwhile go out without waiting
// for the next poll.
void FederationSender::drain(const std::string& dest) {
  Outcome last = Outcome::kNothing;
  for (;;) {
    {
      std::lock_guard<std::mutex> lock(mu_);
      if (stopping_) break;
    }
    last = deliver_one(dest);
    if (last != Outcome::kFull) break;
  }
  {
    std::lock_guard<std::mutex> lock(mu_);
    in_flight_.erase(dest);
  }
  if (last == Outcome::kPartial) wake();
}

// Sends the next batch for `dest` if it is due.
FederationSender::Outcome FederationSender::deliver_one(const std::string& dest) {
  {
    const auto steady = [] {
      return std::chrono::duration_cast<std::chrono::milliseconds>(
                 std::chrono::steady_clock::now().time_since_epoch())
          .count();
    };
    std::int64_t wait = 0;
    {
      std::lock_guard<std::mutex> lock(mu_);
      auto& last = last_start_[dest];
      wait = last + kMinTxnGapMs - steady();
      last = steady() + std::max<std::int64_t>(wait, 0);
    }
    if (wait > 0) std::this_thread::sleep_for(std::chrono::milliseconds(wait));
  }
  Batch b;
  const std::int64_t now = now_ms();
  run_on_core_([&](Core& core) {
    auto& db = core.database();
    // A destination without an entry gets one, so `peer status` shows its queue and errors.
    if (auto ins = db.prepare("INSERT INTO peers(name, url, added_ms) VALUES(?1, '', ?2) "
                              "ON CONFLICT(name) DO NOTHING");
        ins.ok()) {
      (void)ins->bind(1, dest).bind(2, now).run();
    }
    auto p = db.prepare(
        "SELECT discovered_ms, state, next_attempt_ms, listed FROM peers WHERE name = ?");
    if (!p.ok()) return;
    p->bind(1, dest);
    if (auto row = p->step(); !row.ok() || !*row) return;
    b.discovered = p->column_int64(0) != 0;
    b.state = p->column_text(1);
    b.due = p->column_int64(2) <= now;
    // Held, neither sent nor dropped: a denied peer's queue, and under the allowlist the queue of
    // a node the admin has not listed (spec/federation.md section 3).
    const bool unlisted = core.config().federation_policy == "allowlist" && p->column_int64(3) == 0;
    if (!b.due || b.state != "allowed" || unlisted) return;
    if (auto epoch = core.node_epoch(); epoch.ok()) b.epoch = *epoch;
    auto st = db.prepare("SELECT id, payload FROM fed_outbox WHERE dest = ? ORDER BY id LIMIT ?");
    if (!st.ok()) return;
    st->bind(1, dest).bind(2, std::int64_t{kBatch});
    while (true) {
      auto row = st->step();
      if (!row.ok() || !*row) break;
      b.events.emplace_back(st->column_int64(0), st->column_text(1));
      b.bytes += b.events.back().second.size();
      if (b.bytes >= kBatchBytes) {
        b.full = true;
        break;
      }
    }
  });
  if (b.events.empty()) return Outcome::kNothing;

  federation::Transaction txn_body{config_.name, b.epoch, {}};
  for (const auto& [id, payload] : b.events) txn_body.events.push_back({id, payload});
  const std::string body = federation::encode_transaction(txn_body);
  const std::string txn =
      std::to_string(b.events.front().first) + "-" + std::to_string(b.events.back().first);
  const std::string path = "/federation/v1/send/" + txn;
  std::string error;
  std::int64_t retry_after_ms = 0;
  const auto sent_at = std::chrono::steady_clock::now();
  auto resp = client_.request(dest, "PUT", path, body);
  if (metrics_) {
    const bool answered_ok = resp.ok() && resp->status == 200;
    (answered_ok ? metrics_->federation_txn_ok : metrics_->federation_txn_failed)
        .fetch_add(1, std::memory_order_relaxed);
    if (answered_ok) {
      metrics_->federation_events_out.fetch_add(static_cast<std::int64_t>(b.events.size()),
                                                std::memory_order_relaxed);
    }
    if (resp.ok()) {
      metrics_->federation_latency.observe(
          std::chrono::duration<double>(std::chrono::steady_clock::now() - sent_at).count());
    }
  }
  if (!resp.ok()) {
    error = resp.error().message;
  } else if (resp->status != 200) {
    error = "HTTP " + std::to_string(resp->status) + ": " + resp->body.substr(0, 200);
    retry_after_ms = resp->retry_after_ms;
  }
  const std::int64_t last_id = b.events.back().first;
  const bool ok = error.empty();
  run_on_core_([&](Core& core) {
    auto& db = core.database();
    if (ok) {
      if (auto del = db.prepare("DELETE FROM fed_outbox WHERE dest = ? AND id <= ?"); del.ok()) {
        (void)del->bind(1, dest).bind(2, last_id).run();
      }
      if (auto up = db.prepare("UPDATE peers SET last_success_ms = ?, failures = 0, last_error = "
                               "'', next_attempt_ms = 0 WHERE name = ?");
          up.ok()) {
        (void)up->bind(1, now_ms()).bind(2, dest).run();
      }
      return;
    }
    auto p = db.prepare("SELECT failures FROM peers WHERE name = ?");
    std::int64_t failures = 0;
    if (p.ok()) {
      p->bind(1, dest);
      if (auto row = p->step(); row.ok() && *row) failures = p->column_int64(0);
    }
    const std::int64_t base =
        std::min(kBackoffCapMs, kBackoffStartMs << std::min<std::int64_t>(failures, 20));
    const std::int64_t delay = std::max(
        retry_after_ms, base / 2 + crypto::random_uniform(static_cast<std::uint32_t>(base)));
    if (auto up = db.prepare("UPDATE peers SET failures = failures + 1, last_error = ?, "
                             "next_attempt_ms = ? WHERE name = ?");
        up.ok()) {
      (void)up->bind(1, error.substr(0, 300)).bind(2, now_ms() + delay).bind(3, dest).run();
    }
  });
  if (!ok) {
    // A discovered address that keeps failing may have moved: ask again next time.
    if (b.discovered && !resp.ok()) client_.forget_discovered(dest);
    spdlog::warn("event=federation_send_failed peer={} events={} error=\"{}\"", dest,
                 b.events.size(), error.substr(0, 200));
    return Outcome::kFailed;
  }
  spdlog::info("event=federation_sent peer={} txn={} events={}", dest, txn, b.events.size());
  return b.full || b.events.size() == static_cast<std::size_t>(kBatch) ? Outcome::kFull
                                                                       : Outcome::kPartial;
}

}  // namespace parley::node
