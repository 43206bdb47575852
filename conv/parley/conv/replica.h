// Replicated conversations (spec/ordering.md): events, vector clocks, causal delivery, the total
// order, membership with authority checked in each event's causal past, and the conversation
// state every replica converges to. Pure and I/O-free: a Replica is one conversation on one node;
// the node (or the simulator in tests/sim) moves events between replicas and stores them.
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <set>
#include <string>
#include <string_view>
#include <tuple>
#include <vector>

#include "parley/crypto/sign.h"
#include "parley/result.h"

namespace parley::conv {

// actor ("node#epoch") -> highest sequence number of that actor's events in the conversation.
// A node restored from an older backup raises its epoch, so it never reuses a (actor, seq).
using Clock = std::map<std::string, std::uint64_t>;

// A clock's entries add up to less than this (spec/ordering.md section 2, "valid clocks"), so a
// sum never wraps, fits a signed 64-bit SQLite integer and a double, and no event can be placed
// beyond every future event by a huge entry.
constexpr std::uint64_t kMaxClockSum = std::uint64_t{1} << 53;

// Splits an actor "node#epoch" (epoch in canonical decimal: no sign, no leading zero, below
// 2^32); false when it is not one.
bool parse_actor(std::string_view actor, std::string* node, std::uint64_t* epoch);
// The sum of a clock's entries, or an error ("bad_clock") when an actor is malformed or the
// sum reaches kMaxClockSum. Checked arithmetic: never wraps.
Result<std::uint64_t> clock_sum(const Clock& clock);

enum class Kind : std::uint8_t {
  kCreate,    // target: "", body: initial members, one address per line (the author is admin)
  kMessage,   // body: the message (end-to-end ciphertext for the node)
  kEdit,      // target: message id; body: the new content
  kRecall,    // target: message id (a tombstone: beats every edit)
  kAdd,       // target: address; role: "member" | "admin"
  kRemove,    // target: address
  kLeave,     // target: the author
  kRole,      // target: address; role
  kRead,      // target: event id read up to (forward only)
  kReaction,  // target: message id; body: the reaction
};
const char* to_string(Kind kind);
Result<Kind> parse_kind(std::string_view text);

struct Event {
  std::string conv;         // conversation id
  std::string origin;       // the node that created and signs it
  std::uint64_t epoch = 0;  // the origin's epoch (raised after a restore from backup)
  std::uint64_t seq = 0;    // per actor
  Clock clock;              // includes clock[actor()] == seq
  Kind kind = Kind::kMessage;
  std::string author;  // user address (a user of `origin`)
  std::string target;
  std::string role;
  std::string body;
  std::int64_t wall_ms = 0;  // display only; never used for ordering

  std::string actor() const { return origin + "#" + std::to_string(epoch); }
  // Canonical msgpack bytes, and the id: lowercase hex of BLAKE2b-256 over them.
  std::string encode() const;
  std::string id() const;
  static Result<Event> decode(std::string_view bytes);
};

// An event as it travels between nodes: its bytes and the origin node's Ed25519 signature over
// "parley-conv-event-v1\n" || id, so any node can pass on any other node's events (catch-up,
// history for a new member) and the receiver can still check who made them.
struct SignedEvent {
  Event event;
  std::string signature;       // 64 bytes
  std::string encode() const;  // {"event": bin, "sig": bin}
  // Decodes and checks the structure; the signature is checked by verify().
  static Result<SignedEvent> decode(std::string_view bytes);
  // Whether `origin_key` (the origin node's key at the time) signed this event.
  bool verify(std::string_view origin_key) const;
};
SignedEvent sign_event(const Event& event, const crypto::SigningKey& origin_key);

// Total-order key: a deterministic linear extension of the causal order.
struct OrderKey {
  std::uint64_t clock_sum = 0;
  std::string actor;
  std::uint64_t seq = 0;
  auto operator<=>(const OrderKey&) const = default;
};
OrderKey order_key(const Event& e);
// Whether `a` happened before `b`: a.seq <= b.clock[a.actor()] (and a is not b).
bool happened_before(const Event& a, const Event& b);

struct Member {
  std::string role;  // "admin" | "member"
  auto operator<=>(const Member&) const = default;
};

// The node of a user address (what follows the last '@'; "" without one).
std::string node_of(const std::string& address);
// The nodes hosting these members: where a conversation's events go.
std::set<std::string> nodes_of(const std::map<std::string, Member>& members);
// The initial members a `create` event's body lists (one address per line).
std::vector<std::string> create_members(const std::string& body);

struct MessageView {
  std::string id, author, body;
  bool edited = false, recalled = false;
  std::int64_t wall_ms = 0;
};

struct State {
  std::map<std::string, Member> members;
  std::vector<MessageView> messages;                                      // in the total order
  std::set<std::tuple<std::string, std::string, std::string>> reactions;  // message, user, body
  std::map<std::string, std::string> read_upto;                           // user -> event id
  std::string hash() const;             // hex BLAKE2b-256 of a canonical serialization
  std::set<std::string> nodes() const;  // nodes hosting a member: where events go
};

class Replica {
 public:
  // `self`: this node's name; `epoch`: its current epoch.
  Replica(std::string conv, std::string self, std::uint64_t epoch = 0);

  // A new event made here: checked against the current state (refused with "not_allowed" when
  // its author may not do it), applied, and returned for storage and sending.
  Result<Event> create(Kind kind, const std::string& author, const std::string& target,
                       const std::string& role, const std::string& body, std::int64_t wall_ms);

  enum class Outcome { kApplied, kBuffered, kDuplicate, kEquivocation, kRejected };
  // An event from elsewhere. Applied when causally ready (then anything buffered that became
  // ready too); buffered when not (bounded: kBuffered also when it had to be dropped, the
  // anti-entropy exchange brings it back). kRejected: malformed, not for this conversation, an
  // invalid clock (spec/ordering.md section 2), or, once its causal past is here, not admissible
  // (its clock regresses from its origin's previous event, or its origin hosted no member:
  // section 4). A buffered event refused when it becomes ready is reported by take_refused().
  // `stored`: an event this node applied before (replayed from its own disk at load), applied
  // in order without the admission checks, so a log written before them still loads.
  Outcome receive(const Event& event, bool stored = false);
  // Why `event` (causally ready) may not be applied, or "" when it may. Reasons: "clock
  // regresses", "origin hosts no member".
  std::string inadmissible(const Event& event) const;
  // Buffered events refused since the last call (when they became ready), with the reason.
  std::vector<std::pair<Event, std::string>> take_refused();
  // Why the last receive() answered kRejected.
  const std::string& rejected_because() const { return rejected_because_; }

  // Applied events the holder of `theirs` lacks, in an order they can apply, at most `limit`.
  std::vector<Event> missing_for(const Clock& theirs, std::size_t limit) const;
  // Whether something applied here is missing at `theirs`, or they have something we lack.
  bool behind(const Clock& theirs) const;

  const Clock& clock() const { return clock_; }
  // Applied events in application order (what a node stores and replays after a restart).
  const std::vector<Event>& log() const { return log_; }
  std::vector<const Event*> ordered() const;  // applied events in the total order
  bool valid(const std::string& id) const;    // an applied event that passed its authority check
  State state() const;
  // The membership part of state(): cheaper, for routing and access checks.
  std::map<std::string, Member> members() const;
  // Whether `user` was ever named by a valid membership event (a member now or before).
  bool ever_member(const std::string& user) const;
  std::size_t buffered() const { return buffer_.size(); }
  // The origins of the buffered events: nodes that know their causal past.
  std::set<std::string> waiting_on() const;
  const std::vector<std::pair<Event, Event>>& equivocations() const { return equivocations_; }
  const std::string& self() const { return self_; }
  const std::string& conv() const { return conv_; }

  static constexpr std::size_t kMaxBuffered = 10000;

 private:
  bool ready(const Event& e) const;
  // Whether some user of `node` is a member in e's causal past.
  bool hosts_member(const std::string& node, const Event& e) const;
  void apply(const Event& e);
  // Membership of `user` among the valid membership events in e's causal past (or all, if null).
  std::optional<Member> member_in(const std::string& user, const Event* before) const;
  bool authorized(const Event& e) const;

  std::string conv_, self_;
  std::uint64_t epoch_ = 0;
  Clock clock_;
  std::vector<Event> log_;
  std::map<std::string, std::size_t> by_id_;                            // id -> index in log_
  std::map<std::pair<std::string, std::uint64_t>, std::string> id_at_;  // (actor, seq) -> id
  std::set<std::string> valid_;
  std::vector<std::size_t> membership_;  // indexes of valid membership events
  // user -> (index of a valid membership event about them, what it says: a role or "" for out),
  // so a user's membership costs their own events, not every member's.
  std::map<std::string, std::vector<std::pair<std::size_t, std::string>>> about_;
  std::map<std::pair<std::string, std::uint64_t>, Event> buffer_;
  std::vector<std::pair<Event, Event>> equivocations_;
  std::vector<std::pair<Event, std::string>> refused_;
  std::string rejected_because_;
};

}  // namespace parley::conv
