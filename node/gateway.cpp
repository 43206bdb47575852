#include "parley/node/gateway.h"

#include <spdlog/spdlog.h>

#include <array>
#include <boost/asio.hpp>
#include <deque>
#include <functional>
#include <mutex>
#include <unordered_map>
#include <vector>

#include "parley/frame.h"
#include "parley/message.h"
#include "parley/node/core.h"

namespace parley::node {

namespace asio = boost::asio;
using tcp = asio::ip::tcp;

struct Gateway::Counters {
  std::atomic<std::int64_t> open{0};
  std::atomic<std::int64_t> queued{0};        // frames in write queues
  std::atomic<std::int64_t> queued_bytes{0};  // their bytes
  std::atomic<std::int64_t> slow_consumers{0};
  std::atomic<std::int64_t> refused_max_connections{0};
  std::atomic<std::int64_t> refused_per_source{0};

  // Unauthenticated connections per source IP (accept, authentication and close run on
  // different strands).
  bool add_unauthenticated(const std::string& source, std::uint32_t limit) {
    std::lock_guard<std::mutex> lock(mu);
    auto& n = unauthenticated[source];
    if (n >= limit) {
      if (n == 0) unauthenticated.erase(source);
      return false;
    }
    ++n;
    return true;
  }
  void remove_unauthenticated(const std::string& source) {
    std::lock_guard<std::mutex> lock(mu);
    const auto it = unauthenticated.find(source);
    if (it == unauthenticated.end()) return;
    if (--it->second == 0) unauthenticated.erase(it);
  }

 private:
  std::mutex mu;
  std::unordered_map<std::string, std::uint32_t> unauthenticated;
};
using Counters = Gateway::Counters;

namespace {

constexpr auto kCloseGrace = std::chrono::seconds(5);

// Work for the core from every connection, run in batches: one core task runs what is queued
// inside one database batch (Core::begin_batch), so requests that arrive together share one
// commit. Tasks of one connection keep their order; connections take turns (one task of each
// connection with work, round robin), and a batch ends after kBatchBudget of work or kMaxBatch
// tasks, so one connection's pipelined expensive requests cannot hold other connections'
// answers (which leave after the batch's commit) or other core work behind them.
class CoreInbox : public std::enable_shared_from_this<CoreInbox> {
 public:
  using Key = const void*;  // the connection
  CoreInbox(asio::io_context& core_ctx, Core& core) : core_ctx_(core_ctx), core_(core) {}

  void submit(Key key, std::function<void()> task) {
    bool post = false;
    {
      std::lock_guard<std::mutex> lock(mu_);
      auto& q = queues_[key];
      if (q.empty()) turn_.push_back(key);
      q.push_back(std::move(task));
      post = !posted_;
      posted_ = true;
    }
    if (post) asio::post(core_ctx_, [self = shared_from_this()] { self->drain(); });
  }

 private:
  std::function<void()> next() {
    std::lock_guard<std::mutex> lock(mu_);
    if (turn_.empty()) return {};
    const Key key = turn_.front();
    turn_.pop_front();
    const auto it = queues_.find(key);
    std::function<void()> task = std::move(it->second.front());
    it->second.pop_front();
    if (it->second.empty()) {
      queues_.erase(it);
    } else {
      turn_.push_back(key);
    }
    return task;
  }

  void drain() {
    const auto start = std::chrono::steady_clock::now();
    core_.begin_batch();
    for (std::size_t n = 0; n < kMaxBatch; ++n) {
      auto task = next();
      if (!task) break;
      task();
      if (std::chrono::steady_clock::now() - start > kBatchBudget) break;
    }
    core_.end_batch();
    bool more = false;
    {
      std::lock_guard<std::mutex> lock(mu_);
      more = !turn_.empty();
      posted_ = more;
    }
    if (more) asio::post(core_ctx_, [self = shared_from_this()] { self->drain(); });
  }
  static constexpr std::size_t kMaxBatch = 512;
  static constexpr auto kBatchBudget = std::chrono::milliseconds(10);

  asio::io_context& core_ctx_;
  Core& core_;
  std::mutex mu_;
  std::unordered_map<Key, std::deque<std::function<void()>>> queues_;
  std::deque<Key> turn_;  // connections with tasks, in the order they take their turns
  bool posted_ = false;
};

// Requests of one connection handed to the core and not yet processed by it; at this many the
// connection is not read until the core catches up (spec/client-protocol.md section 3).
constexpr int kMaxWaitingRequests = 64;

class Session : public std::enable_shared_from_this<Session> {
 public:
  // `source` (the peer's IP) was counted as unauthenticated by the acceptor.
  Session(tcp::socket socket, std::string source, asio::io_context& core_ctx, Core& core,
          const NodeConfig& config, std::shared_ptr<Counters> counters,
          std::shared_ptr<CoreInbox> inbox)
      : inbox_(std::move(inbox)),
        socket_(std::move(socket)),
        strand_(asio::make_strand(socket_.get_executor())),
        core_ctx_(core_ctx),
        core_(core),
        config_(config),
        source_(std::move(source)),
        decoder_(std::min<std::size_t>(wire::kMaxPreauthFrame, config.max_frame_bytes)),
        heartbeat_(strand_),
        counters_(std::move(counters)) {
    ++counters_->open;
  }
  ~Session() {
    counters_->queued -= static_cast<std::int64_t>(queue_.size());
    for (const auto& f : queue_) counters_->queued_bytes -= static_cast<std::int64_t>(f.size());
    --counters_->open;
    end_unauthenticated();
  }

  void start();
  // Called through the Outlet (any thread).
  void post_send(std::string payload);
  void post_notify_drained();
  void post_close(std::string code, std::string message);
  void post_authenticated();

 private:
  void end_unauthenticated() {
    if (!unauthenticated_) return;
    unauthenticated_ = false;
    counters_->remove_unauthenticated(source_);
  }
  void on_registered(ConnId id);
  void read();
  void on_read(const boost::system::error_code& ec, std::string_view data);
  bool hand_over();
  void resume_reading();
  void arm_heartbeat();
  // A frame posted by post_send (counted in held_*); dropped once the connection is closing.
  void enqueue(std::string payload);
  void push(std::string frame);
  void pop_back();
  // A counted frame left (written or dropped).
  void release(std::size_t frame_bytes);
  void slow_consumer(std::int64_t bytes, std::int64_t frames);
  void write();
  void close_with(std::string code, std::string message);
  void teardown();

  std::shared_ptr<CoreInbox> inbox_;
  tcp::socket socket_;
  asio::strand<tcp::socket::executor_type> strand_;
  asio::io_context& core_ctx_;
  Core& core_;
  const NodeConfig& config_;
  const std::string source_;
  wire::FrameDecoder decoder_;
  asio::steady_timer heartbeat_;
  std::shared_ptr<Counters> counters_;
  bool unauthenticated_ = true;  // counted per source until login or resume
  // Frames and their bytes posted towards this connection and not yet written or dropped
  // (client.max_outbound_frames, client.max_outbound_bytes). Updated on the core thread and
  // the strand.
  std::atomic<std::int64_t> held_bytes_{0};
  std::atomic<std::int64_t> held_frames_{0};
  std::atomic<bool> over_bound_{false};  // slow_consumer decided: take no more
  std::atomic<int> waiting_{0};          // requests handed to the core, not yet processed there
  bool paused_ = false;                  // not reading: kMaxWaitingRequests wait in the core
  std::deque<std::string> queue_;
  ConnId id_ = 0;
  bool writing_ = false;
  bool drain_requested_ = false;
  bool closing_ = false;  // no more reads; close once the queue is written
  bool closed_ = false;
};

class SessionOutlet : public Outlet {
 public:
  explicit SessionOutlet(std::weak_ptr<Session> s) : session_(std::move(s)) {}
  void send(std::string payload) override {
    if (auto s = session_.lock()) s->post_send(std::move(payload));
  }
  void notify_when_drained() override {
    if (auto s = session_.lock()) s->post_notify_drained();
  }
  void close(std::string code, std::string message) override {
    if (auto s = session_.lock()) s->post_close(std::move(code), std::move(message));
  }
  void authenticated() override {
    if (auto s = session_.lock()) s->post_authenticated();
  }

 private:
  std::weak_ptr<Session> session_;
};

void Session::start() {
  boost::system::error_code ec;
  socket_.set_option(tcp::no_delay(true), ec);
  socket_.non_blocking(true, ec);
  auto outlet = std::make_shared<SessionOutlet>(weak_from_this());
  asio::post(core_ctx_, [self = shared_from_this(), outlet, source = source_]() mutable {
    spdlog::debug("event=client_connected source={}", source);
    const ConnId id = self->core_.on_connect(outlet, std::move(source));
    asio::post(self->strand_, [self, id] { self->on_registered(id); });
  });
}

void Session::on_registered(ConnId id) {
  id_ = id;
  arm_heartbeat();
  read();
}

// Waits until the socket is readable, then reads what is there into the network thread's
// buffer: an idle connection holds no read buffer of its own (bench/README.md, idle scenario).
void Session::read() {
  if (closing_) return;
  socket_.async_wait(tcp::socket::wait_read,
                     asio::bind_executor(
                         strand_, [self = shared_from_this()](const boost::system::error_code& ec) {
                           if (ec) return self->on_read(ec, {});
                           thread_local std::array<char, 64 * 1024> buf;
                           boost::system::error_code rec;
                           const std::size_t n = self->socket_.read_some(asio::buffer(buf), rec);
                           if (rec == asio::error::would_block || rec == asio::error::try_again)
                             return self->read();
                           self->on_read(rec, std::string_view(buf.data(), n));
                         }));
}

void Session::on_read(const boost::system::error_code& ec, std::string_view data) {
  if (closing_ || closed_) return;
  if (ec) {
    teardown();
    return;
  }
  if (auto s = decoder_.feed(data); !s.ok()) {
    spdlog::info("event=frame_rejected conn={} code={} reason=\"{}\"", id_, s.error().code,
                 s.error().message);
    close_with(s.error().code, s.error().message);
    return;
  }
  if (hand_over()) read();
}

// Gives the decoded frames to the core while fewer than kMaxWaitingRequests of this connection
// wait there. Returns false when reading stops: the connection failed, or it waits for the core
// (resume_reading goes on).
bool Session::hand_over() {
  for (;;) {
    if (waiting_.load() >= kMaxWaitingRequests) {
      paused_ = true;
      return false;
    }
    auto payload = decoder_.next();
    if (!payload) return true;
    auto msg = wire::Message::parse(*payload);
    if (!msg.ok()) {
      spdlog::info("event=frame_rejected conn={} code={} reason=\"{}\"", id_, msg.error().code,
                   msg.error().message);
      close_with(msg.error().code, msg.error().message);
      return false;
    }
    arm_heartbeat();
    ++waiting_;
    inbox_->submit(this, [self = shared_from_this(),
                          m = std::make_shared<wire::Message>(std::move(msg).value())]() mutable {
      self->core_.on_frame(self->id_, std::move(*m));
      if (self->waiting_.fetch_sub(1) == kMaxWaitingRequests) {
        asio::post(self->strand_, [self] { self->resume_reading(); });
      }
    });
  }
}

void Session::resume_reading() {
  if (!paused_ || closing_ || closed_ || waiting_.load() >= kMaxWaitingRequests) return;
  paused_ = false;
  if (hand_over()) read();
}

void Session::arm_heartbeat() {
  heartbeat_.expires_after(std::chrono::seconds(config_.heartbeat_timeout_seconds));
  heartbeat_.async_wait([self = shared_from_this()](const boost::system::error_code& ec) {
    if (ec == asio::error::operation_aborted || self->closed_) return;
    if (self->closing_) {
      self->teardown();  // the bye could not be written in time
      return;
    }
    spdlog::info("event=heartbeat_timeout conn={}", self->id_);
    self->close_with("heartbeat_timeout", "no frame received within the heartbeat timeout");
  });
}

// Runs on the core thread. What a connection holds is counted here, before it is posted to the
// connection's strand, so frames waiting in the strand's queue count too.
void Session::post_send(std::string payload) {
  if (over_bound_.load(std::memory_order_relaxed)) return;
  const auto n = static_cast<std::int64_t>(payload.size() + wire::kFrameHeaderBytes);
  const std::int64_t bytes = held_bytes_.fetch_add(n) + n;
  const std::int64_t frames = held_frames_.fetch_add(1) + 1;
  if (bytes > static_cast<std::int64_t>(config_.max_outbound_bytes) ||
      frames > static_cast<std::int64_t>(config_.max_outbound_frames)) {
    held_bytes_ -= n;
    --held_frames_;
    if (!over_bound_.exchange(true)) {
      asio::post(strand_, [self = shared_from_this(), bytes, frames] {
        self->slow_consumer(bytes, frames);
      });
    }
    return;
  }
  asio::post(strand_, [self = shared_from_this(), p = std::move(payload)]() mutable {
    self->enqueue(std::move(p));
  });
}

void Session::post_notify_drained() {
  asio::post(strand_, [self = shared_from_this()] {
    if (self->queue_.empty() && !self->writing_) {
      asio::post(self->core_ctx_, [self] { self->core_.on_drained(self->id_); });
    } else {
      self->drain_requested_ = true;
    }
  });
}

void Session::post_close(std::string code, std::string message) {
  asio::post(strand_, [self = shared_from_this(), c = std::move(code),
                       m = std::move(message)]() mutable { self->close_with(c, m); });
}

void Session::post_authenticated() {
  asio::post(strand_, [self = shared_from_this()] {
    self->decoder_.set_max_frame(self->config_.max_frame_bytes);
    self->end_unauthenticated();
  });
}

void Session::enqueue(std::string payload) {
  if (closed_ || closing_) {
    release(payload.size() + wire::kFrameHeaderBytes);
    return;
  }
  push(wire::encode_frame(payload));
}

void Session::push(std::string frame) {
  ++counters_->queued;
  counters_->queued_bytes += static_cast<std::int64_t>(frame.size());
  queue_.push_back(std::move(frame));
  if (!writing_) write();
}

void Session::pop_back() {
  const std::size_t n = queue_.back().size();
  queue_.pop_back();
  --counters_->queued;
  counters_->queued_bytes -= static_cast<std::int64_t>(n);
  release(n);
}

void Session::release(std::size_t frame_bytes) {
  held_bytes_ -= static_cast<std::int64_t>(frame_bytes);
  --held_frames_;
}

void Session::slow_consumer(std::int64_t bytes, std::int64_t frames) {
  if (closing_ || closed_) return;
  spdlog::warn("event=slow_consumer conn={} queued_frames={} queued_bytes={}", id_, frames, bytes);
  ++counters_->slow_consumers;
  // Keep only the frame being written, if any; the rest is dropped with the connection.
  while (queue_.size() > (writing_ ? 1u : 0u)) pop_back();
  close_with("slow_consumer", "the connection did not read its frames fast enough");
}

void Session::write() {
  if (queue_.empty()) {
    writing_ = false;
    if (drain_requested_) {
      drain_requested_ = false;
      inbox_->submit(this, [self = shared_from_this()] { self->core_.on_drained(self->id_); });
    }
    if (closing_) teardown();
    return;
  }
  writing_ = true;
  asio::async_write(
      socket_, asio::buffer(queue_.front()),
      asio::bind_executor(
          strand_, [self = shared_from_this()](const boost::system::error_code& ec, std::size_t) {
            if (self->closed_) return;
            const std::size_t n = self->queue_.front().size();
            self->queue_.pop_front();
            --self->counters_->queued;
            self->counters_->queued_bytes -= static_cast<std::int64_t>(n);
            self->release(n);
            if (ec) {
              self->teardown();
              return;
            }
            self->write();
          }));
}

void Session::close_with(std::string code, std::string message) {
  if (closing_ || closed_) return;
  closing_ = true;
  wire::MapWriter bye;
  bye.add("t", "bye").add("code", code).add("msg", message);
  std::string frame = wire::encode_frame(bye.finish());
  held_bytes_ += static_cast<std::int64_t>(frame.size());  // beyond the bound: it is the last
  ++held_frames_;
  push(std::move(frame));
  // Give the peer a bounded time to take the bye; the heartbeat timer enforces it.
  heartbeat_.expires_after(kCloseGrace);
  heartbeat_.async_wait([self = shared_from_this()](const boost::system::error_code& ec) {
    if (!ec) self->teardown();
  });
  boost::system::error_code ignored;
  socket_.shutdown(tcp::socket::shutdown_receive, ignored);
}

void Session::teardown() {
  if (closed_) return;
  closed_ = true;
  spdlog::debug("event=client_disconnected conn={}", id_);
  boost::system::error_code ignored;
  socket_.shutdown(tcp::socket::shutdown_both, ignored);
  socket_.close(ignored);
  heartbeat_.cancel();
  inbox_->submit(this, [self = shared_from_this()] { self->core_.on_disconnect(self->id_); });
}

}  // namespace

class Gateway::Impl {
 public:
  Impl(asio::io_context& net, asio::io_context& core_ctx, Core& core, const NodeConfig& config)
      : net_(net),
        core_ctx_(core_ctx),
        core_(core),
        config_(config),
        acceptor_(net),
        inbox_(std::make_shared<CoreInbox>(core_ctx, core)) {}

  void accept(std::shared_ptr<Counters> counters) {
    acceptor_.async_accept(
        asio::make_strand(net_),
        [this, counters](const boost::system::error_code& ec, tcp::socket socket) {
          if (ec == asio::error::operation_aborted || !acceptor_.is_open()) return;
          if (!ec) admit(counters, std::move(socket));
          accept(counters);
        });
  }

  // Closes the socket at once when the node holds its maximum of connections, or the source
  // its maximum of unauthenticated ones (spec/client-protocol.md section 1).
  void admit(const std::shared_ptr<Counters>& counters, tcp::socket socket) {
    boost::system::error_code ec;
    const auto remote = socket.remote_endpoint(ec);
    std::string source = ec ? "unknown" : remote.address().to_string();
    const char* refused = nullptr;
    if (counters->open.load() >= static_cast<std::int64_t>(config_.max_connections)) {
      refused = "max_connections";
      ++counters->refused_max_connections;
    } else if (!counters->add_unauthenticated(source, config_.max_unauthenticated_per_source)) {
      refused = "unauthenticated_per_source";
      ++counters->refused_per_source;
    }
    if (refused) {
      spdlog::warn("event=connection_refused reason={} source={}", refused, source);
      boost::system::error_code ignored;
      socket.close(ignored);
      return;
    }
    std::make_shared<Session>(std::move(socket), std::move(source), core_ctx_, core_, config_,
                              counters, inbox_)
        ->start();
  }

  asio::io_context& net_;
  asio::io_context& core_ctx_;
  Core& core_;
  const NodeConfig& config_;
  tcp::acceptor acceptor_;
  std::shared_ptr<CoreInbox> inbox_;
};

Gateway::Gateway(asio::io_context& net, asio::io_context& core_ctx, Core& core,
                 const NodeConfig& config)
    : impl_(std::make_unique<Impl>(net, core_ctx, core, config)),
      counters_(std::make_shared<Counters>()) {}

Gateway::~Gateway() = default;

std::int64_t Gateway::open_connections() const { return counters_->open.load(); }
std::int64_t Gateway::queued_frames() const { return counters_->queued.load(); }
std::int64_t Gateway::queued_bytes() const { return counters_->queued_bytes.load(); }
std::int64_t Gateway::slow_consumers() const { return counters_->slow_consumers.load(); }
std::int64_t Gateway::refused_max_connections() const {
  return counters_->refused_max_connections.load();
}
std::int64_t Gateway::refused_per_source() const { return counters_->refused_per_source.load(); }

Status Gateway::listen(const HostPort& where) {
  boost::system::error_code ec;
  const auto address = asio::ip::make_address(where.host, ec);
  if (ec)
    return make_error("bad_config", "client.listen: '" + where.host + "' is not an IP address");
  const tcp::endpoint ep(address, where.port);
  auto& a = impl_->acceptor_;
  a.open(ep.protocol(), ec);
  if (!ec) a.set_option(tcp::acceptor::reuse_address(true), ec);
  if (!ec) a.bind(ep, ec);
  if (!ec) a.listen(asio::socket_base::max_listen_connections, ec);
  if (ec) return make_error("io", "cannot listen on " + where.str() + ": " + ec.message());
  impl_->accept(counters_);
  return ok_status();
}

std::uint16_t Gateway::port() const {
  boost::system::error_code ec;
  const auto ep = impl_->acceptor_.local_endpoint(ec);
  return ec ? 0 : ep.port();
}

void Gateway::stop_accepting() {
  boost::system::error_code ignored;
  impl_->acceptor_.close(ignored);
}

}  // namespace parley::node
