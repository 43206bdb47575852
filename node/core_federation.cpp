// Events from other nodes (spec/federation.md section 4): applied exactly once per origin, in
// order, with this node's rules (policy, blocks, relationship states) for its own users.
#include "core_internal.h"
#include "parley/address.h"
#include "parley/conv/replica.h"
#include "parley/node/conv_store.h"

#include <spdlog/spdlog.h>

namespace parley::node {

Result<std::uint64_t> Core::node_epoch() { return convs_->epoch(); }

Result<std::int64_t> Core::apply_federation(const std::string& origin, std::uint64_t epoch,
                                            const std::vector<InboundEvent>& events) {
  auto result = [&]() -> Result<std::int64_t> {
    PARLEY_ASSIGN_OR_RETURN(tx, store::Transaction::begin(db_));
    std::int64_t applied = 0, fresh = 0;
    {
      PARLEY_ASSIGN_OR_RETURN(
          st, db_.prepare("SELECT applied_upto, epoch FROM fed_inbound WHERE origin = ?"));
      st.bind(1, origin);
      PARLEY_ASSIGN_OR_RETURN(row, st.step());
      if (row) {
        applied = st.column_int64(0);
        const auto known = static_cast<std::uint64_t>(st.column_int64(1));
        if (epoch < known) {
          return make_error("stale_epoch",
                            origin + " already sent under epoch " + std::to_string(known) +
                                "; this transaction is from " + std::to_string(epoch) +
                                " (a copy of that node from before a restore?)");
        }
        if (epoch > known) {
          // The origin was restored from a backup: its event ids start again below what was
          // applied. Events it sends again are recognised by their own ids (msg_id, event id).
          spdlog::warn("event=peer_epoch_raised peer={} from={} to={} applied_upto_was={}", origin,
                       known, epoch, applied);
          applied = 0;
        }
      }
    }
    for (const auto& e : events) {
      if (e.id <= applied) continue;  // already applied: a resent transaction
      PARLEY_TRY(apply_one(origin, e));
      applied = e.id;
      ++fresh;
    }
    {
      PARLEY_ASSIGN_OR_RETURN(
          st,
          db_.prepare("INSERT INTO fed_inbound(origin, applied_upto, updated_ms, epoch) VALUES(?, "
                      "?, ?, ?) ON CONFLICT(origin) DO UPDATE SET applied_upto = "
                      "excluded.applied_upto, updated_ms = excluded.updated_ms, epoch = "
                      "excluded.epoch"));
      PARLEY_TRY(st.bind(1, origin)
                     .bind(2, applied)
                     .bind(3, clock_.now_ms())
                     .bind(4, static_cast<std::int64_t>(epoch))
                     .run());
    }
    PARLEY_TRY(tx.commit());
    if (metrics_) metrics_->federation_events_in.fetch_add(fresh, std::memory_order_relaxed);
    return applied;
  }();
  if (!result.ok()) {
    touched_.clear();
    outbox_grew_ = false;
    conv_rollback();
    return result;
  }
  notify_touched();
  if (outbox_grew_ && outbox_listener_) outbox_listener_();
  outbox_grew_ = false;
  conv_after_commit();
  return result;
}

Result<std::int64_t> Core::expire_outbox() {
  const std::int64_t now = clock_.now_ms();
  const std::int64_t cutoff = now - std::int64_t{config_.federation_queue_lifetime_seconds} * 1000;
  struct Expired {
    std::int64_t id, created_ms;
    std::string dest, payload;
  };
  std::vector<Expired> expired;
  {
    // Ids grow with time: the oldest events are the first ones.
    PARLEY_ASSIGN_OR_RETURN(
        st, db_.prepare("SELECT id, dest, payload, created_ms FROM fed_outbox ORDER BY id LIMIT "
                        "1000"));
    for (;;) {
      PARLEY_ASSIGN_OR_RETURN(row, st.step());
      if (!row || st.column_int64(3) >= cutoff) break;
      expired.push_back(
          {st.column_int64(0), st.column_int64(3), st.column_text(1), st.column_text(2)});
    }
  }
  if (expired.empty()) return std::int64_t{0};
  auto result = [&]() -> Result<std::int64_t> {
    PARLEY_ASSIGN_OR_RETURN(tx, store::Transaction::begin(db_));
    for (const auto& e : expired) {
      PARLEY_ASSIGN_OR_RETURN(del, db_.prepare("DELETE FROM fed_outbox WHERE id = ?"));
      PARLEY_TRY(del.bind(1, e.id).run());
      std::string type = "?";
      if (auto msg = wire::Message::parse(e.payload); msg.ok()) {
        const wire::View v = msg->root();
        type = v.str_or("type", "?", 32).value_or("?");
        // The sender's request never reached its addressee: it shows as failed, and the pair
        // are strangers again (a new request may be made).
        if (type == "friend" && v.str_or("event", "", 32).value_or("") == "request") {
          const auto from = wire::parse_address(v.str_or("from", "", 320).value_or(""));
          const std::string to = v.str_or("to", "", 320).value_or("");
          if (from.ok() && from->domain == config_.name) {
            PARLEY_ASSIGN_OR_RETURN(user, find_user(from->local));
            if (user) {
              PARLEY_ASSIGN_OR_RETURN(state, relation(user->id, to));
              if (state == "outgoing") {
                PARLEY_TRY(drop_relation(user->id, to));
                PARLEY_TRY(friend_event(user->id, "failed", to, from->str()));
              }
            }
          }
        }
      }
      spdlog::warn("event=federation_expired peer={} id={} type={} age_s={}", e.dest, e.id, type,
                   (now - e.created_ms) / 1000);
    }
    PARLEY_TRY(tx.commit());
    return static_cast<std::int64_t>(expired.size());
  }();
  if (!result.ok()) {
    touched_.clear();
    return result;
  }
  if (metrics_) {
    for (std::size_t i = 0; i < expired.size(); ++i) metrics_->count_federation_drop("expired");
  }
  notify_touched();
  return result;
}

namespace {

// Errors that refuse the whole transaction: the origin spoke for someone it does not speak for
// (403, federation.md section 4), or this node could not store what it applied (the sender
// retries). Every other error is a verdict on one event, which is acknowledged and dropped.
bool fails_transaction(const Error& e) {
  return e.code == "forbidden" || store::write_refused(e) || e.code == "storage" ||
         e.code == "busy" || e.code == "corrupt" || e.code == "conflict" || e.code == "internal";
}

}  // namespace

// One event, in a savepoint: a dropped event leaves nothing behind, the events before and after
// it in the transaction are applied.
Status Core::apply_one(const std::string& origin, const InboundEvent& e) {
  PARLEY_TRY(db_.exec("SAVEPOINT fed_event"));
  Status s = [&]() -> Status {
    auto msg = wire::Message::parse(e.payload);
    if (!msg.ok()) return make_error("bad_request", "malformed payload: " + msg.error().message);
    return apply_remote(origin, msg->root());
  }();
  if (s.ok() || fails_transaction(s.error())) {
    if (s.ok()) PARLEY_TRY(db_.exec("RELEASE fed_event"));
    return s;
  }
  PARLEY_TRY(db_.exec("ROLLBACK TO fed_event; RELEASE fed_event"));
  drop_inbound(origin, e.id, s.error().code, s.error().message);
  return ok_status();
}

void Core::drop_inbound(const std::string& origin, std::int64_t id, const std::string& reason,
                        const std::string& detail) {
  spdlog::warn("event=federation_event_dropped peer={} id={} reason={} detail=\"{}\"", origin, id,
               reason, detail);
  if (metrics_) metrics_->count_federation_drop(reason);
}

Status Core::dm_check_clock(const std::string& conv, const std::string& origin, DmOrder& order) {
  auto bad = [](const std::string& why) { return make_error("bad_clock", why); };
  auto sum = conv::clock_sum(order.clock);
  if (!sum.ok()) return bad(sum.error().message);
  std::string node;
  std::uint64_t epoch = 0;
  if (!conv::parse_actor(order.actor, &node, &epoch) || node != origin ||
      !order.clock.count(order.actor)) {
    return bad("the message's actor is not an entry of its origin in its clock");
  }
  for (const auto& [actor, n] : order.clock) {
    conv::parse_actor(actor, &node, &epoch);
    if (node != origin && node != config_.name) {
      return bad("clock entry " + actor + " is of neither node of the conversation");
    }
  }
  order.seq = order.clock.at(order.actor);
  order.sum = static_cast<std::int64_t>(*sum);
  // What this node holds: its clock of the conversation (the highest entries seen and its own
  // count), and the last message it stored from the same actor.
  std::map<std::string, std::uint64_t> held;
  {
    PARLEY_ASSIGN_OR_RETURN(st, db_.prepare("SELECT actor, seq FROM dm_clocks WHERE conv_id = ?"));
    st.bind(1, conv);
    for (;;) {
      PARLEY_ASSIGN_OR_RETURN(row, st.step());
      if (!row) break;
      held[st.column_text(0)] = static_cast<std::uint64_t>(st.column_int64(1));
    }
  }
  if (const auto it = held.find(order.actor); it != held.end() && order.seq <= it->second) {
    return bad("the origin's entry " + std::to_string(order.seq) + " does not exceed " +
               std::to_string(it->second) + ", already seen");
  }
  PARLEY_ASSIGN_OR_RETURN(my_epoch, convs_->epoch());
  const std::string mine = config_.name + "#" + std::to_string(my_epoch);
  if (const auto it = order.clock.find(mine); it != order.clock.end()) {
    const auto sent = held.find(mine);
    if (it->second > (sent == held.end() ? 0 : sent->second)) {
      return bad("the clock counts more messages of " + mine + " than this node sent");
    }
  }
  {
    PARLEY_ASSIGN_OR_RETURN(
        st, db_.prepare("SELECT ord_sum, ord_seq FROM messages WHERE conv_id = ? AND ord_actor = "
                        "? ORDER BY ord_seq DESC LIMIT 1"));
    st.bind(1, conv).bind(2, order.actor);
    PARLEY_ASSIGN_OR_RETURN(row, st.step());
    if (row) {
      const auto before_sum = static_cast<std::uint64_t>(st.column_int64(0));
      const auto before_seq = static_cast<std::uint64_t>(st.column_int64(1));
      // The other entries together never go down from one message of an actor to its next.
      if (before_seq < order.seq && before_sum >= before_seq &&
          *sum - order.seq < before_sum - before_seq) {
        return bad("the clock regresses from the origin's previous message");
      }
    }
  }
  return ok_status();
}

Status Core::apply_remote(const std::string& origin, wire::View ev) {
  PARLEY_ASSIGN_OR_RETURN(type, ev.str("type", 32));
  if (type == "conv") {
    // A group event (spec/ordering.md), signed by its origin; `origin` may be relaying it.
    PARLEY_ASSIGN_OR_RETURN(signed_bytes, ev.bin("ev", 2 * config_.max_body_bytes + 4096));
    return apply_conv(origin, signed_bytes);
  }
  PARLEY_ASSIGN_OR_RETURN(from_text, ev.str("from", 320));
  PARLEY_ASSIGN_OR_RETURN(to_text, ev.str("to", 320));
  PARLEY_ASSIGN_OR_RETURN(from, wire::parse_address(from_text));
  PARLEY_ASSIGN_OR_RETURN(to, wire::parse_address(to_text));
  // A node speaks only for its own users, and only to ours.
  if (from.domain != origin) {
    return make_error("forbidden", "event from " + from.str() + " sent by node " + origin);
  }
  if (to.domain != config_.name) {
    return make_error("not_ours", "event for " + to.str() + ", who is not on this node");
  }
  // A message names the conversation between `from` and `to`; an origin cannot write into a
  // conversation it is not part of.
  const std::string conv = wire::dm_conversation_id(from.str(), to.str());
  if (type == "msg") {
    PARLEY_ASSIGN_OR_RETURN(named, ev.str_or("conv", conv, 64));
    if (named != conv) {
      return make_error("forbidden", "event for conversation " + named + ", which is not between " +
                                         from.str() + " and " + to.str());
    }
  }
  auto user = find_user(to.local);
  if (!user.ok()) return user.take_error();
  if (!*user) return ok_status();  // no such user (any more): dropped, like a bounce-free mail
  const UserRow& me = **user;
  PARLEY_ASSIGN_OR_RETURN(mine, relation(me.id, from.str()));
  if (mine == "blocked") return ok_status();  // blocks hold here, silently

  if (type == "friend") {
    PARLEY_ASSIGN_OR_RETURN(event, ev.str("event", 32));
    if (event == "request") {
      if (mine == "friend" || mine == "incoming") return ok_status();
      if (mine == "outgoing") {  // crossing requests: both sides become friends
        PARLEY_TRY(set_relation(me.id, from.str(), "friend"));
        return friend_event(me.id, "accepted", from.str(), from.str());
      }
      PARLEY_TRY(set_relation(me.id, from.str(), "incoming"));
      return friend_event(me.id, "request", from.str(), from.str());
    }
    if (event == "accepted") {
      // Only the addressee answers a request: `from` accepts what our user asked of them. An
      // `accepted` for a request `from` made itself (incoming here) would let a node complete
      // its own request on our user's behalf.
      if (mine == "incoming") {
        return make_error("unsolicited_accept",
                          from.str() + " accepted its own request to " + to.str());
      }
      if (mine != "outgoing") return ok_status();
      PARLEY_TRY(set_relation(me.id, from.str(), "friend"));
      return friend_event(me.id, "accepted", from.str(), from.str());
    }
    if (event == "declined" || event == "cancelled" || event == "removed") {
      if (mine.empty()) return ok_status();
      PARLEY_TRY(drop_relation(me.id, from.str()));
      return friend_event(me.id, event, from.str(), from.str());
    }
    return ok_status();  // unknown friend events are ignored (newer peers)
  }

  if (type == "msg") {
    if (config_.direct_messages == DirectMessagePolicy::kOrganization) return ok_status();
    if (config_.direct_messages == DirectMessagePolicy::kFriends && mine != "friend") {
      return ok_status();  // not allowed here: dropped; the sender sees no delivery
    }
    PARLEY_ASSIGN_OR_RETURN(msg_id, ev.str("msg_id", 64));
    PARLEY_ASSIGN_OR_RETURN(body, ev.bin("body", config_.max_body_bytes));
    PARLEY_ASSIGN_OR_RETURN(from_device, ev.uint_or("from_device", 0));
    PARLEY_ASSIGN_OR_RETURN(claimed_ms, ev.uint_or("sent_ms", 0));
    // A message is not sent in the future: a sender's clock ahead of ours (or a lie) would
    // otherwise show it out of place and hold back retention (storage.md).
    const std::uint64_t sent_ms =
        std::min<std::uint64_t>(claimed_ms, static_cast<std::uint64_t>(clock_.now_ms()));
    {
      PARLEY_ASSIGN_OR_RETURN(
          st, db_.prepare("SELECT 1 FROM messages WHERE sender = ? AND msg_id = ?"));
      st.bind(1, from.str()).bind(2, msg_id);
      PARLEY_ASSIGN_OR_RETURN(dup, st.step());
      if (dup) return ok_status();
    }
    // Its place in the conversation's order: the clock its origin sent it with.
    DmOrder order;
    if (ev.has("clock")) {
      PARLEY_ASSIGN_OR_RETURN(clock, ev.map("clock"));
      PARLEY_ASSIGN_OR_RETURN(actors, clock.keys());
      for (const auto& actor : actors) {
        PARLEY_ASSIGN_OR_RETURN(seq, clock.uint(actor));
        order.clock[actor] = seq;
      }
      PARLEY_ASSIGN_OR_RETURN(actor, ev.str("actor", 300));
      order.actor = actor;
      // An invalid clock (ordering.md section 7) is acknowledged and dropped: refusing the
      // transaction would stop the origin's queue behind it.
      if (Status valid = dm_check_clock(conv, origin, order); !valid.ok()) {
        if (valid.error().code != "bad_clock") return valid;
        spdlog::warn("event=dm_clock_refused conv={} from={} msg_id={} reason=\"{}\"", conv,
                     from.str(), msg_id, valid.error().message);
        if (metrics_) metrics_->count_federation_drop("clock");
        return ok_status();
      }
      PARLEY_TRY(dm_merge(conv, order.clock));
    }  // without a clock (an older origin): ordered by arrival, like before version 8
    PARLEY_ASSIGN_OR_RETURN(
        cseq, store_message({conv, from.str(), static_cast<std::int64_t>(from_device), to.str(),
                             msg_id, body, static_cast<std::int64_t>(sent_ms), false, order.sum,
                             order.actor, static_cast<std::int64_t>(order.seq)}));
    PARLEY_TRY(touch_member(me.id, conv, from.str(), cseq, true));
    return append_event(me.id, "msg", conv, cseq, "").ok()
               ? ok_status()
               : make_error("storage", "cannot append the message to the stream");
  }
  if (type == "receipt") {
    // `from` (a user of the origin) received or read our user's message `msg_id`.
    PARLEY_ASSIGN_OR_RETURN(status, ev.str("status", 16));
    PARLEY_ASSIGN_OR_RETURN(msg_id, ev.str("msg_id", 64));
    std::string conv;
    std::int64_t cseq = 0;
    {
      PARLEY_ASSIGN_OR_RETURN(
          st, db_.prepare("SELECT conv_id, cseq FROM messages WHERE sender = ? AND msg_id = ? "
                          "AND recipient = ?"));
      st.bind(1, to.str()).bind(2, msg_id).bind(3, from.str());
      PARLEY_ASSIGN_OR_RETURN(row, st.step());
      if (!row) return ok_status();  // unknown message (deleted): nothing to tell
      conv = st.column_text(0);
      cseq = st.column_int64(1);
    }
    const std::int64_t now = clock_.now_ms();
    wire::MapWriter p;
    p.add("conv", conv).add("status", status).add("by", from.str());
    if (status == "delivered") {
      PARLEY_ASSIGN_OR_RETURN(
          st, db_.prepare("UPDATE messages SET delivered_ms = ? WHERE conv_id = ? AND cseq = ? "
                          "AND delivered_ms IS NULL"));
      PARLEY_TRY(st.bind(1, now).bind(2, conv).bind(3, cseq).run());
      if (db_.changes() == 0) return ok_status();  // already known
      p.add("msg_id", msg_id).add("cseq", cseq);
    } else if (status == "read") {
      PARLEY_ASSIGN_OR_RETURN(
          st, db_.prepare("UPDATE messages SET read_ms = ?1, delivered_ms = coalesce(delivered_ms, "
                          "?1) WHERE conv_id = ?2 AND cseq <= ?3 AND sender = ?4 AND read_ms IS "
                          "NULL"));
      PARLEY_TRY(st.bind(1, now).bind(2, conv).bind(3, cseq).bind(4, to.str()).run());
      if (db_.changes() == 0) return ok_status();
      p.add("upto", cseq);
    } else {
      return ok_status();
    }
    return append_event(me.id, "receipt", conv, 0, p.finish()).ok()
               ? ok_status()
               : make_error("storage", "cannot append the receipt to the stream");
  }
  return ok_status();  // unknown event types are ignored (newer peers)
}

}  // namespace parley::node
