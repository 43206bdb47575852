// parley-bench: load scenarios against real parleyd processes on loopback (bench/README.md).
//
// The driver starts its own nodes in a temporary directory, creates users through the admin API,
// opens many authenticated client connections (login through the real protocol) on one Asio
// thread, and drives the client protocol. Message bodies are opaque to a node (end-to-end
// ciphertext), so the driver sends prepared random bytes; client-side crypto is measured by
// crypto_bench. Every scenario prints one JSON line of results.
//
//   parley-bench local-1to1 [--quick] [--clients N] [--size B] [--seconds S] [--rate R]
//   parley-bench cross-node [--quick] [--clients N] [--size B] [--seconds S] [--rate R]
//   parley-bench group-fanout [--quick] [--clients MEMBERS] [--senders S] [--seconds S]
//   parley-bench catch-up   [--quick] [--clients CONVERSATIONS] [--per N]
//   parley-bench start-up   [--quick] [--per N]   (N stored messages, default 1,000,000)
//   parley-bench soak       [--quick] [--clients PAIRS] [--seconds S] [--rate R]
//   parley-bench disk-faults [--quick] [--clients PAIRS] [--seconds S] [--rate R]
//   parley-bench idle       [--quick] [--clients N] [--seconds S]
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cpprest/http_client.h>
#include <CLI/CLI.hpp>
#include <algorithm>
#include <array>
#include <boost/asio.hpp>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <deque>
#include <filesystem>
#include <fstream>
#include <functional>
#include <map>
#include <memory>
#include <set>
#include <sstream>
#include <string>
#include <thread>
#include <unordered_map>
#include <vector>

#include "parley/crypto/secret.h"
#include "parley/frame.h"
#include "parley/message.h"

namespace asio = boost::asio;
namespace fs = std::filesystem;
using tcp = asio::ip::tcp;
using Steady = std::chrono::steady_clock;
using namespace parley;

namespace {

std::int64_t now_ns() {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(Steady::now().time_since_epoch())
      .count();
}

[[noreturn]] void die(const std::string& what) {
  std::fprintf(stderr, "parley-bench: %s\n", what.c_str());
  std::exit(1);
}

int free_port() {
  asio::io_context io;
  tcp::acceptor a(io, tcp::endpoint(asio::ip::make_address("127.0.0.1"), 0));
  return a.local_endpoint().port();
}

std::string slurp(const std::string& path) {
  std::ifstream in(path);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

// A parleyd process with its own data directory under `root`.
class NodeProc {
 public:
  NodeProc(std::string parleyd, const fs::path& root, std::string name)
      : parleyd_(std::move(parleyd)), dir_(root / name), name_(std::move(name)) {
    client_port_ = free_port();
    admin_port_ = free_port();
    fed_port_ = free_port();
    const int metrics_port = free_port();
    const std::string cmd = parleyd_ + " --data " + data() + " init --name " + name_ +
                            " --client-listen 127.0.0.1:" + std::to_string(client_port_) +
                            " --admin-listen 127.0.0.1:" + std::to_string(admin_port_) +
                            " --federation-listen 127.0.0.1:" + std::to_string(fed_port_) +
                            " --metrics-listen 127.0.0.1:" + std::to_string(metrics_port) +
                            " --dm-policy anyone > /dev/null";
    fs::create_directories(dir_);
    if (std::system(cmd.c_str()) != 0) die("parleyd init failed: " + cmd);
    // Many users log in: cheap password hashing, explicitly for this throwaway node.
    std::string cfg = slurp(data() + "/config.toml");
    const std::string from = "password_hash = \"interactive\"";
    if (auto at = cfg.find(from); at != std::string::npos) {
      cfg.replace(at, from.size(), "password_hash = \"test-only-minimal\"");
    }
    // Nodes talk plain HTTP on loopback: explicitly, for this benchmark only.
    const std::string plain = "allow_plaintext_http = false";
    if (auto at = cfg.find(plain); at != std::string::npos) {
      cfg.replace(at, plain.size(), "allow_plaintext_http = true");
    }
    // Senders here go far beyond a person's pace: no send rate limit on this node.
    const std::string rate = "messages_per_minute = 600";
    if (auto at = cfg.find(rate); at != std::string::npos) {
      cfg.replace(at, rate.size(), "messages_per_minute = 0");
    }
    std::ofstream(data() + "/config.toml") << cfg;
  }
  ~NodeProc() { stop(); }

  std::string data() const { return (dir_ / "data").string(); }

  // disk-faults: the node's database goes through the fault-injection VFS (storage.md); write
  // "full" or "readonly" with fault(), clear it with fault("").
  void enable_faults() {
    fault_file_ = (dir_ / "fault").string();
    std::string cfg = slurp(data() + "/config.toml");
    const std::string at_key = "max_database_mb = 0";
    const auto at = cfg.find(at_key);
    if (at == std::string::npos) die("config.toml has no storage.max_database_mb line");
    cfg.insert(at + at_key.size(), "\ntest_fault_file = \"" + fault_file_ + "\"");
    std::ofstream(data() + "/config.toml") << cfg;
  }
  void fault(const std::string& word) {
    if (word.empty()) {
      fs::remove(fault_file_);
    } else {
      std::ofstream(fault_file_) << word;
    }
  }
  int client_port() const { return client_port_; }

  void start() {
    pid_ = ::fork();
    if (pid_ == 0) {
      const std::string log = (dir_ / "parleyd.log").string();
      std::freopen(log.c_str(), "a", stdout);
      std::freopen(log.c_str(), "a", stderr);
      ::execl(parleyd_.c_str(), parleyd_.c_str(), "--data", data().c_str(), "serve", nullptr);
      std::_Exit(127);
    }
    for (int i = 0; i < 200; ++i) {
      asio::io_context io;
      tcp::socket s(io);
      boost::system::error_code ec;
      s.connect(tcp::endpoint(asio::ip::make_address("127.0.0.1"), client_port_), ec);
      if (!ec) return;
      std::this_thread::sleep_for(std::chrono::milliseconds(50));
    }
    die("parleyd did not start; see " + (dir_ / "parleyd.log").string());
  }

  void kill9() {
    if (pid_ <= 0) return;
    ::kill(pid_, SIGKILL);
    int status = 0;
    ::waitpid(pid_, &status, 0);
    pid_ = -1;
  }

  void freeze(bool on) {
    if (pid_ > 0) ::kill(pid_, on ? SIGSTOP : SIGCONT);
  }

  void stop() {
    if (pid_ <= 0) return;
    ::kill(pid_, SIGTERM);
    int status = 0;
    ::waitpid(pid_, &status, 0);
    pid_ = -1;
  }

  // Resident memory of the node process, KiB.
  std::int64_t rss_kib() const {
    std::ifstream in("/proc/" + std::to_string(pid_) + "/status");
    std::string line;
    while (std::getline(in, line)) {
      if (line.rfind("VmRSS:", 0) == 0) return std::stoll(line.substr(6));
    }
    return 0;
  }

  void add_users(const std::string& prefix, int n, const std::string& password) {
    std::vector<int> ks(static_cast<std::size_t>(n));
    for (int i = 0; i < n; ++i) ks[static_cast<std::size_t>(i)] = i;
    add_named_users(ks, prefix, password);
  }

  void add_named_users(const std::vector<int>& ks, const std::string& prefix,
                       const std::string& password) {
    for (int i : ks) {
      web::json::value body;
      body["name"] = web::json::value::string(prefix + std::to_string(i));
      body["password"] = web::json::value::string(password);
      admin("/admin/v1/users", body, 201);
    }
  }

  void add_peer(const NodeProc& other) {
    web::json::value body;
    body["name"] = web::json::value::string(other.name_);
    body["url"] = web::json::value::string("http://127.0.0.1:" + std::to_string(other.fed_port_));
    admin("/admin/v1/peers", body, 200);
  }

  const std::string& name() const { return name_; }

  // Messages stored on this node (admin status), or -1 while it does not answer.
  std::int64_t stored_messages() {
    try {
      std::string token = slurp(data() + "/admin.token");
      while (!token.empty() && (token.back() == '\n' || token.back() == '\r')) token.pop_back();
      web::http::client::http_client http("http://127.0.0.1:" + std::to_string(admin_port_));
      web::http::http_request req(web::http::methods::GET);
      req.set_request_uri("/admin/v1/status");
      req.headers().add("Authorization", "Bearer " + token);
      auto resp = http.request(req).get();
      if (resp.status_code() != 200) return -1;
      return resp.extract_json().get().at("messages").as_number().to_int64();
    } catch (const std::exception&) {
      return -1;
    }
  }

 private:
  void admin(const std::string& path, const web::json::value& body, int expect) {
    std::string token = slurp(data() + "/admin.token");
    while (!token.empty() && (token.back() == '\n' || token.back() == '\r')) token.pop_back();
    web::http::client::http_client http("http://127.0.0.1:" + std::to_string(admin_port_));
    web::http::http_request req(web::http::methods::POST);
    req.set_request_uri(path);
    req.headers().add("Authorization", "Bearer " + token);
    req.set_body(body);
    auto resp = http.request(req).get();
    if (resp.status_code() != expect) {
      die("admin " + path + ": HTTP " + std::to_string(resp.status_code()));
    }
  }

  std::string parleyd_;
  fs::path dir_;
  std::string name_;
  int client_port_ = 0, admin_port_ = 0, fed_port_ = 0;
  pid_t pid_ = -1;
  std::string fault_file_;
};

struct Stats {
  std::vector<double> ack_ms, deliver_ms;
  std::int64_t sent = 0, acked = 0, delivered = 0, errors = 0;
  bool measuring = false;
  // disk-faults: answers refusing a write (disk_full, read_only, io_error) are expected; counted
  // here by code (sends and acknowledgements) instead of as errors.
  bool refusals_expected = false;
  std::map<std::string, std::int64_t> refused;
};

// One authenticated client connection speaking the client protocol.
class Conn : public std::enable_shared_from_this<Conn> {
 public:
  Conn(asio::io_context& io, Stats& stats, std::string user, std::string password)
      : sock_(io),
        ack_timer_(io),
        stats_(stats),
        user_(std::move(user)),
        password_(std::move(password)) {}

  std::function<void()> on_ready;  // after login and the backlog
  std::string peer;                // where send_one() sends
  std::string body;                // prepared payload; its first 8 bytes carry the send time
  int window = 0;                  // outstanding sends kept (throughput mode)
  int outstanding = 0;
  bool ready = false;

  void start(const tcp::endpoint& ep) {
    sock_.async_connect(ep, [self = shared_from_this()](const boost::system::error_code& ec) {
      if (ec) return self->fail("connect: " + ec.message());
      self->read();
      wire::MapWriter f;
      if (!self->token.empty()) {  // the same device again: the stream resumes at its cursor
        f.add("token", self->token);
        self->request("resume", f);
        return;
      }
      f.add("user", self->user_).add("password", self->password_).add("device", "bench");
      self->request("login", f);
    });
  }

  std::string token;            // from the login; set it before start() to resume instead
  bool tolerate_drops = false;  // soak: a lost connection is expected, not an error
  bool dead() const { return failed_; }
  // soak: every message event this device received, deduplicated by stream seq as a client
  // does: "msg_id#cseq" in arrival order (on_acked gets the same form).
  std::shared_ptr<std::pair<std::set<std::int64_t>, std::vector<std::string>>> received;
  std::function<void(const std::string& msg_id)> on_acked;
  // disk-faults: a send the node refused (its code), to be sent again later with the same msg_id.
  std::function<void(const std::string& code, const std::string& msg_id, const std::string& body)>
      on_refused;

  std::string group;  // when set, send_one() sends a message to this group instead
  std::function<void(const std::string& conv)> on_created;
  int group_events = 0;  // group events received (any kind)

  void send_one() {
    if (tolerate_drops && (!ready || failed_)) return;  // soak: between a drop and the resume
    std::string b = body;
    const std::int64_t t = now_ns();
    std::memcpy(b.data(), &t, sizeof t);
    wire::MapWriter f;
    sends_[next_id_] = t;
    ++outstanding;
    if (stats_.measuring) ++stats_.sent;
    if (!group.empty()) {
      f.add("conv", group).add("kind", "message").add_bin("body", b);
      request("group_event", f);
      return;
    }
    const std::string msg_id =
        user_ + "-" + std::to_string(counter ? ++*counter : static_cast<std::int64_t>(next_id_));
    if (on_acked) msg_ids_[next_id_] = {msg_id, b};
    f.add("to", peer).add("msg_id", msg_id).add_bin("body", b);
    request("send", f);
  }

  // soak: a send whose answer was lost, again with its msg_id and body (the node answers a
  // duplicate with what it stored the first time).
  void resend(const std::string& msg_id, const std::string& b) {
    sends_[next_id_] = now_ns();
    ++outstanding;
    msg_ids_[next_id_] = {msg_id, b};
    wire::MapWriter f;
    f.add("to", peer).add("msg_id", msg_id).add_bin("body", b);
    request("send", f);
  }
  // Sends not answered yet, in the order they were made.
  std::vector<std::pair<std::string, std::string>> unanswered() const {
    std::map<std::uint64_t, std::pair<std::string, std::string>> ordered(msg_ids_.begin(),
                                                                         msg_ids_.end());
    std::vector<std::pair<std::string, std::string>> out;
    for (const auto& [id, entry] : ordered) out.push_back(entry);
    return out;
  }
  std::shared_ptr<std::int64_t> counter;  // soak: msg_id numbers that survive reconnects
  std::vector<std::pair<std::string, std::string>> carry;  // soak: to resend once resumed

  void create_group(const std::vector<std::string>& members) {
    wire::ArrayWriter list;
    for (const auto& m : members) list.push(m);
    wire::MapWriter f;
    f.add("name", "bench").add("members", list);
    create_id_ = next_id_;
    request("group_create", f);
  }

  void ping() { request("ping", wire::MapWriter()); }

 private:
  void request(const char* type, const wire::MapWriter& fields) {
    wire::MapWriter w;
    w.add("t", type).add("id", next_id_++);
    w.merge_map(fields.finish());
    write(wire::encode_frame(w.finish()));
  }

  void write(std::string frame) {
    out_.push_back(std::move(frame));
    if (out_.size() == 1) flush();
  }

  void flush() {
    asio::async_write(sock_, asio::buffer(out_.front()),
                      [self = shared_from_this()](const boost::system::error_code& ec, size_t) {
                        if (ec) return self->fail("write: " + ec.message());
                        self->out_.pop_front();
                        if (!self->out_.empty()) self->flush();
                      });
  }

  void read() {
    sock_.async_read_some(asio::buffer(buf_), [self = shared_from_this()](
                                                  const boost::system::error_code& ec, size_t n) {
      if (ec) return self->fail("read: " + ec.message());
      if (!self->decoder_.feed(std::string_view(self->buf_.data(), n)).ok()) {
        return self->fail("bad frame");
      }
      while (auto payload = self->decoder_.next()) self->handle(*payload);
      self->read();
    });
  }

  void handle(const std::string& payload) {
    auto m = wire::Message::parse(payload);
    if (!m.ok()) return fail("unparsable frame");
    const std::string& t = m->type();
    const auto v = m->root();
    if (t == "re") {
      const auto id = v.uint_or("id", 0).value();
      if (!v.boolean_or("ok", false).value()) {
        const std::string code = v.str_or("code", "").value();
        const bool expected = stats_.refusals_expected &&
                              (code == "disk_full" || code == "read_only" || code == "io_error");
        if (expected) {
          ++stats_.refused[code];
          auto sent = msg_ids_.find(id);
          if (on_refused && sent != msg_ids_.end()) {
            on_refused(code, sent->second.first, sent->second.second);
          }
        } else {
          ++stats_.errors;
          std::fprintf(stderr, "parley-bench: %s: %s\n", user_.c_str(),
                       v.str_or("msg", "error").value().c_str());
        }
      }
      if (id == create_id_ && on_created) on_created(v.str_or("conv", "").value());
      if (v.has("token")) token = v.str_or("token", "", 256).value();
      if (auto it = msg_ids_.find(id); it != msg_ids_.end()) {
        if (v.boolean_or("ok", false).value() && on_acked) {
          on_acked(it->second.first + "#" + std::to_string(v.uint_or("cseq", 0).value()));
        }
        msg_ids_.erase(it);
      }
      if (auto it = sends_.find(id); it != sends_.end()) {
        if (stats_.measuring) {
          ++stats_.acked;
          stats_.ack_ms.push_back(static_cast<double>(now_ns() - it->second) / 1e6);
        }
        sends_.erase(it);
        --outstanding;
        if (window > 0 && outstanding < window) send_one();
      }
    } else if (t == "ev") {
      highest_ = std::max<std::int64_t>(highest_, v.uint_or("seq", 0).value());
      if (received && v.str_or("kind", "").value() == "msg" &&
          received->first.insert(static_cast<std::int64_t>(v.uint_or("seq", 0).value())).second) {
        received->second.push_back(v.str_or("msg_id", "", 64).value() + "#" +
                                   std::to_string(v.uint_or("cseq", 0).value()));
      }
      if (v.str_or("kind", "").value() == "gev") {
        ++group_events;
        auto e = v.map("event");
        if (e.ok() && e->str_or("kind", "").value() == "message" &&
            e->str_or("author", "", 320).value() != user_) {
          auto b = e->bin("body", 1 << 20);
          if (b.ok() && b->size() >= 8 && stats_.measuring) {
            std::int64_t t0 = 0;
            std::memcpy(&t0, b->data(), sizeof t0);
            ++stats_.delivered;
            stats_.deliver_ms.push_back(static_cast<double>(now_ns() - t0) / 1e6);
          }
        }
      }
      if (v.str_or("kind", "").value() == "msg" && v.str_or("from", "", 320).value() != user_) {
        auto b = v.bin("body", 1 << 20);
        if (b.ok() && b->size() >= 8 && stats_.measuring) {
          std::int64_t t0 = 0;
          std::memcpy(&t0, b->data(), sizeof t0);
          ++stats_.delivered;
          stats_.deliver_ms.push_back(static_cast<double>(now_ns() - t0) / 1e6);
        }
      }
      // Like a client: acknowledge what arrived soon (at most 20 ms later, or every 64 events).
      if (highest_ - acked_ >= 64) {
        ack();
      } else if (!ack_armed_) {
        ack_armed_ = true;
        ack_timer_.expires_after(std::chrono::milliseconds(20));
        ack_timer_.async_wait([self = shared_from_this()](const boost::system::error_code& ec) {
          self->ack_armed_ = false;
          if (!ec) self->ack();
        });
      }
    } else if (t == "synced") {
      ack();
      if (!ready) {
        ready = true;
        if (on_ready) on_ready();
      }
    } else if (t == "bye") {
      fail("bye " + v.str_or("code", "").value());
    }
  }

  void ack() {
    if (highest_ <= acked_) return;
    acked_ = highest_;
    wire::MapWriter f;
    f.add("upto", static_cast<std::uint64_t>(acked_));
    request("ack", f);
  }

  void fail(const std::string& why) {
    if (failed_) return;
    failed_ = true;
    if (tolerate_drops) {
      boost::system::error_code ec;
      sock_.close(ec);
      return;
    }
    ++stats_.errors;
    std::fprintf(stderr, "parley-bench: %s: %s\n", user_.c_str(), why.c_str());
    boost::system::error_code ec;
    sock_.close(ec);
  }

  tcp::socket sock_;
  asio::steady_timer ack_timer_;
  bool ack_armed_ = false;
  Stats& stats_;
  std::string user_, password_;
  std::array<char, 64 * 1024> buf_{};
  wire::FrameDecoder decoder_;
  std::deque<std::string> out_;
  std::uint64_t next_id_ = 1;
  std::uint64_t create_id_ = 0;
  std::unordered_map<std::uint64_t, std::pair<std::string, std::string>> msg_ids_;
  std::unordered_map<std::uint64_t, std::int64_t> sends_;
  std::int64_t highest_ = 0, acked_ = 0;
  bool failed_ = false;
};

double pct(std::vector<double>& v, double p) {
  if (v.empty()) return 0;
  std::sort(v.begin(), v.end());
  return v[static_cast<std::size_t>(p * static_cast<double>(v.size() - 1))];
}

std::string latency_json(std::vector<double>& v) {
  char buf[200];
  std::snprintf(buf, sizeof buf, "{\"p50\":%.3f,\"p90\":%.3f,\"p99\":%.3f,\"max\":%.3f}",
                pct(v, 0.5), pct(v, 0.9), pct(v, 0.99), v.empty() ? 0.0 : pct(v, 1.0));
  return buf;
}

// Calls send(i) for each of `n` senders so that together they offer `rate` messages/s, spread
// evenly over time, until stop().
class Pacer {
 public:
  Pacer(asio::io_context& io, int n, double rate, std::function<void(int)> send)
      : send_(std::move(send)),
        interval_(std::chrono::nanoseconds(static_cast<std::int64_t>(1e9 * n / rate))) {
    for (int i = 0; i < n; ++i) {
      timers_.push_back(std::make_unique<asio::steady_timer>(io));
      timers_.back()->expires_after(interval_ * i / n);
      arm(i);
    }
  }
  void stop() { running_ = false; }

 private:
  void arm(int i) {
    timers_[static_cast<std::size_t>(i)]->async_wait(
        [this, i](const boost::system::error_code& ec) {
          if (ec || !running_) return;
          send_(i);
          auto& t = timers_[static_cast<std::size_t>(i)];
          t->expires_at(t->expiry() + interval_);
          arm(i);
        });
  }
  std::function<void(int)> send_;
  std::chrono::nanoseconds interval_;
  std::vector<std::unique_ptr<asio::steady_timer>> timers_;
  bool running_ = true;
};

// One second of warm-up, then `seconds` measured (stats.measuring); returns the measured time.
double measure(asio::io_context& io, Stats& stats, double seconds) {
  io.run_for(std::chrono::seconds(1));
  stats.measuring = true;
  const auto t0 = Steady::now();
  io.run_for(std::chrono::milliseconds(static_cast<std::int64_t>(seconds * 1000)));
  stats.measuring = false;
  return std::chrono::duration<double>(Steady::now() - t0).count();
}

// Users s0..n-1 on `node` and r0..n-1 on `far`, and each node a peer of the other.
void senders_and_receivers(NodeProc& node, NodeProc& far, int n) {
  node.add_users("s", n, "bench-password");
  far.add_users("r", n, "bench-password");
  node.add_peer(far);
  far.add_peer(node);
}

struct Options {
  std::string scenario, parleyd;
  bool quick = false;
  int clients = 0, size = 256, window = 8, senders = 0, per = 0;
  double seconds = 0, rate = 0;
};

// Opens connections for users PREFIX<k> (k in `ks`) and runs `io` until all are logged in and
// past their backlog.
std::vector<std::shared_ptr<Conn>> connect_named(asio::io_context& io, Stats& stats, NodeProc& node,
                                                 const std::string& prefix,
                                                 const std::vector<int>& ks,
                                                 const std::string& password) {
  const int n = static_cast<int>(ks.size());
  std::vector<std::shared_ptr<Conn>> conns;
  int ready = 0;
  const tcp::endpoint ep(asio::ip::make_address("127.0.0.1"),
                         static_cast<unsigned short>(node.client_port()));
  // At most 200 logins in flight: the node's password pool is small.
  int started = 0;
  std::function<void()> next = [&] {
    if (started >= n) return;
    auto c = std::make_shared<Conn>(
        io, stats,
        prefix + std::to_string(ks[static_cast<std::size_t>(started)]) + "@" + node.name(),
        password);
    ++started;
    c->on_ready = [&] {
      ++ready;
      next();
    };
    conns.push_back(c);
    c->start(ep);
  };
  for (int i = 0; i < std::min(n, 200); ++i) next();
  const auto deadline = Steady::now() + std::chrono::seconds(120);
  while (ready < n && stats.errors == 0 && Steady::now() < deadline) {
    io.run_for(std::chrono::milliseconds(50));
  }
  if (ready < n) die("only " + std::to_string(ready) + " of " + std::to_string(n) + " logged in");
  return conns;
}

std::vector<std::shared_ptr<Conn>> connect_all(asio::io_context& io, Stats& stats, NodeProc& node,
                                               const std::string& prefix, int n,
                                               const std::string& password) {
  std::vector<int> ks(static_cast<std::size_t>(n));
  for (int i = 0; i < n; ++i) ks[static_cast<std::size_t>(i)] = i;
  return connect_named(io, stats, node, prefix, ks, password);
}

// Clients in pairs. local-1to1: every client sends to its partner on the same node.
// cross-node: senders on `node`, their partners (receivers only) on `far`.
int pairs(const Options& o, NodeProc& node, NodeProc* far) {
  const int n = o.clients - o.clients % 2;
  asio::io_context io;
  Stats stats;
  std::vector<std::shared_ptr<Conn>> conns, receivers;
  std::int64_t rss_before = 0, rss_connected = 0;
  if (!far) {
    node.add_users("u", n, "bench-password");
    rss_before = node.rss_kib();
    conns = connect_all(io, stats, node, "u", n, "bench-password");
    rss_connected = node.rss_kib();
    for (int i = 0; i < n; ++i) conns[i]->peer = "u" + std::to_string(i ^ 1) + "@" + node.name();
  } else {
    senders_and_receivers(node, *far, n / 2);
    rss_before = node.rss_kib();
    conns = connect_all(io, stats, node, "s", n / 2, "bench-password");
    receivers = connect_all(io, stats, *far, "r", n / 2, "bench-password");
    rss_connected = node.rss_kib();
    for (int i = 0; i < n / 2; ++i) conns[i]->peer = "r" + std::to_string(i) + "@" + far->name();
  }
  const int senders = static_cast<int>(conns.size());
  std::string body = crypto::random_bytes(static_cast<std::size_t>(std::max(o.size, 8)));
  for (auto& c : conns) c->body = body;
  // Throughput: every client keeps `window` sends outstanding. Rate: sends spread evenly.
  std::unique_ptr<Pacer> pacer;
  if (o.rate > 0) {
    pacer = std::make_unique<Pacer>(io, senders, o.rate, [&](int i) { conns[i]->send_one(); });
  } else {
    for (auto& c : conns) {
      c->window = o.window;
      for (int k = 0; k < o.window; ++k) c->send_one();
    }
  }
  const double elapsed = measure(io, stats, o.seconds);
  const std::int64_t rss_loaded = node.rss_kib();
  if (pacer) pacer->stop();
  for (auto& c : conns) c->window = 0;
  // Let what is in flight arrive (across nodes: through the federation queue).
  io.run_for(std::chrono::seconds(far ? 5 : 2));
  std::printf(
      "{\"scenario\":\"%s\",\"clients\":%d,\"size\":%d,\"seconds\":%.2f,\"offered_rate\":"
      "%.0f,\"window\":%d,\"sent\":%lld,\"acked\":%lld,\"delivered\":%lld,\"errors\":%lld,"
      "\"acked_per_s\":%.0f,\"delivered_per_s\":%.0f,\"ack_latency_ms\":%s,"
      "\"deliver_latency_ms\":%s,\"node_rss_kib\":{\"idle\":%lld,\"connected\":%lld,\"loaded\":"
      "%lld}}\n",
      far ? "cross-node" : "local-1to1", n, o.size, elapsed, o.rate, o.rate > 0 ? 0 : o.window,
      static_cast<long long>(stats.sent), static_cast<long long>(stats.acked),
      static_cast<long long>(stats.delivered), static_cast<long long>(stats.errors),
      static_cast<double>(stats.acked) / elapsed, static_cast<double>(stats.delivered) / elapsed,
      latency_json(stats.ack_ms).c_str(), latency_json(stats.deliver_ms).c_str(),
      static_cast<long long>(rss_before), static_cast<long long>(rss_connected),
      static_cast<long long>(rss_loaded));
  return stats.errors == 0 ? 0 : 1;
}

// A group of `o.clients` members spread over three nodes; `o.senders` members of the first node
// send to it. Counts deliveries: message events pushed to members' connections.
int group_fanout(const Options& o, std::vector<NodeProc*> nodes) {
  const int n = o.clients;
  for (std::size_t i = 0; i < nodes.size(); ++i) {
    for (std::size_t j = 0; j < nodes.size(); ++j) {
      if (i != j) nodes[i]->add_peer(*nodes[j]);
    }
  }
  // Member k lives on node k % 3 as "m<k>".
  std::vector<std::vector<int>> on(nodes.size());
  for (int k = 0; k < n; ++k) on[static_cast<std::size_t>(k) % nodes.size()].push_back(k);
  asio::io_context io;
  Stats stats;
  std::vector<std::shared_ptr<Conn>> members(static_cast<std::size_t>(n));
  for (std::size_t i = 0; i < nodes.size(); ++i) {
    nodes[i]->add_named_users(on[i], "m", "bench-password");
  }
  for (std::size_t i = 0; i < nodes.size(); ++i) {
    auto conns = connect_named(io, stats, *nodes[i], "m", on[i], "bench-password");
    for (std::size_t j = 0; j < on[i].size(); ++j)
      members[static_cast<std::size_t>(on[i][j])] = conns[j];
  }
  std::vector<std::string> addresses;
  for (int k = 1; k < n; ++k) {
    addresses.push_back("m" + std::to_string(k) + "@" +
                        nodes[static_cast<std::size_t>(k) % nodes.size()]->name());
  }
  std::string conv;
  members[0]->on_created = [&](const std::string& c) { conv = c; };
  members[0]->create_group(addresses);
  const auto deadline = Steady::now() + std::chrono::seconds(60);
  auto joined = [&] {
    for (auto& m : members) {
      if (m->group_events == 0) return false;
    }
    return true;
  };
  while ((conv.empty() || !joined()) && Steady::now() < deadline && stats.errors == 0) {
    io.run_for(std::chrono::milliseconds(50));
  }
  if (conv.empty() || !joined()) die("the group did not reach every member");
  std::string body = crypto::random_bytes(static_cast<std::size_t>(std::max(o.size, 8)));
  const int senders = std::min<int>(o.senders, static_cast<int>(on[0].size()));
  for (int s = 0; s < senders; ++s) {
    auto& c = members[static_cast<std::size_t>(on[0][static_cast<std::size_t>(s)])];
    c->group = conv;
    c->body = body;
    c->window = o.window;
    for (int k = 0; k < o.window; ++k) c->send_one();
  }
  const double elapsed = measure(io, stats, o.seconds);
  for (auto& m : members) m->window = 0;
  io.run_for(std::chrono::seconds(3));
  std::printf(
      "{\"scenario\":\"group-fanout\",\"members\":%d,\"nodes\":%zu,\"senders\":%d,\"size\":%d,"
      "\"seconds\":%.2f,\"window\":%d,\"sent\":%lld,\"acked\":%lld,\"deliveries\":%lld,"
      "\"errors\":%lld,\"messages_per_s\":%.0f,\"deliveries_per_s\":%.0f,"
      "\"ack_latency_ms\":%s,\"deliver_latency_ms\":%s}\n",
      n, nodes.size(), senders, o.size, elapsed, o.window, static_cast<long long>(stats.sent),
      static_cast<long long>(stats.acked), static_cast<long long>(stats.delivered),
      static_cast<long long>(stats.errors), static_cast<double>(stats.acked) / elapsed,
      static_cast<double>(stats.delivered) / elapsed, latency_json(stats.ack_ms).c_str(),
      latency_json(stats.deliver_ms).c_str());
  return stats.errors == 0 ? 0 : 1;
}

// A node is stopped while `o.per` messages accumulate in each of `o.clients` 1:1 conversations
// with users on another node; then it starts again. Reports the time from its start until it
// stores all of them.
int catch_up(const Options& o, NodeProc& node, NodeProc& far) {
  const int convs = o.clients;
  senders_and_receivers(node, far, convs);
  asio::io_context io;
  Stats stats;
  auto senders = connect_all(io, stats, node, "s", convs, "bench-password");
  const std::int64_t before = far.stored_messages();
  far.stop();
  std::string body = crypto::random_bytes(static_cast<std::size_t>(std::max(o.size, 8)));
  stats.measuring = true;  // count acks
  for (int i = 0; i < convs; ++i) {
    senders[static_cast<std::size_t>(i)]->peer = "r" + std::to_string(i) + "@" + far.name();
    senders[static_cast<std::size_t>(i)]->body = body;
  }
  const std::int64_t total = static_cast<std::int64_t>(convs) * o.per;
  const auto t_send = Steady::now();
  // Each sender sends `per` messages, 8 outstanding at a time.
  std::vector<int> left(static_cast<std::size_t>(convs), o.per);
  while (stats.acked < total && stats.errors == 0) {
    for (int i = 0; i < convs; ++i) {
      auto& c = senders[static_cast<std::size_t>(i)];
      while (left[static_cast<std::size_t>(i)] > 0 && c->outstanding < 8) {
        c->send_one();
        --left[static_cast<std::size_t>(i)];
      }
    }
    io.run_for(std::chrono::milliseconds(20));
  }
  const double send_s = std::chrono::duration<double>(Steady::now() - t_send).count();
  const auto t_start = Steady::now();
  far.start();
  double converged_s = -1;
  std::int64_t have = 0;
  while (Steady::now() - t_start < std::chrono::seconds(300)) {
    have = far.stored_messages() - before;
    if (have >= total) {
      converged_s = std::chrono::duration<double>(Steady::now() - t_start).count();
      break;
    }
    io.run_for(std::chrono::milliseconds(50));
  }
  std::printf(
      "{\"scenario\":\"catch-up\",\"conversations\":%d,\"per_conversation\":%d,\"events\":%lld,"
      "\"size\":%d,\"send_s\":%.2f,\"stored\":%lld,\"converged_s\":%.2f,\"errors\":%lld}\n",
      convs, o.per, static_cast<long long>(total), o.size, send_s, static_cast<long long>(have),
      converged_s, static_cast<long long>(stats.errors));
  return stats.errors == 0 && converged_s >= 0 ? 0 : 1;
}

// A node holding `o.per` messages (100 pairs writing to each other) is restarted: the time from
// starting the process until a user is logged in and past the backlog of a new device.
int start_up(const Options& o, NodeProc& node) {
  const int pairs_n = 100;
  node.add_users("u", 2 * pairs_n, "bench-password");
  asio::io_context io;
  Stats stats;
  auto conns = connect_all(io, stats, node, "u", 2 * pairs_n, "bench-password");
  std::string body = crypto::random_bytes(static_cast<std::size_t>(std::max(o.size, 8)));
  for (int i = 0; i < 2 * pairs_n; ++i) {
    conns[static_cast<std::size_t>(i)]->peer = "u" + std::to_string(i ^ 1) + "@" + node.name();
    conns[static_cast<std::size_t>(i)]->body = body;
  }
  stats.measuring = true;
  const std::int64_t total = o.per;
  std::int64_t queued = 0;
  const auto t_fill = Steady::now();
  while (stats.acked < total && stats.errors == 0) {
    for (auto& c : conns) {
      while (queued < total && c->outstanding < 8) {
        c->send_one();
        ++queued;
      }
    }
    io.run_for(std::chrono::milliseconds(20));
  }
  const double fill_s = std::chrono::duration<double>(Steady::now() - t_fill).count();
  conns.clear();
  io.run_for(std::chrono::milliseconds(200));
  node.stop();
  const auto bytes = fs::file_size(node.data() + "/parley.db");
  const auto t0 = Steady::now();
  node.start();  // returns once the client port accepts
  const double listening_s = std::chrono::duration<double>(Steady::now() - t0).count();
  Stats fresh;
  asio::io_context io2;
  auto one = connect_named(io2, fresh, node, "u", {0}, "bench-password");
  const double serving_s = std::chrono::duration<double>(Steady::now() - t0).count();
  std::printf(
      "{\"scenario\":\"start-up\",\"stored_messages\":%lld,\"database_bytes\":%lld,"
      "\"fill_s\":%.1f,\"listening_s\":%.3f,\"first_login_served_s\":%.3f,\"errors\":%lld}\n",
      static_cast<long long>(stats.acked), static_cast<long long>(bytes), fill_s, listening_s,
      serving_s, static_cast<long long>(stats.errors + fresh.errors));
  return stats.errors + fresh.errors == 0 ? 0 : 1;
}

// Steady cross-node traffic (senders on `node`, receivers on `far`) while `far` is killed with
// SIGKILL and restarted, and frozen (SIGSTOP) and resumed, in turns. Receivers reconnect (resume
// their session). At the end every acknowledged message must be on its receiver exactly once and
// in send order.
using Received = std::shared_ptr<std::pair<std::set<std::int64_t>, std::vector<std::string>>>;

// Senders s<i> on `node` sending to receivers r<i> on `far`, with what each acknowledged and
// each received, and reconnection (a session resume) of whoever lost its connection.
struct Fleet {
  Fleet(asio::io_context& io, Stats& stats, NodeProc& node, NodeProc& far, int n, int size)
      : io(io), stats(stats), node(node), far(far), n(n), acked(static_cast<std::size_t>(n)) {
    senders = connect_all(io, stats, node, "s", n, "bench-password");
    receivers = connect_all(io, stats, far, "r", n, "bench-password");
    const std::string body = crypto::random_bytes(static_cast<std::size_t>(std::max(size, 8)));
    for (int i = 0; i < n; ++i) {
      auto& s = senders[static_cast<std::size_t>(i)];
      s->peer = "r" + std::to_string(i) + "@" + far.name();
      s->body = body;
      s->on_acked = [this, i](const std::string& id) {
        acked[static_cast<std::size_t>(i)].insert(id);
      };
      s->tolerate_drops = true;
      s->counter = std::make_shared<std::int64_t>(0);
      auto& r = receivers[static_cast<std::size_t>(i)];
      r->tolerate_drops = true;
      got.push_back(std::make_shared<Received::element_type>());
      r->received = got.back();
    }
  }

  void reconnect() {
    const tcp::endpoint far_ep(asio::ip::make_address("127.0.0.1"),
                               static_cast<unsigned short>(far.client_port()));
    const tcp::endpoint near_ep(asio::ip::make_address("127.0.0.1"),
                                static_cast<unsigned short>(node.client_port()));
    for (int i = 0; i < n; ++i) {
      auto& s = senders[static_cast<std::size_t>(i)];
      if (!s->dead()) continue;
      auto again = std::make_shared<Conn>(io, stats, "s" + std::to_string(i) + "@" + node.name(),
                                          "bench-password");
      again->token = s->token;
      again->tolerate_drops = true;
      again->peer = s->peer;
      again->body = s->body;
      again->on_acked = s->on_acked;
      again->on_refused = s->on_refused;
      again->counter = s->counter;
      // Once resumed: what was not answered goes again first, with the same msg_ids.
      again->carry = s->ready ? std::vector<std::pair<std::string, std::string>>{} : s->carry;
      for (auto& p : s->unanswered()) again->carry.push_back(std::move(p));
      again->on_ready = [weak = std::weak_ptr<Conn>(again)] {
        auto c = weak.lock();
        if (!c) return;
        for (const auto& [msg_id, b] : c->carry) c->resend(msg_id, b);
        c->carry.clear();
      };
      s = again;
      again->start(near_ep);
    }
    for (int i = 0; i < n; ++i) {
      auto& r = receivers[static_cast<std::size_t>(i)];
      if (!r->dead()) continue;
      auto again = std::make_shared<Conn>(io, stats, "r" + std::to_string(i) + "@" + far.name(),
                                          "bench-password");
      again->token = r->token;
      again->tolerate_drops = true;
      again->received = r->received;
      receivers[static_cast<std::size_t>(i)] = again;
      again->start(far_ep);
    }
  }

  // Runs until every acknowledged message has reached its receiver (or 120 s); returns the time
  // that took, -1 if it never did.
  double converge() {
    const auto t_stop = Steady::now();
    while (Steady::now() - t_stop < std::chrono::seconds(120)) {
      io.run_for(std::chrono::milliseconds(200));
      reconnect();
      count();
      if (lost == 0) return std::chrono::duration<double>(Steady::now() - t_stop).count();
    }
    return -1;
  }

  // Acknowledged, delivered (distinct), lost, duplicated and out-of-order messages. A message is
  // "msg_id#cseq" on both sides, so one stored at another position than its sender was told
  // counts as lost; out of order: a receiver saw the conversation's sequence go backwards.
  void count() {
    acked_total = delivered = lost = duplicated = out_of_order = not_in_send_order = 0;
    for (int i = 0; i < n; ++i) {
      const auto& ids = got[static_cast<std::size_t>(i)]->second;
      std::map<std::string, int> seen;
      std::int64_t last_cseq = -1, last_sent = -1;
      for (const auto& id : ids) {  // "s<i>-<n>#<cseq>"
        if (++seen[id] > 1) ++duplicated;
        const std::int64_t cseq = std::stoll(id.substr(id.rfind('#') + 1));
        if (cseq < last_cseq) ++out_of_order;
        last_cseq = std::max(last_cseq, cseq);
        const std::int64_t k = std::stoll(id.substr(id.rfind('-') + 1));
        if (k < last_sent) ++not_in_send_order;
        last_sent = std::max(last_sent, k);
      }
      delivered += static_cast<std::int64_t>(seen.size());
      for (const auto& id : acked[static_cast<std::size_t>(i)]) lost += seen.count(id) ? 0 : 1;
      acked_total += static_cast<std::int64_t>(acked[static_cast<std::size_t>(i)].size());
    }
  }

  std::string counts_json() const {
    return "\"acked\":" + std::to_string(acked_total) +
           ",\"delivered\":" + std::to_string(delivered) + ",\"lost\":" + std::to_string(lost) +
           ",\"duplicated\":" + std::to_string(duplicated) +
           ",\"out_of_order\":" + std::to_string(out_of_order) +
           ",\"not_in_send_order\":" + std::to_string(not_in_send_order);
  }
  bool exactly_once() const { return lost == 0 && duplicated == 0 && out_of_order == 0; }

  asio::io_context& io;
  Stats& stats;
  NodeProc &node, &far;
  int n;
  std::vector<std::shared_ptr<Conn>> senders, receivers;
  std::vector<std::set<std::string>> acked;
  std::vector<Received> got;
  std::int64_t acked_total = 0, delivered = 0, lost = 0, duplicated = 0, out_of_order = 0;
  // Delivered in another order than their sender made them: a send refused and made again
  // later lands after the ones made meanwhile (the same order everywhere, but not send order).
  std::int64_t not_in_send_order = 0;
};

// Steady cross-node traffic (senders on `node`, receivers on `far`) while `far` is killed with
// SIGKILL and restarted, and frozen (SIGSTOP) and resumed, in turns. Receivers reconnect (resume
// their session). At the end every acknowledged message must be on its receiver exactly once and
// in send order.
int soak(const Options& o, NodeProc& node, NodeProc& far) {
  senders_and_receivers(node, far, o.clients);
  asio::io_context io;
  Stats stats;
  Fleet fleet(io, stats, node, far, o.clients, o.size);
  // Senders at `rate` messages/s in total, spread evenly.
  const double rate = o.rate > 0 ? o.rate : (o.quick ? 200 : 1000);
  Pacer pacer(io, o.clients, rate,
              [&](int i) { fleet.senders[static_cast<std::size_t>(i)]->send_one(); });
  int kills = 0, freezes = 0, sender_kills = 0;
  const auto t_end =
      Steady::now() + std::chrono::milliseconds(static_cast<std::int64_t>(o.seconds * 1000));
  for (int round = 0; Steady::now() < t_end; ++round) {
    io.run_for(std::chrono::seconds(2));
    if (round % 3 == 0) {
      far.kill9();
      ++kills;
      io.run_for(std::chrono::milliseconds(500));
      far.start();
    } else if (round % 3 == 1) {
      node.kill9();  // the senders' node: acknowledged messages are in its durable queue
      ++sender_kills;
      io.run_for(std::chrono::milliseconds(500));
      node.start();
    } else {
      far.freeze(true);
      ++freezes;
      io.run_for(std::chrono::seconds(1));
      far.freeze(false);
    }
    fleet.reconnect();
  }
  pacer.stop();
  const double converge_s = fleet.converge();
  fleet.count();
  std::printf(
      "{\"scenario\":\"soak\",\"pairs\":%d,\"seconds\":%.0f,\"rate\":%.0f,\"kills\":%d,"
      "\"sender_node_kills\":%d,\"freezes\":%d,%s,\"converge_s\":%.2f,\"errors\":%lld}\n",
      o.clients, o.seconds, rate, kills, sender_kills, freezes, fleet.counts_json().c_str(),
      converge_s, static_cast<long long>(stats.errors));
  return stats.errors == 0 && fleet.exactly_once() && fleet.not_in_send_order == 0 ? 0 : 1;
}

// Steady cross-node traffic while, in turns, the senders' or the receivers' node finds its disk
// read-only or full for `fault_ms`. Refused sends are sent again (same msg_id) 100 ms later, as a
// client does. At the end every acknowledged message must be on its receiver exactly once and in
// order; reports the refusals by code and how long after each fault the first send was acked.
int disk_faults(const Options& o, NodeProc& node, NodeProc& far) {
  senders_and_receivers(node, far, o.clients);
  asio::io_context io;
  Stats stats;
  stats.refusals_expected = true;
  Fleet fleet(io, stats, node, far, o.clients, o.size);
  std::int64_t last_ack_ns = 0;
  for (auto& s : fleet.senders) {
    auto acked = s->on_acked;
    s->on_acked = [acked, &last_ack_ns](const std::string& id) {
      last_ack_ns = now_ns();
      acked(id);
    };
  }
  // A refused send goes again after 100 ms through whichever connection its sender has then.
  for (int i = 0; i < o.clients; ++i) {
    fleet.senders[static_cast<std::size_t>(i)]->on_refused =
        [&, i](const std::string&, const std::string& msg_id, const std::string& body) {
          auto timer = std::make_shared<asio::steady_timer>(io, std::chrono::milliseconds(100));
          timer->async_wait([&, i, timer, msg_id, body](const boost::system::error_code&) {
            auto& s = fleet.senders[static_cast<std::size_t>(i)];
            if (s->ready && !s->dead()) {
              s->resend(msg_id, body);
            } else {
              s->carry.emplace_back(msg_id, body);
            }
          });
        };
  }
  const double rate = o.rate > 0 ? o.rate : (o.quick ? 200 : 1000);
  Pacer pacer(io, o.clients, rate,
              [&](int i) { fleet.senders[static_cast<std::size_t>(i)]->send_one(); });
  const auto fault_ms = std::chrono::milliseconds(1500);
  int faults = 0;
  std::vector<double> recovery_ms;  // senders' node: fault cleared → next acknowledged send
  const auto t_end =
      Steady::now() + std::chrono::milliseconds(static_cast<std::int64_t>(o.seconds * 1000));
  for (int round = 0; Steady::now() < t_end; ++round) {
    io.run_for(std::chrono::seconds(2));
    NodeProc& target = round % 2 == 0 ? node : far;
    target.fault(round % 4 < 2 ? "readonly" : "full");
    ++faults;
    io.run_for(fault_ms);
    target.fault("");
    const std::int64_t cleared = now_ns();
    if (&target == &node) {
      while (last_ack_ns < cleared && now_ns() - cleared < 10'000'000'000) {
        io.run_for(std::chrono::milliseconds(5));
      }
      recovery_ms.push_back(static_cast<double>(last_ack_ns - cleared) / 1e6);
    }
    fleet.reconnect();
  }
  pacer.stop();
  const double converge_s = fleet.converge();
  fleet.count();
  std::string by_code;
  for (const auto& [code, count] : stats.refused) {
    by_code += (by_code.empty() ? "\"" : ",\"") + code + "\":" + std::to_string(count);
  }
  const double worst_recovery =
      recovery_ms.empty() ? 0 : *std::max_element(recovery_ms.begin(), recovery_ms.end());
  std::printf(
      "{\"scenario\":\"disk-faults\",\"pairs\":%d,\"seconds\":%.0f,\"rate\":%.0f,"
      "\"faults\":%d,\"fault_ms\":%lld,\"refused\":{%s},%s,\"recovery_ms\":{\"p50\":%.0f,"
      "\"max\":%.0f},\"converge_s\":%.2f,\"errors\":%lld}\n",
      o.clients, o.seconds, rate, faults, static_cast<long long>(fault_ms.count()), by_code.c_str(),
      fleet.counts_json().c_str(), pct(recovery_ms, 0.5), worst_recovery, converge_s,
      static_cast<long long>(stats.errors));
  const bool refusals_seen =
      stats.refused.count("read_only") > 0 && stats.refused.count("disk_full") > 0;
  if (!refusals_seen) std::fprintf(stderr, "parley-bench: no read_only and disk_full refusals\n");
  return stats.errors == 0 && fleet.exactly_once() && refusals_seen && converge_s >= 0 ? 0 : 1;
}

int idle(const Options& o, NodeProc& node) {
  node.add_users("i", o.clients, "bench-password");
  asio::io_context io;
  Stats stats;
  const std::int64_t rss_before = node.rss_kib();
  const auto t0 = Steady::now();
  auto conns = connect_all(io, stats, node, "i", o.clients, "bench-password");
  const double connect_s = std::chrono::duration<double>(Steady::now() - t0).count();
  // Hold them with heartbeats (a ping per connection every 20 s, spread out).
  asio::steady_timer timer(io);
  std::size_t next = 0;
  const auto step = std::chrono::microseconds(20'000'000 / std::max(1, o.clients));
  std::function<void()> beat = [&] {
    conns[next++ % conns.size()]->ping();
    timer.expires_after(step);
    timer.async_wait([&](const boost::system::error_code& ec) {
      if (!ec) beat();
    });
  };
  beat();
  io.run_for(std::chrono::milliseconds(static_cast<std::int64_t>(o.seconds * 1000)));
  const std::int64_t rss_held = node.rss_kib();
  std::printf(
      "{\"scenario\":\"idle\",\"clients\":%d,\"seconds\":%.1f,\"connect_and_login_s\":%.2f,"
      "\"errors\":%lld,\"node_rss_kib\":{\"before\":%lld,\"held\":%lld},"
      "\"rss_per_connection_kib\":%.2f}\n",
      o.clients, o.seconds, connect_s, static_cast<long long>(stats.errors),
      static_cast<long long>(rss_before), static_cast<long long>(rss_held),
      static_cast<double>(rss_held - rss_before) / o.clients);
  return stats.errors == 0 ? 0 : 1;
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"parley-bench — load scenarios against real parleyd processes on loopback"};
  Options o;
  o.parleyd = (fs::path(argv[0]).parent_path() / ".." / "cli" / "parleyd").string();
  app.add_option("SCENARIO", o.scenario,
                 "local-1to1 | cross-node | group-fanout | catch-up | start-up | soak | "
                 "disk-faults | idle")
      ->required();
  app.add_option("--senders", o.senders, "group-fanout: members who send (10; --quick 3)");
  app.add_option("--per", o.per, "catch-up: messages per conversation (1000; --quick 100)");
  app.add_flag("--quick", o.quick, "Small sizes: finishes in under a minute");
  app.add_option("--clients", o.clients, "Connections (local-1to1: 1000, idle: 10000)");
  app.add_option("--size", o.size, "Payload bytes (256)");
  app.add_option("--seconds", o.seconds, "Measuring time (10; --quick 3)");
  app.add_option("--rate", o.rate, "Total messages/s offered (default: as fast as acks allow)");
  app.add_option("--window", o.window, "Sends outstanding per client without --rate (8)");
  app.add_option("--parleyd", o.parleyd, "The parleyd binary");
  app.footer("Prints one JSON line; exit 1 if any request failed. Figures: bench/README.md.");
  CLI11_PARSE(app, argc, argv);
  crypto::init();
  ::signal(SIGPIPE, SIG_IGN);
  if (o.seconds <= 0) {
    o.seconds = o.scenario == "soak"          ? (o.quick ? 20 : 60)
                : o.scenario == "disk-faults" ? (o.quick ? 14 : 42)
                                              : (o.quick ? 3 : 10);
  }
  if (o.senders <= 0) o.senders = o.quick ? 3 : 10;
  if (o.per <= 0) {
    o.per = o.scenario == "start-up" ? (o.quick ? 100000 : 1000000) : (o.quick ? 100 : 1000);
  }
  if (o.clients <= 0) {
    o.clients = o.scenario == "idle"                                  ? (o.quick ? 1000 : 10000)
                : o.scenario == "group-fanout"                        ? (o.quick ? 150 : 1000)
                : o.scenario == "catch-up"                            ? 100
                : o.scenario == "soak" || o.scenario == "disk-faults" ? (o.quick ? 20 : 100)
                                                                      : (o.quick ? 100 : 1000);
  }
  const fs::path root =
      fs::temp_directory_path() / ("parley-bench-" + crypto::hex_encode(crypto::random_bytes(4)));
  int rc = 2;
  {
    NodeProc node(o.parleyd, root, "bench.example");
    node.start();
    if (o.scenario == "local-1to1") {
      rc = pairs(o, node, nullptr);
    } else if (o.scenario == "group-fanout") {
      NodeProc b(o.parleyd, root, "b.example"), c(o.parleyd, root, "c.example");
      b.start();
      c.start();
      rc = group_fanout(o, {&node, &b, &c});
    } else if (o.scenario == "soak") {
      NodeProc far(o.parleyd, root, "far.example");
      far.start();
      rc = soak(o, node, far);
    } else if (o.scenario == "disk-faults") {
      NodeProc far(o.parleyd, root, "far.example");
      node.stop();
      node.enable_faults();
      node.start();
      far.enable_faults();
      far.start();
      rc = disk_faults(o, node, far);
    } else if (o.scenario == "start-up") {
      rc = start_up(o, node);
    } else if (o.scenario == "catch-up") {
      NodeProc far(o.parleyd, root, "far.example");
      far.start();
      rc = catch_up(o, node, far);
    } else if (o.scenario == "cross-node") {
      NodeProc far(o.parleyd, root, "far.example");
      far.start();
      rc = pairs(o, node, &far);
    } else if (o.scenario == "idle") {
      rc = idle(o, node);
    } else {
      std::fprintf(stderr, "parley-bench: unknown scenario %s\n", o.scenario.c_str());
    }
  }
  if (std::getenv("PARLEY_BENCH_KEEP")) {
    std::fprintf(stderr, "parley-bench: kept %s\n", root.c_str());
  } else {
    fs::remove_all(root);
  }
  return rc;
}
