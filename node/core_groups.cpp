// Groups: replicated conversations (spec/ordering.md) on the node. Local users' requests become
// signed events sent once to every other node hosting a member; events from other nodes are
// checked against their origin's key and applied when causally ready (waiting ones are stored
// and their causal past is pulled); every applied event goes into the streams of the local
// members. The node stores and forwards message bodies it cannot read.
#include <spdlog/spdlog.h>

#include <algorithm>

#include "core_internal.h"
#include "parley/address.h"
#include "parley/conv/replica.h"
#include "parley/crypto/secret.h"
#include "parley/crypto/sign.h"
#include "parley/federation/peers.h"
#include "parley/node/conv_store.h"

namespace parley::node {

namespace {

constexpr std::size_t kMaxGroupName = 128;
constexpr std::size_t kMaxInitialMembers = 1000;
constexpr std::size_t kPullPage = 50;
constexpr std::size_t kPullPageBytes = 1 << 20;
constexpr std::int64_t kRepullMs = 10'000;
constexpr std::size_t kMaxSignedEvent = 128 * 1024;

bool is_group(const std::string& conv) { return conv.rfind("g:", 0) == 0; }

// The metric label of a replica's reason for refusing an event.
const char* refusal_label(const std::string& why) {
  if (why.find("clock") != std::string::npos) return "clock";
  if (why == "origin hosts no member") return "no_member";
  return "malformed";
}

// The name a group's creator gave it (the `target` of its `create`).
std::string group_name(const conv::Replica& r) {
  for (const auto& e : r.log()) {
    if (e.kind == conv::Kind::kCreate) return e.target;
  }
  return "";
}

}  // namespace

wire::MapWriter conv_event_fields(const conv::Event& e) {
  wire::MapWriter w;
  w.add("id", e.id())
      .add("kind", conv::to_string(e.kind))
      .add("origin", e.origin)
      .add("epoch", e.epoch)
      .add("seq", e.seq)
      .add("author", e.author)
      .add("target", e.target)
      .add("role", e.role)
      .add_bin("body", e.body)
      .add("wall_ms", e.wall_ms);
  return w;
}

Result<conv::Replica*> Core::group_for(Conn& c, const std::string& conv, bool former) {
  PARLEY_ASSIGN_OR_RETURN(r, convs_->find(conv));
  const auto not_found = make_error("not_found", "no group " + conv);
  if (!r) return not_found;
  if (r->members().count(c.address)) return r;
  if (former && r->ever_member(c.address)) return r;
  return not_found;
}

Status Core::do_group_create(Conn& c, wire::View req, wire::MapWriter& out) {
  PARLEY_ASSIGN_OR_RETURN(name, req.str_or("name", "", kMaxGroupName));
  std::set<std::string> members;
  if (req.has("members")) {
    PARLEY_ASSIGN_OR_RETURN(list, req.array("members"));
    if (list.size() > kMaxInitialMembers) {
      return make_error("bad_request", "at most 1000 initial members; add the others later");
    }
    for (const auto& v : list) {
      PARLEY_ASSIGN_OR_RETURN(text, v.as_str(320));
      PARLEY_ASSIGN_OR_RETURN(a, wire::parse_address(text));
      if (is_local(a.str())) PARLEY_TRY(local_user_counted(c, a.str()).status());
      if (!is_local(a.str())) PARLEY_TRY(check_federates_with(a.str()));
      PARLEY_TRY(check_group_add(c.address, a.str()));
      if (a.str() != c.address) members.insert(a.str());
    }
  }
  PARLEY_TRY(take_hourly(groups_, c, config_.groups_per_hour, "groups"));
  std::string body;
  for (const auto& m : members) body += m + "\n";
  const std::string conv = "g:" + crypto::hex_encode(crypto::random_bytes(16));
  PARLEY_ASSIGN_OR_RETURN(tx, store::Transaction::begin(db_));
  PARLEY_TRY(convs_->open(conv).status());
  PARLEY_ASSIGN_OR_RETURN(id, conv_local(c, conv, conv::Kind::kCreate, name, "", body));
  PARLEY_TRY(tx.commit());
  bump(&Metrics::messages_in);
  out.add("conv", conv).add("event_id", id);
  return ok_status();
}

Status Core::do_group_event(Conn& c, wire::View req, wire::MapWriter& out) {
  PARLEY_ASSIGN_OR_RETURN(conv, req.str("conv", 128));
  PARLEY_ASSIGN_OR_RETURN(kind_text, req.str("kind", 16));
  PARLEY_ASSIGN_OR_RETURN(kind, conv::parse_kind(kind_text));
  PARLEY_ASSIGN_OR_RETURN(target, req.str_or("target", "", 320));
  PARLEY_ASSIGN_OR_RETURN(role, req.str_or("role", "", 16));
  std::string body;
  if (req.has("body")) {
    PARLEY_ASSIGN_OR_RETURN(b, req.bin("body", config_.max_body_bytes));
    body = std::move(b);
  }
  if (kind != conv::Kind::kRead) PARLEY_TRY(take_send_token(c));  // limits.messages_per_minute
  switch (kind) {
    case conv::Kind::kCreate:
      return make_error("bad_request", "use group_create to make a group");
    case conv::Kind::kAdd:
    case conv::Kind::kRemove:
    case conv::Kind::kRole: {
      PARLEY_ASSIGN_OR_RETURN(a, wire::parse_address(target));
      target = a.str();
      if (kind == conv::Kind::kAdd && is_local(target)) {
        PARLEY_TRY(local_user_counted(c, target).status());
        PARLEY_TRY(check_group_add(c.address, target));
      } else if (kind == conv::Kind::kAdd) {
        PARLEY_TRY(check_federates_with(target));
      }
      if (kind == conv::Kind::kAdd && role.empty()) role = "member";
      if (kind != conv::Kind::kRemove && role != "member" && role != "admin") {
        return make_error("bad_request", "role must be 'member' or 'admin'");
      }
      break;
    }
    case conv::Kind::kLeave:
      target = c.address;
      break;
    default:
      break;
  }
  PARLEY_ASSIGN_OR_RETURN(tx, store::Transaction::begin(db_));
  PARLEY_TRY(group_for(c, conv, false).status());
  PARLEY_ASSIGN_OR_RETURN(id, conv_local(c, conv, kind, target, role, body));
  PARLEY_TRY(tx.commit());
  out.add("conv", conv).add("event_id", id);
  return ok_status();
}

Status Core::do_group_members(Conn& c, wire::View req, wire::MapWriter& out) {
  PARLEY_ASSIGN_OR_RETURN(conv, req.str("conv", 128));
  PARLEY_ASSIGN_OR_RETURN(r, group_for(c, conv, false));
  const auto members = r->members();
  wire::ArrayWriter list;
  for (const auto& [who, m] : members) {
    wire::MapWriter w;
    w.add("user", who).add("role", m.role);
    list.push(w);
  }
  wire::ArrayWriter nodes;
  for (const auto& n : conv::nodes_of(members)) nodes.push(n);
  out.add("conv", conv).add("name", group_name(*r)).add("members", list).add("nodes", nodes);
  return ok_status();
}

Status Core::do_group_history(Conn& c, wire::View req, wire::MapWriter& out) {
  PARLEY_ASSIGN_OR_RETURN(conv, req.str("conv", 128));
  PARLEY_ASSIGN_OR_RETURN(from, req.uint_or("from", 0));
  PARLEY_ASSIGN_OR_RETURN(limit, req.uint_or("limit", 100));
  if (limit < 1 || limit > 500) return make_error("bad_request", "limit must be 1 to 500");
  PARLEY_ASSIGN_OR_RETURN(r, group_for(c, conv, false));
  const auto ordered = r->ordered();
  wire::ArrayWriter events;
  std::size_t i = from;
  for (; i < ordered.size() && events.size() < limit; ++i) {
    // What a user the caller blocks wrote keeps its place in the order, marked hidden.
    const conv::Event& e = *ordered[i];
    bool hidden = false;
    if (blocked_content(e.kind)) {
      PARLEY_ASSIGN_OR_RETURN(blocked, local_blocks(c.address, e.author));
      hidden = blocked;
    }
    auto w = conv_event_fields(e);
    w.add("valid", r->valid(e.id()));
    if (hidden) w.add("hidden", true);
    // At least one event per answer; then no more than kMaxAnswerBytes.
    if (events.size() > 0 && events.bytes() + w.bytes() > kMaxAnswerBytes) break;
    events.push(w);
  }
  out.add("conv", conv)
      .add("total", std::uint64_t{ordered.size()})
      .add("events", events)
      .add("more", i < ordered.size())
      .add("next", std::uint64_t{std::max<std::size_t>(i, from)});
  return ok_status();
}

Status Core::do_groups(Conn& c, wire::View req, wire::MapWriter& out) {
  std::vector<std::tuple<std::string, std::int64_t, std::int64_t>> rows;
  {
    PARLEY_ASSIGN_OR_RETURN(
        st, db_.prepare("SELECT m.conv_id, m.last_ms, m.unread FROM conv_members m JOIN "
                        "conversations v ON v.id = m.conv_id WHERE m.user_id = ? AND v.kind = "
                        "'group' ORDER BY m.pinned DESC, m.last_ms DESC LIMIT 4000"));
    st.bind(1, c.user_id);
    for (;;) {
      PARLEY_ASSIGN_OR_RETURN(row, st.step());
      if (!row) break;
      rows.emplace_back(st.column_text(0), st.column_int64(1), st.column_int64(2));
    }
  }
  wire::ArrayWriter list;
  for (const auto& [conv, last_ms, unread] : rows) {
    PARLEY_ASSIGN_OR_RETURN(r, convs_->find(conv));
    if (!r) continue;
    const auto members = r->members();
    const auto me = members.find(c.address);
    wire::MapWriter w;
    w.add("conv", conv)
        .add("name", group_name(*r))
        .add("role", me == members.end() ? std::string("removed") : me->second.role)
        .add("members", std::uint64_t{members.size()})
        .add("events", std::uint64_t{r->log().size()})
        .add("last_ms", last_ms)
        .add("unread", unread);
    list.push(w);
  }
  out.add("groups", list);
  return ok_status();
}

Result<std::string> Core::conv_local(Conn& c, const std::string& conv, conv::Kind kind,
                                     const std::string& target, const std::string& role,
                                     const std::string& body) {
  return conv_author(c.address, conv, kind, target, role, body);
}

Result<std::string> Core::conv_author(const std::string& author, const std::string& conv,
                                      conv::Kind kind, const std::string& target,
                                      const std::string& role, const std::string& body) {
  if (!node_key_) return make_error("unavailable", "this node cannot sign conversation events");
  PARLEY_ASSIGN_OR_RETURN(signed_event, convs_->create(conv, kind, author, target, role, body,
                                                       clock_.now_ms(), *node_key_));
  PARLEY_TRY(conv_settle(conv));
  // Once to every other node that hosts a member, and to a removed member's node.
  PARLEY_ASSIGN_OR_RETURN(r, convs_->find(conv));
  auto nodes = conv::nodes_of(r->members());
  if (kind == conv::Kind::kRemove) nodes.insert(conv::node_of(target));
  nodes.erase(config_.name);
  if (!nodes.empty()) {
    wire::MapWriter p;
    p.add("type", "conv").add_bin("ev", signed_event.encode());
    const std::string payload = p.finish();
    for (const auto& n : nodes) PARLEY_TRY(enqueue_node(n, payload));
  }
  return signed_event.event.id();
}

Status Core::conv_settle(const std::string& conv) {
  PARLEY_ASSIGN_OR_RETURN(range, convs_->persist(conv));
  if (range.first == range.second) return ok_status();
  PARLEY_ASSIGN_OR_RETURN(r, convs_->find(conv));
  const auto members = r->members();
  {
    PARLEY_ASSIGN_OR_RETURN(
        st, db_.prepare("INSERT INTO conversations(id, kind, last_cseq, created_ms) VALUES(?1, "
                        "'group', ?2, ?3) ON CONFLICT(id) DO UPDATE SET last_cseq = ?2"));
    PARLEY_TRY(st.bind(1, conv)
                   .bind(2, static_cast<std::int64_t>(range.second))
                   .bind(3, clock_.now_ms())
                   .run());
  }
  std::map<std::string, std::optional<UserRow>> users;  // local user name -> row
  auto user = [&](const std::string& address) -> Result<std::optional<UserRow>> {
    const auto a = wire::parse_address(address);
    if (!a.ok() || a->domain != config_.name) return std::optional<UserRow>();
    auto it = users.find(a->local);
    if (it == users.end()) {
      PARLEY_ASSIGN_OR_RETURN(row, find_user(a->local));
      it = users.emplace(a->local, std::move(row)).first;
    }
    return it->second;
  };
  for (std::size_t pos = range.first; pos < range.second; ++pos) {
    const conv::Event& e = r->log()[pos];
    std::set<std::string> to;
    for (const auto& [who, m] : members) {
      if (conv::node_of(who) == config_.name) to.insert(who);
    }
    if (e.kind == conv::Kind::kRemove || e.kind == conv::Kind::kLeave) {
      const std::string& out = e.kind == conv::Kind::kRemove ? e.target : e.author;
      if (conv::node_of(out) == config_.name) to.insert(out);
    }
    for (const auto& who : to) {
      if (silent_members_.count({conv, who})) continue;  // leaving a group they never saw
      PARLEY_ASSIGN_OR_RETURN(row, user(who));
      if (!row) continue;
      // Content from a user `who` blocks still goes to their devices (it may carry the sender's
      // chain, crypto.md 8a), marked hidden (load_events), and is never unread.
      bool hidden = false;
      if (blocked_content(e.kind)) {
        PARLEY_ASSIGN_OR_RETURN(state, relation(row->id, e.author));
        hidden = state == "blocked";
      }
      const auto cseq = static_cast<std::int64_t>(pos + 1);
      const bool unread = e.kind == conv::Kind::kMessage && e.author != who && !hidden;
      PARLEY_TRY(touch_member(row->id, conv, "", cseq, unread));
      PARLEY_TRY(append_event(row->id, "gev", conv, cseq, "").status());
    }
  }
  return ok_status();
}

Status Core::apply_conv(const std::string& from, const std::string& signed_bytes) {
  PARLEY_ASSIGN_OR_RETURN(se, conv::SignedEvent::decode(signed_bytes));
  const conv::Event& e = se.event;
  const std::string id = e.id();
  // Acknowledged and dropped: resending would not change the verdict. `counted` is the reason
  // label of parley_federation_dropped_total.
  auto refuse = [&](const char* counted, const std::string& reason) {
    spdlog::warn("event=conv_event_refused conv={} id={} origin={} from={} reason=\"{}\"", e.conv,
                 id, e.origin, from, reason);
    if (metrics_) metrics_->count_federation_drop(counted);
    return ok_status();
  };
  if (!is_group(e.conv)) return refuse("malformed", "not a group conversation");
  if (conv::node_of(e.author) != e.origin) {
    return refuse("malformed", "the author is not a user of the origin");
  }
  // Every event carries its origin's own signature, whoever delivers it (the transaction's
  // signature covers the transport, not the event once it is passed on).
  PARLEY_ASSIGN_OR_RETURN(signature, origin_signature(se));
  if (signature == "unknown") {
    // The origin's key document is not at hand: fetched off the core thread, then the group is
    // pulled again from the node that passed the event on.
    auto& waits = key_waits_[e.origin];
    const bool first = waits.empty();
    waits.emplace(e.conv, from);
    if (first && origin_keys_) {
      origin_keys_->fetch(e.origin,
                          [this, origin = e.origin](bool ok) { origin_key_fetched(origin, ok); });
    }
    return refuse("signature", "the origin's key is not known yet (fetching it)");
  }
  if (signature != "ok") return refuse("signature", "bad or unverifiable origin signature");

  PARLEY_ASSIGN_OR_RETURN(r, convs_->find(e.conv));
  if (!r) {
    // A conversation this node does not hold: only an event that brings one of our users in
    // opens it (the rest comes by pulling).
    bool ours = false;
    if (e.kind == conv::Kind::kCreate) {
      for (const auto& m : conv::create_members(e.body))
        ours = ours || conv::node_of(m) == config_.name;
    } else if (e.kind == conv::Kind::kAdd) {
      ours = conv::node_of(e.target) == config_.name;
    }
    if (!ours) {
      spdlog::debug("event=conv_event_ignored conv={} id={} from={} reason=\"unknown group\"",
                    e.conv, id, from);
      return ok_status();
    }
    PARLEY_ASSIGN_OR_RETURN(opened, convs_->open(e.conv));
    r = opened;
    joining_.insert(e.conv);
  }
  const std::size_t applied_before = r->log().size();
  const auto members_before = r->members();
  PARLEY_ASSIGN_OR_RETURN(outcome, convs_->receive(e.conv, se, from));
  // Events that waited for their causal past and, now that it is here, may not be applied.
  for (const auto& [late, why] : convs_->take_refused(e.conv)) {
    spdlog::warn("event=conv_event_refused conv={} id={} origin={} from={} reason=\"{}\"",
                 late.conv, late.id(), late.origin, from, why);
    if (metrics_) metrics_->count_federation_drop(refusal_label(why));
  }
  switch (outcome) {
    case conv::Replica::Outcome::kApplied: {
      // A local user added by someone they block leaves at once (core_group_blocks.cpp).
      PARLEY_ASSIGN_OR_RETURN(unwanted, blocked_adds(*r, applied_before, members_before));
      if (!unwanted.empty()) return leave_unwanted(e.conv, unwanted);
      return conv_settle(e.conv);
    }
    case conv::Replica::Outcome::kBuffered:
      want_pulls_.emplace(e.conv, from);
      return ok_status();
    case conv::Replica::Outcome::kEquivocation:
      spdlog::warn("event=conv_equivocation conv={} origin={} seq={} id={} from={}", e.conv,
                   e.actor(), e.seq, id, from);
      return ok_status();
    case conv::Replica::Outcome::kRejected:
      return refuse(refusal_label(r->rejected_because()), r->rejected_because());
    case conv::Replica::Outcome::kDuplicate:
      return ok_status();
  }
  return ok_status();
}

Result<std::string> Core::origin_signature(const conv::SignedEvent& se) {
  const std::string& origin = se.event.origin;
  if (origin == config_.name) {
    // Ours: any key this node ever had.
    PARLEY_ASSIGN_OR_RETURN(st,
                            db_.prepare("SELECT public_key FROM node_keys WHERE until_ms >= 0"));
    for (;;) {
      PARLEY_ASSIGN_OR_RETURN(row, st.step());
      if (!row) break;
      if (se.verify(st.column_text(0))) return std::string("ok");
    }
    return std::string("bad");
  }
  federation::PeerStore peers(db_);
  PARLEY_ASSIGN_OR_RETURN(peer, peers.get(origin));
  if (peer && peer->state == "denied") return std::string("bad");
  // Under the allowlist only the admin's listed peers count, whatever key a row has pinned.
  if (!(peer && peer->listed) && config_.federation_policy == "allowlist") {
    return std::string("bad");
  }
  const bool pinned = peer && !peer->public_key.empty();
  if (pinned && se.verify(peer->public_key)) return std::string("ok");
  // An older key of the origin (the event was signed before a rotation), or no key pinned yet:
  // the origin's key document, trusted as a request's key is (spec/federation.md section 1).
  const auto doc = origin_keys_ ? origin_keys_->cached(origin) : std::nullopt;
  if (!doc) return std::string(origin_keys_ ? "unknown" : "bad");
  if (pinned && !doc->continues_from(peer->public_key).ok()) return std::string("bad");
  for (const auto& k : doc->keys) {
    if (!se.verify(k.public_key)) continue;
    if (!pinned && peer && doc->current()) {
      PARLEY_TRY(peers.pin_key(origin, doc->current()->public_key));
      spdlog::warn(
          "event=peer_key_pinned peer={} key={} note=\"trust on first use (a group event passed "
          "on by another node)\"",
          origin, crypto::format_public_key(doc->current()->public_key));
    }
    return std::string("ok");
  }
  return std::string("bad");
}

void Core::origin_key_fetched(const std::string& origin, bool ok) {
  auto waits = std::move(key_waits_[origin]);
  key_waits_.erase(origin);
  if (!ok) return;  // refused events come back with the next pull (ordering.md section 6)
  for (const auto& [conv, node] : waits) conv_pull(conv, node);
}

void Core::conv_rollback() {
  if (convs_) convs_->drop_cache();
  want_pulls_.clear();
  joining_.clear();
}

void Core::conv_after_commit() {
  auto wanted = std::move(want_pulls_);
  want_pulls_.clear();
  // A conversation this node just learned of: once its members are known, ask every other node
  // for what it has (events sent before we knew the group were not kept).
  for (auto it = joining_.begin(); it != joining_.end();) {
    auto r = convs_->find(*it);
    if (!r.ok() || !*r || (*r)->members().empty()) {
      ++it;
      continue;
    }
    for (const auto& n : conv::nodes_of((*r)->members())) {
      if (n != config_.name) wanted.emplace(*it, n);
    }
    it = joining_.erase(it);
  }
  for (const auto& [conv, node] : wanted) conv_pull(conv, node);
}

void Core::conv_pull(const std::string& conv, const std::string& dest) {
  if (!remote_ || !pulling_.emplace(conv, dest).second) return;
  last_pull_ms_[conv] = clock_.now_ms();
  auto r = convs_->find(conv);
  if (!r.ok() || !*r) {
    pulling_.erase({conv, dest});
    return;
  }
  wire::MapWriter clock;
  for (const auto& [actor, seq] : (*r)->clock()) clock.add(actor, seq);
  wire::MapWriter body;
  body.add("conv", conv).add("clock", clock);
  spdlog::debug("event=conv_pull conv={} from={}", conv, dest);
  remote_->query(dest, "conv_pull", body.finish(), [this, conv, dest](Result<std::string> answer) {
    conv_pulled(conv, dest, std::move(answer));
  });
}

void Core::conv_pulled(const std::string& conv, const std::string& dest,
                       Result<std::string> answer) {
  pulling_.erase({conv, dest});
  if (!answer.ok()) {
    spdlog::info("event=conv_pull_failed conv={} peer={} code={} reason=\"{}\"", conv, dest,
                 answer.error().code, answer.error().message);
    return;  // conv_tick asks again while events wait
  }
  auto msg = wire::Message::parse(*answer);
  auto events =
      msg.ok() ? msg->root().array("events") : Result<std::vector<wire::View>>(msg.error());
  if (!events.ok()) {
    spdlog::warn("event=conv_pull_failed conv={} peer={} reason=\"{}\"", conv, dest,
                 events.error().message);
    return;
  }
  const bool more = msg->root().boolean_or("more", false).value_or(false);
  Status s = [&]() -> Status {
    PARLEY_ASSIGN_OR_RETURN(tx, store::Transaction::begin(db_));
    for (const auto& v : *events) {
      PARLEY_ASSIGN_OR_RETURN(bytes, v.as_bin(kMaxSignedEvent));
      PARLEY_TRY(apply_conv(dest, bytes));
    }
    return tx.commit();
  }();
  if (!s.ok()) {
    touched_.clear();
    outbox_grew_ = false;
    conv_rollback();
    spdlog::warn("event=conv_pull_failed conv={} peer={} reason=\"{}\"", conv, dest,
                 s.error().message);
    return;
  }
  spdlog::info("event=conv_pulled conv={} peer={} events={} more={}", conv, dest, events->size(),
               more);
  notify_touched();
  if (outbox_grew_ && outbox_listener_) outbox_listener_();
  outbox_grew_ = false;
  want_pulls_.erase({conv, dest});
  conv_after_commit();
  if (more && !events->empty()) conv_pull(conv, dest);
}

Result<std::string> Core::conv_pull_answer(const std::string& asker, wire::View req) {
  PARLEY_ASSIGN_OR_RETURN(conv, req.str("conv", 128));
  conv::Clock theirs;
  if (req.has("clock")) {
    PARLEY_ASSIGN_OR_RETURN(clock, req.map("clock"));
    PARLEY_ASSIGN_OR_RETURN(actors, clock.keys());
    for (const auto& actor : actors) {
      PARLEY_ASSIGN_OR_RETURN(seq, clock.uint(actor));
      theirs[actor] = seq;
    }
  }
  PARLEY_ASSIGN_OR_RETURN(r, convs_->find(conv));
  if (!r) return make_error("not_found", "no conversation " + conv + " here");
  // A node that hosts a member gets everything; a node whose members were all removed gets the
  // history up to their removal (so it learns of it) and nothing after.
  const bool current = conv::nodes_of(r->members()).count(asker) > 0;
  std::vector<const conv::Event*> removals;
  if (!current) {
    for (const auto& e : r->log()) {
      const bool about_asker =
          (e.kind == conv::Kind::kRemove && conv::node_of(e.target) == asker) ||
          (e.kind == conv::Kind::kLeave && conv::node_of(e.author) == asker);
      if (about_asker && r->valid(e.id())) removals.push_back(&e);
    }
    if (removals.empty()) {
      return make_error("forbidden", "node " + asker + " hosts no member of " + conv);
    }
  }
  auto missing = r->missing_for(theirs, current ? kPullPage + 1 : r->log().size());
  if (!current) {
    std::erase_if(missing, [&](const conv::Event& e) {
      return std::none_of(removals.begin(), removals.end(), [&](const conv::Event* cap) {
        return cap->id() == e.id() || conv::happened_before(e, *cap);
      });
    });
  }
  wire::ArrayWriter events;
  std::size_t bytes = 0;
  bool more = false;
  for (const auto& e : missing) {
    if (events.size() == kPullPage || bytes > kPullPageBytes) {
      more = true;
      break;
    }
    PARLEY_ASSIGN_OR_RETURN(se, convs_->stored(conv, e));
    const std::string encoded = se.encode();
    bytes += encoded.size();
    events.push_bin(encoded);
  }
  wire::MapWriter out;
  out.add("conv", conv).add("events", events).add("more", more);
  return out.finish();
}

void Core::conv_tick() {
  if (!conv_started_) {
    // Conversations with events stored while they waited: load them so they are asked for.
    conv_started_ = true;
    auto st = db_.prepare("SELECT DISTINCT conv_id FROM conv_pending");
    std::vector<std::string> ids;
    while (st.ok()) {
      auto row = st->step();
      if (!row.ok() || !*row) break;
      ids.push_back(st->column_text(0));
    }
    for (const auto& id : ids) (void)convs_->find(id);
  }
  const std::int64_t now = clock_.now_ms();
  for (const auto& conv : convs_->waiting()) {
    if (now - last_pull_ms_[conv] < kRepullMs) continue;
    auto r = convs_->find(conv);
    if (!r.ok() || !*r) continue;
    auto nodes = conv::nodes_of((*r)->members());
    nodes.erase(config_.name);
    if (nodes.empty()) {
      // Nothing applied yet (we only hold events that wait): ask the nodes they came from.
      nodes = (*r)->waiting_on();
      nodes.erase(config_.name);
    }
    for (const auto& n : nodes) conv_pull(conv, n);
  }
}

Result<std::optional<ConvSummary>> Core::conv_summary(const std::string& conv) {
  return convs_->summary(conv);
}

Result<std::vector<ConvSummary>> Core::conv_list() { return convs_->list(); }

}  // namespace parley::node
