// Connections, authentication, dispatch and stream pumping.
#include <spdlog/spdlog.h>

#include <algorithm>
#include <set>

#include "core_internal.h"
#include "parley/address.h"
#include "parley/crypto/password.h"
#include "parley/node/conv_store.h"

namespace parley::node {

Core::Core(NodeConfig config, store::Database& db, Clock& clock, PasswordWork& passwords,
           std::string dummy_hash)
    : config_(std::move(config)),
      db_(db),
      clock_(clock),
      passwords_(passwords),
      dummy_hash_(std::move(dummy_hash)),
      failures_by_pair_(config_.login_failures_per_window,
                        std::int64_t{config_.login_window_seconds} * 1000),
      failures_by_source_(config_.login_failures_per_source,
                          std::int64_t{config_.login_window_seconds} * 1000),
      failures_by_address_(config_.login_failures_per_account,
                           std::int64_t{config_.login_window_seconds} * 1000),
      directory_misses_(kDirectoryMissesPerWindow, kDirectoryMissWindowMs),
      node_directory_misses_(10 * kDirectoryMissesPerWindow, kDirectoryMissWindowMs),
      reports_(config_.reports_per_hour, kReportWindowMs),
      friend_requests_(config_.friend_requests_per_hour, kReportWindowMs),
      groups_(config_.groups_per_hour, kReportWindowMs),
      convs_(std::make_unique<ConvStore>(db_, config_.name)) {}

Core::~Core() = default;

ConnId Core::on_connect(std::shared_ptr<Outlet> outlet, std::string source) {
  const ConnId id = next_conn_++;
  auto c = std::make_unique<Conn>();
  c->id = id;
  c->outlet = std::move(outlet);
  c->source = std::move(source);
  conns_.emplace(id, std::move(c));
  return id;
}

void Core::on_disconnect(ConnId id) {
  const auto it = conns_.find(id);
  if (it == conns_.end()) return;
  if (it->second->user_id != 0) {
    remember_last_seen(*it->second);
    auto& set = by_user_[it->second->user_id];
    set.erase(id);
    if (set.empty()) by_user_.erase(it->second->user_id);
  }
  conns_.erase(it);
}

void Core::close_all(const std::string& code, const std::string& message) {
  for (auto& [id, c] : conns_) {
    if (!c->closed) out_close(c->outlet, code, message);
    c->closed = true;
  }
  conns_.clear();
  by_user_.clear();
}

void Core::close_user(std::int64_t user_id, const std::string& code, const std::string& message) {
  const auto it = by_user_.find(user_id);
  if (it == by_user_.end()) return;
  const auto ids = it->second;
  for (ConnId id : ids) {
    if (auto c = conns_.find(id); c != conns_.end()) {
      out_close(c->second->outlet, code, message);
      c->second->closed = true;
    }
    on_disconnect(id);
  }
}

void Core::send_frame(Conn& c, std::string payload, std::string if_not_stored) {
  if (c.closed) return;
  if (batching_) {
    deferred_.push_back({Deferred::kSend, c.outlet, std::move(payload), std::move(if_not_stored)});
  } else {
    c.outlet->send(std::move(payload));
  }
}

void Core::out_close(const std::shared_ptr<Outlet>& outlet, const std::string& code,
                     const std::string& message) {
  if (batching_) {
    deferred_.push_back({Deferred::kClose, outlet, code, message});
  } else {
    outlet->close(code, message);
  }
}

void Core::out_drain(const std::shared_ptr<Outlet>& outlet) {
  if (batching_) {
    deferred_.push_back({Deferred::kDrain, outlet, {}, {}});
  } else {
    outlet->notify_when_drained();
  }
}

void Core::reload(const NodeConfig& fresh) {
  config_.direct_messages = fresh.direct_messages;
  config_.max_body_bytes = fresh.max_body_bytes;
  config_.heartbeat_timeout_seconds = fresh.heartbeat_timeout_seconds;
  config_.login_failures_per_window = fresh.login_failures_per_window;
  config_.login_window_seconds = fresh.login_window_seconds;
  config_.login_failures_per_source = fresh.login_failures_per_source;
  config_.login_failures_per_account = fresh.login_failures_per_account;
  const std::int64_t window_ms = std::int64_t{fresh.login_window_seconds} * 1000;
  failures_by_pair_.set_limits(fresh.login_failures_per_window, window_ms);
  failures_by_source_.set_limits(fresh.login_failures_per_source, window_ms);
  failures_by_address_.set_limits(fresh.login_failures_per_account, window_ms);
  config_.messages_per_minute = fresh.messages_per_minute;
  config_.message_burst = fresh.message_burst;
  config_.reports_per_hour = fresh.reports_per_hour;
  config_.to_device_per_minute = fresh.to_device_per_minute;
  config_.to_device_burst = fresh.to_device_burst;
  config_.max_connections_per_user = fresh.max_connections_per_user;
  reports_.set_limits(fresh.reports_per_hour, kReportWindowMs);
  config_.friend_requests_per_hour = fresh.friend_requests_per_hour;
  friend_requests_.set_limits(fresh.friend_requests_per_hour, kReportWindowMs);
  config_.groups_per_hour = fresh.groups_per_hour;
  groups_.set_limits(fresh.groups_per_hour, kReportWindowMs);
  config_.federation_queue_lifetime_seconds = fresh.federation_queue_lifetime_seconds;
}

void Core::begin_batch() {
  if (batching_) return;
  if (storage_refusing_ && !storage_writable_again()) return;  // each request on its own
  batching_ = db_.begin_batch().ok();
}

void Core::note_write_refused(const Error& e) {
  if (!store::write_refused(e)) return;
  if (!storage_refusing_) {
    spdlog::error("event=storage_refusing_writes code={} reason=\"{}\"", e.code, e.message);
  }
  storage_refusing_ = true;
  last_storage_probe_ms_ = clock_.now_ms();
}

// While the database refuses writes, requests run one transaction each, so one refused write
// does not turn the answers of reads batched with it into errors. Once a second a small write
// probes whether the disk came back; then batching resumes.
bool Core::storage_writable_again() {
  const std::int64_t now = clock_.now_ms();
  if (now - last_storage_probe_ms_ < 1000) return false;
  last_storage_probe_ms_ = now;
  auto probed = db_.exec(
      "BEGIN IMMEDIATE; INSERT OR REPLACE INTO node_meta(key, value) VALUES('storage_probe_ms', "
      "'" +
      std::to_string(now) + "'); COMMIT");
  if (!probed.ok()) {
    (void)db_.exec("ROLLBACK");
    return false;
  }
  storage_refusing_ = false;
  spdlog::warn("event=storage_writable_again");
  return true;
}

void Core::restart_broken_batch() {
  if (!batching_ || !db_.batch_broken()) return;
  // The database dropped the batch (a full disk): what ran before in it is answered with the
  // error by end_batch(); what comes next gets a batch of its own.
  end_batch();
  begin_batch();
}

void Core::end_batch() {
  if (!batching_) return;
  batching_ = false;
  auto out = std::move(deferred_);
  deferred_.clear();
  const auto pushed = std::move(batch_pushed_);
  batch_pushed_.clear();
  const Status committed = db_.end_batch(true);
  if (committed.ok()) {
    for (ConnId id : pushed) {
      if (auto it = conns_.find(id); it != conns_.end()) it->second->batch_floor = -1;
    }
    for (auto& d : out) {
      if (d.kind == Deferred::kSend) {
        d.outlet->send(std::move(d.a));
      } else if (d.kind == Deferred::kClose) {
        d.outlet->close(d.a, d.b);
      } else {
        d.outlet->notify_when_drained();
      }
    }
    return;
  }
  // Nothing of the batch is stored. Successful answers become the error (or the request's own
  // answer for that case); pushes are dropped, and each connection that lost some is rewound and
  // pushed again what is committed. The connections stay: reads and deliveries go on
  // (spec/client-protocol.md section 6).
  spdlog::error("event=batch_commit_failed code={} reason=\"{}\"", committed.error().code,
                committed.error().message);
  note_write_refused(committed.error());
  conv_rollback();
  touched_.clear();
  outbox_grew_ = false;
  for (auto& d : out) {
    if (d.kind == Deferred::kSend) {
      auto m = wire::Message::parse(d.a);
      if (!m.ok() || m->type() == "ev") continue;  // an event that may not be stored: pushed again
      if (m->type() != "re" || !m->root().boolean_or("ok", false).value()) {
        d.outlet->send(std::move(d.a));
      } else if (!d.b.empty()) {
        d.outlet->send(std::move(d.b));
      } else {
        wire::MapWriter w;
        w.add("t", "re")
            .add("id", m->root().uint_or("id", 0).value())
            .add("ok", false)
            .add("code", store::write_refused(committed.error()) ? committed.error().code
                                                                 : std::string("storage"))
            .add("msg", "not stored: " + committed.error().message);
        if (metrics_)
          metrics_->count_error(store::write_refused(committed.error()) ? committed.error().code
                                                                        : std::string("storage"));
        d.outlet->send(w.finish());
      }
    } else if (d.kind == Deferred::kClose) {
      d.outlet->close(d.a, d.b);
    } else {
      d.outlet->notify_when_drained();  // a backlog page waits for it (pump)
    }
  }
  for (ConnId id : pushed) {
    const auto it = conns_.find(id);
    if (it == conns_.end()) continue;
    Conn& c = *it->second;
    const std::int64_t floor = c.batch_floor;
    c.batch_floor = -1;
    if (c.closed || floor < 0) continue;
    c.pushed_upto = floor;
    // A connection in its backlog goes on from the floor when its pending drain arrives; a live
    // one gets the committed events after it (none, usually) at once.
    if (c.live && !load_events(c.user_id, floor, 1 << 20, c).ok()) {
      out_close(c.outlet, "internal", "cannot read the stream");
      c.closed = true;  // forgotten when the gateway reports the disconnect
    }
  }
}

void Core::reply_error(Conn& c, std::uint64_t id, const Error& e) {
  if (metrics_) metrics_->count_error(e.code);
  wire::MapWriter w;
  w.add("t", "re").add("id", id).add("ok", false).add("code", e.code).add("msg", e.message);
  if (e.code == "rate_limited" && retry_after_ms_ > 0) w.add("retry_after_ms", retry_after_ms_);
  retry_after_ms_ = 0;
  send_frame(c, w.finish());
}

void Core::on_frame(ConnId id, wire::Message frame) {
  const auto it = conns_.find(id);
  if (it == conns_.end() || it->second->closed) return;
  Conn& c = *it->second;
  c.last_frame_ms = clock_.now_ms();
  if (c.logging_in) {
    // Requests after a login wait for it, so they are answered in order.
    if (c.deferred.size() >= 64) {
      out_close(c.outlet, "slow_consumer", "too many requests while logging in");
      c.closed = true;
      on_disconnect(id);
      return;
    }
    c.deferred.push_back(std::move(frame));
    return;
  }
  process(id, c, frame);
}

void Core::process(ConnId id, Conn& c, const wire::Message& frame) {
  const auto req_id = frame.root().uint("id");
  if (!req_id.ok()) {
    reply_error(c, 0, make_error("bad_request", "every request needs an unsigned integer 'id'"));
    return;
  }
  const std::string& type = frame.type();
  if (type == "login") {
    start_login(id, c, frame, *req_id);
    return;
  }
  if (c.user_id != 0 && (type == "lookup" || type == "keys_query" || type == "keys_claim")) {
    start_directory(id, c, type, frame.root(), *req_id);
    return;
  }
  wire::MapWriter out;
  out.add("t", "re").add("id", *req_id).add("ok", true);
  Status s = ok_status();
  if (type == "resume") {
    s = c.user_id ? make_error("bad_request", "already authenticated")
                  : do_resume(id, c, frame.root(), out);
    if (s.ok()) {
      // A resume stores nothing that matters (last seen, best effort): it holds if the batch
      // does not commit.
      std::string answer = out.finish();
      send_frame(c, answer, answer);
      pump(id, c);
      return;
    }
  } else if (type == "ping") {
    s = do_ping(c, frame.root(), out);
    if (s.ok()) {
      std::string answer = out.finish();
      send_frame(c, answer, answer);  // stores nothing
      return;
    }
  } else if (c.user_id == 0) {
    s = make_error("unauthenticated", "log in or resume a session first");
  } else {
    s = handle(c, type, frame.root(), out);
  }
  if (!s.ok()) {
    touched_.clear();
    outbox_grew_ = false;
    if_not_stored_.clear();
    conv_rollback();
    note_write_refused(s.error());
    restart_broken_batch();
    reply_error(c, *req_id, s.error());
    if ((s.error().code == "suspended" || s.error().code == "deactivated") && !c.closed) {
      out_close(c.outlet, s.error().code, s.error().message);
      c.closed = true;
      on_disconnect(id);
    }
    return;
  }
  if (type == "logout") {
    // The token is revoked: every live connection signed in with it ends, this one after its
    // answer (close_device forgets them all, `c` included).
    if_not_stored_.clear();
    send_frame(c, out.finish());
    close_device(c.user_id, c.device_id, "logged_out", "logged out");
    return;
  }
  send_frame(c, out.finish(), std::move(if_not_stored_));
  if_not_stored_.clear();
  notify_touched();
  if (outbox_grew_ && outbox_listener_) outbox_listener_();
  outbox_grew_ = false;
  conv_after_commit();
}

Status Core::handle(Conn& c, const std::string& type, wire::View req, wire::MapWriter& out) {
  if (type == "send") return do_send(c, req, out);
  if (type == "ack") return do_ack(c, req, out);
  if (type == "read") return do_read(c, req, out);
  if (type == "history") return do_history(c, req, out);
  if (type == "convs") return do_convs(c, req, out);
  if (type == "pin" || type == "hide" || type == "clear") return do_conv_view(c, type, req, out);
  if (type == "friends") return do_friends(c, req, out);
  if (type == "blocks") return do_blocks(c, req, out);
  if (type == "logout") return do_logout(c, req, out);
  if (type == "keys_publish") return do_keys_publish(c, req, out);
  if (type == "profile") return do_profile(c, req, out);
  if (type == "to_device") return do_to_device(c, req, out);
  if (type == "report") return do_report(c, req, out);
  if (type == "group_create") return do_group_create(c, req, out);
  if (type == "group_event") return do_group_event(c, req, out);
  if (type == "group_members") return do_group_members(c, req, out);
  if (type == "group_history") return do_group_history(c, req, out);
  if (type == "groups") return do_groups(c, req, out);
  if (type.rfind("friend_", 0) == 0 || type == "block" || type == "unblock") {
    return do_relation(c, type, req, out);
  }
  return make_error("bad_request", "unknown request type '" + type + "'");
}

Status Core::do_ping(Conn& c, wire::View req, wire::MapWriter& out) {
  out.add("now_ms", clock_.now_ms());
  return ok_status();
}

void Core::start_login(ConnId id, Conn& c, const wire::Message& frame, std::uint64_t req) {
  const wire::View v = frame.root();
  auto fail = [&](const Error& e) { reply_error(c, req, e); };
  if (c.user_id) return fail(make_error("bad_request", "already authenticated"));
  auto user = v.str("user", 320);
  auto password = v.str("password", 1024);
  auto device = v.str_or("device", "device", 64);
  if (!user.ok()) return fail(user.error());
  if (!password.ok()) return fail(password.error());
  if (!device.ok()) return fail(device.error());
  auto address = wire::parse_address(*user);
  if (!address.ok()) return fail(address.error());

  // Every attempt counts from its start, so guesses in flight together are bounded too; a
  // success gives its counts back (finish_login).
  const std::int64_t now = clock_.now_ms();
  LoginReservation r{address->str() + " " + c.source, c.source, address->str()};
  const std::int64_t wait = std::max({failures_by_pair_.blocked_for(r.pair, now),
                                      failures_by_source_.blocked_for(r.source, now),
                                      failures_by_address_.blocked_for(r.address, now)});
  if (wait > 0) {
    wire::MapWriter w;
    w.add("t", "re")
        .add("id", req)
        .add("ok", false)
        .add("code", "rate_limited")
        .add("msg", "too many failed logins; try again later")
        .add("retry_after_ms", wait);
    if (metrics_) metrics_->count_error("rate_limited");
    bump(&Metrics::logins_rate_limited);
    send_frame(c, w.finish());
    return;
  }
  std::string hash = dummy_hash_;
  if (address->domain == config_.name) {
    auto row = find_user(address->local);
    if (!row.ok()) return fail(row.error());
    if (row->has_value()) hash = (*row)->password_hash;
  }
  r.pair_window = failures_by_pair_.record_failure(r.pair, now);
  r.source_window = failures_by_source_.record_failure(r.source, now);
  r.address_window = failures_by_address_.record_failure(r.address, now);
  c.logging_in = true;
  passwords_.verify(std::move(hash), std::move(password).value(),
                    [this, id, req, r = std::move(r), dev = std::move(device).value()](
                        bool ok) mutable { finish_login(id, req, r, dev, ok); });
}

void Core::finish_login(ConnId id, std::uint64_t req, const LoginReservation& reserved,
                        std::string device, bool password_ok) {
  const std::string& address = reserved.address;
  const auto it = conns_.find(id);
  if (it == conns_.end()) return;
  Conn& c = *it->second;
  c.logging_in = false;
  const std::int64_t now = clock_.now_ms();
  auto parsed = wire::parse_address(address);
  std::optional<UserRow> user;
  if (password_ok && parsed.ok() && parsed->domain == config_.name) {
    auto row = find_user(parsed->local);
    if (!row.ok()) {
      reply_error(c, req, row.error());
      return drain_deferred(id);
    }
    user = *row;
  }
  if (!user) {
    // The attempt stays counted (start_login).
    bump(&Metrics::logins_failed);
    spdlog::info("event=login_failed conn={} source={}", id, c.source);
    reply_error(c, req, make_error("bad_credentials", "wrong address or password"));
    return drain_deferred(id);
  }
  // The right password of a real user: not a guess that failed.
  failures_by_pair_.give_back(reserved.pair, reserved.pair_window);
  failures_by_source_.give_back(reserved.source, reserved.source_window);
  failures_by_address_.give_back(reserved.address, reserved.address_window);
  if (user->suspended || user->deactivated) {
    const char* code = user->deactivated ? "deactivated" : "suspended";
    const std::string why = std::string("the account is ") + code;
    reply_error(c, req, make_error(code, why));
    out_close(c.outlet, code, why);
    c.closed = true;
    on_disconnect(id);
    return;
  }
  if (auto room = check_user_connections(user->id); !room.ok()) {
    reply_error(c, req, room.error());
    return drain_deferred(id);
  }
  const auto token = crypto::new_session_token();
  // Device ids never repeat, also after a restore from a backup (which sets a floor above the
  // ids handed out since the backup: other users' clients know devices by id).
  auto ins = db_.prepare(
      "INSERT INTO devices(id, user_id, label, token_hash, cursor, created_ms, last_seen_ms, "
      "last_address) VALUES(max(coalesce((SELECT max(id) FROM devices), 0) + 1, coalesce((SELECT "
      "CAST(value AS INTEGER) FROM node_meta WHERE key = 'device_id_floor'), 0)), ?, ?, ?, 0, ?, "
      "?, ?)");
  Status s = ins.ok() ? ins->bind(1, user->id)
                            .bind(2, device)
                            .bind(3, token.hash)
                            .bind(4, now)
                            .bind(5, now)
                            .bind(6, c.source)
                            .run()
                      : Status(ins.error());
  if (!s.ok()) {
    reply_error(c, req, s.error());
    return drain_deferred(id);
  }
  const std::int64_t device_id = db_.last_insert_rowid();
  wire::MapWriter out;
  out.add("t", "re")
      .add("id", req)
      .add("ok", true)
      .add("user", address)
      .add("device_id", device_id)
      .add("token", token.text)
      .add("heartbeat_ms", std::uint64_t{config_.heartbeat_timeout_seconds} * 1000);
  // Authenticated first: the connection then takes full-size frames before the client can
  // have read this answer (Outlet::authenticated).
  authenticated(id, c, user->id, address, device_id);
  send_frame(c, out.finish());
  pump(id, c);
  drain_deferred(id);
}

void Core::drain_deferred(ConnId id) {
  for (;;) {
    const auto it = conns_.find(id);
    if (it == conns_.end() || it->second->closed || it->second->logging_in) return;
    Conn& c = *it->second;
    if (c.deferred.empty()) return;
    wire::Message m = std::move(c.deferred.front());
    c.deferred.pop_front();
    process(id, c, m);
  }
}

Status Core::do_resume(ConnId id, Conn& c, wire::View req, wire::MapWriter& out) {
  PARLEY_ASSIGN_OR_RETURN(token, req.str("token", 256));
  PARLEY_ASSIGN_OR_RETURN(
      st, db_.prepare("SELECT d.id, u.id, u.name, u.suspended, u.deactivated_ms FROM devices d "
                      "JOIN users u ON u.id = d.user_id WHERE d.token_hash = ?"));
  st.bind(1, crypto::hash_token(token));
  PARLEY_ASSIGN_OR_RETURN(row, st.step());
  if (!row) {
    bump(&Metrics::logins_failed);
    return make_error("bad_credentials", "unknown or revoked session token");
  }
  const std::int64_t device_id = st.column_int64(0);
  const std::int64_t user_id = st.column_int64(1);
  const std::string address = st.column_text(2) + "@" + config_.name;
  if (st.column_int64(4)) return make_error("deactivated", "the account is deactivated");
  if (st.column_int64(3)) return make_error("suspended", "the account is suspended");
  PARLEY_TRY(check_user_connections(user_id));
  PARLEY_ASSIGN_OR_RETURN(
      upd, db_.prepare("UPDATE devices SET last_seen_ms = ?, last_address = ? WHERE id = ?"));
  // Best effort: a full or read-only database still lets its users in to read.
  if (auto seen = upd.bind(1, clock_.now_ms()).bind(2, c.source).bind(3, device_id).run();
      !seen.ok() && !store::write_refused(seen.error())) {
    return seen;
  }
  out.add("user", address)
      .add("device_id", device_id)
      .add("heartbeat_ms", std::uint64_t{config_.heartbeat_timeout_seconds} * 1000);
  authenticated(id, c, user_id, address, device_id);
  return ok_status();
}

Status Core::check_user_connections(std::int64_t user_id) {
  const auto it = by_user_.find(user_id);
  const std::size_t open = it == by_user_.end() ? 0 : it->second.size();
  if (open < config_.max_connections_per_user) return ok_status();
  return make_error("too_many_connections",
                    "this user has " + std::to_string(open) +
                        " connections signed in, the most this node allows; close one first");
}

void Core::authenticated(ConnId id, Conn& c, std::int64_t user_id, std::string address,
                         std::int64_t device_id) {
  bump(&Metrics::logins_ok);
  c.outlet->authenticated();  // before the answer is queued: the client may then send big frames
  c.user_id = user_id;
  c.address = std::move(address);
  c.device_id = device_id;
  c.live = false;
  by_user_[user_id].insert(id);
  auto st = db_.prepare("SELECT cursor FROM devices WHERE id = ?");
  if (st.ok()) {
    st->bind(1, device_id);
    if (auto row = st->step(); row.ok() && *row) c.pushed_upto = st->column_int64(0);
  }
}

Status Core::do_logout(Conn& c, wire::View req, wire::MapWriter& out) {
  PARLEY_ASSIGN_OR_RETURN(st, db_.prepare("UPDATE devices SET token_hash = NULL WHERE id = ?"));
  return st.bind(1, c.device_id).run();
}

void Core::pump(ConnId id, Conn& c) {
  if (c.closed || c.live || c.awaiting_drain || c.user_id == 0) return;
  // A page must fit the connection's outbound bound with room for responses and live pushes.
  const int page =
      std::clamp<int>(static_cast<int>(config_.max_outbound_frames / 2), 1, kBacklogPage);
  auto n = load_events(c.user_id, c.pushed_upto, page, c);
  if (!n.ok()) {
    out_close(c.outlet, "internal", "cannot read the stream: " + n.error().message);
    c.closed = true;
    on_disconnect(id);
    return;
  }
  if (*n == page) {
    c.awaiting_drain = true;
    out_drain(c.outlet);
    return;
  }
  c.live = true;
  wire::MapWriter w;
  w.add("t", "synced").add("seq", c.pushed_upto);
  send_frame(c, w.finish());
}

void Core::on_drained(ConnId id) {
  const auto it = conns_.find(id);
  if (it == conns_.end()) return;
  it->second->awaiting_drain = false;
  pump(id, *it->second);
}

void Core::notify_touched() {
  const auto users = std::move(touched_);
  touched_.clear();
  for (std::int64_t user : users) {
    const auto it = by_user_.find(user);
    if (it == by_user_.end()) continue;
    for (ConnId id : std::set<ConnId>(it->second)) {
      auto c = conns_.find(id);
      if (c == conns_.end() || !c->second->live) continue;  // backlog mode picks it up itself
      auto n = load_events(user, c->second->pushed_upto, 1 << 20, *c->second);
      if (!n.ok()) {
        out_close(c->second->outlet, "internal", "cannot read the stream");
        c->second->closed = true;
        on_disconnect(id);
      }
    }
  }
}

}  // namespace parley::node
