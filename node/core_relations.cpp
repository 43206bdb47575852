// Relationship chains: friend requests and their answers, friendships and blocks
// (spec/client-protocol.md section 9). Both users are on this node; the federation issue moves
// the other side of each handshake to the peer's node.
#include "core_internal.h"
#include "parley/address.h"

namespace parley::node {

namespace {

// Answers to a pending request and the end of a friendship: what state the actor needs, what
// event both sides see, and the state both sides get (nullptr removes the relation).
struct Rule {
  const char* type;
  const char* need;
  const char* event;
  const char* new_state;
  const char* missing;
};
constexpr Rule kRules[] = {
    {"friend_accept", "incoming", "accepted", "friend", "no friend request from "},
    {"friend_decline", "incoming", "declined", nullptr, "no friend request from "},
    {"friend_cancel", "outgoing", "cancelled", nullptr, "no pending friend request to "},
    {"friend_remove", "friend", "removed", nullptr, "you are not friends with "},
};

}  // namespace

Status Core::do_relation(Conn& c, const std::string& type, wire::View req, wire::MapWriter& out) {
  PARLEY_ASSIGN_OR_RETURN(text, req.str("user", 320));
  PARLEY_ASSIGN_OR_RETURN(a, wire::parse_address(text));
  const std::string other = a.str();
  if (other == c.address) return make_error("bad_request", "that is your own address");

  PARLEY_ASSIGN_OR_RETURN(tx, store::Transaction::begin(db_));
  PARLEY_ASSIGN_OR_RETURN(mine, relation(c.user_id, other));

  if (type == "block") {
    // Blocking a user of this node requires that they exist; remote addresses may be blocked
    // ahead of time.
    std::optional<UserRow> them;
    if (a.domain == config_.name) {
      PARLEY_ASSIGN_OR_RETURN(t, local_user_counted(c, other));
      them = t;
    }
    PARLEY_TRY(set_relation(c.user_id, other, "blocked"));
    if (them) {
      PARLEY_ASSIGN_OR_RETURN(theirs, relation(them->id, c.address));
      if (!theirs.empty() && theirs != "blocked") PARLEY_TRY(drop_relation(them->id, c.address));
    }
    return tx.commit();
  }
  if (type == "unblock") {
    if (mine != "blocked") return make_error("not_found", other + " is not blocked");
    PARLEY_TRY(drop_relation(c.user_id, other));
    return tx.commit();
  }

  if (!is_local(other)) return remote_relation(c, type, other, mine, tx, out);
  PARLEY_ASSIGN_OR_RETURN(them, local_user_counted(c, other));
  PARLEY_ASSIGN_OR_RETURN(theirs, relation(them.id, c.address));

  if (type == "friend_request") {
    if (mine == "friend" || mine == "outgoing") return tx.commit();
    PARLEY_TRY(check_federates_with(other));
    if (mine == "blocked") {
      return make_error("not_allowed", "you block " + other + "; unblock them first");
    }
    if (mine == "incoming") {  // they asked first: this accepts
      PARLEY_TRY(set_relation(c.user_id, other, "friend"));
      PARLEY_TRY(set_relation(them.id, c.address, "friend"));
      PARLEY_TRY(friend_event(c.user_id, "accepted", other, c.address));
      PARLEY_TRY(friend_event(them.id, "accepted", c.address, c.address));
      out.add("state", "friend");
      return tx.commit();
    }
    PARLEY_TRY(
        take_hourly(friend_requests_, c, config_.friend_requests_per_hour, "friend requests"));
    PARLEY_TRY(set_relation(c.user_id, other, "outgoing"));
    PARLEY_TRY(friend_event(c.user_id, "request", other, c.address));
    if (theirs != "blocked") {  // a block swallows the request silently
      PARLEY_TRY(set_relation(them.id, c.address, "incoming"));
      PARLEY_TRY(friend_event(them.id, "request", c.address, c.address));
    }
    out.add("state", "outgoing");
    return tx.commit();
  }

  for (const auto& r : kRules) {
    if (type != r.type) continue;
    if (mine != r.need) return make_error("not_found", r.missing + other);
    if (r.new_state) {
      PARLEY_TRY(set_relation(c.user_id, other, r.new_state));
      if (theirs != "blocked") PARLEY_TRY(set_relation(them.id, c.address, r.new_state));
    } else {
      PARLEY_TRY(drop_relation(c.user_id, other));
      if (theirs != "blocked") PARLEY_TRY(drop_relation(them.id, c.address));
    }
    PARLEY_TRY(friend_event(c.user_id, r.event, other, c.address));
    if (theirs != "blocked") PARLEY_TRY(friend_event(them.id, r.event, c.address, c.address));
    return tx.commit();
  }
  return make_error("bad_request", "unknown request type '" + type + "'");
}

// The other user lives on another node: change our side here and tell their node, which applies
// the same rules to its side (Core::apply_remote).
Status Core::remote_relation(Conn& c, const std::string& type, const std::string& other,
                             const std::string& mine, store::Transaction& tx,
                             wire::MapWriter& out) {
  auto tell = [&](const char* event) {
    wire::MapWriter ev;
    ev.add("type", "friend").add("event", event).add("from", c.address).add("to", other);
    return enqueue_remote(other, ev.finish());
  };
  if (type == "friend_request") {
    if (mine == "friend" || mine == "outgoing") return tx.commit();
    PARLEY_TRY(check_federates_with(other));
    if (mine == "blocked")
      return make_error("not_allowed", "you block " + other + "; unblock them first");
    if (mine == "incoming") {
      PARLEY_TRY(set_relation(c.user_id, other, "friend"));
      PARLEY_TRY(friend_event(c.user_id, "accepted", other, c.address));
      PARLEY_TRY(tell("accepted"));
      out.add("state", "friend");
      return tx.commit();
    }
    PARLEY_TRY(
        take_hourly(friend_requests_, c, config_.friend_requests_per_hour, "friend requests"));
    PARLEY_TRY(set_relation(c.user_id, other, "outgoing"));
    PARLEY_TRY(friend_event(c.user_id, "request", other, c.address));
    PARLEY_TRY(tell("request"));
    out.add("state", "outgoing");
    return tx.commit();
  }
  for (const auto& r : kRules) {
    if (type != r.type) continue;
    if (mine != r.need) return make_error("not_found", r.missing + other);
    PARLEY_TRY(r.new_state ? set_relation(c.user_id, other, r.new_state)
                           : drop_relation(c.user_id, other));
    PARLEY_TRY(friend_event(c.user_id, r.event, other, c.address));
    PARLEY_TRY(tell(r.event));
    return tx.commit();
  }
  return make_error("bad_request", "unknown request type '" + type + "'");
}

Status Core::take_hourly(RateLimiter& limiter, Conn& c, std::uint32_t per_hour, const char* what) {
  const std::int64_t now = clock_.now_ms();
  if (const auto wait = limiter.blocked_for(c.address, now); wait > 0) {
    retry_after_ms_ = wait;
    return make_error("rate_limited", std::string("too many new ") + what + " this hour (" +
                                          std::to_string(per_hour) + "); retry after " +
                                          std::to_string(wait) + " ms");
  }
  limiter.record_failure(c.address, now);  // counts every one made in the window
  return ok_status();
}

namespace {

Result<std::vector<std::pair<std::string, std::string>>> relations_of(store::Database& db,
                                                                      std::int64_t user_id) {
  PARLEY_ASSIGN_OR_RETURN(
      st, db.prepare("SELECT other, state FROM relations WHERE user_id = ? ORDER BY other"));
  st.bind(1, user_id);
  std::vector<std::pair<std::string, std::string>> out;
  for (;;) {
    PARLEY_ASSIGN_OR_RETURN(row, st.step());
    if (!row) break;
    out.emplace_back(st.column_text(0), st.column_text(1));
  }
  return out;
}

}  // namespace

Status Core::do_friends(Conn& c, wire::View req, wire::MapWriter& out) {
  PARLEY_ASSIGN_OR_RETURN(rows, relations_of(db_, c.user_id));
  wire::ArrayWriter friends, incoming, outgoing;
  for (const auto& [other, state] : rows) {
    if (state == "friend") friends.push(other);
    if (state == "incoming") incoming.push(other);
    if (state == "outgoing") outgoing.push(other);
  }
  out.add("friends", friends).add("incoming", incoming).add("outgoing", outgoing);
  return ok_status();
}

Status Core::do_blocks(Conn& c, wire::View req, wire::MapWriter& out) {
  PARLEY_ASSIGN_OR_RETURN(rows, relations_of(db_, c.user_id));
  wire::ArrayWriter blocked;
  for (const auto& [other, state] : rows) {
    if (state == "blocked") blocked.push(other);
  }
  out.add("blocked", blocked);
  return ok_status();
}

}  // namespace parley::node
