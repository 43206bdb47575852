// The node's core: accounts, sessions, streams, 1:1 messaging, relationship chains and admin
// operations (spec/client-protocol.md). It performs no I/O of its own: connections reach it as
// Outlets, time through a Clock and password hashing through PasswordWork, so tests and the
// simulator can drive it directly.
//
// Threading: a Core belongs to one thread (the node's core thread). Every method, and every
// callback it gives to PasswordWork, must run on that thread. Outlet methods are called on it
// and must hand work to the connection's own executor.
#pragma once

#include <cstdint>
#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <set>
#include <string>
#include <unordered_map>
#include <vector>

#include "parley/federation/key_document.h"
#include "parley/message.h"
#include "parley/node/config.h"
#include "parley/node/metrics.h"
#include "parley/node/rate_limiter.h"
#include "parley/node/token_bucket.h"
#include "parley/result.h"

namespace parley::store {
class Database;
class Transaction;
}  // namespace parley::store
namespace parley::crypto {
class SigningKey;
}
namespace parley::conv {
enum class Kind : std::uint8_t;
struct Event;
struct SignedEvent;
class Replica;
struct Member;
}  // namespace parley::conv

namespace parley::node {

using ConnId = std::uint64_t;

class Outlet {
 public:
  virtual ~Outlet() = default;
  // Queues one frame payload. The connection enforces its outbound bound itself.
  virtual void send(std::string payload) = 0;
  // Asks the connection to call Core::on_drained once everything queued so far has been written.
  virtual void notify_when_drained() = 0;
  // Sends {"t":"bye"} with this code and message, then closes. Core forgets the connection.
  virtual void close(std::string code, std::string message) = 0;
  // The connection authenticated (login or resume): it may send full-size frames from now on
  // and no longer counts as unauthenticated for its source.
  virtual void authenticated() {}
};

class Clock {
 public:
  virtual ~Clock() = default;
  virtual std::int64_t now_ms() = 0;
};

class PasswordWork {
 public:
  virtual ~PasswordWork() = default;
  // Verifies off the core thread; `done` runs on the core thread.
  virtual void verify(std::string stored_hash, std::string password,
                      std::function<void(bool)> done) = 0;
};

// Questions to other nodes that need an answer before the client gets one (directory and key
// directory lookups, spec/federation.md section 5).
class RemoteQueries {
 public:
  virtual ~RemoteQueries() = default;
  // POSTs `body` (msgpack) to /federation/v1/query/{kind} on node `dest`, off the core thread;
  // `done` runs on the core thread with the answer's msgpack map or an error.
  virtual void query(std::string dest, std::string kind, std::string body,
                     std::function<void(Result<std::string>)> done) = 0;
};

// Other nodes' key documents (spec/federation.md section 1) for checking the origin signatures
// of group events another node passed on: what is cached, and a fetch off the core thread.
class OriginKeys {
 public:
  virtual ~OriginKeys() = default;
  // The document of `origin` if one was fetched in the last minute (none when it failed).
  virtual std::optional<federation::KeyDocument> cached(const std::string& origin) = 0;
  // Fetches it off the core thread; `done` runs on the core thread (true: cached() has it).
  virtual void fetch(const std::string& origin, std::function<void(bool)> done) = 0;
};

class ConvStore;
struct ConvSummary;

struct UserInfo {
  std::string name;
  std::string address;
  bool suspended = false;
  bool deactivated = false;
  std::int64_t created_ms = 0;
  std::int64_t devices = 0;
  std::int64_t connections = 0;
};

// One device of a user as `parleyd user sessions` shows it (core_people.cpp).
struct SessionInfo {
  std::int64_t device = 0;
  std::string label;
  std::int64_t created_ms = 0;
  std::int64_t last_seen_ms = 0;  // last frame received (live), else when the session was last used
  std::string last_address;       // source address of the latest connection
  bool signed_in = false;         // holds a session token
  std::vector<std::string> connections;  // source addresses of its live connections
};

// A user's send rate limit: the node default or an override (`parleyd user limit`).
struct SendLimit {
  std::uint32_t messages_per_minute = 0;  // 0: unlimited
  std::uint32_t burst = 0;
  bool override = false;
};

// An abuse report (core_reports.cpp, spec/client-protocol.md section 14).
struct ReportInfo {
  std::int64_t id = 0;
  std::string reporter;
  std::int64_t reporter_device = 0;
  std::string conv;
  std::int64_t cseq = 0;  // 1:1 messages; 0 for a group event
  std::string msg_id;     // 1:1: the sender's msg_id; group: the event id
  std::string sender;
  std::int64_t sent_ms = 0;
  std::string reason;
  std::optional<std::string> text;  // only when the reporter chose to include it
  std::int64_t created_ms = 0;
  std::int64_t resolved_ms = 0;
  std::string note;
};

struct CoreStats {
  std::int64_t users = 0;
  std::int64_t devices = 0;
  std::int64_t connections = 0;         // open connections, authenticated or not
  std::int64_t authenticated = 0;       // authenticated connections
  std::int64_t undelivered_events = 0;  // stream events not yet acknowledged by devices
  std::int64_t messages = 0;
  std::int64_t federation_queued = 0;            // events waiting in outbound federation queues
  std::int64_t federation_oldest_queued_ms = 0;  // when the oldest of them was queued; 0: none
  std::int64_t federation_peers = 0;             // allowed peer entries
  std::int64_t federation_peers_failing = 0;     // peers whose last attempt failed
};

class Core {
 public:
  // `dummy_hash` is a password hash verified for unknown users so that timing does not reveal
  // which addresses exist.
  Core(NodeConfig config, store::Database& db, Clock& clock, PasswordWork& passwords,
       std::string dummy_hash);
  ~Core();
  Core(const Core&) = delete;
  Core& operator=(const Core&) = delete;

  // Group commit: requests processed between begin_batch() and end_batch() share one database
  // commit; their responses and pushes leave only after it (a durable acknowledgement is never
  // sent before its commit). If the commit fails, every request of the batch that succeeded is
  // answered with the error (an `ack`: ok, cursor unchanged, deferred), the batch's pushes are
  // dropped and each connection that lost some is rewound to what it had before the batch and
  // pushed the committed events again; connections stay open. Without a batch each request commits
  // on its own; so does every request while the database refuses writes (full, read-only), until a
  // probe write succeeds again.
  void begin_batch();
  void end_batch();

  // Connections.
  ConnId on_connect(std::shared_ptr<Outlet> outlet, std::string source);
  void on_frame(ConnId conn, wire::Message frame);
  void on_drained(ConnId conn);
  void on_disconnect(ConnId conn);
  // Closes every connection with `code` (shutdown).
  void close_all(const std::string& code, const std::string& message);

  // Administration (parleyd user ...). Password hashes are computed by the caller.
  Result<UserInfo> add_user(const std::string& name, const std::string& password_hash,
                            const std::string& display_name = "");
  Result<std::vector<UserInfo>> list_users();
  Status set_suspended(const std::string& name, bool suspended);
  Status delete_user(const std::string& name);
  Status set_password_hash(const std::string& name, const std::string& password_hash);
  Result<CoreStats> stats();

  // People (core_people.cpp, spec/admin-api.md). A user's devices, newest first; with `all`
  // also those whose session ended.
  Result<std::vector<SessionInfo>> list_sessions(const std::string& name, bool all);
  // Revokes the session token of one device (or of all the user's devices) and closes their
  // live connections with `bye logged_out`. Returns {devices signed out, connections closed}.
  Result<std::pair<std::int64_t, std::int64_t>> kick(const std::string& name,
                                                     std::optional<std::int64_t> device);
  // Deactivated users cannot log in (every session token is revoked) and keep their data.
  Status set_deactivated(const std::string& name, bool deactivated);
  // delete_user plus every message the user sent on this node and the reports they filed; the
  // name is retired so nobody can register it again (unretire_name frees it).
  Status erase_user(const std::string& name);
  Status unretire_name(const std::string& name);
  Result<std::vector<std::pair<std::string, std::int64_t>>> retired_names();
  // The user's send limit; set_send_limit with nullopt returns to the node default.
  Result<SendLimit> send_limit(const std::string& name);
  Status set_send_limit(const std::string& name, std::optional<SendLimit> limit);

  // Abuse reports (core_reports.cpp).
  Result<std::vector<ReportInfo>> list_reports(bool open_only);
  Result<std::optional<ReportInfo>> report(std::int64_t id);
  Result<ReportInfo> resolve_report(std::int64_t id, const std::string& note);

  // Federation (spec/federation.md section 4). Applies events received from `origin` whose ids
  // are above what was applied before, in one transaction; returns the new high-water mark.
  struct InboundEvent {
    std::int64_t id;
    std::string payload;
  };
  // Called (on the core thread) after a request committed new outbound federation events.
  void set_outbox_listener(std::function<void()> listener) {
    outbox_listener_ = std::move(listener);
  }
  // `epoch` is the origin's (federation.md §4): a higher one than before restarts the count of
  // applied ids from zero; a lower one is refused with "stale_epoch".
  Result<std::int64_t> apply_federation(const std::string& origin, std::uint64_t epoch,
                                        const std::vector<InboundEvent>& events);
  // This node's epoch (node_meta 'epoch'; a restore raises it).
  Result<std::uint64_t> node_epoch();
  // Drops outbound events older than federation.queue_lifetime_seconds (at most 1000 a call),
  // logged and counted; a dropped friend request leaves its sender's side as "failed". Returns
  // how many were dropped. Core thread; the node calls it every few seconds.
  Result<std::int64_t> expire_outbox();

  // Remote questions; without one, requests about other nodes' users fail "unavailable".
  void set_remote_queries(RemoteQueries* remote) { remote_ = remote; }
  // Key documents for group events passed on by other nodes; without them, an event whose
  // signature the origin's pinned key does not verify is refused.
  void set_origin_keys(OriginKeys* keys) { origin_keys_ = keys; }
  // Answers a directory question about local user `user` for `asker` (an address, or a node name
  // when asked by a node): kind "lookup", "keys_query" or "keys_claim"; `req` holds the
  // kind's fields. Returns the msgpack map of the answer (spec/client-protocol.md section 11).
  Result<std::string> directory_answer(const std::string& kind, const std::string& user,
                                       const std::string& asker, wire::View req);

  // Replicated conversations (spec/ordering.md). `key` (the node key) signs the events this node
  // makes; without one, group requests fail "unavailable".
  void set_node_key(const crypto::SigningKey* key) { node_key_ = key; }
  // A configuration reload (SIGHUP): takes the settings that can change while serving — the
  // log-independent policies and limits: direct_messages, max_body_bytes,
  // heartbeat_timeout_seconds, max_connections_per_user, the login_failures_* bounds and
  // login_window_seconds, and [limits] (messages_per_minute, message_burst, reports_per_hour,
  // to_device_per_minute, to_device_burst).
  // Everything else keeps its start-up value. Core thread.
  void reload(const NodeConfig& fresh);
  // Counters for /metrics (metrics.h); none when unset.
  void set_metrics(Metrics* metrics) { metrics_ = metrics; }
  // Answers a conversation pull from node `asker` (federation query "conv_pull", spec/federation.md
  // section 6): the signed events its clock lacks, one page.
  Result<std::string> conv_pull_answer(const std::string& asker, wire::View req);
  // Every few seconds: asks again for the causal past of events that still wait for it.
  void conv_tick();
  // What an admin may see of the conversations: no content.
  Result<std::vector<ConvSummary>> conv_list();
  Result<std::optional<ConvSummary>> conv_summary(const std::string& conv);

  const NodeConfig& config() const { return config_; }
  // For components that run on the core thread and own tables of their own (federation peers).
  store::Database& database() { return db_; }

 private:
  struct Conn;
  struct Handler;
  struct UserRow;
  // The counts a login in progress holds (start_login), given back on success.
  struct LoginReservation {
    std::string pair, source, address;
    std::int64_t pair_window = 0, source_window = 0, address_window = 0;
  };

  // `if_not_stored`: the answer to send instead when the batch holding this one fails to
  // commit (empty: the request's error).
  void send_frame(Conn& c, std::string payload, std::string if_not_stored = {});
  // After a failure: if the database rolled the current batch back, end it and open another.
  void restart_broken_batch();
  void note_write_refused(const Error& e);
  bool storage_writable_again();
  // What goes to an outlet: at once, or after the batch's commit.
  void out_close(const std::shared_ptr<Outlet>& outlet, const std::string& code,
                 const std::string& message);
  void out_drain(const std::shared_ptr<Outlet>& outlet);
  void reply_error(Conn& c, std::uint64_t id, const Error& e);
  void process(ConnId id, Conn& c, const wire::Message& frame);
  void start_login(ConnId id, Conn& c, const wire::Message& frame, std::uint64_t req);
  void finish_login(ConnId id, std::uint64_t req, const LoginReservation& reserved,
                    std::string device, bool password_ok);
  Status do_resume(ConnId id, Conn& c, wire::View req, wire::MapWriter& out);
  void authenticated(ConnId id, Conn& c, std::int64_t user_id, std::string address,
                     std::int64_t device_id);
  void drain_deferred(ConnId id);
  // "too_many_connections" when the user has client.max_connections_per_user signed in.
  Status check_user_connections(std::int64_t user_id);
  void pump(ConnId id, Conn& c);
  void notify_touched();
  void close_user(std::int64_t user_id, const std::string& code, const std::string& message);
  // Closes the live connections of one device; returns how many.
  std::int64_t close_device(std::int64_t user_id, std::int64_t device_id, const std::string& code,
                            const std::string& message);
  // The rows delete_user removes (in the caller's transaction).
  Status remove_user_rows(std::int64_t user_id, const std::string& address);
  // "conflict" when `name` was retired by an erasure.
  Status check_not_retired(const std::string& name);
  // Takes a send token of `c`'s user: "rate_limited" (with retry_after_ms_) when there is none.
  Status take_send_token(Conn& c);
  SendLimit effective_limit(std::int64_t user_id);
  // A connection ends: its device's last-seen time and address are kept (best effort).
  void remember_last_seen(const Conn& c);

  // Request handlers (core_*.cpp). Each fills `out` after "t","id","ok".
  Status handle(Conn& c, const std::string& type, wire::View req, wire::MapWriter& out);
  Status do_ping(Conn& c, wire::View req, wire::MapWriter& out);
  Status do_logout(Conn& c, wire::View req, wire::MapWriter& out);
  Status do_ack(Conn& c, wire::View req, wire::MapWriter& out);
  // Moves the device's cursor to `upto` and sends delivered receipts, in one transaction.
  Status ack_and_receipts(Conn& c, std::int64_t cursor, std::int64_t upto);
  Status do_send(Conn& c, wire::View req, wire::MapWriter& out);
  Status do_read(Conn& c, wire::View req, wire::MapWriter& out);
  Status do_history(Conn& c, wire::View req, wire::MapWriter& out);
  Status do_convs(Conn& c, wire::View req, wire::MapWriter& out);
  Status do_conv_view(Conn& c, const std::string& type, wire::View req, wire::MapWriter& out);
  Status do_relation(Conn& c, const std::string& type, wire::View req, wire::MapWriter& out);
  Status do_friends(Conn& c, wire::View req, wire::MapWriter& out);
  Status remote_relation(Conn& c, const std::string& type, const std::string& other,
                         const std::string& mine, store::Transaction& tx, wire::MapWriter& out);
  Status do_blocks(Conn& c, wire::View req, wire::MapWriter& out);
  Status do_keys_publish(Conn& c, wire::View req, wire::MapWriter& out);
  Status do_profile(Conn& c, wire::View req, wire::MapWriter& out);
  Status do_to_device(Conn& c, wire::View req, wire::MapWriter& out);
  Status do_report(Conn& c, wire::View req, wire::MapWriter& out);
  // lookup / keys_query / keys_claim: answered at once for local users, after a remote query
  // for others.
  void start_directory(ConnId id, Conn& c, const std::string& kind, wire::View req,
                       std::uint64_t req_id);

  // Groups (core_groups.cpp).
  Status do_group_create(Conn& c, wire::View req, wire::MapWriter& out);
  Status do_group_event(Conn& c, wire::View req, wire::MapWriter& out);
  Status do_group_members(Conn& c, wire::View req, wire::MapWriter& out);
  Status do_group_history(Conn& c, wire::View req, wire::MapWriter& out);
  Status do_groups(Conn& c, wire::View req, wire::MapWriter& out);
  // A group the caller is a member of (or, with `former`, ever was).
  Result<conv::Replica*> group_for(Conn& c, const std::string& conv, bool former);
  // Makes, stores, delivers and sends one event of `c`'s user (inside a transaction).
  Result<std::string> conv_local(Conn& c, const std::string& conv, conv::Kind kind,
                                 const std::string& target, const std::string& role,
                                 const std::string& body);
  // The same for `author`, a local user, whoever asked (core_group_blocks.cpp: a leave).
  Result<std::string> conv_author(const std::string& author, const std::string& conv,
                                  conv::Kind kind, const std::string& target,
                                  const std::string& role, const std::string& body);
  // Blocks inside groups (core_group_blocks.cpp). Kinds whose content a blocker never gets
  // from the user they block.
  static bool blocked_content(conv::Kind kind);
  // Whether `address` is a user of this node who blocks `other`.
  Result<bool> local_blocks(const std::string& address, const std::string& other);
  // not_allowed when `target` blocks `adder` (a group_create member or an add).
  Status check_group_add(const std::string& adder, const std::string& target);
  // Local users that events log[from..] brought into `r` (not members in `before`) on the word
  // of a user they block.
  Result<std::vector<std::string>> blocked_adds(const conv::Replica& r, std::size_t from,
                                                const std::map<std::string, conv::Member>& before);
  // Makes `users` leave `conv` at once; nothing of it is delivered to them.
  Status leave_unwanted(const std::string& conv, const std::vector<std::string>& users);
  // A signed event from node `from` (a transaction or a pull answer), inside a transaction.
  Status apply_conv(const std::string& from, const std::string& signed_bytes);
  // Whether `se` carries a valid signature of its origin node: "ok", "bad" (refuse), or
  // "unknown" (its key document is not at hand: fetched, then the group pulled again).
  Result<std::string> origin_signature(const conv::SignedEvent& se);
  // After a key document of `origin` was fetched: pull again what was refused for want of it.
  void origin_key_fetched(const std::string& origin, bool ok);
  // Stores what `conv`'s replica applied and puts it in the local members' streams.
  Status conv_settle(const std::string& conv);
  // After a commit: the pulls the transaction asked for. On failure: forget its effects.
  void conv_after_commit();
  void conv_rollback();
  void conv_pull(const std::string& conv, const std::string& dest);
  void conv_pulled(const std::string& conv, const std::string& dest, Result<std::string> answer);

  // Display names: at most 128 bytes, no control characters ("bad_request").
  static Status check_display_name(const std::string& name);

  // Storage helpers (core_store.cpp).
  Result<std::optional<UserRow>> find_user(const std::string& name);
  Result<UserRow> local_user_for(const std::string& address);
  // local_user_for for a request of `c` naming a user of this node (block, friend_*, send): an
  // unknown user counts against `c`'s directory budget like a lookup (client-protocol.md §11),
  // and while that budget is spent every such request is "rate_limited" (retry_after_ms_ set).
  Result<UserRow> local_user_counted(Conn& c, const std::string& address);
  Result<std::int64_t> append_event(std::int64_t user_id, const std::string& kind,
                                    const std::string& conv, std::int64_t cseq,
                                    const std::string& payload);
  Result<std::string> relation(std::int64_t user_id, const std::string& other);
  Status set_relation(std::int64_t user_id, const std::string& other, const std::string& state);
  Status drop_relation(std::int64_t user_id, const std::string& other);
  Status friend_event(std::int64_t user_id, const std::string& event, const std::string& other,
                      const std::string& by);
  Status conv_event(std::int64_t user_id, const std::string& conv);
  Result<int> load_events(std::int64_t user_id, std::int64_t after, int limit, Conn& c);
  bool is_local(const std::string& address) const;
  // not_allowed "this node does not federate with NODE" when federation.policy = "allowlist" and
  // the home node of `address` is not a listed peer (spec/federation.md section 3).
  Status check_federates_with(const std::string& address);
  // Stores one 1:1 message: conversation row, next conversation seq, message row. Returns cseq.
  struct NewMessage {
    std::string conv, sender;
    std::int64_t sender_device = 0;
    std::string recipient, msg_id, body;
    std::int64_t sent_ms = 0;
    bool dropped = false;
    // Place in the conversation's total order (spec/ordering.md section 7).
    std::int64_t ord_sum = 0;
    std::string ord_actor;
    std::int64_t ord_seq = 0;
  };
  // 1:1 conversations are ordered like groups: a vector clock per conversation, and each
  // message carries the clock its origin node had when it stored it.
  struct DmOrder {
    std::map<std::string, std::uint64_t> clock;
    std::string actor;
    std::uint64_t seq = 0;
    std::int64_t sum = 0;
  };
  // The next message of this node in `conv` (its clock, advanced and saved).
  Result<DmOrder> dm_next(const std::string& conv);
  // Whether a message's clock from `origin` is valid here (spec/ordering.md section 7): an
  // error "bad_clock" when not (other codes: storage). Fills order.seq and order.sum.
  Status dm_check_clock(const std::string& conv, const std::string& origin, DmOrder& order);
  // Takes in a clock seen on a message from another node.
  Status dm_merge(const std::string& conv, const std::map<std::string, std::uint64_t>& clock);
  Result<std::int64_t> store_message(const NewMessage& m);
  // Adds or refreshes a user's view of a conversation after message `cseq`.
  Status touch_member(std::int64_t user_id, const std::string& conv, const std::string& peer,
                      std::int64_t cseq, bool unread);
  Status enqueue_remote(const std::string& address, const std::string& payload);
  Status enqueue_node(const std::string& node, const std::string& payload);
  Status apply_remote(const std::string& origin, wire::View ev);
  // apply_remote of one transaction event; an event refused on its own is dropped (logged and
  // counted) and the transaction goes on.
  Status apply_one(const std::string& origin, const InboundEvent& e);
  void drop_inbound(const std::string& origin, std::int64_t id, const std::string& reason,
                    const std::string& detail);

  NodeConfig config_;
  store::Database& db_;
  Clock& clock_;
  PasswordWork& passwords_;
  std::string dummy_hash_;
  // Password logins, counted from their start (spec/client-protocol.md section 5).
  RateLimiter failures_by_pair_;       // per (address, source IP)
  RateLimiter failures_by_source_;     // per source IP
  RateLimiter failures_by_address_;    // per address, looser
  RateLimiter directory_misses_;       // lookups of users that do not exist, per user
  RateLimiter node_directory_misses_;  // the same, per asking node
  RemoteQueries* remote_ = nullptr;
  TokenBuckets to_device_buckets_;  // per user id (limits.to_device_*)
  TokenBuckets send_buckets_;       // per user id
  std::unordered_map<std::int64_t, std::optional<SendLimit>> limit_overrides_;  // cache
  RateLimiter reports_;  // per reporter address and hour
  // New friend requests and new groups per user address and hour ([limits]).
  RateLimiter friend_requests_;
  RateLimiter groups_;
  // One unit of `limiter` (per user and hour) for `c`'s user, or "rate_limited" naming `what`.
  Status take_hourly(RateLimiter& limiter, Conn& c, std::uint32_t per_hour, const char* what);
  // Set by a handler with its "rate_limited" error: reply_error adds it as retry_after_ms.
  std::int64_t retry_after_ms_ = 0;

  ConnId next_conn_ = 1;
  std::unordered_map<ConnId, std::unique_ptr<Conn>> conns_;
  std::unordered_map<std::int64_t, std::set<ConnId>> by_user_;
  std::set<std::int64_t> touched_;  // users whose streams grew in the current transaction
  bool outbox_grew_ = false;        // the current request queued federation events
  std::function<void()> outbox_listener_;
  struct Deferred {
    enum Kind { kSend, kClose, kDrain } kind;
    std::shared_ptr<Outlet> outlet;
    std::string a, b;  // kSend: the payload and its if_not_stored; kClose: code and message
  };
  std::vector<ConnId> batch_pushed_;  // connections with a batch_floor in the current batch
  // Set by a handler whose success answer differs when its batch fails (do_ack).
  std::string if_not_stored_;
  bool batching_ = false;
  Metrics* metrics_ = nullptr;
  void bump(std::atomic<std::int64_t> Metrics::*counter) {
    if (metrics_) (metrics_->*counter).fetch_add(1, std::memory_order_relaxed);
  }
  bool storage_refusing_ = false;  // the last write failed: disk full, read-only, I/O error
  std::int64_t last_storage_probe_ms_ = 0;
  std::vector<Deferred> deferred_;

  const crypto::SigningKey* node_key_ = nullptr;
  std::unique_ptr<ConvStore> convs_;
  std::set<std::pair<std::string, std::string>> want_pulls_;  // (conv, node), after the commit
  std::set<std::pair<std::string, std::string>> pulling_;     // in flight
  std::set<std::string> joining_;  // conversations this node just learned of: pull from all
  OriginKeys* origin_keys_ = nullptr;
  // origin -> (conv, node that passed the event on) waiting for the origin's key document.
  std::map<std::string, std::set<std::pair<std::string, std::string>>> key_waits_;
  std::unordered_map<std::string, std::int64_t> last_pull_ms_;
  // (conv, user) leaving a group they were put into by a user they block: conv_settle delivers
  // nothing of it to them.
  std::set<std::pair<std::string, std::string>> silent_members_;
  bool conv_started_ = false;  // conversations with waiting events were loaded
};

}  // namespace parley::node
