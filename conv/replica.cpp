#include "parley/conv/replica.h"

#include <algorithm>

#include "parley/address.h"
#include "parley/crypto/hash.h"
#include "parley/crypto/secret.h"
#include "parley/message.h"

namespace parley::conv {

namespace {

constexpr const char* kKinds[] = {"create", "message", "edit", "recall", "add",
                                  "remove", "leave",   "role", "read",   "reaction"};

bool is_membership(Kind k) {
  return k == Kind::kCreate || k == Kind::kAdd || k == Kind::kRemove || k == Kind::kLeave ||
         k == Kind::kRole;
}

int rank(const std::string& role) { return role == "admin" ? 1 : 0; }

// The users a membership event is about, with what it says of each: a role, or "" for out.
std::vector<std::pair<std::string, std::string>> effects(const Event& e) {
  switch (e.kind) {
    case Kind::kCreate: {
      std::vector<std::pair<std::string, std::string>> out{{e.author, "admin"}};
      for (const auto& m : create_members(e.body)) {
        if (m != e.author) out.emplace_back(m, "member");
      }
      return out;
    }
    case Kind::kAdd:
    case Kind::kRole:
      return {{e.target, e.role}};
    case Kind::kRemove:
      return {{e.target, ""}};
    case Kind::kLeave:
      return {{e.author, ""}};
    default:
      return {};
  }
}

}  // namespace

std::string node_of(const std::string& address) {
  const auto at = address.rfind('@');
  return at == std::string::npos ? std::string() : address.substr(at + 1);
}

std::set<std::string> nodes_of(const std::map<std::string, Member>& members) {
  std::set<std::string> out;
  for (const auto& [who, m] : members) out.insert(node_of(who));
  return out;
}

std::vector<std::string> create_members(const std::string& body) {
  std::vector<std::string> out;
  std::size_t start = 0;
  while (start < body.size()) {
    auto end = body.find('\n', start);
    if (end == std::string::npos) end = body.size();
    if (end > start) out.push_back(body.substr(start, end - start));
    start = end + 1;
  }
  return out;
}

bool parse_actor(std::string_view actor, std::string* node, std::uint64_t* epoch) {
  const auto hash = actor.rfind('#');
  if (hash == std::string_view::npos || hash == 0) return false;
  const std::string_view digits = actor.substr(hash + 1);
  if (digits.empty() || digits.size() > 10 || (digits.size() > 1 && digits[0] == '0')) {
    return false;
  }
  std::uint64_t n = 0;
  for (const char c : digits) {
    if (c < '0' || c > '9') return false;
    n = n * 10 + static_cast<std::uint64_t>(c - '0');
  }
  if (n > 0xffffffffu) return false;
  const std::string_view name = actor.substr(0, hash);
  if (name.find('#') != std::string_view::npos) return false;
  if (node) *node = std::string(name);
  if (epoch) *epoch = n;
  return true;
}

Result<std::uint64_t> clock_sum(const Clock& clock) {
  std::uint64_t sum = 0;
  for (const auto& [actor, n] : clock) {
    if (!parse_actor(actor, nullptr, nullptr)) {
      return make_error("bad_clock", "a clock entry's actor is not node#epoch: " + actor);
    }
    if (n >= kMaxClockSum - sum) {  // sum + n >= kMaxClockSum, without wrapping
      return make_error("bad_clock", "a clock's entries add up to 2^53 or more");
    }
    sum += n;
  }
  return sum;
}

const char* to_string(Kind kind) { return kKinds[static_cast<int>(kind)]; }

Result<Kind> parse_kind(std::string_view text) {
  for (int i = 0; i < 10; ++i) {
    if (text == kKinds[i]) return static_cast<Kind>(i);
  }
  return make_error("bad_request", "unknown event kind " + std::string(text));
}

std::string Event::encode() const {
  wire::MapWriter c;
  for (const auto& [node, n] : clock) c.add(node, n);
  wire::MapWriter m;
  m.add("v", 1)
      .add("conv", conv)
      .add("origin", origin)
      .add("epoch", epoch)
      .add("seq", seq)
      .add("clock", c)
      .add("kind", to_string(kind))
      .add("author", author)
      .add("target", target)
      .add("role", role)
      .add_bin("body", body)
      .add("wall_ms", wall_ms);
  return m.finish();
}

std::string Event::id() const { return crypto::hex_encode(crypto::generichash(encode(), 32)); }

Result<Event> Event::decode(std::string_view bytes) {
  auto msg = wire::Message::parse(bytes, wire::Limits{16, 128, 1024, 256 * 1024, 3});
  if (!msg.ok()) return make_error("bad_request", "event: " + msg.error().message);
  const auto v = msg->root();
  Event e;
  PARLEY_ASSIGN_OR_RETURN(version, v.uint("v"));
  if (version != 1) return make_error("bad_request", "unsupported event version");
  PARLEY_ASSIGN_OR_RETURN(conv, v.str("conv", 128));
  PARLEY_ASSIGN_OR_RETURN(origin, v.str("origin", 253));
  PARLEY_ASSIGN_OR_RETURN(epoch, v.uint("epoch"));
  PARLEY_ASSIGN_OR_RETURN(seq, v.uint("seq"));
  PARLEY_ASSIGN_OR_RETURN(kind_text, v.str("kind", 16));
  PARLEY_ASSIGN_OR_RETURN(kind, parse_kind(kind_text));
  PARLEY_ASSIGN_OR_RETURN(author, v.str("author", 320));
  PARLEY_ASSIGN_OR_RETURN(target, v.str("target", 320));
  PARLEY_ASSIGN_OR_RETURN(role, v.str("role", 16));
  PARLEY_ASSIGN_OR_RETURN(body, v.bin("body", 256 * 1024));
  PARLEY_ASSIGN_OR_RETURN(wall, v.sint("wall_ms"));
  PARLEY_ASSIGN_OR_RETURN(clock, v.map("clock"));
  e.conv = std::move(conv);
  e.origin = std::move(origin);
  e.epoch = epoch;
  e.seq = seq;
  e.kind = kind;
  e.author = std::move(author);
  e.target = std::move(target);
  e.role = std::move(role);
  e.body = std::move(body);
  e.wall_ms = wall;
  // The clock's entries: node names as keys, as encoded (keys sorted, so re-encoding matches).
  auto nodes = clock.keys();
  if (!nodes.ok()) return nodes.take_error();
  for (const auto& node : *nodes) {
    PARLEY_ASSIGN_OR_RETURN(n, clock.uint(node));
    e.clock[node] = n;
  }
  if (e.seq == 0 || e.clock[e.actor()] != e.seq) {
    return make_error("bad_request", "an event's clock must hold its own seq");
  }
  if (auto sum = clock_sum(e.clock); !sum.ok()) {
    return make_error("bad_request", "event: " + sum.error().message);
  }
  if (e.encode() != bytes) return make_error("bad_request", "event is not in canonical form");
  return e;
}

namespace {
std::string signing_input(const Event& e) { return "parley-conv-event-v1\n" + e.id(); }
}  // namespace

SignedEvent sign_event(const Event& event, const crypto::SigningKey& origin_key) {
  return {event, origin_key.sign(signing_input(event))};
}

std::string SignedEvent::encode() const {
  wire::MapWriter m;
  m.add_bin("event", event.encode()).add_bin("sig", signature);
  return m.finish();
}

Result<SignedEvent> SignedEvent::decode(std::string_view bytes) {
  auto msg = wire::Message::parse(bytes, wire::Limits{4, 4, 64, 512 * 1024, 2});
  if (!msg.ok()) return make_error("bad_request", "signed event: " + msg.error().message);
  PARLEY_ASSIGN_OR_RETURN(event_bytes, msg->root().bin("event", 512 * 1024));
  PARLEY_ASSIGN_OR_RETURN(sig, msg->root().bin("sig", 64));
  if (sig.size() != 64) return make_error("bad_request", "an event signature is 64 bytes");
  PARLEY_ASSIGN_OR_RETURN(event, Event::decode(event_bytes));
  return SignedEvent{std::move(event), std::move(sig)};
}

bool SignedEvent::verify(std::string_view origin_key) const {
  return crypto::verify_signature(origin_key, signing_input(event), signature);
}

OrderKey order_key(const Event& e) {
  // Received events have valid clocks (sum below 2^53); saturating anyway, so no clock built in
  // memory can wrap to the front of the order.
  std::uint64_t sum = 0;
  for (const auto& [node, n] : e.clock) sum = n > UINT64_MAX - sum ? UINT64_MAX : sum + n;
  return {sum, e.actor(), e.seq};
}

bool happened_before(const Event& a, const Event& b) {
  if (a.origin == b.origin && a.epoch == b.epoch && a.seq == b.seq) return false;
  const auto it = b.clock.find(a.actor());
  return it != b.clock.end() && a.seq <= it->second;
}

Replica::Replica(std::string conv, std::string self, std::uint64_t epoch)
    : conv_(std::move(conv)), self_(std::move(self)), epoch_(epoch) {}

bool Replica::ready(const Event& e) const {
  const std::string actor = e.actor();
  const auto mine = clock_.find(actor);
  const std::uint64_t have = mine == clock_.end() ? 0 : mine->second;
  if (e.seq != have + 1) return false;
  for (const auto& [node, n] : e.clock) {
    if (node == actor) continue;
    const auto it = clock_.find(node);
    if ((it == clock_.end() ? 0 : it->second) < n) return false;
  }
  return true;
}

std::optional<Member> Replica::member_in(const std::string& user, const Event* before) const {
  // The valid membership events about `user` (in the causal past of `before`), then those no
  // other of them follows: remove wins; among concurrent roles the lower one wins.
  std::vector<std::pair<const Event*, std::string>> about;
  if (const auto it = about_.find(user); it != about_.end()) {
    for (const auto& [index, says] : it->second) {
      const Event& m = log_[index];
      if (before && !happened_before(m, *before)) continue;
      about.emplace_back(&m, says);
    }
  }
  std::optional<Member> result;
  bool removed = false;
  for (const auto& [e, says] : about) {
    bool superseded = false;
    for (const auto& [other, unused] : about) {
      if (happened_before(*e, *other)) {
        superseded = true;
        break;
      }
    }
    if (superseded) continue;
    if (says.empty()) {
      removed = true;
    } else if (!result || rank(says) < rank(result->role)) {
      result = Member{says};
    }
  }
  if (removed) return std::nullopt;
  return result;
}

bool Replica::authorized(const Event& e) const {
  if (e.conv != conv_ || node_of(e.author) != e.origin) return false;
  if (e.kind == Kind::kCreate) {
    // The first event of the conversation, by its origin; nothing before it.
    return e.seq == 1 && e.clock.size() == 1 && log_.empty();
  }
  bool created = false;
  for (const auto index : membership_)
    created |= log_[index].kind == Kind::kCreate && happened_before(log_[index], e);
  if (!created) return false;
  const auto author = member_in(e.author, &e);
  auto target_message = [&](bool same_author) {
    const auto it = by_id_.find(e.target);
    if (it == by_id_.end() || !valid_.count(e.target)) return false;
    const Event& m = log_[it->second];
    return m.kind == Kind::kMessage && happened_before(m, e) &&
           (!same_author || m.author == e.author);
  };
  switch (e.kind) {
    case Kind::kMessage:
      return author.has_value();
    case Kind::kEdit:
      return author.has_value() && target_message(true);
    case Kind::kRecall:
      return author.has_value() && target_message(author->role != "admin");
    case Kind::kReaction:
      return author.has_value() && target_message(false) && !e.body.empty();
    case Kind::kRead: {
      const auto it = by_id_.find(e.target);
      return author.has_value() && it != by_id_.end() && happened_before(log_[it->second], e);
    }
    case Kind::kAdd:
      return author && author->role == "admin" && (e.role == "member" || e.role == "admin") &&
             wire::parse_address(e.target).ok();
    case Kind::kRemove:
      return author && author->role == "admin" && member_in(e.target, &e).has_value();
    case Kind::kLeave:
      return author.has_value() && e.target == e.author;
    case Kind::kRole:
      return author && author->role == "admin" && (e.role == "member" || e.role == "admin") &&
             member_in(e.target, &e).has_value();
    case Kind::kCreate:
      return false;
  }
  return false;
}

bool Replica::hosts_member(const std::string& node, const Event& e) const {
  for (const auto& [user, unused] : about_) {
    if (node_of(user) == node && member_in(user, &e).has_value()) return true;
  }
  return false;
}

std::string Replica::inadmissible(const Event& e) const {
  // The clock never regresses along an actor: e's clock covers its predecessor's (which is
  // applied, e being ready), so Σ grows along every actor and the order extends causality.
  if (e.seq > 1) {
    const auto at = id_at_.find({e.actor(), e.seq - 1});
    if (at != id_at_.end()) {
      const Event& previous = log_[by_id_.at(at->second)];
      for (const auto& [actor, n] : previous.clock) {
        const auto it = e.clock.find(actor);
        if (n > 0 && (it == e.clock.end() || it->second < n)) return "clock regresses";
      }
    }
  }
  // Only a node that hosts a member in the event's causal past writes into the conversation
  // (the create, with nothing before it, makes its author's node the first).
  if (e.kind == Kind::kCreate) {
    if (e.seq != 1 || e.clock.size() != 1) return "origin hosts no member";
    return "";
  }
  if (!hosts_member(e.origin, e)) return "origin hosts no member";
  return "";
}

std::vector<std::pair<Event, std::string>> Replica::take_refused() {
  auto out = std::move(refused_);
  refused_.clear();
  return out;
}

void Replica::apply(const Event& e) {
  const std::string id = e.id();
  const bool ok = authorized(e);
  clock_[e.actor()] = e.seq;
  log_.push_back(e);
  by_id_[id] = log_.size() - 1;
  id_at_[{e.actor(), e.seq}] = id;
  if (ok) {
    valid_.insert(id);
    if (is_membership(e.kind)) {
      membership_.push_back(log_.size() - 1);
      for (auto& [who, says] : effects(e)) about_[who].emplace_back(log_.size() - 1, says);
    }
  }
}

Result<Event> Replica::create(Kind kind, const std::string& author, const std::string& target,
                              const std::string& role, const std::string& body,
                              std::int64_t wall_ms) {
  Event e;
  e.conv = conv_;
  e.origin = self_;
  e.epoch = epoch_;
  e.clock = clock_;
  e.seq = clock_[e.actor()] + 1;
  e.clock[e.actor()] = e.seq;
  e.kind = kind;
  e.author = author;
  e.target = target;
  e.role = role;
  e.body = body;
  e.wall_ms = wall_ms;
  if (!clock_sum(e.clock).ok()) {
    return make_error("not_allowed", "this conversation's clock is exhausted");
  }
  if (!authorized(e)) {
    return make_error("not_allowed", std::string(to_string(kind)) + " by " + author +
                                         " is not allowed in this conversation now");
  }
  apply(e);
  return e;
}

Replica::Outcome Replica::receive(const Event& e, bool stored) {
  auto reject = [this](const char* why) {
    rejected_because_ = why;
    return Outcome::kRejected;
  };
  if (e.conv != conv_) return reject("for another conversation");
  const std::string actor = e.actor();
  const auto clock_entry = e.clock.find(actor);
  if (e.seq == 0 || clock_entry == e.clock.end() || clock_entry->second != e.seq) {
    return reject("clock without its own seq");
  }
  if (!stored && !clock_sum(e.clock).ok()) return reject("invalid clock");
  const std::string id = e.id();
  if (auto at = id_at_.find({actor, e.seq}); at != id_at_.end()) {
    if (at->second == id) return Outcome::kDuplicate;
    // Two different events with one (actor, seq): the origin is faulty. Recorded, not applied.
    equivocations_.emplace_back(log_[by_id_.at(at->second)], e);
    return Outcome::kEquivocation;
  }
  if (auto b = buffer_.find({actor, e.seq}); b != buffer_.end()) {
    if (b->second.id() == id) return Outcome::kDuplicate;
    equivocations_.emplace_back(b->second, e);
    return Outcome::kEquivocation;
  }
  if (!ready(e)) {
    if (buffer_.size() < kMaxBuffered) buffer_.emplace(std::make_pair(actor, e.seq), e);
    return Outcome::kBuffered;
  }
  if (!stored) {
    if (auto why = inadmissible(e); !why.empty()) {
      rejected_because_ = std::move(why);
      return Outcome::kRejected;
    }
  }
  apply(e);
  // Whatever waited for it may be ready now.
  for (bool progress = true; progress;) {
    progress = false;
    for (auto it = buffer_.begin(); it != buffer_.end();) {
      const auto have = clock_.find(it->first.first);
      if (ready(it->second)) {
        if (auto why = inadmissible(it->second); !why.empty()) {
          refused_.emplace_back(std::move(it->second), std::move(why));
          it = buffer_.erase(it);
          continue;
        }
        apply(it->second);
        it = buffer_.erase(it);
        progress = true;
      } else if (have != clock_.end() && have->second >= it->first.second) {
        it = buffer_.erase(it);  // applied meanwhile (a copy arrived another way)
      } else {
        ++it;
      }
    }
  }
  return Outcome::kApplied;
}

std::vector<Event> Replica::missing_for(const Clock& theirs, std::size_t limit) const {
  std::vector<Event> out;
  for (const auto& e : log_) {  // application order is causal order
    const auto it = theirs.find(e.actor());
    if (it != theirs.end() && e.seq <= it->second) continue;
    out.push_back(e);
    if (out.size() >= limit) break;
  }
  return out;
}

bool Replica::behind(const Clock& theirs) const {
  for (const auto& [node, n] : theirs) {
    const auto it = clock_.find(node);
    if ((it == clock_.end() ? 0 : it->second) != n) return true;
  }
  for (const auto& [node, n] : clock_) {
    if (!theirs.count(node) && n > 0) return true;
  }
  return false;
}

std::vector<const Event*> Replica::ordered() const {
  std::vector<const Event*> out;
  out.reserve(log_.size());
  for (const auto& e : log_) out.push_back(&e);
  std::sort(out.begin(), out.end(),
            [](const Event* a, const Event* b) { return order_key(*a) < order_key(*b); });
  return out;
}

bool Replica::valid(const std::string& id) const { return valid_.count(id) > 0; }

std::map<std::string, Member> Replica::members() const {
  std::map<std::string, Member> out;
  for (const auto& [who, unused] : about_) {
    if (auto m = member_in(who, nullptr)) out.emplace_hint(out.end(), who, *m);
  }
  return out;
}

std::set<std::string> Replica::waiting_on() const {
  std::set<std::string> out;
  for (const auto& [key, e] : buffer_) out.insert(e.origin);
  return out;
}

bool Replica::ever_member(const std::string& user) const {
  const auto it = about_.find(user);
  if (it == about_.end()) return false;
  return std::any_of(it->second.begin(), it->second.end(),
                     [](const auto& entry) { return !entry.second.empty(); });
}

State Replica::state() const {
  State s;
  s.members = members();
  std::map<std::string, std::size_t> message_at;
  std::map<std::string, OrderKey> read_key;
  for (const Event* e : ordered()) {
    const std::string id = e->id();
    if (!valid_.count(id)) continue;
    switch (e->kind) {
      case Kind::kMessage:
        message_at[id] = s.messages.size();
        s.messages.push_back({id, e->author, e->body, false, false, e->wall_ms});
        break;
      case Kind::kEdit: {
        auto& m = s.messages[message_at.at(e->target)];
        if (!m.recalled) {
          m.body = e->body;
          m.edited = true;
        }
        break;
      }
      case Kind::kRecall: {
        auto& m = s.messages[message_at.at(e->target)];
        m.recalled = true;  // a tombstone: no content, no edit history
        m.body.clear();
        m.edited = false;
        break;
      }
      case Kind::kReaction:
        s.reactions.emplace(e->target, e->author, e->body);
        break;
      case Kind::kRead: {
        const OrderKey k = order_key(log_[by_id_.at(e->target)]);
        auto it = read_key.find(e->author);
        if (it == read_key.end() || it->second < k) {
          read_key[e->author] = k;
          s.read_upto[e->author] = e->target;
        }
        break;
      }
      default:
        break;
    }
  }
  return s;
}

std::string State::hash() const {
  wire::MapWriter members_w;
  for (const auto& [who, m] : members) members_w.add(who, m.role);
  wire::ArrayWriter messages_w;
  for (const auto& m : messages) {
    wire::MapWriter w;
    w.add("id", m.id)
        .add("author", m.author)
        .add_bin("body", m.body)
        .add("edited", m.edited)
        .add("recalled", m.recalled);
    messages_w.push(w);
  }
  wire::ArrayWriter reactions_w;
  for (const auto& [msg, user, body] : reactions) reactions_w.push(msg + "\n" + user + "\n" + body);
  wire::MapWriter read_w;
  for (const auto& [user, id] : read_upto) read_w.add(user, id);
  wire::MapWriter all;
  all.add("members", members_w)
      .add("messages", messages_w)
      .add("reactions", reactions_w)
      .add("read", read_w);
  return crypto::hex_encode(crypto::generichash(all.finish(), 32));
}

std::set<std::string> State::nodes() const { return nodes_of(members); }

}  // namespace parley::conv
